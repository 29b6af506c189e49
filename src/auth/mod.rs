//! Authentication: password hashing, tokens, login rate limits, ended sessions.

pub mod password;
pub mod rate_limit;
pub mod sessions;
pub mod tokens;
