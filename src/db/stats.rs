//! Statistics: the rollups (daily and monthly counts per product type and per
//! product type and category, adjusted in the transaction of every change
//! that moves a case between cells, so the category table never scans the
//! cases), their recount, and the pipeline and expert queries.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Display;

use chrono::NaiveDate;

use diesel::dsl::{count_star, min, sql};
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::upsert::excluded;

use super::counters::{AddToCell, CellTable, CountOneCase};
use super::schema::{
    assignments, case_categories, cases, experts, stats_daily_cases, stats_daily_categories,
    stats_daily_duplicate_categories, stats_daily_duplicates, stats_monthly_cases,
    stats_monthly_categories, stats_monthly_duplicate_categories, stats_monthly_duplicates,
};
use super::{AnyConnection, DbError, DbResult};
use crate::domain::assignment::AssignmentStatus;
use crate::domain::statistics::{
    CategoryCounts, RangePlan, median_of_middle, median_window, parse_date, period_start,
};
use crate::domain::vocabulary::{CaseStatus, Category, Outcome, ProductType};

// The recounts group case columns with a category column.
diesel::allow_columns_to_appear_in_same_group_by_clause!(
    cases::received_on,
    cases::effective_product_type,
    case_categories::category,
);

/// A stored value as its domain type. A value the domain does not know is
/// an error naming the column and the row (or the rows summed into one),
/// never a silent default: the statistics would be inexact without a word.
fn stored<T, E: Display>(
    column: &str,
    row: impl FnOnce() -> String,
    parsed: Result<T, E>,
) -> DbResult<T> {
    parsed.map_err(|error| {
        DbError::Query(diesel::result::Error::DeserializationError(
            format!("{column} of {}: {error}", row()).into(),
        ))
    })
}

/// Adds `delta` (+1 or −1) for one case counted on `day` under
/// `product_type` and `categories`.
pub fn count_case(
    conn: &mut AnyConnection,
    day: &str,
    product_type: &str,
    categories: &[&str],
    delta: i64,
) -> DbResult<()> {
    if let AnyConnection::Postgres(c) = conn {
        return count_one_case(c, Rollup::All, day, product_type, categories, delta);
    }
    let (case_cells, category_cells) = cells_of_case(day, product_type, categories, delta);
    add_counts(conn, &case_cells, &category_cells)
}

/// The daily cells one case counts in.
#[allow(clippy::type_complexity)]
fn cells_of_case(
    day: &str,
    product_type: &str,
    categories: &[&str],
    delta: i64,
) -> (
    Vec<(String, String, i64)>,
    Vec<(String, String, String, i64)>,
) {
    let case_cells = vec![(day.to_owned(), product_type.to_owned(), delta)];
    let category_cells = categories
        .iter()
        .map(|c| {
            (
                day.to_owned(),
                product_type.to_owned(),
                (*c).to_owned(),
                delta,
            )
        })
        .collect();
    (case_cells, category_cells)
}

/// PostgreSQL: one case's cells of `rollup`, daily and monthly, in one
/// prepared statement ([`CountOneCase`]).
fn count_one_case(
    conn: &mut diesel::PgConnection,
    rollup: Rollup,
    day: &str,
    product_type: &str,
    categories: &[&str],
    delta: i64,
) -> DbResult<()> {
    let mut categories = categories.to_vec();
    categories.sort_unstable();
    categories.dedup();
    CountOneCase {
        tables: match rollup {
            Rollup::All => [
                "stats_daily_cases",
                "stats_monthly_cases",
                "stats_daily_categories",
                "stats_monthly_categories",
            ],
            Rollup::Duplicates => [
                "stats_daily_duplicates",
                "stats_monthly_duplicates",
                "stats_daily_duplicate_categories",
                "stats_monthly_duplicate_categories",
            ],
        },
        day,
        month: month_of(day),
        product_type,
        categories: &categories,
        delta,
    }
    .execute(conn)?;
    Ok(())
}

/// Counts a case just filed. On SQLite in the writer's batch
/// ([`add_counts`]); on PostgreSQL nothing is left to do here:
/// `cases::insert_filed` queued the case for the fold (`stats_pending`) in
/// the statement that filed it.
pub fn count_filed_case(
    conn: &mut AnyConnection,
    day: &str,
    product_type: &str,
    categories: &[&str],
) -> DbResult<()> {
    if let AnyConnection::Postgres(_) = conn {
        return Ok(());
    }
    count_case(conn, day, product_type, categories, 1)
}

/// Moves a case from one cell set to another (triage confirming other
/// product type / categories than the applicant chose, a correction). A
/// case still pending on PostgreSQL moves nothing: the fold counts it as it
/// is when it takes it.
pub fn recount_case(
    conn: &mut AnyConnection,
    case_id: i64,
    day: &str,
    before: (&str, &[&str]),
    after: (&str, &[&str]),
) -> DbResult<()> {
    if before.0 == after.0 && before.1 == after.1 {
        return Ok(());
    }
    if still_pending(conn, case_id)? {
        return Ok(());
    }
    count_case(conn, day, before.0, before.1, -1)?;
    count_case(conn, day, after.0, after.1, 1)
}

/// Adds `rows` of `(key columns…, delta)` to a rollup table with `INSERT …
/// ON CONFLICT DO UPDATE SET cases = cases + excluded.cases`: on SQLite one
/// prepared-once statement per cell (see `counters`), on PostgreSQL one
/// multi-row statement per chunk (one round trip).
macro_rules! upsert {
    ($conn:expr, $table:ident, [$($column:ident),+], $rows:expr) => {
        match $conn {
            AnyConnection::Sqlite(c) => {
                struct Cells;
                impl CellTable for Cells {
                    const NAME: &'static str = stringify!($table);
                    const KEYS: &'static [&'static str] = &[$(stringify!($column)),+];
                }
                for &($($column),+, delta) in &$rows {
                    AddToCell::<Cells>::new(&[$($column),+], delta).execute(c)?;
                }
            }
            AnyConnection::Postgres(c) => {
                for chunk in $rows.chunks(CELLS_PER_STATEMENT) {
                    let values: Vec<_> = chunk
                        .iter()
                        .map(|&($($column),+, n)| ($($table::$column.eq($column)),+, $table::cases.eq(n)))
                        .collect();
                    diesel::insert_into($table::table)
                        .values(values)
                        .on_conflict(($($table::$column),+))
                        .do_update()
                        .set($table::cases.eq($table::cases + excluded($table::cases)))
                        .execute(c)?;
                }
            }
        }
    };
}

