//! Times and dates as the API takes them, parsed so that a refusal says
//! what is wrong: `2026-02-30T10:00:00+09:00` names a day February 2026
//! does not have, `2026-12-03T10:00:00` lacks its offset, `2026-13-01…`
//! names a month that does not exist.
//!
//! [`parse_timestamp`] is the one parser of every RFC 3339 field of the API
//! (`date-time` in the OpenAPI document); [`parse_date`] reads `YYYY-MM-DD`
//! with the same messages for the date part. The messages read after the
//! field's name (`starts_at names a day that does not exist: …`).
//!
//! RFC 3339 (section 5.6) is taken as written: four-digit year, two-digit
//! month, day, hour, minute and second, an optional fraction of a second,
//! and an offset that is `Z` or `±hh:mm`. `T` may be written `t` or a space
//! and `Z` as `z`, as the RFC allows. A leap second (`:60`) is refused: the
//! desk stores microseconds since the epoch, which have no leap seconds.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};

/// What every message ends with when the text's shape is wrong.
pub const TIMESTAMP_EXAMPLE: &str = "2026-12-03T10:00:00+09:00";
pub const DATE_EXAMPLE: &str = "2026-12-03";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Reads `raw` byte by byte; every refusal is a message for people.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(raw: &'a str) -> Self {
        Self {
            bytes: raw.as_bytes(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// Exactly `n` ASCII digits, as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let slice = self.bytes.get(self.at..self.at + n)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // The next byte must not be a digit either: `2026-012-…` is not a month.
        if self.bytes.get(self.at + n).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        self.at += n;
        Some(
            slice
                .iter()
                .fold(0, |value, digit| value * 10 + u32::from(digit - b'0')),
        )
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn rest(&self) -> &'a str {
        // Only ever advanced over ASCII bytes, so this is a char boundary.
        std::str::from_utf8(&self.bytes[self.at..]).unwrap_or_default()
    }
}

fn shape_of_timestamp() -> String {
    format!("must be a time in RFC 3339 with an offset, e.g. {TIMESTAMP_EXAMPLE}")
}

fn shape_of_date() -> String {
    format!("must be a date YYYY-MM-DD, e.g. {DATE_EXAMPLE}")
}

/// The number of days of `month` (1..=12) in `year`.
fn days_in_month(year: i32, month: u32) -> u32 {
    let first = NaiveDate::from_ymd_opt(year, month, 1).expect("a valid month");
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.map_or(31, |next| (next - first).num_days() as u32)
}

/// `YYYY-MM-DD` at the cursor; `shape` is the message for text of another
/// shape.
fn date_part(cursor: &mut Cursor, shape: fn() -> String) -> Result<NaiveDate, String> {
    let year = cursor.digits(4).ok_or_else(shape)?;
    if !cursor.eat(b'-') {
        return Err(shape());
    }
    let month = cursor.digits(2).ok_or_else(shape)?;
    if !cursor.eat(b'-') {
        return Err(shape());
    }
    let day = cursor.digits(2).ok_or_else(shape)?;
    if !(1..=12).contains(&month) {
        return Err(format!(
            "names month {month:02}, which does not exist (months are 01 to 12)"
        ));
    }
    let year = year as i32;
    let days = days_in_month(year, month);
    if day == 0 || day > days {
        let name = MONTHS[month as usize - 1];
        return Err(format!(
            "names a day that does not exist: {name} {year:04} has {days} days ({year:04}-{month:02}-{day:02})"
        ));
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(shape)
}

/// A time of RFC 3339 with its offset, e.g. `2026-12-03T10:00:00+09:00`.
pub fn parse_timestamp(raw: &str) -> Result<DateTime<FixedOffset>, String> {
    if raw.trim().is_empty() {
        return Err(format!("must not be empty; e.g. {TIMESTAMP_EXAMPLE}"));
    }
    let mut cursor = Cursor::new(raw);
    let date = date_part(&mut cursor, shape_of_timestamp)?;
    if cursor.at_end() {
        return Err(format!(
            "has no time of day: add it and an offset, e.g. {}T10:00:00+09:00",
            date.format("%Y-%m-%d")
        ));
    }
    if !(cursor.eat(b'T') || cursor.eat(b't') || cursor.eat(b' ')) {
        return Err(shape_of_timestamp());
    }
    let time_shape = || {
        format!("must give the time of day as hh:mm:ss after the date, e.g. {TIMESTAMP_EXAMPLE}")
    };
    let hour = cursor.digits(2).ok_or_else(time_shape)?;
    if !cursor.eat(b':') {
        return Err(time_shape());
    }
    let minute = cursor.digits(2).ok_or_else(time_shape)?;
    if hour > 23 {
        return Err(format!(
            "names hour {hour:02}, which does not exist (hours are 00 to 23)"
        ));
    }
    if minute > 59 {
        return Err(format!(
            "names minute {minute:02}, which does not exist (minutes are 00 to 59)"
        ));
    }
    if !cursor.eat(b':') {
        return Err(format!(
            "has no seconds: write {hour:02}:{minute:02}:00, not {hour:02}:{minute:02}"
        ));
    }
    let second = cursor.digits(2).ok_or_else(time_shape)?;
    if second > 59 {
        return Err(format!(
            "names second {second:02}, which is not accepted (seconds are 00 to 59)"
        ));
    }
    let mut nanos = 0u32;
    if cursor.eat(b'.') {
        let mut count = 0;
        while let Some(digit) = cursor.peek().filter(u8::is_ascii_digit) {
            // Digits beyond nanoseconds are read and dropped.
            if count < 9 {
                nanos = nanos * 10 + u32::from(digit - b'0');
            }
            count += 1;
            cursor.at += 1;
        }
        if count == 0 {
            return Err("has a decimal point without digits after the seconds".to_owned());
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }
    let offset = match cursor.peek() {
        None => {
            return Err(format!(
                "has no offset: add Z for UTC or the offset from UTC, e.g. {}T{hour:02}:{minute:02}:{second:02}+09:00",
                date.format("%Y-%m-%d")
            ));
        }
        Some(b'Z' | b'z') => {
            cursor.at += 1;
            FixedOffset::east_opt(0).expect("UTC")
        }
        Some(sign @ (b'+' | b'-')) => {
            cursor.at += 1;
            let offset_shape = || "has an offset that is not ±hh:mm, e.g. +09:00".to_owned();
            let hours = cursor.digits(2).ok_or_else(offset_shape)?;
            if !cursor.eat(b':') {
                return Err(offset_shape());
            }
            let minutes = cursor.digits(2).ok_or_else(offset_shape)?;
            if hours > 23 || minutes > 59 {
                return Err(format!(
                    "has offset {}{hours:02}:{minutes:02}, which does not exist (offsets are at most ±23:59)",
                    sign as char
                ));
            }
            let seconds = (hours * 3600 + minutes * 60) as i32;
            let seconds = if sign == b'-' { -seconds } else { seconds };
            FixedOffset::east_opt(seconds).ok_or_else(offset_shape)?
        }
        Some(_) => {
            return Err(format!(
                "has {:?} where the offset belongs: write Z or one like +09:00",
                cursor.rest()
            ));
        }
    };
    if !cursor.at_end() {
        return Err(format!(
            "has {:?} after the offset; e.g. {TIMESTAMP_EXAMPLE}",
            cursor.rest()
        ));
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos).ok_or_else(time_shape)?;
    NaiveDateTime::new(date, time)
        .and_local_timezone(offset)
        .single()
        .filter(|t| (-9999..=9999).contains(&t.with_timezone(&chrono::Utc).year()))
        .ok_or_else(shape_of_timestamp)
}

/// A date `YYYY-MM-DD` (the API's date format), e.g. `2026-12-03`.
pub fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    if raw.trim().is_empty() {
        return Err(format!("must not be empty; e.g. {DATE_EXAMPLE}"));
    }
    let mut cursor = Cursor::new(raw);
    let date = date_part(&mut cursor, shape_of_date)?;
    if !cursor.at_end() {
        return Err(format!(
            "must be a date only (YYYY-MM-DD), without {:?}",
            cursor.rest()
        ));
    }
    Ok(date)
}

/// A date and time without offset, as a browser's `datetime-local` field
/// sends it (`2026-12-03T10:00`, seconds optional), read in the time zone
/// `offset` (the desk's, Japan time); the messages are
/// [`parse_timestamp`]'s.
pub fn parse_local_timestamp(
    raw: &str,
    offset: FixedOffset,
) -> Result<DateTime<FixedOffset>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("must not be empty; e.g. 2026-12-03T10:00".to_owned());
    }
    let seconds = if raw.len() == "2026-12-03T10:00".len() {
        ":00"
    } else {
        ""
    };
    parse_timestamp(&format!("{raw}{seconds}{offset}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_time_is_read_in_the_given_offset() {
        let japan = FixedOffset::east_opt(9 * 3600).unwrap();
        assert_eq!(
            parse_local_timestamp("2037-12-03T10:00", japan)
                .unwrap()
                .to_rfc3339(),
            "2037-12-03T10:00:00+09:00"
        );
        assert_eq!(
            parse_local_timestamp("2037-12-03T10:00:30", japan)
                .unwrap()
                .to_rfc3339(),
            "2037-12-03T10:00:30+09:00"
        );
        assert!(parse_local_timestamp("2037-02-30T10:00", japan).is_err());
        assert!(parse_local_timestamp(" ", japan).is_err());
    }

    fn at(raw: &str) -> String {
        parse_timestamp(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
            .to_rfc3339()
    }

    fn refusal(raw: &str) -> String {
        match parse_timestamp(raw) {
            Ok(t) => panic!("{raw:?} was accepted as {t}"),
            Err(message) => message,
        }
    }

    #[test]
    fn valid_times_keep_their_offset() {
        for (raw, expected) in [
            ("2026-12-03T10:00:00+09:00", "2026-12-03T10:00:00+09:00"),
            ("2026-12-03T01:00:00Z", "2026-12-03T01:00:00+00:00"),
            ("2026-12-03t01:00:00z", "2026-12-03T01:00:00+00:00"),
            ("2026-12-03 10:00:00+09:00", "2026-12-03T10:00:00+09:00"),
            (
                "2026-12-03T10:00:00.5+09:00",
                "2026-12-03T10:00:00.500+09:00",
            ),
            (
                "2026-12-03T10:00:00.123456789123-05:30",
                "2026-12-03T10:00:00.123456789-05:30",
            ),
            ("2028-02-29T00:00:00+00:00", "2028-02-29T00:00:00+00:00"),
            ("2026-12-31T23:59:59-23:59", "2026-12-31T23:59:59-23:59"),
        ] {
            assert_eq!(at(raw), expected, "{raw}");
        }
    }

    #[test]
    fn each_refusal_says_what_is_wrong() {
        for (raw, says) in [
            // The example: February 2026 has 28 days.
            (
                "2026-02-30T10:00+09:00",
                "names a day that does not exist: February 2026 has 28 days (2026-02-30)",
            ),
            (
                "2026-02-29T10:00:00+09:00",
                "names a day that does not exist: February 2026 has 28 days (2026-02-29)",
            ),
            (
                "2026-04-31T10:00:00+09:00",
                "names a day that does not exist: April 2026 has 30 days (2026-04-31)",
            ),
            (
                "2026-01-00T10:00:00+09:00",
                "names a day that does not exist: January 2026 has 31 days (2026-01-00)",
            ),
            (
                "2026-13-01T10:00:00+09:00",
                "names month 13, which does not exist (months are 01 to 12)",
            ),
            (
                "2026-00-01T10:00:00+09:00",
                "names month 00, which does not exist (months are 01 to 12)",
            ),
            (
                "2026-12-03T10:00:00",
                "has no offset: add Z for UTC or the offset from UTC, e.g. 2026-12-03T10:00:00+09:00",
            ),
            (
                "2026-12-03T10:00+09:00",
                "has no seconds: write 10:00:00, not 10:00",
            ),
            (
                "2026-12-03",
                "has no time of day: add it and an offset, e.g. 2026-12-03T10:00:00+09:00",
            ),
            (
                "2026-12-03T24:00:00+09:00",
                "names hour 24, which does not exist (hours are 00 to 23)",
            ),
            (
                "2026-12-03T10:60:00+09:00",
                "names minute 60, which does not exist (minutes are 00 to 59)",
            ),
            (
                "2026-12-03T10:00:60+09:00",
                "names second 60, which is not accepted (seconds are 00 to 59)",
            ),
            (
                "2026-12-03T10:00:00+24:00",
                "has offset +24:00, which does not exist (offsets are at most ±23:59)",
            ),
            (
                "2026-12-03T10:00:00+0900",
                "has an offset that is not ±hh:mm, e.g. +09:00",
            ),
            (
                "2026-12-03T10:00:00 JST",
                "has \" JST\" where the offset belongs: write Z or one like +09:00",
            ),
            (
                "2026-12-03T10:00:00+09:00x",
                "has \"x\" after the offset; e.g. 2026-12-03T10:00:00+09:00",
            ),
            (
                "2026-12-03T10:00:00.+09:00",
                "has a decimal point without digits after the seconds",
            ),
            ("", "must not be empty; e.g. 2026-12-03T10:00:00+09:00"),
        ] {
            assert_eq!(refusal(raw), says, "{raw}");
        }
    }

    #[test]
    fn text_of_another_shape_is_shown_an_example() {
        for raw in [
            "next tuesday",
            "26-12-03T10:00:00Z",
            "2026/12/03T10:00:00Z",
            "2026-012-03T10:00:00Z",
            "２０２６-12-03T10:00:00Z",
            " 2026-12-03T10:00:00Z",
            "2026-12-03X10:00:00Z",
        ] {
            assert_eq!(
                refusal(raw),
                "must be a time in RFC 3339 with an offset, e.g. 2026-12-03T10:00:00+09:00",
                "{raw}"
            );
        }
        assert_eq!(
            refusal("2026-12-03T1:00:00Z"),
            "must give the time of day as hh:mm:ss after the date, e.g. 2026-12-03T10:00:00+09:00"
        );
    }

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert!(parse_timestamp("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_timestamp("2000-02-29T00:00:00Z").is_ok());
        assert_eq!(
            refusal("2100-02-29T00:00:00Z"),
            "names a day that does not exist: February 2100 has 28 days (2100-02-29)"
        );
    }

    #[test]
    fn dates_share_the_messages_of_the_date_part() {
        assert_eq!(
            parse_date("2026-12-03"),
            Ok(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap())
        );
        assert_eq!(
            parse_date("2026-02-30").unwrap_err(),
            "names a day that does not exist: February 2026 has 28 days (2026-02-30)"
        );
        assert_eq!(
            parse_date("2026-13-01").unwrap_err(),
            "names month 13, which does not exist (months are 01 to 12)"
        );
        assert_eq!(
            parse_date("2026-12-03T10:00:00Z").unwrap_err(),
            "must be a date only (YYYY-MM-DD), without \"T10:00:00Z\""
        );
        assert_eq!(
            parse_date("3 December").unwrap_err(),
            "must be a date YYYY-MM-DD, e.g. 2026-12-03"
        );
    }
}
