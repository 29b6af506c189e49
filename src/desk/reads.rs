//! Reads that show case text to desk staff or experts, and the access-log
//! rows they owe (see `domain::access` for why listings are logged once a
//! minute).

use super::{Desk, DeskError};
use crate::clock;
use crate::db::AnyConnection;
use crate::db::cases as store;
use crate::domain::access::ListingViews;
use crate::domain::role::{Caller, Role};

/// Cases whose text a read showed to desk staff or an expert.
#[derive(Default)]
pub(crate) struct SeenCases {
    case_ids: Vec<i64>,
    what: &'static str,
    listing: bool,
}

impl SeenCases {
    /// A read of one case.
    pub(crate) fn record(&mut self, case_ids: &[i64], what: &'static str) {
        self.case_ids.extend_from_slice(case_ids);
        self.what = what;
    }

    /// A listing of cases (see `domain::access` for how they are logged).
    pub(crate) fn record_listing(&mut self, case_ids: &[i64], what: &'static str) {
        self.record(case_ids, what);
        self.listing = true;
    }
}

/// Whether reads by this caller go to the access log (desk staff, experts).
pub(crate) fn reads_are_logged(caller: &Caller) -> bool {
    matches!(caller.role, Role::Supporter | Role::Admin | Role::Expert)
}

/// The listing views, also after a panic elsewhere held the lock (the map
/// stays consistent: every update is one insert or one sweep).
fn lock(views: &std::sync::Mutex<ListingViews>) -> std::sync::MutexGuard<'_, ListingViews> {
    views
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Desk {
    /// Runs a read on a pooled connection (in parallel with other reads),
    /// then writes the access-log rows it recorded; the answer leaves only
    /// once they are committed, so no case text is shown unlogged. Listings
    /// repeated within a minute add no rows (and then need no write).
    pub(crate) async fn read_logged<T, F>(&self, caller: &Caller, work: F) -> Result<T, DeskError>
    where
        F: FnOnce(&mut AnyConnection, &mut SeenCases) -> Result<T, DeskError> + Send + 'static,
        T: Send + 'static,
    {
        let (value, seen) = self
            .read(move |conn| {
                let mut seen = SeenCases::default();
                let value = work(conn, &mut seen)?;
                Ok((value, seen))
            })
            .await?;
        self.log_seen(caller, seen).await?;
        Ok(value)
    }

    /// Writes the access-log rows `seen` owes; the caller answers only
    /// once they are committed.
    pub(crate) async fn log_seen(&self, caller: &Caller, seen: SeenCases) -> Result<(), DeskError> {
        let user_id = caller.id;
        let now = clock::now_micros();
        let SeenCases {
            mut case_ids,
            what,
            listing,
        } = seen;
        if listing {
            case_ids = lock(&self.listing_views).unlogged(user_id, &case_ids, what, now);
        }
        if !case_ids.is_empty() {
            let case_ids = self
                .write(move |conn| {
                    store::log_access(conn, &case_ids, user_id, what, now)?;
                    Ok(case_ids)
                })
                .await?;
            if listing {
                lock(&self.listing_views).logged(user_id, &case_ids, what, now);
            }
        }
        Ok(())
    }
}
