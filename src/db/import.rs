//! Bulk import of historical cases, a batch at a time: multi-row inserts
//! (or COPY) and one upsert per rollup cell of the batch, all inside the
//! caller's transaction.

use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::{case_categories, case_counters, case_events, cases, organizations};
use super::{AnyConnection, DbError, DbResult, stats};
use crate::domain::case::case_number;
use crate::domain::import::{ImportedCase, received_at_micros};

/// The kind given to organisations an import creates (the file has none).
pub const IMPORTED_ORGANIZATION_KIND: &str = "other";
/// Imported records carry no stage; the column holds this (not a code).
pub const UNRECORDED_STAGE: &str = "";
/// Cases per batch: what an import holds in memory at once. SQLite takes a
/// batch in one multi-row INSERT of cases (see `rows_per_statement`) and
/// gains nothing from larger ones; PostgreSQL, a round trip away per
/// statement, imports faster in batches of 5,000 than of 1,000, for a little
/// more memory (docs/performance.md).
pub fn batch_rows(conn: &AnyConnection) -> usize {
    match conn {
        AnyConnection::Sqlite(_) => 1_000,
        AnyConnection::Postgres(_) => 5_000,
    }
}
/// Organisation names whose ids are remembered between batches; past this
/// the memory is cleared and names are looked up again.
const KNOWN_ORGANIZATIONS: usize = 10_000;

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

/// Stores the cases of `batches` as closed cases filed by `importer`, one
/// batch at a time. Call inside a transaction — on SQLite through
/// `Database::write_alone`, as a savepoint would hold a copy of every page
/// the import changes in memory: any error (of the database or of a batch)
/// leaves nothing behind. Sends no mail (nothing is queued in the outbox).
///
/// Give the batches in received order: numbers are taken from each year's
/// counter in that order, and ids, numbers and the received-date index then
/// grow together (appends rather than scattered index inserts). On SQLite
/// the writer's own page cache (8 MiB) serves: batches in received order
/// touch few pages at a time, and a larger cache is resident memory.
pub fn import_cases<E: From<DbError>>(
    conn: &mut AnyConnection,
    batches: impl IntoIterator<Item = Result<Vec<ImportedCase>, E>>,
    importer: i64,
    now: i64,
) -> Result<ImportSummary, E> {
    let mut organizations = KnownOrganizations::default();
    let mut imported = 0;
    for batch in batches {
        let batch = batch?;
        store_batch(conn, &batch, &mut organizations, importer, now)?;
        imported += batch.len();
    }
    Ok(ImportSummary {
        imported,
        organizations_created: organizations.created,
    })
}

fn store_batch(
    conn: &mut AnyConnection,
    records: &[ImportedCase],
    organizations: &mut KnownOrganizations,
    importer: i64,
    now: i64,
) -> DbResult<()> {
    let organization_ids = organizations.ids_for(conn, records, now)?;
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
                cases::organization_id.eq(organization_ids[i]),
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

    add_to_rollups(conn, records, &days)
}

/// Aggregates the batch's records per rollup cell, then one upsert per cell
/// (in multi-row statements) instead of one per case. Written at once, even
/// inside a batch of SQLite's writer, so no import holds all its cells in
/// memory; batches in received order touch few cells twice.
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
    stats::write_counts(conn, &case_cells, &category_cells)
}

/// The ownerless organisations (made by imports) of `names`, oldest first:
/// looked up by the partial index `organizations_ownerless_name`.
fn ownerless_named(conn: &mut AnyConnection, names: &[&str]) -> DbResult<Vec<(i64, String)>> {
    Ok(organizations::table
        .filter(organizations::owner_user_id.is_null())
        .filter(organizations::name.eq_any(names))
        .select((organizations::id, organizations::name))
        .order(organizations::id.asc())
        .load(conn)?)
}

/// The ids of the organisations an import files its cases under, as far as
/// they are known, and how many it created.
#[derive(Debug, Default)]
struct KnownOrganizations {
    ids: HashMap<String, i64>,
    created: usize,
}

impl KnownOrganizations {
    /// The organisation id of each record. One organisation per distinct
    /// name: an ownerless organisation of that name (from an earlier import,
    /// or an earlier batch) is reused; a registered organisation never is,
    /// since its members would then see the imported cases.
    fn ids_for(
        &mut self,
        conn: &mut AnyConnection,
        records: &[ImportedCase],
        now: i64,
    ) -> DbResult<Vec<i64>> {
        let mut names: Vec<&str> = records
            .iter()
            .map(|r| r.organization.as_str())
            .filter(|name| !self.ids.contains_key(*name))
            .collect();
        names.sort_unstable();
        names.dedup();
        if self.ids.len() + names.len() > KNOWN_ORGANIZATIONS {
            self.ids.clear();
            names = records.iter().map(|r| r.organization.as_str()).collect();
            names.sort_unstable();
            names.dedup();
        }
        for batch in names.chunks(1_000) {
            for (id, name) in ownerless_named(conn, batch)? {
                self.ids.entry(name).or_insert(id);
            }
        }
        let missing: Vec<&str> = names
            .into_iter()
            .filter(|name| !self.ids.contains_key(*name))
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
            self.ids
                .extend(created.into_iter().map(|(id, name)| (name, id)));
        }
        self.created += missing.len();
        Ok(records
            .iter()
            .map(|r| self.ids[r.organization.as_str()])
            .collect())
    }
}

