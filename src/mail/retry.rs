//! When to try a failed mail again: exponential backoff with jitter.

/// Attempts before a mail is marked `failed` for good.
pub const MAX_ATTEMPTS: i32 = 12;
const FIRST_DELAY_SECONDS: f64 = 2.0;
const CAP_SECONDS: f64 = 600.0;

/// Delay after the `attempt`-th failure (1-based), in microseconds, or None
/// when no attempt is left. `jitter` in [0, 1) spreads retries of mails that
/// failed together (full jitter over the upper half of the window).
pub fn next_delay_micros(attempt: i32, jitter: f64) -> Option<i64> {
    if attempt >= MAX_ATTEMPTS {
        return None;
    }
    let exponent = (attempt.max(1) - 1).min(20);
    let window = (FIRST_DELAY_SECONDS * 2f64.powi(exponent)).min(CAP_SECONDS);
    let seconds = window * (0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    Some((seconds * 1_000_000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_retry_is_within_five_seconds() {
        for jitter in [0.0, 0.5, 0.999] {
            let delay = next_delay_micros(1, jitter).unwrap();
            assert!((1_000_000..=2_000_000).contains(&delay), "{delay}");
        }
    }

    #[test]
    fn delays_grow_and_are_capped_at_ten_minutes() {
        let delays: Vec<i64> = (1..MAX_ATTEMPTS)
            .map(|a| next_delay_micros(a, 0.999).unwrap())
            .collect();
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert!(delays.iter().all(|d| *d <= 600_000_000));
        assert!(*delays.last().unwrap() >= 500_000_000);
    }

    #[test]
    fn attempts_are_bounded() {
        assert!(next_delay_micros(MAX_ATTEMPTS - 1, 0.0).is_some());
        assert!(next_delay_micros(MAX_ATTEMPTS, 0.0).is_none());
    }
}
