//! Black-box HTTP tests: the app on a random port, a fresh database per
//! test, every test on SQLite and on PostgreSQL.

#[macro_use]
mod helpers;

mod access;
mod actions;
mod assignment_lifecycle;
mod auth;
mod bodies;
mod browser;
mod cases;
mod disclosure;
mod duplicates;
mod expert_helpers;
mod experts;
mod faults;
mod idempotency;
mod input;
mod mail;
mod mailbox;
mod meetings;
mod notifications;
mod open_hours;
mod openapi;
mod organizations;
mod pages;
mod pages_account;
mod pages_desk;
mod pages_open_hours;
mod pages_quality;
mod pages_statistics;
mod reasons;
mod service;
mod smtp;
mod stats;
mod stats_open_hours;
mod walkthrough;
