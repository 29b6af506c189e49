//! Domain rules in plain Rust: no actix, no diesel. Everything here can be
//! read and unit-tested alone.

pub mod access;
pub mod account;
pub mod assignment;
pub mod calendar;
pub mod case;
pub mod conflicts;
pub mod duplicate;
pub mod import;
pub mod lifecycle;
pub mod matching;
pub mod meeting;
pub mod notice;
pub mod open_hours;
pub mod open_hours_stats;
pub mod plan;
pub mod role;
pub mod statistics;
pub mod terms;
pub mod time;
pub mod validation;
pub mod vocabulary;
