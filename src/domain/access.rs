//! Which reads go into the case access log.
//!
//! Every read of one case — the case, its timeline, its messages — is
//! logged. A listing (the triage queue, a case-list page) is logged per
//! listed case, but the same person listing the same case again within
//! `LISTING_WINDOW_MICROS` adds nothing: a supporter working the queue
//! reloads the same hundred cases all day, and a row per case per reload
//! buried the reads that matter (and made every reload a write of a hundred
//! rows). The log still answers who listed which case and when, to the
//! minute.

use std::collections::HashMap;

/// Repeated listings of a case by one person within this span are one entry.
pub const LISTING_WINDOW_MICROS: i64 = 60 * 1_000_000;

/// When each (person, case, kind of listing) was last logged.
#[derive(Debug, Default)]
pub struct ListingViews {
    logged: HashMap<(i64, i64, &'static str), i64>,
    last_sweep: i64,
}

impl ListingViews {
    /// The cases of a listing that must be logged now: those `user` has not
    /// listed this way within the window.
    pub fn unlogged(&self, user: i64, cases: &[i64], what: &'static str, now: i64) -> Vec<i64> {
        cases
            .iter()
            .copied()
            .filter(|case| match self.logged.get(&(user, *case, what)) {
                Some(at) => now - at >= LISTING_WINDOW_MICROS,
                None => true,
            })
            .collect()
    }

    /// Notes that these listings were logged (call once the log rows are
    /// committed, so a failed write leaves them to be logged next time).
    pub fn logged(&mut self, user: i64, cases: &[i64], what: &'static str, at: i64) {
        for case in cases {
            self.logged.insert((user, *case, what), at);
        }
        if at - self.last_sweep >= LISTING_WINDOW_MICROS {
            self.logged
                .retain(|_, logged_at| at - *logged_at < LISTING_WINDOW_MICROS);
            self.last_sweep = at;
        }
    }

    /// Entries held (for the sweep's test).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.logged.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000;

    #[test]
    fn a_first_listing_is_logged_and_a_repeat_within_the_window_is_not() {
        let mut views = ListingViews::default();
        assert_eq!(
            views.unlogged(1, &[10, 11], "triage_queue", 0),
            vec![10, 11]
        );
        views.logged(1, &[10, 11], "triage_queue", 0);
        assert!(
            views
                .unlogged(1, &[10, 11], "triage_queue", 59 * SECOND)
                .is_empty()
        );
        assert_eq!(
            views.unlogged(1, &[10, 11, 12], "triage_queue", 30 * SECOND),
            vec![12],
            "a case new to the listing is logged"
        );
        assert_eq!(
            views.unlogged(1, &[10, 11], "triage_queue", 60 * SECOND),
            vec![10, 11],
            "after the window the listing is logged again"
        );
    }

    #[test]
    fn people_and_kinds_of_listing_are_apart() {
        let mut views = ListingViews::default();
        views.logged(1, &[10], "triage_queue", 0);
        assert_eq!(views.unlogged(2, &[10], "triage_queue", SECOND), vec![10]);
        assert_eq!(views.unlogged(1, &[10], "list", SECOND), vec![10]);
    }

    #[test]
    fn unlogged_listings_stay_unlogged_until_noted() {
        let views = ListingViews::default();
        // A failed write never calls `logged`: the next listing logs again.
        assert_eq!(views.unlogged(1, &[10], "list", 0), vec![10]);
        assert_eq!(views.unlogged(1, &[10], "list", SECOND), vec![10]);
    }

    #[test]
    fn expired_entries_are_swept() {
        let mut views = ListingViews::default();
        views.logged(1, &[10, 11], "list", 0);
        views.logged(2, &[12], "list", 30 * SECOND);
        assert_eq!(views.len(), 3);
        views.logged(3, &[13], "list", 61 * SECOND);
        assert_eq!(views.len(), 2, "the entries of second 0 are gone");
        assert!(views.unlogged(1, &[10], "list", 61 * SECOND) == vec![10]);
    }
}
