//! Time as stored: Unix microseconds (i64) on both backends.
//!
//! [`Clock`] is the time a server instance goes by where waiting matters
//! (the quarter hour between message notices, the mail worker's due rows):
//! the system's time, or in tests the system's time moved forward by
//! [`Clock::advance`], so a test lets a quarter hour pass without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// The time of one server instance: the system clock, or (tests) the
/// system clock plus an offset that only grows.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's time.
    pub fn system() -> Self {
        Clock { offset: None }
    }

    /// The system's time until [`Clock::advance`] moves it forward; clones
    /// share the offset.
    pub fn adjustable() -> Self {
        Clock {
            offset: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    pub fn now_micros(&self) -> i64 {
        let offset = self
            .offset
            .as_ref()
            .map_or(0, |offset| offset.load(Ordering::SeqCst));
        now_micros() + offset
    }

    /// Lets `by` pass at once. Panics on the system clock, which no one
    /// may move.
    pub fn advance(&self, by: Duration) {
        let offset = self
            .offset
            .as_ref()
            .expect("only an adjustable clock is advanced");
        let micros = i64::try_from(by.as_micros()).expect("a duration a clock can move");
        offset.fetch_add(micros, Ordering::SeqCst);
    }
}

pub fn to_datetime(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// RFC 3339 with offset, as API.md asks for times.
pub fn to_rfc3339(micros: i64) -> String {
    to_datetime(micros).to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_forward_for_every_clone() {
        let clock = Clock::adjustable();
        let shared = clock.clone();
        let before = clock.now_micros();
        shared.advance(Duration::from_secs(15 * 60));
        let after = clock.now_micros();
        assert!(after - before >= 15 * 60 * 1_000_000, "{before} → {after}");
        assert!(Clock::system().now_micros() < after);
    }

    #[test]
    #[should_panic(expected = "only an adjustable clock")]
    fn the_system_clock_cannot_be_moved() {
        Clock::system().advance(Duration::from_secs(1));
    }

    #[test]
    fn formats_rfc3339_with_offset() {
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            to_rfc3339(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
