//! Statistics rollups: daily counts per (product type) and per (product
//! type, category), adjusted in the transaction of every change that moves a
//! case between cells, so the category table never scans the cases.

use std::collections::BTreeMap;

use diesel::dsl::{count_star, min, sql};
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::upsert::excluded;

use super::schema::{
    assignments, case_categories, cases, experts, stats_daily_cases, stats_daily_categories,
};
use super::{AnyConnection, DbResult};
use crate::domain::statistics::{median_of_middle, median_window};

// The recounts group case columns with a category column.
diesel::allow_columns_to_appear_in_same_group_by_clause!(
    cases::received_on,
    cases::effective_product_type,
    case_categories::category,
);

/// Adds `delta` (+1 or −1) for one case counted on `day` under
/// `product_type` and `categories`.
pub fn count_case(
    conn: &mut AnyConnection,
    day: &str,
    product_type: &str,
    categories: &[&str],
    delta: i64,
) -> DbResult<()> {
    let case_row = diesel::insert_into(stats_daily_cases::table)
        .values((
            stats_daily_cases::day.eq(day),
            stats_daily_cases::product_type.eq(product_type),
            stats_daily_cases::cases.eq(delta),
        ))
        .on_conflict((stats_daily_cases::day, stats_daily_cases::product_type))
        .do_update()
        .set(
            stats_daily_cases::cases
                .eq(stats_daily_cases::cases + excluded(stats_daily_cases::cases)),
        );
    on_backend!(conn, |c| case_row.execute(c))?;
    for category in categories {
        let category_row = diesel::insert_into(stats_daily_categories::table)
            .values((
                stats_daily_categories::day.eq(day),
                stats_daily_categories::product_type.eq(product_type),
                stats_daily_categories::category.eq(*category),
                stats_daily_categories::cases.eq(delta),
            ))
            .on_conflict((
                stats_daily_categories::day,
                stats_daily_categories::product_type,
                stats_daily_categories::category,
            ))
            .do_update()
            .set(
                stats_daily_categories::cases
                    .eq(stats_daily_categories::cases + excluded(stats_daily_categories::cases)),
            );
        on_backend!(conn, |c| category_row.execute(c))?;
    }
    Ok(())
}

/// Moves a case from one cell set to another (triage confirming other
/// product type / categories than the applicant chose).
pub fn recount_case(
    conn: &mut AnyConnection,
    day: &str,
    before: (&str, &[&str]),
    after: (&str, &[&str]),
) -> DbResult<()> {
    if before.0 == after.0 && before.1 == after.1 {
        return Ok(());
    }
    count_case(conn, day, before.0, before.1, -1)?;
    count_case(conn, day, after.0, after.1, 1)
}

// ---------------------------------------------------------------- batches

/// Adds many deltas at once: `(day, product_type, cases)` and `(day,
/// product_type, category, cases)`, one upsert per chunk of cells (the
/// import aggregates its cases per cell first).
pub fn add_counts(
    conn: &mut AnyConnection,
    case_cells: &[(String, String, i64)],
    category_cells: &[(String, String, String, i64)],
) -> DbResult<()> {
    // Well under both backends' bind limits (SQLite 32,766; PostgreSQL 65,535).
    for chunk in case_cells.chunks(5_000) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(day, product_type, cases)| {
                (
                    stats_daily_cases::day.eq(day),
                    stats_daily_cases::product_type.eq(product_type),
                    stats_daily_cases::cases.eq(*cases),
                )
            })
            .collect();
        let upsert = diesel::insert_into(stats_daily_cases::table)
            .values(rows)
            .on_conflict((stats_daily_cases::day, stats_daily_cases::product_type))
            .do_update()
            .set(
                stats_daily_cases::cases
                    .eq(stats_daily_cases::cases + excluded(stats_daily_cases::cases)),
            );
        on_backend!(conn, |c| upsert.execute(c))?;
    }
    for chunk in category_cells.chunks(5_000) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(day, product_type, category, cases)| {
                (
                    stats_daily_categories::day.eq(day),
                    stats_daily_categories::product_type.eq(product_type),
                    stats_daily_categories::category.eq(category),
                    stats_daily_categories::cases.eq(*cases),
                )
            })
            .collect();
        let upsert = diesel::insert_into(stats_daily_categories::table)
            .values(rows)
            .on_conflict((
                stats_daily_categories::day,
                stats_daily_categories::product_type,
                stats_daily_categories::category,
            ))
            .do_update()
            .set(
                stats_daily_categories::cases
                    .eq(stats_daily_categories::cases + excluded(stats_daily_categories::cases)),
            );
        on_backend!(conn, |c| upsert.execute(c))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- reading

/// `SUM(cases)` as BIGINT on both backends (diesel's `sum` would be NUMERIC).
fn sum_cases() -> SqlLiteral<BigInt> {
    sql::<BigInt>("CAST(SUM(cases) AS BIGINT)")
}

/// Counts of the category table as database rows of codes.
#[derive(Debug, Default)]
pub struct CountRows {
    /// `(product_type, cases)`
    pub cases: Vec<(String, i64)>,
    /// `(product_type, category, cases)`
    pub categories: Vec<(String, String, i64)>,
}

