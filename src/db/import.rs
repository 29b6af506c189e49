//! Bulk import of historical cases: multi-row inserts in chunks and one
//! upsert per rollup cell, all inside the caller's transaction.

use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::{case_categories, case_counters, case_events, cases, organizations};
use super::{AnyConnection, DbResult, stats};
use crate::domain::case::case_number;
use crate::domain::import::{ImportedCase, received_at_micros};

/// The kind given to organisations an import creates (the file has none).
pub const IMPORTED_ORGANIZATION_KIND: &str = "other";
/// Imported records carry no stage; the column holds this (not a code).
pub const UNRECORDED_STAGE: &str = "";

/// Rows per multi-row INSERT, so that rows × columns stays well under both
/// backends' bind-parameter limits (SQLite 32,766; PostgreSQL 65,535).
fn rows_per_statement(columns: usize) -> usize {
    20_000 / columns
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub imported: usize,
    pub organizations_created: usize,
}

/// Stores `records` as closed cases filed by `importer`. Call inside a
/// transaction: any error leaves nothing behind. Sends no mail (nothing is
/// queued in the outbox).
pub fn import_cases(
    conn: &mut AnyConnection,
    records: &[ImportedCase],
    importer: i64,
    now: i64,
) -> DbResult<ImportSummary> {
    let (organization_ids, organizations_created) = organizations_for(conn, records, now)?;
    let numbers = case_numbers(conn, records)?;

    let mut case_ids = Vec::with_capacity(records.len());
    let days: Vec<String> = records.iter().map(|r| r.received_on.to_string()).collect();
    let chunk = rows_per_statement(18);
    for (start, batch) in records.chunks(chunk).enumerate().map(|(i, b)| (i * chunk, b)) {
        let rows: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(offset, record)| {
                let i = start + offset;
                (
                    cases::number.eq(&numbers[i]),
                    cases::organization_id.eq(organization_ids[record.organization.as_str()]),
                    cases::applicant_id.eq(None::<i64>),
                    cases::filed_by.eq(Some(importer)),
                    cases::title.eq(&record.title),
                    cases::description.eq(""),
                    cases::product_type.eq(record.product_type.as_str()),
                    cases::stage.eq(UNRECORDED_STAGE),
                    cases::language.eq("ja"),
                    cases::organization_name.eq(&record.organization),
                    cases::organization_kind.eq(IMPORTED_ORGANIZATION_KIND),
                    cases::status.eq(record.status.as_str()),
                    cases::outcome.eq(Some(record.outcome.as_str())),
                    cases::effective_product_type.eq(record.product_type.as_str()),
                    cases::received_on.eq(&days[i]),
                    cases::received_at.eq(received_at_micros(record.received_on)),
                    cases::updated_at.eq(now),
                    // The close time of a historical record is unknown; the
                    // pipeline's time-to-close leaves these cases out.
                    cases::closed_at.eq(None::<i64>),
                )
            })
            .collect();
        let insert = diesel::insert_into(cases::table)
            .values(rows)
            .returning((cases::id, cases::number));
        let inserted: Vec<(i64, String)> = on_backend!(conn, |c| insert.get_results(c))?;
        // Matched by number: the order RETURNING yields is not promised.
        let by_number: HashMap<String, i64> = inserted
            .into_iter()
            .map(|(id, number)| (number, id))
            .collect();
        case_ids.extend((start..start + batch.len()).map(|i| by_number[&numbers[i]]));
    }

    let tags: Vec<(i64, &str)> = records
        .iter()
        .zip(&case_ids)
        .flat_map(|(record, id)| record.categories.iter().map(move |c| (*id, c.as_str())))
        .collect();
    for batch in tags.chunks(rows_per_statement(4)) {
        let rows: Vec<_> = batch
            .iter()
            .map(|(case_id, category)| {
                (
                    case_categories::case_id.eq(*case_id),
                    case_categories::kind.eq(super::cases::APPLICANT),
                    case_categories::category.eq(*category),
                    case_categories::effective.eq(true),
                )
            })
            .collect();
        let insert = diesel::insert_into(case_categories::table).values(rows);
        on_backend!(conn, |c| insert.execute(c))?;
    }

    let details: Vec<String> = records
        .iter()
        .map(|r| serde_json::json!({"source": "csv", "line": r.line}).to_string())
        .collect();
    let chunk = rows_per_statement(8);
    for (start, batch) in case_ids.chunks(chunk).enumerate().map(|(i, b)| (i * chunk, b)) {
        let rows: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(offset, case_id)| {
                (
                    case_events::case_id.eq(*case_id),
                    case_events::at.eq(now),
                    case_events::actor_id.eq(Some(importer)),
                    case_events::kind.eq("imported"),
                    case_events::from_status.eq(None::<&str>),
                    case_events::to_status.eq(Some(records[start + offset].status.as_str())),
                    case_events::detail.eq(Some(&details[start + offset])),
                    case_events::audience.eq(super::cases::AUDIENCE_ALL),
                )
            })
            .collect();
        let insert = diesel::insert_into(case_events::table).values(rows);
        on_backend!(conn, |c| insert.execute(c))?;
    }

    add_to_rollups(conn, records, &days)?;
    Ok(ImportSummary {
        imported: records.len(),
        organizations_created,
    })
}

