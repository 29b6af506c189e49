//! Where the outbox worker's claim starts looking: just before the oldest
//! mail it last found due, not at the oldest mail the outbox ever held.
//!
//! On PostgreSQL every mail sent leaves index entries behind in the range
//! the claim walks (`outbox_due`, state `pending`), until a vacuum removes
//! them; the claim skips them one leaf page at a time. With 300,000 mails
//! sent since the last vacuum a claim of 20 read 1,483 pages and took 2.9
//! ms, from a floor 0.17 ms (issue 19, twenty-third round); with autovacuum
//! off, as on these machines, the cost only grew.
//!
//! Below the floor a mail can still become due: an intake's transaction
//! that commits its row after a later one was claimed, a claim whose lease
//! ran out (its worker died), rows another instance's clock dated earlier.
//! So the floor stays [`SLACK_MICROS`] below what was found, and every
//! [`FULL_SCAN_EVERY_MICROS`] a claim looks from the very first mail: such a
//! mail waits at most that much longer, and none is skipped for good.

/// How far below the oldest mail found due the next claim starts.
pub const SLACK_MICROS: i64 = 1_000_000;
/// How often a claim looks from the first mail of the outbox.
pub const FULL_SCAN_EVERY_MICROS: i64 = 2_000_000;

/// One worker's floor: plain state, kept by its loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimFloor {
    /// The `next_attempt_at` the next claim starts from; None: the first.
    floor: Option<i64>,
    /// When the next claim from the first mail is due.
    next_full_scan: i64,
}

impl ClaimFloor {
    /// Where a claim made at `now` starts: None means from the first mail.
    pub fn start(&mut self, now: i64) -> Option<i64> {
        if now >= self.next_full_scan {
            self.next_full_scan = now.saturating_add(FULL_SCAN_EVERY_MICROS);
            return None;
        }
        self.floor
    }

    /// The claim found `first_due`, the earliest `next_attempt_at` among
    /// the rows it took (None: it took none, which moves nothing).
    pub fn found(&mut self, first_due: Option<i64>) {
        if let Some(first) = first_due {
            let floor = first.saturating_sub(SLACK_MICROS);
            self.floor = Some(self.floor.map_or(floor, |old| old.max(floor)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000;

    #[test]
    fn the_first_claim_looks_from_the_first_mail() {
        let mut floor = ClaimFloor::default();
        assert_eq!(floor.start(10 * SECOND), None);
    }

    #[test]
    fn later_claims_start_a_slack_below_the_oldest_mail_found() {
        let mut floor = ClaimFloor::default();
        assert_eq!(floor.start(10 * SECOND), None);
        floor.found(Some(7 * SECOND));
        assert_eq!(floor.start(10 * SECOND + 1), Some(6 * SECOND));
        floor.found(Some(9 * SECOND));
        assert_eq!(floor.start(10 * SECOND + 2), Some(8 * SECOND));
    }

    #[test]
    fn a_claim_that_finds_nothing_or_older_mail_never_lowers_the_floor() {
        let mut floor = ClaimFloor::default();
        floor.start(10 * SECOND);
        floor.found(Some(9 * SECOND));
        floor.found(None);
        assert_eq!(floor.start(10 * SECOND + 1), Some(8 * SECOND));
        // An older mail (the full scan's, or another instance's) is found
        // from where the claim started; the floor is not moved back for it.
        floor.found(Some(3 * SECOND));
        assert_eq!(floor.start(10 * SECOND + 2), Some(8 * SECOND));
    }

    #[test]
    fn every_full_scan_period_a_claim_looks_from_the_first_mail_again() {
        let mut floor = ClaimFloor::default();
        assert_eq!(floor.start(0), None);
        floor.found(Some(5 * SECOND));
        let mut full_scans = Vec::new();
        for at in (1..=10).map(|tenth| tenth * SECOND / 2) {
            if floor.start(at).is_none() {
                full_scans.push(at);
            }
        }
        assert_eq!(full_scans, [2 * SECOND, 4 * SECOND]);
    }

    #[test]
    fn the_bounds_of_time_do_not_overflow() {
        let mut floor = ClaimFloor::default();
        assert_eq!(floor.start(i64::MAX), None);
        floor.found(Some(i64::MIN));
        assert_eq!(floor.start(i64::MAX - 1), Some(i64::MIN));
    }
}
