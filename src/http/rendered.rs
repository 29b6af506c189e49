//! JSON answers written once and sent many times.
//!
//! The triage queue and the desk-wide case list are read by every
//! supporter, an organisation's case list by its members, again and again,
//! and they change only when a case does. The
//! readers already share the rows they read while the database is
//! unchanged (`db::readers::memoized`); writing those rows as JSON was then
//! the larger part of such a request's CPU (string escaping of the Japanese
//! titles and descriptions, the timestamps, the allocations:
//! docs/performance.md, issue 19's twelfth round). The written body is kept
//! here, keyed by the identity of the shared rows (the same `Arc`, not
//! equal contents) and by whatever else the body depends on: the second the
//! queue's ages are counted to, the caller a list's actions are for.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix_web::web::Bytes;

/// How many bodies are kept by default: one per reader thread and filter
/// in use at a time, with room to spare; the oldest goes first.
const KEPT_BODIES: usize = 16;

/// Bodies written from shared rows of type `T`, for a variant `V` of what
/// else they depend on.
pub struct RenderedBodies<T: ?Sized, V = i64> {
    kept: Mutex<VecDeque<Kept<T, V>>>,
    capacity: usize,
}

struct Kept<T: ?Sized, V> {
    /// Held so that its address cannot be reused by other rows while the
    /// body is kept: pointer equality then means the same rows.
    source: Arc<T>,
    variant: V,
    body: Bytes,
}

impl<T: ?Sized, V> Default for RenderedBodies<T, V> {
    fn default() -> Self {
        Self::with_capacity(KEPT_BODIES)
    }
}

impl<T: ?Sized, V> RenderedBodies<T, V> {
    /// Keeps at most `capacity` bodies (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RenderedBodies {
            kept: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }
}

impl<T: ?Sized, V: PartialEq> RenderedBodies<T, V> {
    /// The body written of `source` for `variant`, written by `render`
    /// (outside the lock) when it is not kept. Rows read for one request
    /// alone (`None`: not shared) are written and nothing is kept.
    pub fn get_or_render<E>(
        &self,
        source: Option<&Arc<T>>,
        variant: V,
        render: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Bytes, E> {
        let Some(source) = source else {
            return render().map(Bytes::from);
        };
        if let Some(body) = self.kept().iter().find_map(|kept| {
            (Arc::ptr_eq(&kept.source, source) && kept.variant == variant)
                .then(|| kept.body.clone())
        }) {
            return Ok(body);
        }
        let body = Bytes::from(render()?);
        let mut kept = self.kept();
        if kept.len() >= self.capacity {
            kept.pop_front();
        }
        kept.push_back(Kept {
            source: Arc::clone(source),
            variant,
            body: body.clone(),
        });
        Ok(body)
    }

    /// The kept bodies, also after a panic elsewhere held the lock (every
    /// change is one push or one pop: the list stays consistent).
    fn kept(&self) -> std::sync::MutexGuard<'_, VecDeque<Kept<T, V>>> {
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    fn render(text: &str) -> impl FnOnce() -> Result<Vec<u8>, Infallible> + '_ {
        move || Ok(text.as_bytes().to_vec())
    }

    #[test]
    fn the_same_rows_and_variant_give_the_kept_body() {
        let bodies = RenderedBodies::<[i64]>::default();
        let rows: Arc<[i64]> = Arc::from(vec![1, 2]);
        let first = bodies
            .get_or_render(Some(&rows), 7, render("first"))
            .unwrap();
        let again = bodies
            .get_or_render(Some(&rows), 7, render("second"))
            .unwrap();
        assert_eq!(first, "first");
        assert_eq!(again, "first");
    }

    #[test]
    fn equal_rows_in_another_arc_or_another_variant_are_written_anew() {
        let bodies = RenderedBodies::<[i64]>::default();
        let rows: Arc<[i64]> = Arc::from(vec![1, 2]);
        let equal: Arc<[i64]> = Arc::from(vec![1, 2]);
        bodies
            .get_or_render(Some(&rows), 7, render("first"))
            .unwrap();
        assert_eq!(
            bodies
                .get_or_render(Some(&equal), 7, render("other rows"))
                .unwrap(),
            "other rows"
        );
        assert_eq!(
            bodies
                .get_or_render(Some(&rows), 8, render("next second"))
                .unwrap(),
            "next second"
        );
    }

    #[test]
    fn the_oldest_body_goes_first_when_full() {
        let bodies = RenderedBodies::<[i64]>::default();
        let first: Arc<[i64]> = Arc::from(vec![0]);
        bodies
            .get_or_render(Some(&first), 0, render("first"))
            .unwrap();
        for variant in 1..KEPT_BODIES as i64 {
            bodies
                .get_or_render(Some(&first), variant, render("more"))
                .unwrap();
        }
        assert_eq!(
            bodies
                .get_or_render(Some(&first), 0, render("kept"))
                .unwrap(),
            "first"
        );
        bodies
            .get_or_render(Some(&first), 99, render("one too many"))
            .unwrap();
        // The 17th body pushed out the oldest, variant 0; variant 1 stays.
        assert_eq!(
            bodies
                .get_or_render(Some(&first), 1, render("written again"))
                .unwrap(),
            "more"
        );
        assert_eq!(
            bodies
                .get_or_render(Some(&first), 0, render("written again"))
                .unwrap(),
            "written again"
        );
    }

    #[test]
    fn a_larger_capacity_keeps_that_many_bodies() {
        let bodies = RenderedBodies::<[i64]>::with_capacity(3 * KEPT_BODIES);
        let rows: Arc<[i64]> = Arc::from(vec![0]);
        let kept = 3 * KEPT_BODIES as i64;
        for variant in 0..kept {
            bodies
                .get_or_render(Some(&rows), variant, render("kept"))
                .unwrap();
        }
        for variant in 0..kept {
            assert_eq!(
                bodies
                    .get_or_render(Some(&rows), variant, render("lost"))
                    .unwrap(),
                "kept",
                "variant {variant}"
            );
        }
        bodies
            .get_or_render(Some(&rows), kept, render("one too many"))
            .unwrap();
        assert_eq!(
            bodies
                .get_or_render(Some(&rows), 0, render("written again"))
                .unwrap(),
            "written again"
        );
    }

    #[test]
    fn rows_read_for_one_request_are_written_and_not_kept() {
        let bodies = RenderedBodies::<[i64]>::default();
        assert_eq!(
            bodies.get_or_render(None, 0, render("once")).unwrap(),
            "once"
        );
        assert_eq!(
            bodies.get_or_render(None, 0, render("again")).unwrap(),
            "again"
        );
        assert!(bodies.kept().is_empty());
    }

    #[test]
    fn a_failed_render_keeps_nothing() {
        let bodies = RenderedBodies::<[i64]>::default();
        let rows: Arc<[i64]> = Arc::from(vec![1]);
        let failed: Result<Bytes, &str> = bodies.get_or_render(Some(&rows), 0, || Err("no"));
        assert_eq!(failed, Err("no"));
        assert_eq!(
            bodies
                .get_or_render(Some(&rows), 0, render("written"))
                .unwrap(),
            "written"
        );
    }
}
