//! How long the outbox worker's claim holds a mail, from the bound on one
//! delivery: the claim must outlast any delivery it covers, or another
//! instance could take (and send) the same mail meanwhile.

use std::time::Duration;

/// What a claim must hold for beyond one delivery: settling the mail, and
/// instances whose clocks disagree a little.
const MARGIN_MICROS: i64 = 60 * 1_000_000;
/// The shortest claim, so that a batch of quick deliveries renews rarely.
const MIN_LEASE_MICROS: i64 = 300 * 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// How long a claim (or a renewal) holds a mail.
    pub micros: i64,
    /// Before each delivery a claim with less than this left is renewed:
    /// the delivery's bound and the margin.
    pub renew_below_micros: i64,
}

impl Lease {
    /// The lease for deliveries that take at most `delivery_bound`.
    pub fn covering(delivery_bound: Duration) -> Self {
        let bound = i64::try_from(delivery_bound.as_micros())
            .unwrap_or(i64::MAX)
            .min(i64::MAX / 4);
        let renew_below_micros = bound + MARGIN_MICROS;
        Lease {
            micros: (2 * renew_below_micros).max(MIN_LEASE_MICROS),
            renew_below_micros,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bound_keeps_a_five_minute_lease_renewed_below_two_minutes() {
        let lease = Lease::covering(Duration::from_secs(60));
        assert_eq!(lease.micros, 300_000_000);
        assert_eq!(lease.renew_below_micros, 120_000_000);
    }

    #[test]
    fn every_delivery_ends_with_a_margin_of_its_claim_left() {
        for seconds in [0, 1, 2, 60, 119, 600, 86_400] {
            let bound = Duration::from_secs(seconds);
            let lease = Lease::covering(bound);
            let bound = bound.as_micros() as i64;
            // A delivery starts with at least `renew_below` of its claim
            // left (renewed otherwise), so it ends with the margin left.
            assert!(
                lease.renew_below_micros - bound >= MARGIN_MICROS,
                "{seconds}"
            );
            // A fresh claim or renewal covers the delivery it was made for.
            assert!(lease.micros > lease.renew_below_micros, "{seconds}");
        }
    }

    #[test]
    fn an_absurd_bound_does_not_overflow() {
        let lease = Lease::covering(Duration::MAX);
        assert!(lease.micros > lease.renew_below_micros);
    }
}
