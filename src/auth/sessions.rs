//! Which access tokens a password reset ended, checked on every request
//! without touching the database.
//!
//! Access tokens are JWTs that live 15 minutes and are checked by their
//! signature alone; that is what makes an authenticated read cheap. A
//! password reset must nevertheless end every session of the account at
//! once. Each account has a *session generation* (`users.session_generation`),
//! carried by every access token it is issued (claim `generation`); a reset
//! increments it. This registry remembers, per account, the current
//! generation of the accounts whose sessions ended within the last
//! [`REMEMBER_MICROS`] — longer than any access token lives — and refuses
//! tokens of an older generation. Every other account is not in it, so the
//! cost on a request is one read lock and one lookup in a map that is
//! almost always empty.
//!
//! The instance that handles the reset notes it at once. Other instances
//! (several medesk processes on one PostgreSQL database) learn of it from
//! the database: [`SessionRegistry::learn`] is fed every few seconds with
//! the accounts whose `sessions_ended_at` is recent (see `app.rs`).

use std::collections::HashMap;
use std::sync::RwLock;

use super::tokens::ACCESS_TOKEN_SECONDS;

/// How long an end of sessions is remembered: an access token's life and a
/// minute to spare (clock leeway, the polling interval).
pub const REMEMBER_MICROS: i64 = (ACCESS_TOKEN_SECONDS + 60) * 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ended {
    /// The account's generation now; tokens of older ones are refused.
    generation: i64,
    /// When the sessions ended (Unix microseconds).
    at: i64,
}

/// Accounts whose sessions ended recently, and their current generation.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    ended: RwLock<HashMap<i64, Ended>>,
}

impl SessionRegistry {
    /// Whether an access token of `generation` for `user_id` is still a
    /// session.
    pub fn is_current(&self, user_id: i64, generation: i64) -> bool {
        let ended = self.ended.read().unwrap_or_else(|e| e.into_inner());
        ended
            .get(&user_id)
            .is_none_or(|ended| generation >= ended.generation)
    }

    /// Records that `user_id`'s sessions ended at `at`: from now on only
    /// tokens of `generation` (or newer) work. An older report never
    /// lowers what is known.
    pub fn ended(&self, user_id: i64, generation: i64, at: i64) {
        let mut ended = self.ended.write().unwrap_or_else(|e| e.into_inner());
        let entry = ended.entry(user_id).or_insert(Ended { generation, at });
        if generation >= entry.generation {
            *entry = Ended { generation, at };
        }
    }

    /// Takes what the database says ended recently (`(user, generation,
    /// at)`), and forgets ends older than [`REMEMBER_MICROS`] before `now`:
    /// every token they concern has expired anyway.
    pub fn learn(&self, recent: impl IntoIterator<Item = (i64, i64, i64)>, now: i64) {
        for (user_id, generation, at) in recent {
            self.ended(user_id, generation, at);
        }
        let mut ended = self.ended.write().unwrap_or_else(|e| e.into_inner());
        ended.retain(|_, ended| ended.at > now - REMEMBER_MICROS);
    }

    /// The earliest end still worth learning about at `now`.
    pub fn horizon(now: i64) -> i64 {
        now - REMEMBER_MICROS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60 * 1_000_000;

    #[test]
    fn accounts_without_an_end_are_always_current() {
        let registry = SessionRegistry::default();
        assert!(registry.is_current(1, 0));
        assert!(registry.is_current(1, 7));
    }

    #[test]
    fn an_end_refuses_older_generations_only() {
        let registry = SessionRegistry::default();
        registry.ended(1, 2, 10 * MINUTE);
        assert!(!registry.is_current(1, 0));
        assert!(!registry.is_current(1, 1));
        assert!(registry.is_current(1, 2));
        assert!(registry.is_current(1, 3));
        // Other accounts are untouched.
        assert!(registry.is_current(2, 0));
    }

    #[test]
    fn a_late_report_of_an_older_end_does_not_lower_the_generation() {
        let registry = SessionRegistry::default();
        registry.ended(1, 3, 10 * MINUTE);
        registry.learn([(1, 2, 5 * MINUTE)], 11 * MINUTE);
        assert!(!registry.is_current(1, 2));
        assert!(registry.is_current(1, 3));
    }

    #[test]
    fn ends_are_forgotten_once_every_token_they_concern_expired() {
        let registry = SessionRegistry::default();
        registry.ended(1, 1, 0);
        registry.learn([], 15 * MINUTE);
        assert!(!registry.is_current(1, 0), "a token may still live");
        registry.learn([], 16 * MINUTE + 1);
        assert!(registry.is_current(1, 0), "forgotten");
        assert_eq!(SessionRegistry::horizon(16 * MINUTE), 0);
    }
}
