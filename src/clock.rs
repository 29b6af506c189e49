//! Time as stored: Unix microseconds (i64) on both backends.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
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
    fn formats_rfc3339_with_offset() {
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            to_rfc3339(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
