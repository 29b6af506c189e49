//! Authentication: password hashing, tokens, login rate limits.

pub mod password;
pub mod rate_limit;
pub mod tokens;
