//! Black-box HTTP tests: the app on a random port, a fresh database per
//! test, every test on SQLite and on PostgreSQL.

#[macro_use]
mod helpers;

mod assignment_lifecycle;
mod auth;
mod bodies;
mod cases;
mod disclosure;
mod expert_helpers;
mod experts;
mod faults;
mod idempotency;
mod input;
mod mail;
mod mailbox;
mod meetings;
mod openapi;
mod organizations;
mod reasons;
mod service;
mod smtp;
mod stats;