/// `YYYY-MM` of a `YYYY-MM-DD` day key.
fn month_of(day: &str) -> &str {
    day.get(..7).unwrap_or(day)
}

/// Cells per statement: well under both backends' bind limits
/// (SQLite 32,766; PostgreSQL 65,535).
const CELLS_PER_STATEMENT: usize = 5_000;

/// Adds many daily deltas at once, `(day, product_type, cases)` and `(day,
/// product_type, category, cases)`, and the same deltas summed per month to
/// the monthly rollups: one upsert per cell, so an
/// import of 100,000 cases touches each cell once instead of once per case.
///
/// Inside a batch of SQLite's writer the deltas are only noted: the batch
/// writes every cell once before it commits ([`flush_batch`]), where 32
/// intakes of one day would otherwise update the same 8 cells 32 times each.
pub fn add_counts(
    conn: &mut AnyConnection,
    case_cells: &[(String, String, i64)],
    category_cells: &[(String, String, String, i64)],
) -> DbResult<()> {
    let deferred = BATCH_DELTAS.with_borrow_mut(|batch| match batch {
        Some(batch) => {
            batch.job.add(case_cells, category_cells);
            true
        }
        None => false,
    });
    if deferred {
        return Ok(());
    }
    write_counts(conn, case_cells, category_cells)
}

/// Rollup deltas summed per daily cell.
#[derive(Debug, Default)]
struct CellDeltas {
    /// `(day, product_type)`
    cases: BTreeMap<(String, String), i64>,
    /// `(day, product_type, category)`
    categories: BTreeMap<(String, String, String), i64>,
}

impl CellDeltas {
    fn add(
        &mut self,
        case_cells: &[(String, String, i64)],
        category_cells: &[(String, String, String, i64)],
    ) {
        for (day, product_type, n) in case_cells {
            *self
                .cases
                .entry((day.clone(), product_type.clone()))
                .or_default() += n;
        }
        for (day, product_type, category, n) in category_cells {
            *self
                .categories
                .entry((day.clone(), product_type.clone(), category.clone()))
                .or_default() += n;
        }
    }

    fn merge(&mut self, other: CellDeltas) {
        for (cell, n) in other.cases {
            *self.cases.entry(cell).or_default() += n;
        }
        for (cell, n) in other.categories {
            *self.categories.entry(cell).or_default() += n;
        }
    }
}

/// The deltas of the batch the writer thread is running: of the writes that
/// succeeded so far, and of the one running now (dropped if it fails, as
/// its savepoint is rolled back). Writes that share a savepoint
/// (`writer::run_repeatable`) keep theirs apart until it is released, as
/// rolling it back takes all of them.
#[derive(Debug, Default)]
struct BatchDeltas {
    batch: CellDeltas,
    shared_savepoint: Option<CellDeltas>,
    job: CellDeltas,
}

thread_local! {
    /// Set only on SQLite's writer thread, from `begin_batch` to `flush_batch`.
    static BATCH_DELTAS: RefCell<Option<BatchDeltas>> = const { RefCell::new(None) };
}

/// From now on this thread's `add_counts` are noted for [`flush_batch`].
pub(super) fn begin_batch() {
    BATCH_DELTAS.set(Some(BatchDeltas::default()));
}

/// The write that just ran in the batch kept its changes (`succeeded`) or
/// rolled them back: its deltas join the batch's or are dropped.
pub(super) fn end_job(succeeded: bool) {
    BATCH_DELTAS.with_borrow_mut(|batch| {
        if let Some(batch) = batch {
            let job = std::mem::take(&mut batch.job);
            if succeeded {
                match &mut batch.shared_savepoint {
                    Some(shared) => shared.merge(job),
                    None => batch.batch.merge(job),
                }
            }
        }
    });
}

/// The next writes share one savepoint: their deltas are held apart until
/// [`end_shared_savepoint`].
pub(super) fn begin_shared_savepoint() {
    BATCH_DELTAS.with_borrow_mut(|batch| {
        if let Some(batch) = batch {
            batch.shared_savepoint = Some(CellDeltas::default());
        }
    });
}

/// The shared savepoint was released (`kept`: its writes' deltas join the
/// batch's) or rolled back (they are dropped).
pub(super) fn end_shared_savepoint(kept: bool) {
    BATCH_DELTAS.with_borrow_mut(|batch| {
        if let Some(batch) = batch
            && let Some(shared) = batch.shared_savepoint.take()
            && kept
        {
            batch.batch.merge(shared);
        }
    });
}

/// Writes the batch's summed deltas (cells that net to 0 are skipped) and
/// stops noting them; called before the batch commits.
pub(super) fn flush_batch(conn: &mut AnyConnection) -> DbResult<()> {
    let Some(batch) = BATCH_DELTAS.take() else {
        return Ok(());
    };
    let case_cells: Vec<(String, String, i64)> = batch
        .batch
        .cases
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|((day, product_type), n)| (day, product_type, n))
        .collect();
    let category_cells: Vec<(String, String, String, i64)> = batch
        .batch
        .categories
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|((day, product_type, category), n)| (day, product_type, category, n))
        .collect();
    write_counts(conn, &case_cells, &category_cells)
}

/// Stops noting deltas without writing them (the batch is rolled back).
pub(super) fn abandon_batch() {
    BATCH_DELTAS.set(None);
}

