//! Bulk import of historical cases: multi-row inserts in chunks and one
//! upsert per rollup cell, all inside the caller's transaction.

use std::collections::{BTreeMap, HashMap};

use diesel::connection::SimpleConnection;
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

/// Rows per multi-row INSERT (SQLite, and PostgreSQL's organisations), so
/// that rows × columns stays well under the bind-parameter limits (SQLite
/// 32,766; PostgreSQL 65,535).
fn rows_per_statement(columns: usize) -> usize {
    20_000 / columns
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub imported: usize,
    pub organizations_created: usize,
}

/// Inserts `rows` (a `Vec` of `.eq()` tuples) into `$table` as fast as the
/// backend allows: PostgreSQL takes them in one binary `COPY`, SQLite in
/// multi-row INSERTs of `$per_statement` rows.
macro_rules! bulk_insert {
    ($conn:expr, $table:path, $rows:expr, $per_statement:expr) => {
        match $conn {
            AnyConnection::Postgres(c) => {
                diesel::copy_from($table)
                    .from_insertable($rows)
                    .execute(c)?;
            }
            AnyConnection::Sqlite(c) => {
                for chunk in $rows.chunks($per_statement) {
                    diesel::insert_into($table).values(chunk).execute(c)?;
                }
            }
        }
    };
}

/// Stores `records` as closed cases filed by `importer`. Call inside a
/// transaction: any error leaves nothing behind. Sends no mail (nothing is
/// queued in the outbox).
///
/// Cases are stored in received order, so their ids, numbers and the
/// received-date index grow together (appends rather than scattered index
/// inserts).
pub fn import_cases(
    conn: &mut AnyConnection,
    records: &[ImportedCase],
    importer: i64,
    now: i64,
) -> DbResult<ImportSummary> {
    let mut records: Vec<&ImportedCase> = records.iter().collect();
    records.sort_by_key(|r| (r.received_on, r.line));
    if let AnyConnection::Sqlite(c) = conn {
        // Index pages of a large import do not fit SQLite's default 2 MiB
        // page cache; 128 MiB for the import, then back to the default.
        c.batch_execute("PRAGMA cache_size = -131072")?;
        let result = store_cases(conn, &records, importer, now);
        conn.batch_execute("PRAGMA cache_size = -2000")?;
        result
    } else {
        store_cases(conn, &records, importer, now)
    }
}

fn store_cases(
    conn: &mut AnyConnection,
    records: &[&ImportedCase],
    importer: i64,
    now: i64,
) -> DbResult<ImportSummary> {
    let (organization_ids, organizations_created) = organizations_for(conn, records, now)?;
    let numbers = case_numbers(conn, records)?;
    let days: Vec<String> = records.iter().map(|r| r.received_on.to_string()).collect();
    let received_at: Vec<i64> = records
        .iter()
        .map(|r| received_at_micros(r.received_on))
        .collect();

    let rows: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, record)| {
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
                cases::received_at.eq(received_at[i]),
                cases::updated_at.eq(now),
                // The close time of a historical record is unknown; the
                // pipeline's time-to-close leaves these cases out.
                cases::closed_at.eq(None::<i64>),
            )
        })
        .collect();
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(numbers.len());
    match conn {
        AnyConnection::Postgres(c) => {
            diesel::copy_from(cases::table)
                .from_insertable(rows)
                .execute(c)?;
            // COPY returns no ids: look them up by the (unique) numbers.
            for batch in numbers.chunks(50_000) {
                let found: Vec<(i64, String)> = cases::table
                    .filter(cases::number.eq_any(batch))
                    .select((cases::id, cases::number))
                    .load(c)?;
                ids.extend(found.into_iter().map(|(id, number)| (number, id)));
            }
        }
        AnyConnection::Sqlite(c) => {
            for chunk in rows.chunks(rows_per_statement(18)) {
                let inserted: Vec<(i64, String)> = diesel::insert_into(cases::table)
                    .values(chunk)
                    .returning((cases::id, cases::number))
                    .get_results(c)?;
                ids.extend(inserted.into_iter().map(|(id, number)| (number, id)));
            }
        }
    }
    // Matched by number: the order RETURNING yields is not promised.
    let case_ids: Vec<i64> = numbers.iter().map(|n| ids[n]).collect();

    let tags: Vec<_> = records
        .iter()
        .zip(&case_ids)
        .flat_map(|(record, id)| {
            record.categories.iter().map(move |c| {
                (
                    case_categories::case_id.eq(*id),
                    case_categories::kind.eq(super::cases::APPLICANT),
                    case_categories::category.eq(c.as_str()),
                    case_categories::effective.eq(true),
                )
            })
        })
        .collect();
    bulk_insert!(conn, case_categories::table, tags, rows_per_statement(4));

    let details: Vec<String> = records
        .iter()
        .map(|r| serde_json::json!({"source": "csv", "line": r.line}).to_string())
        .collect();
    let events: Vec<_> = records
        .iter()
        .zip(&case_ids)
        .zip(&details)
        .map(|((record, case_id), detail)| {
            (
                case_events::case_id.eq(*case_id),
                case_events::at.eq(now),
                case_events::actor_id.eq(Some(importer)),
                case_events::kind.eq("imported"),
                case_events::from_status.eq(None::<&str>),
                case_events::to_status.eq(Some(record.status.as_str())),
                case_events::detail.eq(Some(detail)),
                case_events::audience.eq(super::cases::AUDIENCE_ALL),
            )
        })
        .collect();
    bulk_insert!(conn, case_events::table, events, rows_per_statement(8));

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
    records: &[&ImportedCase],
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
    records: &[&ImportedCase],
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
/// reservation per year, given in the order of `records` (received order).
fn case_numbers(conn: &mut AnyConnection, records: &[&ImportedCase]) -> DbResult<Vec<String>> {
    use chrono::Datelike;
    let mut per_year: BTreeMap<i32, i64> = BTreeMap::new();
    for record in records {
        *per_year.entry(record.received_on.year()).or_default() += 1;
    }
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for (year, count) in per_year {
        let last = reserve_sequences(conn, year, count)?;
        next.insert(year, last - count + 1);
    }
    Ok(records
        .iter()
        .map(|record| {
            let sequence = next
                .get_mut(&record.received_on.year())
                .expect("reserved above");
            *sequence += 1;
            case_number(record.received_on, *sequence - 1)
        })
        .collect())
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
