//! Case numbers handed out from memory, the year's counter row written
//! once for many: on SQLite's writer within a batch, on PostgreSQL by each
//! gatherer of intakes in blocks ([`ReservedNumbers`]).
//!
//! Taking each number with its own upsert (`counters::NextSequence`) cost
//! about 6 % of the writer's time per intake: the statement's `RETURNING`
//! gives it a statement journal, opened and released for every case (issue
//! 19, fifteenth round). The writer is SQLite's only writer, so within a
//! batch the counter read at its first intake can be counted on in memory.
//!
//! Numbers are unique, not gapless (as on PostgreSQL): an intake rolled back
//! inside its batch keeps the number it took from being handed out again,
//! and a batch that fails to commit writes no counter, so its numbers are
//! handed out again from the stored counter.

use std::cell::RefCell;
use std::collections::HashMap;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::DbResult;
use super::counters::{NextSequence, RaiseCounter, ReserveSequence};
use super::schema::case_counters;

thread_local! {
    /// Set only on SQLite's writer thread, from `begin_batch` to
    /// `flush_batch`: the last number handed out per year in the batch.
    static BATCH_NUMBERS: RefCell<Option<HashMap<i32, i64>>> = const { RefCell::new(None) };
}

/// From now on this thread's numbers come from memory until [`flush_batch`].
pub(super) fn begin_batch() {
    BATCH_NUMBERS.set(Some(HashMap::new()));
}

/// The batch is given up: nothing it handed out is written.
pub(super) fn abandon_batch() {
    BATCH_NUMBERS.set(None);
}

/// Writes the last number handed out of each year; called before the batch
/// commits.
pub(super) fn flush_batch(conn: &mut SqliteConnection) -> DbResult<()> {
    for (year, last) in BATCH_NUMBERS.take().unwrap_or_default() {
        RaiseCounter { year, last }.execute(conn)?;
    }
    Ok(())
}

/// The next number of `year`: from the batch's memory on the writer, else
/// (outside a batch) with an upsert of its own.
pub(super) fn next(conn: &mut SqliteConnection, year: i32) -> DbResult<i64> {
    let in_batch = BATCH_NUMBERS.with_borrow_mut(|numbers| {
        numbers.as_mut().map(|numbers| {
            numbers.get_mut(&year).map(|last| {
                *last += 1;
                *last
            })
        })
    });
    match in_batch {
        None => Ok(NextSequence { year }.get_result(conn)?),
        Some(Some(number)) => Ok(number),
        Some(None) => {
            let number = stored_counter(conn, year)?.unwrap_or(0) + 1;
            BATCH_NUMBERS.with_borrow_mut(|numbers| {
                if let Some(numbers) = numbers {
                    numbers.insert(year, number);
                }
            });
            Ok(number)
        }
    }
}

/// The year's counter as stored: the last number a committed batch took.
fn stored_counter(conn: &mut SqliteConnection, year: i32) -> DbResult<Option<i64>> {
    Ok(case_counters::table
        .find(year)
        .select(case_counters::last)
        .first(conn)
        .optional()?)
}

/// PostgreSQL: the numbers one gatherer of intakes has reserved and not
/// yet handed out, per year.
///
/// A batch of several intakes reserves its own numbers and those of seven
/// more batches of its size ([`block_for`]), so under load the gatherer
/// goes to the counter row once in eight batches instead of once per batch:
/// one round trip and one small transaction less per batch, 15–25 % less
/// CPU per case (issue 19, thirty-first round). A single intake reserves
/// only its own number, so a quiet desk's numbers stay consecutive.
/// Numbers stay unique across instances (each block is its own range of
/// the counter), not in the order of filing: a second instance hands out
/// from a block of its own meanwhile. A block left when the server stops,
/// or dropped after a batch failed (`cases::file_own_together`), is a gap:
/// a block's reservation is made durable by the first batch that commits
/// after it (its own commit does not wait for the disk), so a block no
/// batch committed with may be gone if the database restarted, and handing
/// it out could repeat a number.
#[derive(Debug, Clone, Default)]
pub struct ReservedNumbers {
    /// Per year: the next number not handed out and the last reserved.
    years: Vec<(i32, i64, i64)>,
}