/// Like [`add_counts`], but written at once even inside a batch of SQLite's
/// writer: for a bulk change (an import, a batch of cases at a time) whose
/// cells would otherwise all be held in memory until the batch commits. The
/// write's savepoint still takes them back if it fails.
pub fn write_counts(
    conn: &mut AnyConnection,
    case_cells: &[(String, String, i64)],
    category_cells: &[(String, String, String, i64)],
) -> DbResult<()> {
    write_cells(conn, Rollup::All, case_cells, category_cells)
}

/// Which set of rollup tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollup {
    /// Every case received: `stats_{daily,monthly}_{cases,categories}`.
    All,
    /// The cases closed as duplicates (a subset of `All`, counted in the
    /// same cells): `stats_{daily,monthly}_duplicate{s,_categories}`. The
    /// statistics subtract them unless asked to include duplicates.
    Duplicates,
}

/// Adds `delta` (+1 closed as a duplicate, −1 reopened) for one case counted
/// on `day` under `product_type` and `categories` to the duplicates'
/// rollups. Written at once, never deferred to the batch: closing as a
/// duplicate is rare, and the write's savepoint takes it back if it fails.
pub fn count_duplicate(
    conn: &mut AnyConnection,
    day: &str,
    product_type: &str,
    categories: &[&str],
    delta: i64,
) -> DbResult<()> {
    if let AnyConnection::Postgres(c) = conn {
        return count_one_case(c, Rollup::Duplicates, day, product_type, categories, delta);
    }
    let (case_cells, category_cells) = cells_of_case(day, product_type, categories, delta);
    write_cells(conn, Rollup::Duplicates, &case_cells, &category_cells)
}

/// Upserts daily deltas, and their sums per month, into one set of rollups.
fn write_cells(
    conn: &mut AnyConnection,
    rollup: Rollup,
    case_cells: &[(String, String, i64)],
    category_cells: &[(String, String, String, i64)],
) -> DbResult<()> {
    let mut monthly_cases: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (day, product_type, n) in case_cells {
        *monthly_cases
            .entry((month_of(day), product_type))
            .or_default() += n;
    }
    let mut monthly_categories: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
    for (day, product_type, category, n) in category_cells {
        *monthly_categories
            .entry((month_of(day), product_type, category))
            .or_default() += n;
    }

    let day_cases: Vec<(&str, &str, i64)> = case_cells
        .iter()
        .map(|(d, p, n)| (d.as_str(), p.as_str(), *n))
        .collect();
    let month_cases: Vec<(&str, &str, i64)> = monthly_cases
        .into_iter()
        .map(|((m, p), n)| (m, p, n))
        .collect();
    let day_categories: Vec<(&str, &str, &str, i64)> = category_cells
        .iter()
        .map(|(d, p, c, n)| (d.as_str(), p.as_str(), c.as_str(), *n))
        .collect();
    let month_categories: Vec<(&str, &str, &str, i64)> = monthly_categories
        .into_iter()
        .map(|((m, p, c), n)| (m, p, c, n))
        .collect();
    match rollup {
        Rollup::All => {
            upsert!(conn, stats_daily_cases, [day, product_type], day_cases);
            upsert!(
                conn,
                stats_monthly_cases,
                [month, product_type],
                month_cases
            );
            upsert!(
                conn,
                stats_daily_categories,
                [day, product_type, category],
                day_categories
            );
            upsert!(
                conn,
                stats_monthly_categories,
                [month, product_type, category],
                month_categories
            );
        }
        Rollup::Duplicates => {
            upsert!(conn, stats_daily_duplicates, [day, product_type], day_cases);
            upsert!(
                conn,
                stats_monthly_duplicates,
                [month, product_type],
                month_cases
            );
            upsert!(
                conn,
                stats_daily_duplicate_categories,
                [day, product_type, category],
                day_categories
            );
            upsert!(
                conn,
                stats_monthly_duplicate_categories,
                [month, product_type, category],
                month_categories
            );
        }
    }
    Ok(())
}

