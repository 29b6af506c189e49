//! medesk: a consultation case manager for healthcare ventures.
//!
//! Layers, inside out: `domain` (rules, plain Rust) ← `db` (diesel) and
//! `auth` (passwords, tokens) ← `http` (actix handlers) ← `app` (wiring).

pub mod app;
pub mod auth;
pub mod busy;
pub mod clock;
pub mod config;
pub mod db;
pub mod desk;
pub mod domain;
pub mod http;
pub mod mail;
pub mod memory;
pub mod telemetry;
pub mod web;