impl ReservedNumbers {
    /// `count` numbers of `year`, ascending: the reserved ones first, the
    /// rest from a block reserved now (`ReserveSequence`, committed without
    /// waiting for the disk).
    pub(super) fn take(
        &mut self,
        conn: &mut PgConnection,
        year: i32,
        count: i64,
    ) -> DbResult<Vec<i64>> {
        let mut numbers = Vec::with_capacity(count.max(0) as usize);
        if let Some((_, next, last)) = self.years.iter_mut().find(|(y, ..)| *y == year) {
            let from_reserve = count.min(*last - *next + 1).max(0);
            numbers.extend(*next..*next + from_reserve);
            *next += from_reserve;
        }
        let missing = count - numbers.len() as i64;
        if missing > 0 {
            let block = block_for(missing);
            let last: i64 = ReserveSequence { year, count: block }.get_result(conn)?;
            let first = last - block + 1;
            numbers.extend(first..first + missing);
            self.years.retain(|(y, ..)| *y != year);
            self.years.push((year, first + missing, last));
            // A year is done once a later one begins: keep two at most.
            if self.years.len() > 2 {
                self.years.sort_unstable();
                self.years.remove(0);
            }
        }
        Ok(numbers)
    }
}

/// How many numbers to reserve for a batch that lacks `needed`: those and,
/// for a batch of several intakes, seven more batches of its size.
fn block_for(needed: i64) -> i64 {
    const BATCHES_PER_BLOCK: i64 = 8;
    if needed > 1 {
        needed.saturating_mul(BATCHES_PER_BLOCK)
    } else {
        needed
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use crate::config::DatabaseUrl;
    use crate::db::{AnyConnection, Database, DbError, cases::next_sequence};

    #[test]
    fn a_single_intake_reserves_its_own_number_and_a_batch_eight_batches() {
        assert_eq!(super::block_for(1), 1);
        assert_eq!(super::block_for(2), 16);
        assert_eq!(super::block_for(15), 120);
        assert_eq!(super::block_for(i64::MAX), i64::MAX);
    }

    fn stored(conn: &mut AnyConnection) -> Result<Option<i64>, DbError> {
        match conn {
            AnyConnection::Sqlite(c) => super::stored_counter(c, 2026),
            AnyConnection::Postgres(_) => unreachable!("a SQLite test"),
        }
    }

    /// Numbers taken by concurrent writes (and so in shared batches) are
    /// unique even when some writes fail after taking theirs; the stored
    /// counter is the last handed out, and later writes continue above it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn numbers_stay_unique_across_batches_and_failed_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("numbers.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 2).unwrap();
        let first = db.write(|conn| next_sequence(conn, 2026)).await.unwrap();
        let second = db.write(|conn| next_sequence(conn, 2026)).await.unwrap();
        assert_eq!((first, second), (1, 2), "nothing failed: no gap");

        let writes = (0..200_i64).map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |conn| {
                    let number = next_sequence(conn, 2026)?;
                    if n % 3 == 0 {
                        return Err(DbError::NotFound);
                    }
                    Ok(number)
                })
                .await
            })
        });
        let mut kept = HashSet::new();
        for result in futures_util::future::join_all(writes).await {
            if let Ok(number) = result.unwrap() {
                assert!(number > 2);
                assert!(kept.insert(number), "{number} handed out twice");
            }
        }
        assert_eq!(kept.len(), 133);
        let counter = db.read(stored).await.unwrap().unwrap();
        assert!(counter >= *kept.iter().max().unwrap());
        let next = db.write(|conn| next_sequence(conn, 2026)).await.unwrap();
        assert_eq!(next, counter + 1);
        assert_eq!(db.read(stored).await.unwrap(), Some(next));
    }
}