/// The category table's counts for received dates `from..=to`
/// (`YYYY-MM-DD`, compared as text), summed from the daily rollups: the
/// work grows with the number of days, not of cases.
pub fn category_counts(conn: &mut AnyConnection, from: &str, to: &str) -> DbResult<CountRows> {
    let cases = stats_daily_cases::table
        .filter(stats_daily_cases::day.between(from, to))
        .group_by(stats_daily_cases::product_type)
        .select((stats_daily_cases::product_type, sum_cases()))
        .load(conn)?;
    let categories = stats_daily_categories::table
        .filter(stats_daily_categories::day.between(from, to))
        .group_by((
            stats_daily_categories::product_type,
            stats_daily_categories::category,
        ))
        .select((
            stats_daily_categories::product_type,
            stats_daily_categories::category,
            sum_cases(),
        ))
        .load(conn)?;
    Ok(CountRows { cases, categories })
}

/// The same counts recounted from the cases and their effective categories
/// (a full scan: for checks and tests, not for requests).
pub fn recount_category_counts(
    conn: &mut AnyConnection,
    from: &str,
    to: &str,
) -> DbResult<CountRows> {
    let counted = cases::table
        .filter(cases::received_on.between(from, to))
        .group_by(cases::effective_product_type)
        .select((cases::effective_product_type, count_star()))
        .load(conn)?;
    let categories = case_categories::table
        .inner_join(cases::table)
        .filter(case_categories::effective.eq(true))
        .filter(cases::received_on.between(from, to))
        .group_by((cases::effective_product_type, case_categories::category))
        .select((
            cases::effective_product_type,
            case_categories::category,
            count_star(),
        ))
        .load(conn)?;
    Ok(CountRows {
        cases: counted,
        categories,
    })
}

/// A rollup cell: `(day, product_type, category)`; category None for the
/// per-product case count.
pub type Cell = (String, String, Option<String>);

/// Every non-zero rollup cell.
pub fn rollup_cells(conn: &mut AnyConnection) -> DbResult<BTreeMap<Cell, i64>> {
    let mut cells = BTreeMap::new();
    let rows: Vec<(String, String, i64)> = stats_daily_cases::table
        .filter(stats_daily_cases::cases.ne(0))
        .select((
            stats_daily_cases::day,
            stats_daily_cases::product_type,
            stats_daily_cases::cases,
        ))
        .load(conn)?;
    for (day, product_type, n) in rows {
        cells.insert((day, product_type, None), n);
    }
    let rows: Vec<(String, String, String, i64)> = stats_daily_categories::table
        .filter(stats_daily_categories::cases.ne(0))
        .select((
            stats_daily_categories::day,
            stats_daily_categories::product_type,
            stats_daily_categories::category,
            stats_daily_categories::cases,
        ))
        .load(conn)?;
    for (day, product_type, category, n) in rows {
        cells.insert((day, product_type, Some(category)), n);
    }
    Ok(cells)
}

/// The cells the rollups should hold, recounted from the cases.
pub fn recount_cells(conn: &mut AnyConnection) -> DbResult<BTreeMap<Cell, i64>> {
    let mut cells = BTreeMap::new();
    let rows: Vec<(String, String, i64)> = cases::table
        .group_by((cases::received_on, cases::effective_product_type))
        .select((
            cases::received_on,
            cases::effective_product_type,
            count_star(),
        ))
        .load(conn)?;
    for (day, product_type, n) in rows {
        cells.insert((day, product_type, None), n);
    }
    let rows: Vec<(String, String, String, i64)> = case_categories::table
        .inner_join(cases::table)
        .filter(case_categories::effective.eq(true))
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
        cells.insert((day, product_type, Some(category)), n);
    }
    Ok(cells)
}

/// The first received date with a case, if any.
pub fn earliest_day(conn: &mut AnyConnection) -> DbResult<Option<String>> {
    Ok(stats_daily_cases::table
        .filter(stats_daily_cases::cases.gt(0))
        .select(min(stats_daily_cases::day))
        .first(conn)?)
}

/// `(day, product_type, cases)` for every non-empty day in `from..=to`.
pub fn daily_cases(
    conn: &mut AnyConnection,
    from: &str,
    to: &str,
) -> DbResult<Vec<(String, String, i64)>> {
    Ok(stats_daily_cases::table
        .filter(stats_daily_cases::day.between(from, to))
        .filter(stats_daily_cases::cases.ne(0))
        .select((
            stats_daily_cases::day,
            stats_daily_cases::product_type,
            stats_daily_cases::cases,
        ))
        .load(conn)?)
}

// ---------------------------------------------------------------- pipeline

/// `(status, cases)` of every status but `closed`.
pub fn open_by_status(conn: &mut AnyConnection) -> DbResult<Vec<(String, i64)>> {
    Ok(cases::table
        .filter(cases::status.ne("closed"))
        .group_by(cases::status)
        .select((cases::status, count_star()))
        .load(conn)?)
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
pub fn median_span(
    conn: &mut AnyConnection,
    span: Span,
    from: &str,
    to: &str,
) -> DbResult<(i64, Option<i64>)> {
    macro_rules! median_of {
        ($end:expr) => {{
            let measured = || {
                cases::table
                    .filter(cases::received_on.between(from, to))
                    .filter($end.is_not_null())
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
        .filter(cases::status.eq_any(["submitted", "triage"]))
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
            load.assignments += n;
            if status == "declined" {
                load.declined += n;
            }
            if super::assignments::ACTIVE.contains(&status.as_str()) {
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