/// Aggregates the records per rollup cell in memory, then one upsert per
/// cell (in multi-row statements) instead of one per case.
fn add_to_rollups(
    conn: &mut AnyConnection,
    records: &[ImportedCase],
    days: &[String],
) -> DbResult<()> {
    let mut case_cells: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut category_cells: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
    for (record, day) in records.iter().zip(days) {
        let product_type = record.product_type.as_str();
        *case_cells.entry((day, product_type)).or_default() += 1;
        for category in &record.categories {
            *category_cells
                .entry((day, product_type, category.as_str()))
                .or_default() += 1;
        }
    }
    let case_cells: Vec<(String, String, i64)> = case_cells
        .into_iter()
        .map(|((d, p), n)| (d.to_owned(), p.to_owned(), n))
        .collect();
    let category_cells: Vec<(String, String, String, i64)> = category_cells
        .into_iter()
        .map(|((d, p, c), n)| (d.to_owned(), p.to_owned(), c.to_owned(), n))
        .collect();
    stats::add_counts(conn, &case_cells, &category_cells)
}

/// One organisation per distinct name. An ownerless organisation of that
/// name (from an earlier import) is reused; a registered organisation never
/// is, since its members would then see the imported cases.
fn organizations_for(
    conn: &mut AnyConnection,
    records: &[ImportedCase],
    now: i64,
) -> DbResult<(HashMap<String, i64>, usize)> {
    let mut names: Vec<&str> = records.iter().map(|r| r.organization.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(names.len());
    for batch in names.chunks(1_000) {
        let found: Vec<(i64, String)> = organizations::table
            .filter(organizations::owner_user_id.is_null())
            .filter(organizations::name.eq_any(batch))
            .select((organizations::id, organizations::name))
            .order(organizations::id.asc())
            .load(conn)?;
        for (id, name) in found {
            ids.entry(name).or_insert(id);
        }
    }
    let missing: Vec<&str> = names
        .into_iter()
        .filter(|name| !ids.contains_key(*name))
        .collect();
    for batch in missing.chunks(rows_per_statement(4)) {
        let rows: Vec<_> = batch
            .iter()
            .map(|name| {
                (
                    organizations::name.eq(*name),
                    organizations::kind.eq(IMPORTED_ORGANIZATION_KIND),
                    organizations::owner_user_id.eq(None::<i64>),
                    organizations::created_at.eq(now),
                )
            })
            .collect();
        let insert = diesel::insert_into(organizations::table)
            .values(rows)
            .returning((organizations::id, organizations::name));
        let created: Vec<(i64, String)> = on_backend!(conn, |c| insert.get_results(c))?;
        ids.extend(created.into_iter().map(|(id, name)| (name, id)));
    }
    Ok((ids, missing.len()))
}

/// Case numbers from the desk's per-year counters (`MD-2018-00042`), one
/// reservation per year; within a year in received order, then file order.
fn case_numbers(conn: &mut AnyConnection, records: &[ImportedCase]) -> DbResult<Vec<String>> {
    use chrono::Datelike;
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by_key(|&i| (records[i].received_on, records[i].line));
    let mut per_year: BTreeMap<i32, i64> = BTreeMap::new();
    for record in records {
        *per_year.entry(record.received_on.year()).or_default() += 1;
    }
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for (year, count) in per_year {
        let last = reserve_sequences(conn, year, count)?;
        next.insert(year, last - count + 1);
    }
    let mut numbers = vec![String::new(); records.len()];
    for i in order {
        let received_on = records[i].received_on;
        let sequence = next.get_mut(&received_on.year()).expect("reserved");
        numbers[i] = case_number(received_on, *sequence);
        *sequence += 1;
    }
    Ok(numbers)
}

/// Takes `count` numbers from `year`'s counter in one statement; returns the
/// last one taken.
fn reserve_sequences(conn: &mut AnyConnection, year: i32, count: i64) -> DbResult<i64> {
    let upsert = diesel::insert_into(case_counters::table)
        .values((case_counters::year.eq(year), case_counters::last.eq(count)))
        .on_conflict(case_counters::year)
        .do_update()
        .set(case_counters::last.eq(case_counters::last + excluded(case_counters::last)))
        .returning(case_counters::last);
    Ok(on_backend!(conn, |c| upsert.get_result(c))?)
}