/// Refreshes PostgreSQL's planner statistics of the rollup tables after a
/// bulk change (an import). Until autovacuum gets round to them (a minute or
/// so) the planner takes freshly filled tables for nearly empty and sorts
/// every cell of a range in collation order where it would hash, about
/// twice as slow (docs/performance.md). ANALYZE samples at most 30,000
/// rows per table. SQLite's plans need no statistics here.
pub fn analyze_rollups(conn: &mut AnyConnection) -> DbResult<()> {
    if let AnyConnection::Postgres(c) = conn {
        use diesel::connection::SimpleConnection as _;
        c.batch_execute(
            "ANALYZE stats_daily_cases, stats_daily_categories, \
             stats_monthly_cases, stats_monthly_categories",
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------- pending cases (PostgreSQL)

/// Pending cases one fold takes at most.
pub const FOLD_BATCH: usize = 10_000;

#[derive(QueryableByName)]
struct PendingCase {
    #[diesel(sql_type = BigInt)]
    case_id: i64,
}

/// The fold's second statement: the cases `$1` counted as they are now,
/// added to the four rollups, each cell once, in key order (two folds, or a
/// fold and a triage, then lock shared cells in the same order).
const FOLD_COUNTED: &str = "\
WITH counted AS (
    SELECT id, received_on AS day, effective_product_type AS product_type
    FROM cases WHERE id = ANY($1)
), counted_categories AS (
    -- Each case's categories through its primary key: as a join, planned
    -- as a hash join over every row of case_categories (33 ms a fold at
    -- 100,000 rows; issue 19, twenty-second round).
    SELECT counted.day, counted.product_type, category
    FROM counted, unnest(ARRAY(
        SELECT case_categories.category FROM case_categories
        WHERE case_categories.case_id = counted.id AND case_categories.effective
    )) AS category
), daily AS (
    INSERT INTO stats_daily_cases AS cell (day, product_type, cases)
    SELECT day, product_type, count(*) FROM counted
    GROUP BY day, product_type ORDER BY day, product_type
    ON CONFLICT (day, product_type) DO UPDATE SET cases = cell.cases + excluded.cases
), monthly AS (
    INSERT INTO stats_monthly_cases AS cell (month, product_type, cases)
    SELECT substr(day, 1, 7), product_type, count(*) FROM counted
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (month, product_type) DO UPDATE SET cases = cell.cases + excluded.cases
), daily_categories AS (
    INSERT INTO stats_daily_categories AS cell (day, product_type, category, cases)
    SELECT day, product_type, category, count(*) FROM counted_categories
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, product_type, category) DO UPDATE SET cases = cell.cases + excluded.cases
)
INSERT INTO stats_monthly_categories AS cell (month, product_type, category, cases)
SELECT substr(day, 1, 7), product_type, category, count(*) FROM counted_categories
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (month, product_type, category) DO UPDATE SET cases = cell.cases + excluded.cases";

/// PostgreSQL: moves up to [`FOLD_BATCH`] pending cases into the rollups,
/// in the caller's transaction; returns how many. Nothing to do on SQLite.
///
/// An intake on PostgreSQL only queues its case (`stats_pending`): updating
/// the day's rollup rows in every intake was a third of its work. Exact at
/// every commit all the same: the pending rows go in the transaction that
/// counts them, the statistics add the cases still pending
/// ([`pending_cells`]), and a triage or correction of a pending case locks
/// its row and leaves the rollups to the fold ([`recount_case`]).
pub fn fold_pending(conn: &mut AnyConnection) -> DbResult<usize> {
    use diesel::connection::SimpleConnection as _;
    use diesel::sql_types::Array;
    let AnyConnection::Postgres(c) = conn else {
        return Ok(0);
    };
    // A fold waiting behind a triage that moves the same cells (in another
    // order) could deadlock with it: it gives up instead, and the next fold
    // takes the cases again.
    c.batch_execute("SET LOCAL lock_timeout = '200ms'")?;
    let taken: Vec<PendingCase> = diesel::sql_query(
        "DELETE FROM stats_pending WHERE case_id IN \
         (SELECT case_id FROM stats_pending LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING case_id",
    )
    .bind::<BigInt, _>(FOLD_BATCH as i64)
    .load(c)?;
    if taken.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = taken.into_iter().map(|p| p.case_id).collect();
    // A second statement: under READ COMMITTED its snapshot is taken now,
    // after the rows above were locked, so it sees the changes of a triage
    // that held one of them until it committed.
    diesel::sql_query(FOLD_COUNTED)
        .bind::<Array<BigInt>, _>(&ids)
        .execute(c)?;
    Ok(ids.len())
}

/// PostgreSQL: whether the case still waits for the fold. Its pending row
/// stays locked to the end of the caller's transaction, so no fold counts
/// the case before the caller's change commits; a fold that took the row
/// first has committed by the time this answers false (and counted the
/// case as it was before the caller's change).
fn still_pending(conn: &mut AnyConnection, case_id: i64) -> DbResult<bool> {
    let AnyConnection::Postgres(c) = conn else {
        return Ok(false);
    };
    let rows: Vec<PendingCase> =
        diesel::sql_query("SELECT case_id FROM stats_pending WHERE case_id = $1 FOR UPDATE")
            .bind::<BigInt, _>(case_id)
            .load(c)?;
    Ok(!rows.is_empty())
}

/// A daily cell of the cases still pending as stored.
#[derive(QueryableByName, Debug)]
struct StoredPendingCell {
    #[diesel(sql_type = diesel::sql_types::Text)]
    day: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    product_type: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    category: Option<String>,
    #[diesel(sql_type = BigInt)]
    cases: i64,
}

/// The daily cells of the cases not yet folded into the rollups (none on
/// SQLite). Read in the snapshot of the rollups ([`consistent_read`]), a
/// case is either pending or counted, never both.
fn pending_cells(conn: &mut AnyConnection) -> DbResult<Vec<PendingCell>> {
    let AnyConnection::Postgres(c) = conn else {
        return Ok(Vec::new());
    };
    let stored_cells: Vec<StoredPendingCell> = diesel::sql_query(
        "SELECT c.received_on AS day, c.effective_product_type AS product_type, \
                NULL::text AS category, count(*) AS cases \
         FROM stats_pending p JOIN cases c ON c.id = p.case_id \
         GROUP BY 1, 2 \
         UNION ALL \
         SELECT c.received_on, c.effective_product_type, cc.category, count(*) \
         FROM stats_pending p JOIN cases c ON c.id = p.case_id \
         JOIN case_categories cc ON cc.case_id = c.id AND cc.effective \
         GROUP BY 1, 2, 3",
    )
    .load(c)?;
    stored_cells
        .into_iter()
        .map(|cell| {
            let row = || format!("the pending cases of {}", cell.day);
            Ok(PendingCell {
                product_type: stored(
                    "cases.effective_product_type",
                    row,
                    cell.product_type.parse(),
                )?,
                category: cell
                    .category
                    .as_deref()
                    .map(|category| stored("case_categories.category", row, category.parse()))
                    .transpose()?,
                cases: cell.cases,
                day: cell.day,
            })
        })
        .collect()
}

/// A daily cell of the cases still pending: `(day, product_type, category)`
/// with `category` None for the per-product case count.
#[derive(Debug)]
struct PendingCell {
    day: String,
    product_type: ProductType,
    category: Option<Category>,
    cases: i64,
}

/// How many cases wait for the fold (0 on SQLite).
pub fn pending_count(conn: &mut AnyConnection) -> DbResult<i64> {
    let AnyConnection::Postgres(c) = conn else {
        return Ok(0);
    };
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let count: Count =
        diesel::sql_query("SELECT count(*) AS n FROM stats_pending").get_result(c)?;
    Ok(count.n)
}

/// Runs `work`, statements that read the rollups, in one snapshot: on
/// PostgreSQL a read-only REPEATABLE READ transaction, so that a fold
/// committing between two of them neither counts a case twice nor misses
/// it. SQLite's reads already run in one read transaction each.
pub fn consistent_read<T, E>(
    conn: &mut AnyConnection,
    work: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    if let AnyConnection::Sqlite(_) = conn {
        return work(conn);
    }
    conn.transaction(|conn| {
        diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(conn)?;
        work(conn)
    })
}

// ---------------------------------------------------------------- reading

/// `SUM(cases)` as BIGINT on both backends (diesel's `sum` would be NUMERIC).
fn sum_cases() -> SqlLiteral<BigInt> {
    sql::<BigInt>("CAST(SUM(cases) AS BIGINT)")
}

/// Defines `$name(conn, plan)`: the category counts of a range summed from
/// one set of rollup tables along `plan` (see [`category_counts`]).
macro_rules! category_counts_fn {
    ($name:ident, $mc:ident, $mcat:ident, $dc:ident, $dcat:ident) => {
        fn $name(conn: &mut AnyConnection, plan: &RangePlan) -> DbResult<CategoryCounts> {
            let mut counts = CategoryCounts::default();
            if let Some((first, last)) = &plan.months {
                let months = || format!("the months {first}..{last}");
                let cases = $mc::table
                    .filter($mc::month.between(first, last))
                    .group_by($mc::product_type)
                    .select(($mc::product_type, sum_cases()))
                    .load::<(String, i64)>(conn)?;
                for (product_type, n) in cases {
                    let column = concat!(stringify!($mc), ".product_type");
                    counts.add_cases(stored(column, months, product_type.parse())?, n);
                }
                let categories = $mcat::table
                    .filter($mcat::month.between(first, last))
                    .group_by(($mcat::product_type, $mcat::category))
                    .select(($mcat::product_type, $mcat::category, sum_cases()))
                    .load::<(String, String, i64)>(conn)?;
                for (product_type, category, n) in categories {
                    counts.add_category(
                        stored(
                            concat!(stringify!($mcat), ".product_type"),
                            months,
                            product_type.parse(),
                        )?,
                        stored(
                            concat!(stringify!($mcat), ".category"),
                            months,
                            category.parse(),
                        )?,
                        n,
                    );
                }
            }
            for (from, to) in &plan.days {
                let days = || format!("the days {from}..{to}");
                let cases = $dc::table
                    .filter($dc::day.between(from, to))
                    .group_by($dc::product_type)
                    .select(($dc::product_type, sum_cases()))
                    .load::<(String, i64)>(conn)?;
                for (product_type, n) in cases {
                    let column = concat!(stringify!($dc), ".product_type");
                    counts.add_cases(stored(column, days, product_type.parse())?, n);
                }
                let categories = $dcat::table
                    .filter($dcat::day.between(from, to))
                    .group_by(($dcat::product_type, $dcat::category))
                    .select(($dcat::product_type, $dcat::category, sum_cases()))
                    .load::<(String, String, i64)>(conn)?;
                for (product_type, category, n) in categories {
                    counts.add_category(
                        stored(
                            concat!(stringify!($dcat), ".product_type"),
                            days,
                            product_type.parse(),
                        )?,
                        stored(
                            concat!(stringify!($dcat), ".category"),
                            days,
                            category.parse(),
                        )?,
                        n,
                    );
                }
            }
            Ok(counts)
        }
    };
}

category_counts_fn!(
    all_category_counts,
    stats_monthly_cases,
    stats_monthly_categories,
    stats_daily_cases,
    stats_daily_categories
);
category_counts_fn!(
    duplicate_category_counts,
    stats_monthly_duplicates,
    stats_monthly_duplicate_categories,
    stats_daily_duplicates,
    stats_daily_duplicate_categories
);

/// The category table's counts for a range of received dates, summed from
/// the rollups along `plan`: whole months from the monthly tables, edge days
/// from the daily ones. The work grows with the months, not with the cases.
pub fn category_counts(conn: &mut AnyConnection, plan: &RangePlan) -> DbResult<CategoryCounts> {
    category_counts_of(conn, Rollup::All, plan)
}

/// [`category_counts`] of one set of rollups.
pub fn category_counts_of(
    conn: &mut AnyConnection,
    rollup: Rollup,
    plan: &RangePlan,
) -> DbResult<CategoryCounts> {
    match rollup {
        Rollup::All => {
            let mut counts = all_category_counts(conn, plan)?;
            for cell in pending_cells(conn)? {
                if !plan.covers(&cell.day) {
                    continue;
                }
                match cell.category {
                    None => counts.add_cases(cell.product_type, cell.cases),
                    Some(category) => counts.add_category(cell.product_type, category, cell.cases),
                }
            }
            Ok(counts)
        }
        Rollup::Duplicates => duplicate_category_counts(conn, plan),
    }
}

/// A rollup cell: `(period, product_type, category)`, the period a day
/// `YYYY-MM-DD` or a month `YYYY-MM`; category None for the per-product case
/// count.
pub type Cell = (String, String, Option<String>);

/// Defines `$name(conn)`: every non-zero cell of one set of rollup tables.
macro_rules! rollup_cells_fn {
    ($name:ident, $mc:ident, $mcat:ident, $dc:ident, $dcat:ident) => {
        fn $name(conn: &mut AnyConnection) -> DbResult<BTreeMap<Cell, i64>> {
            let mut cells = BTreeMap::new();
            let days: Vec<(String, String, i64)> = $dc::table
                .filter($dc::cases.ne(0))
                .select(($dc::day, $dc::product_type, $dc::cases))
                .load(conn)?;
            let months: Vec<(String, String, i64)> = $mc::table
                .filter($mc::cases.ne(0))
                .select(($mc::month, $mc::product_type, $mc::cases))
                .load(conn)?;
            for (period, product_type, n) in days.into_iter().chain(months) {
                cells.insert((period, product_type, None), n);
            }
            let days: Vec<(String, String, String, i64)> = $dcat::table
                .filter($dcat::cases.ne(0))
                .select((
                    $dcat::day,
                    $dcat::product_type,
                    $dcat::category,
                    $dcat::cases,
                ))
                .load(conn)?;
            let months: Vec<(String, String, String, i64)> = $mcat::table
                .filter($mcat::cases.ne(0))
                .select((
                    $mcat::month,
                    $mcat::product_type,
                    $mcat::category,
                    $mcat::cases,
                ))
                .load(conn)?;
            for (period, product_type, category, n) in days.into_iter().chain(months) {
                cells.insert((period, product_type, Some(category)), n);
            }
            Ok(cells)
        }
    };
}

rollup_cells_fn!(
    all_rollup_cells,
    stats_monthly_cases,
    stats_monthly_categories,
    stats_daily_cases,
    stats_daily_categories
);
rollup_cells_fn!(
    duplicate_rollup_cells,
    stats_monthly_duplicates,
    stats_monthly_duplicate_categories,
    stats_daily_duplicates,
    stats_daily_duplicate_categories
);

/// Every non-zero cell of the four rollup tables.
pub fn rollup_cells(conn: &mut AnyConnection) -> DbResult<BTreeMap<Cell, i64>> {
    rollup_cells_of(conn, Rollup::All)
}

/// Every non-zero cell of one set of four rollup tables.
pub fn rollup_cells_of(conn: &mut AnyConnection, rollup: Rollup) -> DbResult<BTreeMap<Cell, i64>> {
    match rollup {
        Rollup::All => {
            // The cases still pending count in the cells the fold will add
            // them to.
            let mut cells = all_rollup_cells(conn)?;
            for cell in pending_cells(conn)? {
                let month = month_of(&cell.day).to_owned();
                let product_type = cell.product_type.as_str().to_owned();
                let category = cell.category.map(|c| c.as_str().to_owned());
                *cells
                    .entry((month, product_type.clone(), category.clone()))
                    .or_default() += cell.cases;
                *cells.entry((cell.day, product_type, category)).or_default() += cell.cases;
            }
            Ok(cells)
        }
        Rollup::Duplicates => duplicate_rollup_cells(conn),
    }
}

/// Defines `$name(conn)`: the cells a set of rollups should hold,
/// recounted from the cases `$counted` selects.
macro_rules! recount_cells_fn {
    ($name:ident, $counted:expr) => {
        fn $name(conn: &mut AnyConnection) -> DbResult<BTreeMap<Cell, i64>> {
            let mut days = BTreeMap::new();
            let rows: Vec<(String, String, i64)> = cases::table
                .filter($counted)
                .group_by((cases::received_on, cases::effective_product_type))
                .select((
                    cases::received_on,
                    cases::effective_product_type,
                    count_star(),
                ))
                .load(conn)?;
            for (day, product_type, n) in rows {
                days.insert((day, product_type, None), n);
            }
            let rows: Vec<(String, String, String, i64)> = case_categories::table
                .inner_join(cases::table)
                .filter(case_categories::effective.eq(true))
                .filter($counted)
                .group_by((
                    cases::received_on,
                    cases::effective_product_type,
                    case_categories::category,
                ))
                .select((
                    cases::received_on,
                    cases::effective_product_type,
                    case_categories::category,
                    count_star(),
                ))
                .load(conn)?;
            for (day, product_type, category, n) in rows {
                days.insert((day, product_type, Some(category)), n);
            }
            let mut cells = days.clone();
            for ((day, product_type, category), n) in days {
                *cells
                    .entry((month_of(&day).to_owned(), product_type, category))
                    .or_default() += n;
            }
            Ok(cells)
        }
    };
}

recount_cells_fn!(recount_all_cells, cases::id.is_not_null());
recount_cells_fn!(
    recount_duplicate_cells,
    cases::outcome.eq(Outcome::Duplicate.as_str())
);

/// The cells the rollups should hold, recounted from the cases: daily cells
/// and their sums per month.
pub fn recount_cells(conn: &mut AnyConnection) -> DbResult<BTreeMap<Cell, i64>> {
    recount_all_cells(conn)
}

/// The cells one set of rollups should hold, recounted from the cases
/// (every case, or those closed as duplicates): daily cells and their sums
/// per month.
pub fn recount_cells_of(conn: &mut AnyConnection, rollup: Rollup) -> DbResult<BTreeMap<Cell, i64>> {
    match rollup {
        Rollup::All => recount_all_cells(conn),
        Rollup::Duplicates => recount_duplicate_cells(conn),
    }
}

/// The first received date with a case, if any.
pub fn earliest_day(conn: &mut AnyConnection) -> DbResult<Option<NaiveDate>> {
    let counted: Option<String> = stats_daily_cases::table
        .filter(stats_daily_cases::cases.gt(0))
        .select(min(stats_daily_cases::day))
        .first(conn)?;
    let pending = pending_cells(conn)?.into_iter().map(|cell| cell.day).min();
    let day = match (counted, pending) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    day.map(|day| {
        let row = || format!("the earliest row ({day:?})");
        stored("stats_daily_cases.day", row, parse_date(&day))
    })
    .transpose()
}

/// Defines `$name(conn, plan)`: cases per period of one set of rollup tables.
macro_rules! cases_by_period_fn {
    ($name:ident, $mc:ident, $mcat:ident, $dc:ident, $dcat:ident) => {
        fn $name(
            conn: &mut AnyConnection,
            plan: &RangePlan,
        ) -> DbResult<Vec<(NaiveDate, ProductType, i64)>> {
            let mut rows = Vec::new();
            let mut typed = |table: &str, loaded: Vec<(String, String, i64)>| -> DbResult<()> {
                for (period, product_type, cases) in loaded {
                    let row = || format!("the row ({period:?}, {product_type:?})");
                    // A whole month lies in one bucket: its first day stands for it.
                    let start = stored(&format!("{table}.period"), row, period_start(&period))?;
                    let column = format!("{table}.product_type");
                    rows.push((start, stored(&column, row, product_type.parse())?, cases));
                }
                Ok(())
            };
            if let Some((first, last)) = &plan.months {
                typed(
                    stringify!($mc),
                    $mc::table
                        .filter($mc::month.between(first, last))
                        .filter($mc::cases.ne(0))
                        .select(($mc::month, $mc::product_type, $mc::cases))
                        .load::<(String, String, i64)>(conn)?,
                )?;
            }
            for (from, to) in &plan.days {
                typed(
                    stringify!($dc),
                    $dc::table
                        .filter($dc::day.between(from, to))
                        .filter($dc::cases.ne(0))
                        .select(($dc::day, $dc::product_type, $dc::cases))
                        .load::<(String, String, i64)>(conn)?,
                )?;
            }
            Ok(rows)
        }
    };
}

cases_by_period_fn!(
    all_cases_by_period,
    stats_monthly_cases,
    stats_monthly_categories,
    stats_daily_cases,
    stats_daily_categories
);
cases_by_period_fn!(
    duplicate_cases_by_period,
    stats_monthly_duplicates,
    stats_monthly_duplicate_categories,
    stats_daily_duplicates,
    stats_daily_duplicate_categories
);

/// `(first day of the period, product_type, cases)` of a range along
/// `plan`: whole months from the monthly rollups, edge days from the daily
/// ones; enough for trend buckets of a month or longer.
pub fn cases_by_period(
    conn: &mut AnyConnection,
    plan: &RangePlan,
) -> DbResult<Vec<(NaiveDate, ProductType, i64)>> {
    cases_by_period_of(conn, Rollup::All, plan)
}

/// [`cases_by_period`] of one set of rollups.
pub fn cases_by_period_of(
    conn: &mut AnyConnection,
    rollup: Rollup,
    plan: &RangePlan,
) -> DbResult<Vec<(NaiveDate, ProductType, i64)>> {
    match rollup {
        Rollup::All => {
            let mut rows = all_cases_by_period(conn, plan)?;
            for cell in pending_cells(conn)? {
                if cell.category.is_some() || !plan.covers(&cell.day) {
                    continue;
                }
                let row = || format!("the pending cases of {}", cell.day);
                rows.push((
                    stored("cases.received_on", row, parse_date(&cell.day))?,
                    cell.product_type,
                    cell.cases,
                ));
            }
            Ok(rows)
        }
        Rollup::Duplicates => duplicate_cases_by_period(conn, plan),
    }
}

// ---------------------------------------------------------------- pipeline

/// `(status, cases)` of the open statuses (every status but `closed`) that
/// have cases; the status index finds them without reading the closed bulk.
pub fn open_by_status(conn: &mut AnyConnection) -> DbResult<Vec<(CaseStatus, i64)>> {
    let open: Vec<&str> = CaseStatus::ALL
        .iter()
        .filter(|s| **s != CaseStatus::Closed)
        .map(|s| s.as_str())
        .collect();
    let rows: Vec<(String, i64)> = cases::table
        .filter(cases::status.eq_any(open))
        .group_by(cases::status)
        .select((cases::status, count_star()))
        .load(conn)?;
    rows.into_iter()
        .map(|(status, n)| {
            let row = || format!("{n} case(s)");
            Ok((stored("cases.status", row, status.parse())?, n))
        })
        .collect()
}

/// Which duration of a case a median is taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// `triaged_at − received_at`, over triaged cases.
    ToTriage,
    /// `closed_at − received_at`, over closed cases with a close time
    /// (imported records have none).
    ToClose,
}

