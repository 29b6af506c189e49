//! How many HTTP requests the server is answering right now, for the
//! background work that gives way to them.
//!
//! The mail worker claims larger rounds when no request is waiting: a round
//! of 128 mails costs a third less CPU per mail than one of 20 and drains a
//! backlog twice as fast, but taken while applicants file cases it took
//! that CPU from them (issue 19's twenty-fourth round, docs/performance.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests under way in this process; cloned into the HTTP middleware and
/// the background workers.
#[derive(Clone, Default, Debug)]
pub struct RequestsInFlight(Arc<AtomicUsize>);

impl RequestsInFlight {
    /// Counts one request until the returned guard is dropped (when its
    /// answer is ready, or when the client went away first).
    pub fn enter(&self) -> InFlight {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlight(self.0.clone())
    }

    /// Requests under way at this moment.
    pub fn now(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One request of [`RequestsInFlight`], counted while it lives.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_counts_until_its_guard_is_dropped() {
        let requests = RequestsInFlight::default();
        let seen_elsewhere = requests.clone();
        assert_eq!(seen_elsewhere.now(), 0);
        let first = requests.enter();
        let second = requests.enter();
        assert_eq!(seen_elsewhere.now(), 2);
        drop(first);
        assert_eq!(seen_elsewhere.now(), 1);
        drop(second);
        assert_eq!(seen_elsewhere.now(), 0);
    }
}
