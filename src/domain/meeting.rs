//! Meeting (面談) rules: when a meeting may start, and the video-call link.
//!
//! Two calls make a meeting: *scheduling* one mails the applicant and the
//! expert an invitation, so it must start in the future; *recording* one
//! that took place already mails nobody, so it must have started in the
//! past. Both compare with the same `now` (the desk's clock), and the
//! moment itself belongs to neither: a meeting starting at `now` is neither
//! ahead nor behind.

use chrono::{DateTime, FixedOffset};

/// The longest video-call link, in characters.
pub const VIDEO_URL_MAX_CHARS: usize = 2_000;

/// Whether a meeting is ahead (scheduled, with an invitation) or behind
/// (recorded after the fact, no mail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    Scheduled,
    Recorded,
}

/// `starts_at` as a scheduled meeting (after `now_micros`) or a recorded
/// one (before it) needs it; in Unix microseconds.
pub fn check_start(
    starts_at: DateTime<FixedOffset>,
    now_micros: i64,
    timing: Timing,
) -> Result<i64, &'static str> {
    let at = starts_at.timestamp_micros();
    match timing {
        Timing::Scheduled if at <= now_micros => Err(
            "must be in the future: an invitation is mailed for it (record a meeting that took place with POST /api/v1/cases/{id}/meetings/records)",
        ),
        Timing::Recorded if at >= now_micros => Err(
            "must be in the past: only a meeting that took place is recorded (schedule a future one with POST /api/v1/cases/{id}/meetings)",
        ),
        _ => Ok(at),
    }
}

/// A link to a video call, as it goes into the invitation and the `.ics`:
/// `https` only, with a host, at most [`VIDEO_URL_MAX_CHARS`] characters,
/// no white space or control characters. Kept as typed (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoUrl(String);

impl VideoUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("must not be empty (leave it out when there is no video call)".to_owned());
        }
        let chars = trimmed.chars().count();
        if chars > VIDEO_URL_MAX_CHARS {
            return Err(format!(
                "must be at most {VIDEO_URL_MAX_CHARS} characters (got {chars})"
            ));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".to_owned());
        }
        let url =
            url::Url::parse(trimmed).map_err(|e| format!("must be an https:// link ({e})"))?;
        if url.scheme() != "https" {
            return Err(format!("must be an https:// link (not {}:)", url.scheme()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must be an https:// link with a host".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".to_owned());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(raw: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(raw).unwrap()
    }

    #[test]
    fn scheduled_meetings_start_after_now_and_recorded_ones_before() {
        let now = time("2026-12-01T09:00:00Z").timestamp_micros();
        let later = time("2026-12-01T09:00:00.000001Z");
        let earlier = time("2026-12-01T17:59:59.999999+09:00");
        let same = time("2026-12-01T18:00:00+09:00");

        assert_eq!(
            check_start(later, now, Timing::Scheduled),
            Ok(later.timestamp_micros())
        );
        assert!(check_start(earlier, now, Timing::Scheduled).is_err());
        assert!(check_start(same, now, Timing::Scheduled).is_err());

        assert_eq!(
            check_start(earlier, now, Timing::Recorded),
            Ok(earlier.timestamp_micros())
        );
        assert!(check_start(later, now, Timing::Recorded).is_err());
        assert!(check_start(same, now, Timing::Recorded).is_err());

        assert!(
            check_start(earlier, now, Timing::Scheduled)
                .unwrap_err()
                .starts_with("must be in the future")
        );
        assert!(
            check_start(later, now, Timing::Recorded)
                .unwrap_err()
                .starts_with("must be in the past")
        );
    }

    #[test]
    fn video_links_are_https_and_kept_as_typed() {
        for good in [
            "https://meet.example.com/abc-defg-hij",
            "  https://zoom.example/j/123?pwd=XyZ  ",
            "https://会議.example/部屋",
        ] {
            assert_eq!(
                VideoUrl::parse(good).map(VideoUrl::into_string),
                Ok(good.trim().to_owned())
            );
        }
        let long = format!("https://meet.example/{}", "a".repeat(VIDEO_URL_MAX_CHARS));
        for (bad, says) in [
            (
                "http://meet.example.com/x",
                "must be an https:// link (not http:)",
            ),
            (
                "javascript:alert(1)",
                "must be an https:// link (not javascript:)",
            ),
            (
                "meet.example.com/x",
                "must be an https:// link (relative URL without a base)",
            ),
            (
                "https://meet.example.com/a b",
                "must not contain spaces or control characters",
            ),
            (
                "https://meet.example.com/\u{7}",
                "must not contain spaces or control characters",
            ),
            (
                "https://user:pw@meet.example.com/",
                "must not carry a user name or password",
            ),
            (
                "   ",
                "must not be empty (leave it out when there is no video call)",
            ),
            (long.as_str(), "must be at most 2000 characters (got 2021)"),
        ] {
            assert_eq!(VideoUrl::parse(bad), Err(says.to_owned()), "{bad}");
        }
        let longest = format!("https://m.example/{}", "a".repeat(VIDEO_URL_MAX_CHARS - 18));
        assert_eq!(longest.chars().count(), VIDEO_URL_MAX_CHARS);
        assert!(VideoUrl::parse(&longest).is_ok());
    }
}