/// `(cases measured, median in microseconds)` of `span`, over cases received
/// in `from..=to`. The database sorts and returns only the middle value(s).
///
/// Cases closed as duplicates are left out unless `with_duplicates`.
pub fn median_span(
    conn: &mut AnyConnection,
    span: Span,
    from: &str,
    to: &str,
    with_duplicates: bool,
) -> DbResult<(i64, Option<i64>)> {
    // `NOT IN ()` is true: nothing left out.
    let left_out: Vec<&str> = if with_duplicates {
        Vec::new()
    } else {
        vec![Outcome::Duplicate.as_str()]
    };
    macro_rules! median_of {
        ($end:expr) => {{
            let measured = || {
                cases::table
                    .filter(cases::received_on.between(from, to))
                    .filter($end.is_not_null())
                    .filter(
                        cases::outcome
                            .is_null()
                            .or(cases::outcome.ne_all(left_out.clone())),
                    )
            };
            let n: i64 = measured().count().get_result(conn)?;
            let Some((offset, take)) = median_window(n) else {
                return Ok((0, None));
            };
            let duration = $end.assume_not_null() - cases::received_at;
            let middle: Vec<i64> = measured()
                .select(duration)
                .order(duration.asc())
                .limit(take)
                .offset(offset)
                .load(conn)?;
            Ok((n, median_of_middle(&middle)))
        }};
    }
    match span {
        Span::ToTriage => median_of!(cases::triaged_at),
        Span::ToClose => median_of!(cases::closed_at),
    }
}