/// Case numbers from the desk's per-year counters (`MD-2018-00042`), one
/// reservation per year, given in the order of `records` (received order).
/// The import holds the counters from its first reservation to its commit
/// (SQLite: the one writer; PostgreSQL: the counter rows' locks), so the
/// numbers of successive batches follow one another.
fn case_numbers(conn: &mut AnyConnection, records: &[ImportedCase]) -> DbResult<Vec<String>> {
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

#[cfg(test)]
mod tests {
    use std::io;

    use chrono::NaiveDate;

    use super::*;
    use crate::db::schema::{stats_daily_cases, stats_monthly_categories};
    use crate::domain::import::check_cases_csv;

    /// The organisations an import reuses are looked up by name through
    /// the index, not by scanning every organisation (which made a large
    /// import on PostgreSQL slower with every batch).
    #[tokio::test]
    async fn ownerless_organizations_are_looked_up_by_name_through_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db").to_string_lossy().into_owned();
        let (mut conn, statements) = crate::db::recording_sqlite(&path);
        ownerless_named(&mut conn, &["A KK", "B KK"]).unwrap();
        let (sql, steps) = crate::db::last_statement_plan(&mut conn, &statements);
        assert!(
            steps.iter().any(|step| step.starts_with(
                "SEARCH organizations USING INDEX organizations_ownerless_name (name=?)"
            )),
            "{sql}: {steps:?}"
        );
        assert!(
            !steps
                .iter()
                .any(|step| step.starts_with("SCAN organizations")),
            "{sql}: {steps:?}"
        );
    }

    /// Rows of every table an import writes to.
    fn stored(conn: &mut AnyConnection) -> Result<[i64; 7], DbError> {
        Ok([
            cases::table.count().get_result(conn)?,
            case_categories::table.count().get_result(conn)?,
            case_events::table.count().get_result(conn)?,
            organizations::table.count().get_result(conn)?,
            case_counters::table.count().get_result(conn)?,
            stats_daily_cases::table.count().get_result(conn)?,
            stats_monthly_categories::table.count().get_result(conn)?,
        ])
    }

    /// An import whose third batch fails (as a spool that could not be read
    /// back would) leaves nothing of its first two behind, on SQLite's
    /// writer without a savepoint; the same file then imports whole.
    #[tokio::test]
    async fn a_failing_batch_takes_the_whole_import_back() {
        let dir = tempfile::tempdir().unwrap();
        let (db, admin) = crate::db::scratch_sqlite_with_admin(dir.path());
        let before = db.read(stored).await.unwrap();

        let mut body =
            String::from("received_on,product_type,categories,organization,title,status,outcome\n");
        for k in 0..2_500 {
            body.push_str(&format!(
                "{}-{:02}-{:02},drug,regulatory;other,Org {},Case {k},closed,resolved\n",
                2016 + k % 5,
                1 + k % 12,
                1 + k % 28,
                k % 30
            ));
        }
        let body = body.into_bytes();
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let import = |fail_at: Option<usize>| {
            let body = body.clone();
            let checked = check_cases_csv(body.as_slice(), today).unwrap().unwrap();
            db.write_alone(move |conn| {
                let batches = checked
                    .read_in_batches(io::Cursor::new(body), batch_rows(conn))
                    .enumerate()
                    .map(|(i, batch)| match batch {
                        _ if Some(i) == fail_at => Err(DbError::NotFound),
                        Ok(batch) => Ok(batch),
                        Err(error) => Err(DbError::Commit(error.to_string())),
                    });
                import_cases(conn, batches, admin, 0)
            })
        };

        let failed = import(Some(2)).await;
        assert!(matches!(failed, Err(DbError::NotFound)), "{failed:?}");
        assert_eq!(db.read(stored).await.unwrap(), before);

        let summary = import(None).await.unwrap();
        assert_eq!(
            summary,
            ImportSummary {
                imported: 2_500,
                organizations_created: 30,
            }
        );
        let after = db.read(stored).await.unwrap();
        assert_eq!(after[..4], [2_500, 5_000, 2_500, before[3] + 30]);
        assert_eq!(after[4], 5, "one counter per received year");
    }
}