/// Untriaged cases (submitted, or claimed but not triaged) received before
/// `cutoff` (`YYYY-MM-DD`).
pub fn overdue_triage(conn: &mut AnyConnection, cutoff: &str) -> DbResult<i64> {
    Ok(cases::table
        .filter(cases::status.eq_any([CaseStatus::Submitted.as_str(), CaseStatus::Triage.as_str()]))
        .filter(cases::triaged_at.is_null())
        .filter(cases::received_on.lt(cutoff))
        .count()
        .get_result(conn)?)
}

// ---------------------------------------------------------------- experts

/// One expert's assignment figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertLoad {
    pub expert_id: i64,
    pub name: String,
    pub capacity: i32,
    /// Every assignment ever proposed to the expert.
    pub assignments: i64,
    /// Assignments the expert accepted (whatever became of them later).
    pub accepted: i64,
    pub declined: i64,
    /// Proposed or accepted now.
    pub active: i64,
}

/// Assignment figures of every registered expert (zeros included), by id.
pub fn expert_loads(conn: &mut AnyConnection) -> DbResult<Vec<ExpertLoad>> {
    let registered: Vec<(i64, String, i32)> = experts::table
        .select((experts::id, experts::name, experts::capacity))
        .order(experts::id.asc())
        .load(conn)?;
    let by_status: Vec<(i64, String, i64)> = assignments::table
        .group_by((assignments::expert_id, assignments::status))
        .select((assignments::expert_id, assignments::status, count_star()))
        .load(conn)?;
    // Accepting records the acknowledgement of the confidentiality terms, so
    // it marks every assignment that was accepted at some point.
    let accepted: Vec<(i64, i64)> = assignments::table
        .filter(assignments::acknowledged_at.is_not_null())
        .group_by(assignments::expert_id)
        .select((assignments::expert_id, count_star()))
        .load(conn)?;
    let mut loads: BTreeMap<i64, ExpertLoad> = registered
        .into_iter()
        .map(|(expert_id, name, capacity)| {
            (
                expert_id,
                ExpertLoad {
                    expert_id,
                    name,
                    capacity,
                    assignments: 0,
                    accepted: 0,
                    declined: 0,
                    active: 0,
                },
            )
        })
        .collect();
    for (expert_id, status, n) in by_status {
        if let Some(load) = loads.get_mut(&expert_id) {
            let row = || format!("{n} assignment(s) of expert {expert_id}");
            let status: AssignmentStatus = stored("assignments.status", row, status.parse())?;
            load.assignments += n;
            if status == AssignmentStatus::Declined {
                load.declined += n;
            }
            if status.is_active() {
                load.active += n;
            }
        }
    }
    for (expert_id, n) in accepted {
        if let Some(load) = loads.get_mut(&expert_id) {
            load.accepted = n;
        }
    }
    Ok(loads.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use crate::db::Database;
    use crate::domain::statistics::plan_range;
    use crate::domain::vocabulary::Category;

    /// The monthly rollups are keyed by month first on SQLite (migration
    /// 000022), so the current month's cells, which every intake adds to,
    /// share a leaf instead of lying one per product type and category.
    #[tokio::test]
    async fn monthly_cells_are_keyed_by_month_first() {
        #[derive(diesel::QueryableByName)]
        struct Column {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db").to_string_lossy().into_owned();
        let (mut conn, _) = crate::db::recording_sqlite(&path);
        for table in [
            "stats_monthly_cases",
            "stats_monthly_categories",
            "stats_monthly_duplicates",
            "stats_monthly_duplicate_categories",
        ] {
            let key: Vec<String> = diesel::sql_query(format!(
                "SELECT name FROM pragma_index_info('sqlite_autoindex_{table}_1') ORDER BY seqno"
            ))
            .load::<Column>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|column| column.name)
            .collect();
            assert_eq!(
                key.first().map(String::as_str),
                Some("month"),
                "{table}: {key:?}"
            );
            assert_eq!(key.len(), if table.ends_with("categories") { 3 } else { 2 });
        }
    }

    /// A stored value the vocabulary does not know is an error that names
    /// the column and the rows, never counted under some default.
    #[tokio::test]
    async fn unknown_stored_values_are_errors_naming_where_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stats.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 2).unwrap();
        db.migrate().unwrap();
        fn message<T: std::fmt::Debug>(result: DbResult<T>) -> String {
            match result {
                Ok(value) => panic!("expected an error, got {value:?}"),
                Err(error) => error.to_string(),
            }
        }

        db.write(|conn| count_case(conn, "2020-03-02", "drug", &["ip_strategy"], 1))
            .await
            .unwrap();
        let day = |d: &str| d.parse::<NaiveDate>().unwrap();
        let earliest = db.read(earliest_day).await.unwrap();
        assert_eq!(earliest, Some(day("2020-03-02")));
        let plan = plan_range(day("2020-03-01"), day("2020-03-02"));
        let counts = db
            .read(move |conn| category_counts(conn, &plan))
            .await
            .unwrap();
        assert_eq!(counts.cases(ProductType::Drug), 1);
        assert_eq!(counts.count(ProductType::Drug, Category::IpStrategy), 1);

        db.write(|conn| count_case(conn, "2020-04-06", "drug", &["astrology"], 1))
            .await
            .unwrap();
        let plan = plan_range(day("2020-04-06"), day("2020-04-07"));
        let counts = message(db.read(move |conn| category_counts(conn, &plan)).await);
        assert!(
            counts.contains("stats_daily_categories.category of the days 2020-04-06..2020-04-07")
                && counts.contains("\"astrology\""),
            "{counts}"
        );

        db.write(|conn| count_case(conn, "2020-03-03", "astrology", &["ip_strategy"], 1))
            .await
            .unwrap();
        let march = plan_range(day("2020-03-01"), day("2020-03-31"));
        let plan = march.clone();
        let counts = message(db.read(move |conn| category_counts(conn, &plan)).await);
        assert!(
            counts.contains("stats_monthly_cases.product_type of the months 2020-03..2020-03")
                && counts.contains("\"astrology\""),
            "{counts}"
        );
        let plan = plan_range(day("2020-03-03"), day("2020-03-04"));
        let counts = message(db.read(move |conn| category_counts(conn, &plan)).await);
        assert!(
            counts.contains("stats_daily_cases.product_type of the days 2020-03-03..2020-03-04"),
            "{counts}"
        );
        let by_period = message(db.read(move |conn| cases_by_period(conn, &march)).await);
        assert!(
            by_period.contains(
                "stats_monthly_cases.product_type of the row (\"2020-03\", \"astrology\")"
            ),
            "{by_period}"
        );

        // Once a day that is no date was the earliest, "from" defaulted to
        // today without a word.
        db.write(|conn| count_case(conn, "2019-02-30", "drug", &["ip_strategy"], 1))
            .await
            .unwrap();
        let earliest = message(db.read(earliest_day).await);
        assert!(
            earliest.contains("stats_daily_cases.day of the earliest row (\"2019-02-30\")"),
            "{earliest}"
        );
    }
}
