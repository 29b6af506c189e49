//! Cases, their category tags, timeline events, messages and access log.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::prelude::*;

pub use super::case_numbers::ReservedNumbers;
use super::counters::{NextSequence, ReserveSequence};
use super::duplicates::LinkedCase;
use super::id_lists::among;
use super::readers::Shared;
use super::schema::{
    case_access_log, case_categories, case_duplicates, case_events, case_messages, cases, users,
};
use super::{AnyConnection, Database, DbError, DbResult, StoredCodes, UnknownStoredValue};
use crate::domain::vocabulary::{
    CaseStatus, Category, Lang, OrganizationKind, Outcome, Priority, ProductType, Route, Stage,
};

/// A case as stored, its codes read into the domain's types. A code the
/// domain does not know fails the query with an error naming the case and
/// the column (`UnknownStoredValue`), never a default.
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub id: i64,
    pub number: String,
    pub organization_id: i64,
    pub applicant_id: Option<i64>,
    pub filed_by: Option<i64>,
    pub title: String,
    pub description: String,
    pub product_type: ProductType,
    /// None for an imported historical case, which records no stage.
    pub stage: Option<Stage>,
    pub language: Lang,
    pub organization_name: String,
    pub organization_kind: OrganizationKind,
    pub status: CaseStatus,
    pub resume_to: Option<CaseStatus>,
    pub outcome: Option<Outcome>,
    pub priority: Option<Priority>,
    pub confirmed_product_type: Option<ProductType>,
    pub effective_product_type: ProductType,
    pub route: Option<Route>,
    pub refer_to: Option<String>,
    pub claimed_by: Option<i64>,
    pub received_on: String,
    pub received_at: i64,
    pub updated_at: i64,
    pub triaged_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub version: i64,
    pub overdue_notified_at: Option<i64>,
}

/// The row as the database hands it over, codes as text (public only
/// because `CaseRow`'s `Queryable` names it).
#[derive(Queryable)]
pub struct StoredCase {
    id: i64,
    number: String,
    organization_id: i64,
    applicant_id: Option<i64>,
    filed_by: Option<i64>,
    title: String,
    description: String,
    product_type: String,
    stage: String,
    language: String,
    organization_name: String,
    organization_kind: String,
    status: String,
    resume_to: Option<String>,
    outcome: Option<String>,
    priority: Option<String>,
    confirmed_product_type: Option<String>,
    effective_product_type: String,
    route: Option<String>,
    refer_to: Option<String>,
    claimed_by: Option<i64>,
    received_on: String,
    received_at: i64,
    updated_at: i64,
    triaged_at: Option<i64>,
    closed_at: Option<i64>,
    version: i64,
    overdue_notified_at: Option<i64>,
}

impl TryFrom<StoredCase> for CaseRow {
    type Error = UnknownStoredValue;

    fn try_from(stored: StoredCase) -> Result<Self, Self::Error> {
        let codes = StoredCodes::new("cases", stored.id);
        Ok(CaseRow {
            product_type: codes.parse("product_type", &stored.product_type)?,
            stage: match stored.stage.as_str() {
                super::import::UNRECORDED_STAGE => None,
                stage => Some(codes.parse("stage", stage)?),
            },
            language: codes.parse("language", &stored.language)?,
            organization_kind: codes.parse("organization_kind", &stored.organization_kind)?,
            status: codes.parse("status", &stored.status)?,
            resume_to: codes.parse_optional("resume_to", stored.resume_to.as_deref())?,
            outcome: codes.parse_optional("outcome", stored.outcome.as_deref())?,
            priority: codes.parse_optional("priority", stored.priority.as_deref())?,
            confirmed_product_type: codes.parse_optional(
                "confirmed_product_type",
                stored.confirmed_product_type.as_deref(),
            )?,
            effective_product_type: codes
                .parse("effective_product_type", &stored.effective_product_type)?,
            route: codes.parse_optional("route", stored.route.as_deref())?,
            id: stored.id,
            number: stored.number,
            organization_id: stored.organization_id,
            applicant_id: stored.applicant_id,
            filed_by: stored.filed_by,
            title: stored.title,
            description: stored.description,
            organization_name: stored.organization_name,
            refer_to: stored.refer_to,
            claimed_by: stored.claimed_by,
            received_on: stored.received_on,
            received_at: stored.received_at,
            updated_at: stored.updated_at,
            triaged_at: stored.triaged_at,
            closed_at: stored.closed_at,
            version: stored.version,
            overdue_notified_at: stored.overdue_notified_at,
        })
    }
}

impl<ST, DB> Queryable<ST, DB> for CaseRow
where
    DB: diesel::backend::Backend,
    StoredCase: Queryable<ST, DB>,
{
    type Row = <StoredCase as Queryable<ST, DB>>::Row;

    fn build(row: Self::Row) -> diesel::deserialize::Result<Self> {
        Ok(CaseRow::try_from(StoredCase::build(row)?)?)
    }
}

// `None` binds NULL rather than writing `DEFAULT` into the SQL: one text
// for every case, so the insert is prepared once per connection instead of
// parsed and planned on every intake.
#[derive(Debug, Insertable)]
#[diesel(table_name = cases, treat_none_as_default_value = false)]
pub struct NewCase<'a> {
    pub number: &'a str,
    pub organization_id: i64,
    pub applicant_id: Option<i64>,
    pub filed_by: Option<i64>,
    pub title: &'a str,
    pub description: &'a str,
    pub product_type: &'a str,
    pub stage: &'a str,
    pub language: &'a str,
    pub organization_name: &'a str,
    pub organization_kind: &'a str,
    pub status: &'a str,
    pub effective_product_type: &'a str,
    pub outcome: Option<&'a str>,
    pub received_on: &'a str,
    pub received_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

/// The next case sequence number of `year`: on PostgreSQL in one statement
/// (an upsert with RETURNING) so concurrent intakes never read-modify-write,
/// on SQLite's writer from the batch's memory (`case_numbers`).
pub fn next_sequence(conn: &mut AnyConnection, year: i32) -> DbResult<i64> {
    match conn {
        AnyConnection::Sqlite(c) => super::case_numbers::next(c, year),
        AnyConnection::Postgres(c) => Ok(NextSequence { year }.get_result(c)?),
    }
}

/// On PostgreSQL, takes the next number of `year` in a transaction of its
/// own (one statement, `ReserveSequence`), before the intake's: the year's
/// counter row is then locked for one statement instead of the whole intake
/// and its commit, which otherwise queues every concurrent intake behind
/// it. Its commit need not wait for the disk: the intake's own (synchronous)
/// commit comes later in the WAL and flushes it too, and a crash before
/// that only leaves a gap (numbers are unique, not gapless). None on
/// SQLite, whose single writer takes the number inside the intake's
/// transaction at no cost.
pub fn reserve_sequence(conn: &mut AnyConnection, year: i32) -> DbResult<Option<i64>> {
    match conn {
        AnyConnection::Sqlite(_) => Ok(None),
        AnyConnection::Postgres(c) => Ok(Some(ReserveSequence { year, count: 1 }.get_result(c)?)),
    }
}

/// A case an applicant files for their own organisation: what
/// [`file_own`] needs of the intake, the rest as the desk files every case
/// (status `submitted`, the applicant's categories, a `submitted` event).
#[derive(Debug, Clone)]
pub struct OwnFiling {
    pub applicant_id: i64,
    /// The applicant's organisation as their session says; the case is
    /// filed only if the account still belongs to it.
    pub organization_id: i64,
    pub title: String,
    pub description: String,
    pub product_type: &'static str,
    pub stage: &'static str,
    pub language: &'static str,
    /// None: the organisation's registered kind.
    pub organization_kind: Option<&'static str>,
    pub categories: Vec<&'static str>,
    pub received_at: i64,
}

/// Files `filing` on PostgreSQL together with the other intakes waiting at
/// that moment (`db::gathered`, [`file_own_together`]); None when the
/// applicant no longer belongs to the organisation. Only on PostgreSQL
/// ([`Database::gathers_intakes`]): SQLite's writer commits its intakes
/// together already.
pub async fn file_own(db: &Database, filing: OwnFiling) -> DbResult<Option<CaseRow>> {
    match &db.intakes {
        Some(gathered) => gathered.get(filing).await?,
        None => Err(DbError::Commit(
            "intakes are gathered on PostgreSQL only".into(),
        )),
    }
}

/// The gathered intakes of [`file_own`]: their numbers from `reserved`
/// (which reserves a block per year when it runs out, committed without
/// waiting for the disk, as [`reserve_sequence`]), then every case with its
/// rows in one statement (`arrays::OwnFilings`), one round trip and one
/// commit for all. If that statement fails for a reason other than a fault
/// of the database (a row a concurrent change removed), each filing runs
/// alone with the numbers it has, so one filing's error is its own. Any
/// failure drops what `reserved` still holds.
pub fn file_own_together(
    conn: &mut AnyConnection,
    reserved: &mut ReservedNumbers,
    filings: &[OwnFiling],
) -> DbResult<Vec<DbResult<Option<CaseRow>>>> {
    // Taken out and given back only after a batch that went through, so a
    // panic midway (caught by the gatherer) drops the block too.
    let mut numbers = std::mem::take(reserved);
    let filed = file_own_numbered(conn, &mut numbers, filings);
    if matches!(&filed, Ok(each) if each.iter().all(Result::is_ok)) {
        *reserved = numbers;
    }
    filed
}

fn file_own_numbered(
    conn: &mut AnyConnection,
    reserved: &mut ReservedNumbers,
    filings: &[OwnFiling],
) -> DbResult<Vec<DbResult<Option<CaseRow>>>> {
    use crate::domain::case::{case_number, desk_date, filing_detail};
    use chrono::Datelike;
    let AnyConnection::Postgres(c) = conn else {
        return Err(DbError::Commit(
            "intakes are gathered on PostgreSQL only".into(),
        ));
    };
    let received_on: Vec<chrono::NaiveDate> =
        filings.iter().map(|f| desk_date(f.received_at)).collect();
    let mut count_of_year: Vec<(i32, i64)> = Vec::new();
    for day in &received_on {
        match count_of_year
            .iter_mut()
            .find(|(year, _)| *year == day.year())
        {
            Some((_, count)) => *count += 1,
            None => count_of_year.push((day.year(), 1)),
        }
    }
    let mut numbers_of_year = Vec::with_capacity(count_of_year.len());
    for (year, count) in count_of_year {
        let numbers = reserved.take(c, year, count)?;
        numbers_of_year.push((year, numbers.into_iter()));
    }
    let numbers: Vec<String> = received_on
        .iter()
        .map(|day| {
            let (_, numbers) = numbers_of_year
                .iter_mut()
                .find(|(year, _)| *year == day.year())
                .expect("reserved above");
            case_number(*day, numbers.next().expect("one per filing of the year"))
        })
        .collect();
    let days: Vec<String> = received_on.iter().map(|day| day.to_string()).collect();
    let details: Vec<String> = numbers.iter().map(|n| filing_detail(n)).collect();
    let places: Vec<usize> = (0..filings.len()).collect();
    super::gathered::together_or_alone(&places, |places| {
        let mut statement = super::arrays::OwnFilings {
            numbers: Vec::with_capacity(places.len()),
            applicant_ids: Vec::with_capacity(places.len()),
            organization_ids: Vec::with_capacity(places.len()),
            titles: Vec::with_capacity(places.len()),
            descriptions: Vec::with_capacity(places.len()),
            product_types: Vec::with_capacity(places.len()),
            stages: Vec::with_capacity(places.len()),
            languages: Vec::with_capacity(places.len()),
            organization_kinds: Vec::with_capacity(places.len()),
            received_on: Vec::with_capacity(places.len()),
            received_at: Vec::with_capacity(places.len()),
            details: Vec::with_capacity(places.len()),
            category_numbers: Vec::new(),
            categories: Vec::new(),
            status: CaseStatus::Submitted.as_str(),
            category_kind: APPLICANT,
            event_kind: "submitted",
            audience: AUDIENCE_ALL,
            queued_event: super::outbox::CASE_SUBMITTED,
        };
        for &at in places {
            let filing = &filings[at];
            statement.numbers.push(&numbers[at]);
            statement.applicant_ids.push(filing.applicant_id);
            statement.organization_ids.push(filing.organization_id);
            statement.titles.push(&filing.title);
            statement.descriptions.push(&filing.description);
            statement.product_types.push(filing.product_type);
            statement.stages.push(filing.stage);
            statement.languages.push(filing.language);
            statement.organization_kinds.push(filing.organization_kind);
            statement.received_on.push(&days[at]);
            statement.received_at.push(filing.received_at);
            statement.details.push(&details[at]);
            for category in &filing.categories {
                statement.category_numbers.push(&numbers[at]);
                statement.categories.push(category);
            }
        }
        let mut filed: Vec<CaseRow> = statement.load(c)?;
        Ok(places
            .iter()
            .map(|&at| {
                filed
                    .iter()
                    .position(|row| row.number == numbers[at])
                    .map(|found| filed.swap_remove(found))
            })
            .collect())
    })
}

/// Statements of every intake run on the concrete connection (`on_backend!`):
/// through `MultiConnection` diesel builds their SQL text on each run to find
/// the cached statement (its wrapper has no static query id).
pub fn insert(conn: &mut AnyConnection, case: &NewCase<'_>) -> DbResult<CaseRow> {
    let insert = diesel::insert_into(cases::table).values(case);
    match conn {
        AnyConnection::Sqlite(c) => {
            // Without `RETURNING`: SQLite runs it as a trigger, which gives
            // the insert a statement journal holding a copy of every page
            // it changes (the case's leaf and six index leaves), some 7 % of
            // the writer's time per intake (issue 19, fifteenth round). The
            // row is what was inserted, with the id SQLite gave it.
            insert.execute(c)?;
            let id = diesel::select(last_insert_rowid()).get_result::<i64>(c)?;
            Ok(CaseRow::try_from(StoredCase::filed(id, case))?)
        }
        AnyConnection::Postgres(c) => Ok(insert.returning(cases::all_columns).get_result(c)?),
    }
}

diesel::define_sql_function! {
    /// SQLite: the rowid of the connection's last insert.
    fn last_insert_rowid() -> diesel::sql_types::BigInt;
}

impl StoredCase {
    /// The row `case` becomes once inserted as `id`: what it sets, and the
    /// columns' defaults for the rest (as in the migrations).
    fn filed(id: i64, case: &NewCase<'_>) -> Self {
        StoredCase {
            id,
            number: case.number.to_owned(),
            organization_id: case.organization_id,
            applicant_id: case.applicant_id,
            filed_by: case.filed_by,
            title: case.title.to_owned(),
            description: case.description.to_owned(),
            product_type: case.product_type.to_owned(),
            stage: case.stage.to_owned(),
            language: case.language.to_owned(),
            organization_name: case.organization_name.to_owned(),
            organization_kind: case.organization_kind.to_owned(),
            status: case.status.to_owned(),
            resume_to: None,
            outcome: case.outcome.map(str::to_owned),
            priority: None,
            confirmed_product_type: None,
            effective_product_type: case.effective_product_type.to_owned(),
            route: None,
            refer_to: None,
            claimed_by: None,
            received_on: case.received_on.to_owned(),
            received_at: case.received_at,
            updated_at: case.updated_at,
            triaged_at: None,
            closed_at: case.closed_at,
            version: 1,
            overdue_notified_at: None,
        }
    }
}

/// The timeline event that records a case's filing, written with it: at
/// the case's `received_at`, to its `status`, seen by everyone.
#[derive(Debug, Clone, Copy)]
pub struct FilingEvent<'a> {
    pub actor_id: i64,
    pub kind: &'a str,
    pub detail: &'a str,
}

/// Stores a new case with the applicant's categories and the event of its
/// filing. On PostgreSQL in one statement ([`FileCase`]): three round trips
/// were a fifth of an intake's.
pub fn insert_filed(
    conn: &mut AnyConnection,
    case: &NewCase<'_>,
    categories: &[&str],
    event: FilingEvent<'_>,
) -> DbResult<CaseRow> {
    if let AnyConnection::Postgres(c) = conn {
        let statement = FileCase {
            insert: diesel::insert_into(cases::table)
                .values(case)
                .returning(cases::all_columns),
            categories,
            event,
            status: case.status,
            at: case.received_at,
        };
        return Ok(statement.get_result(c)?);
    }
    let row = insert(conn, case)?;
    insert_applicant_categories(conn, row.id, categories)?;
    insert_event(
        conn,
        NewEvent {
            case_id: row.id,
            at: case.received_at,
            actor_id: Some(event.actor_id),
            kind: event.kind,
            from_status: None,
            to_status: Some(case.status),
            detail: Some(event.detail.to_owned()),
            desk_only: false,
        },
    )?;
    Ok(row)
}

/// PostgreSQL: `WITH new_case AS (INSERT INTO cases … RETURNING …),
/// <categories>, <event>, <pending> SELECT * FROM new_case`, the categories,
/// the event and the case's place in the statistics' queue
/// (`stats_pending`) taking the new case's id from the first statement.
struct FileCase<'a, Insert> {
    insert: Insert,
    categories: &'a [&'a str],
    event: FilingEvent<'a>,
    status: &'a str,
    at: i64,
}

/// The prepared-statement cache's key of [`FileCase`]: its SQL never varies
/// (`NewCase` binds NULL for None).
struct FileCaseStatement;

impl<Insert> diesel::query_builder::QueryId for FileCase<'_, Insert> {
    type QueryId = FileCaseStatement;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Insert> diesel::query_builder::QueryFragment<diesel::pg::Pg> for FileCase<'_, Insert>
where
    Insert: diesel::query_builder::QueryFragment<diesel::pg::Pg>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Text};
        out.push_sql("WITH new_case AS (");
        self.insert.walk_ast(out.reborrow())?;
        out.push_sql(
            "), new_categories AS (INSERT INTO case_categories (case_id, kind, category, effective) \
             SELECT new_case.id, ",
        );
        out.push_bind_param::<Text, str>(APPLICANT)?;
        out.push_sql(", category, TRUE FROM new_case, unnest(");
        out.push_bind_param::<Array<Text>, [&str]>(self.categories)?;
        out.push_sql(
            ") AS category), filing AS (INSERT INTO case_events \
             (case_id, at, actor_id, kind, from_status, to_status, detail, audience) \
             SELECT new_case.id, ",
        );
        out.push_bind_param::<BigInt, i64>(&self.at)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, i64>(&self.event.actor_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, str>(self.event.kind)?;
        out.push_sql(", NULL, ");
        out.push_bind_param::<Text, str>(self.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, str>(self.event.detail)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, str>(AUDIENCE_ALL)?;
        // Queued for the statistics fold (`stats::fold_pending`).
        out.push_sql(
            " FROM new_case), pending AS (INSERT INTO stats_pending (case_id) \
             SELECT id FROM new_case) SELECT * FROM new_case",
        );
        Ok(())
    }
}

impl<Insert> diesel::query_builder::Query for FileCase<'_, Insert> {
    type SqlType = <<cases::table as diesel::Table>::AllColumns as diesel::Expression>::SqlType;
}

impl<Insert, Conn> RunQueryDsl<Conn> for FileCase<'_, Insert> {}

pub const APPLICANT: &str = "applicant";
pub const CONFIRMED: &str = "confirmed";

/// Stores the applicant's categories (which count until triage confirms).
pub fn insert_applicant_categories(
    conn: &mut AnyConnection,
    case_id: i64,
    categories: &[&str],
) -> DbResult<()> {
    insert_categories(conn, case_id, APPLICANT, categories, true)
}

/// Stores one case's categories of one `kind`.
fn insert_categories(
    conn: &mut AnyConnection,
    case_id: i64,
    kind: &str,
    categories: &[&str],
    effective: bool,
) -> DbResult<()> {
    if let AnyConnection::Postgres(c) = conn {
        super::arrays::CategoriesOfCase {
            case_id,
            kind,
            categories,
            effective,
        }
        .execute(c)?;
        return Ok(());
    }
    let rows: Vec<_> = categories
        .iter()
        .map(|category| {
            (
                case_categories::case_id.eq(case_id),
                case_categories::kind.eq(kind),
                case_categories::category.eq(*category),
                case_categories::effective.eq(effective),
            )
        })
        .collect();
    insert_rows!(conn, rows, |values| diesel::insert_into(
        case_categories::table
    )
    .values(values))?;
    Ok(())
}

/// Replaces the confirmed categories; from now on they are what counts.
pub fn confirm_categories(
    conn: &mut AnyConnection,
    case_id: i64,
    categories: &[&str],
) -> DbResult<()> {
    diesel::delete(
        case_categories::table
            .filter(case_categories::case_id.eq(case_id))
            .filter(case_categories::kind.eq(CONFIRMED)),
    )
    .execute(conn)?;
    diesel::update(case_categories::table.filter(case_categories::case_id.eq(case_id)))
        .set(case_categories::effective.eq(false))
        .execute(conn)?;
    insert_categories(conn, case_id, CONFIRMED, categories, true)
}

#[derive(Debug, Default, Clone)]
pub struct CaseCategories {
    pub applicant: Vec<Category>,
    pub confirmed: Vec<Category>,
}

impl CaseCategories {
    /// See `domain::case::effective_categories`.
    pub fn effective(self) -> Vec<Category> {
        crate::domain::case::effective_categories(self.applicant, self.confirmed)
    }
}

/// Categories of several cases in one query. On the concrete connection
/// (`on_backend!`), and for one case with `=` rather than `IN (…)`: a
/// case read then takes its statement from the cache, where building the
/// SQL to look it up and preparing an `IN` list again were a sixth of the
/// server's CPU in the `read` benchmark.
pub fn categories_of(
    conn: &mut AnyConnection,
    case_ids: &[i64],
) -> DbResult<HashMap<i64, CaseCategories>> {
    let columns = (
        case_categories::case_id,
        case_categories::kind,
        case_categories::category,
    );
    let rows: Vec<(i64, String, String)> = match case_ids {
        [case_id] => {
            let query = case_categories::table
                .filter(case_categories::case_id.eq(*case_id))
                .select(columns);
            on_backend!(conn, |c| query.load(c))?
        }
        _ => {
            let query = case_categories::table
                .filter(among(case_categories::case_id, case_ids))
                .select(columns);
            on_backend!(conn, |c| query.load(c))?
        }
    };
    let mut map: HashMap<i64, CaseCategories> = HashMap::new();
    for (case_id, kind, code) in rows {
        map.entry(case_id).or_default().add(case_id, &kind, &code)?;
    }
    for entry in map.values_mut() {
        entry.sort();
    }
    Ok(map)
}

impl CaseCategories {
    /// Adds a stored `case_categories` row of case `case_id`.
    fn add(&mut self, case_id: i64, kind: &str, code: &str) -> Result<(), UnknownStoredValue> {
        let category =
            StoredCodes::new("case_categories of case", case_id).parse("category", code)?;
        if kind == CONFIRMED {
            self.confirmed.push(category);
        } else {
            self.applicant.push(category);
        }
        Ok(())
    }

    /// Rows come back in storage order; every table and export uses the
    /// canonical category order (the enum's).
    fn sort(&mut self) {
        self.applicant.sort();
        self.confirmed.sort();
    }
}

/// A case with its categories and the cases closed as its duplicates.
#[derive(Debug, Clone)]
pub struct FullCase {
    pub row: CaseRow,
    pub categories: CaseCategories,
    /// By id.
    pub duplicates: Vec<LinkedCase>,
}

/// A case joined to its categories and to the cases closed as its
/// duplicates: a row per category and duplicate.
type FullCaseRow = (
    CaseRow,
    Option<(String, String)>,
    Option<(i64, String, i64)>,
);

/// [`FullCase`] in one statement, where [`find`], [`categories_of`] and
/// `duplicates::links_of` take three: every read of a case asks for all
/// of it, and on PostgreSQL each statement is a round trip and a wait of
/// the blocking thread. The joins give a row per category and duplicate
/// (a handful); they are told apart here.
pub fn find_full(conn: &mut AnyConnection, id: i64) -> DbResult<Option<FullCase>> {
    let duplicate = diesel::alias!(cases as duplicate);
    let query = cases::table
        .left_join(case_categories::table.on(case_categories::case_id.eq(cases::id)))
        .left_join(case_duplicates::table.on(case_duplicates::original_id.eq(cases::id)))
        .left_join(duplicate.on(duplicate.field(cases::id).eq(case_duplicates::case_id)))
        .filter(cases::id.eq(id))
        .select((
            cases::all_columns,
            (case_categories::kind, case_categories::category).nullable(),
            (
                duplicate.field(cases::id),
                duplicate.field(cases::number),
                duplicate.field(cases::organization_id),
            )
                .nullable(),
        ));
    let rows: Vec<FullCaseRow> = on_backend!(conn, |c| query.load(c))?;
    let mut case = FullCaseRows::default();
    rows.into_iter().for_each(|row| case.add(row));
    Ok(case.finish()?)
}

/// One case's [`find_full`], or why its stored codes cannot be read.
pub type FullCaseRead = Result<Option<FullCase>, UnknownStoredValue>;

/// [`find_full`] off the async threads. On PostgreSQL it is gathered with
/// the other case reads waiting at that moment into one statement
/// (`db::gathered`); on SQLite it runs on a reader thread.
pub async fn read_full(db: &Database, id: i64) -> DbResult<Option<FullCase>> {
    match &db.case_reads {
        Some(gathered) => Ok(gathered.get(id).await??),
        None => db.read(move |conn| find_full(conn, id)).await,
    }
}

/// [`find_full`] of each of `ids` (repeats allowed) in one statement, in
/// the order of `ids`: for reads gathered into one round trip (`db::gathered`). A
/// case whose stored codes do not parse fails alone.
pub fn find_full_many(conn: &mut AnyConnection, ids: &[i64]) -> DbResult<Vec<FullCaseRead>> {
    let conn = match conn {
        AnyConnection::Postgres(conn) => conn,
        // No round trips to share: one statement per case.
        sqlite => {
            return ids
                .iter()
                .map(|id| match find_full(sqlite, *id) {
                    Err(DbError::UnknownValue(unknown)) => Ok(Err(unknown)),
                    read => read.map(Ok),
                })
                .collect();
        }
    };
    type Found = (CaseRow, Vec<(String, String)>, Vec<(i64, String, i64)>);
    let found: Vec<Found> = super::arrays::FullCases { ids }.load(conn)?;
    let mut cases: Vec<FullCaseRows> = ids.iter().map(|_| FullCaseRows::default()).collect();
    for (row, categories, duplicates) in found {
        let duplicates: Vec<LinkedCase> = duplicates
            .into_iter()
            .map(|(id, number, organization_id)| LinkedCase {
                id,
                number,
                organization_id,
            })
            .collect();
        // Two readers of one case asked in the same statement each get it.
        for (at, _) in ids.iter().enumerate().filter(|(_, id)| **id == row.id) {
            let case = &mut cases[at];
            case.categories = categories.clone();
            case.duplicates = duplicates.clone();
            case.case = Some(row.clone());
        }
    }
    Ok(cases.into_iter().map(FullCaseRows::finish).collect())
}

/// One case's rows of a [`find_full`], folded into a [`FullCase`].
#[derive(Default)]
struct FullCaseRows {
    case: Option<CaseRow>,
    categories: Vec<(String, String)>,
    duplicates: Vec<LinkedCase>,
}

impl FullCaseRows {
    fn add(&mut self, (row, category, linked): FullCaseRow) {
        // Every joined row repeats the case: the first one's is kept.
        self.case.get_or_insert(row);
        if let Some(category) = category
            && !self.categories.contains(&category)
        {
            self.categories.push(category);
        }
        if let Some((id, number, organization_id)) = linked
            && !self.duplicates.iter().any(|d| d.id == id)
        {
            self.duplicates.push(LinkedCase {
                id,
                number,
                organization_id,
            });
        }
    }

    fn finish(self) -> FullCaseRead {
        let Some(row) = self.case else {
            return Ok(None);
        };
        let mut categories = CaseCategories::default();
        for (kind, code) in &self.categories {
            categories.add(row.id, kind, code)?;
        }
        categories.sort();
        let mut duplicates = self.duplicates;
        duplicates.sort_by_key(|d| d.id);
        Ok(Some(FullCase {
            row,
            categories,
            duplicates,
        }))
    }
}

/// One case by id, on the concrete connection: through `AnyConnection`
/// diesel builds the 28-column statement's SQL on every call just to find
/// it in the statement cache (a tenth of a case read's CPU).
pub fn find(conn: &mut AnyConnection, id: i64) -> DbResult<Option<CaseRow>> {
    let query = cases::table.find(id).select(cases::all_columns);
    Ok(on_backend!(conn, |c| query.first(c).optional())?)
}

/// What a state change writes; None leaves a column as it is.
#[derive(Debug, Default)]
pub struct CaseChanges<'a> {
    pub status: Option<&'a str>,
    pub resume_to: Option<Option<&'a str>>,
    pub outcome: Option<Option<&'a str>>,
    pub priority: Option<&'a str>,
    pub confirmed_product_type: Option<&'a str>,
    pub route: Option<&'a str>,
    pub refer_to: Option<Option<&'a str>>,
    pub claimed_by: Option<i64>,
    pub triaged_at: Option<i64>,
    pub closed_at: Option<Option<i64>>,
}

#[derive(AsChangeset)]
#[diesel(table_name = cases)]
struct ChangeSet<'a> {
    status: Option<&'a str>,
    resume_to: Option<Option<&'a str>>,
    outcome: Option<Option<&'a str>>,
    priority: Option<&'a str>,
    confirmed_product_type: Option<&'a str>,
    effective_product_type: Option<&'a str>,
    route: Option<&'a str>,
    refer_to: Option<Option<&'a str>>,
    claimed_by: Option<i64>,
    triaged_at: Option<i64>,
    closed_at: Option<Option<i64>>,
    updated_at: i64,
    version: i64,
}

/// Applies `changes` if the case is still at `expected_version`; returns
/// false when someone else changed it first (optimistic concurrency).
pub fn update_if_version(
    conn: &mut AnyConnection,
    id: i64,
    expected_version: i64,
    changes: &CaseChanges<'_>,
    now: i64,
) -> DbResult<bool> {
    let updated = diesel::update(
        cases::table
            .find(id)
            .filter(cases::version.eq(expected_version)),
    )
    .set(ChangeSet {
        status: changes.status,
        resume_to: changes.resume_to,
        outcome: changes.outcome,
        priority: changes.priority,
        confirmed_product_type: changes.confirmed_product_type,
        effective_product_type: changes.confirmed_product_type,
        route: changes.route,
        refer_to: changes.refer_to,
        claimed_by: changes.claimed_by,
        triaged_at: changes.triaged_at,
        closed_at: changes.closed_at,
        updated_at: now,
        version: expected_version + 1,
    })
    .execute(conn)?;
    Ok(updated == 1)
}

/// The applicant's own fields as a correction leaves them (see
/// `domain::case::CaseEdit`).
#[derive(Debug, AsChangeset)]
#[diesel(table_name = cases)]
pub struct FiledChanges<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub product_type: &'a str,
    /// What the statistics and filters count: the product type as filed
    /// until triage confirms one.
    pub effective_product_type: &'a str,
    pub stage: &'a str,
    pub updated_at: i64,
    pub version: i64,
}

/// Writes a correction if the case is still at `expected_version` (the
/// `version` of `changes` must be the next one); false when someone else
/// changed it first.
pub fn edit_if_version(
    conn: &mut AnyConnection,
    id: i64,
    expected_version: i64,
    changes: &FiledChanges<'_>,
) -> DbResult<bool> {
    let updated = diesel::update(
        cases::table
            .find(id)
            .filter(cases::version.eq(expected_version)),
    )
    .set(changes)
    .execute(conn)?;
    Ok(updated == 1)
}

/// Replaces the applicant's categories; `effective` when no confirmed ones
/// count instead.
pub fn replace_applicant_categories(
    conn: &mut AnyConnection,
    case_id: i64,
    categories: &[&str],
    effective: bool,
) -> DbResult<()> {
    diesel::delete(
        case_categories::table
            .filter(case_categories::case_id.eq(case_id))
            .filter(case_categories::kind.eq(APPLICANT)),
    )
    .execute(conn)?;
    insert_categories(conn, case_id, APPLICANT, categories, effective)
}

/// Bumps the version when something hangs off the case changed (a message).
pub fn touch(conn: &mut AnyConnection, id: i64, now: i64) -> DbResult<()> {
    diesel::update(cases::table.find(id))
        .set((
            cases::updated_at.eq(now),
            cases::version.eq(cases::version + 1),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct CaseFilter {
    pub organization_id: Option<i64>,
    /// Restrict to these case ids (an expert's assignments).
    pub only_ids: Option<Vec<i64>>,
    pub status: Option<String>,
    pub product_type: Option<String>,
    pub category: Option<String>,
    pub text: Option<String>,
    /// Keyset cursor: strictly older than (received_at, id).
    pub before: Option<(i64, i64)>,
    pub limit: i64,
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// The ids of the cases among `rows` closed as duplicates (whose originals
/// a listing shows).
pub fn closed_as_duplicates<'a>(rows: impl IntoIterator<Item = &'a CaseRow>) -> Vec<i64> {
    rows.into_iter()
        .filter(|row| row.outcome == Some(Outcome::Duplicate))
        .map(|row| row.id)
        .collect()
}

/// A page of the case list with what the desk shows beside each case.
#[derive(Debug, Clone)]
pub struct ListedPage {
    pub rows: Vec<CaseRow>,
    pub categories: HashMap<i64, CaseCategories>,
    /// Every link of the listed cases, before anyone's visibility.
    pub links: super::duplicates::Links,
}

/// [`list`] with the categories and duplicate links of the listed cases.
/// A desk-wide page is the same for all of the desk's staff, and an
/// organisation's for all of its members, who keep the list open and come
/// back to it: a reader thread gives the page again while the database has
/// not changed ([`super::readers::memoized_shared`], keyed by the whole
/// filter, the organisation included). An expert's pages are read for their
/// own assignments and not kept.
pub fn list_page(conn: &mut AnyConnection, filter: &CaseFilter) -> DbResult<Shared<ListedPage>> {
    let load = |conn: &mut AnyConnection| {
        let rows = list(conn, filter)?;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let duplicate_ids = closed_as_duplicates(&rows);
        Ok(Arc::new(ListedPage {
            categories: categories_of(conn, &ids)?,
            links: super::duplicates::links_of(conn, &ids, &duplicate_ids)?,
            rows,
        }))
    };
    if filter.only_ids.is_none() {
        super::readers::memoized_shared(conn, filter.clone(), load)
    } else {
        Ok(Shared {
            rows: load(conn)?,
            shared: false,
        })
    }
}

/// Newest first, keyset-paginated. The first page of the whole desk's list
/// and of an organisation's (what desk staff and applicants open most) are
/// fixed statements the statement cache keeps; any other filter builds its
/// statement each time. All on the concrete connection: decoding a case row
/// through `MultiConnection` was a tenth of a list's time.
pub fn list(conn: &mut AnyConnection, filter: &CaseFilter) -> DbResult<Vec<CaseRow>> {
    let newest_first = (cases::received_at.desc(), cases::id.desc());
    let listed = cases::table
        .select(cases::all_columns)
        .order(newest_first)
        .limit(filter.limit);
    let first_page_only = filter.only_ids.is_none()
        && filter.status.is_none()
        && filter.product_type.is_none()
        && filter.category.is_none()
        && filter.text.is_none()
        && filter.before.is_none();
    if first_page_only {
        return Ok(match filter.organization_id {
            None => on_backend!(conn, |c| listed.load(c))?,
            Some(org) => {
                let query = listed.filter(cases::organization_id.eq(org));
                on_backend!(conn, |c| query.load(c))?
            }
        });
    }
    Ok(on_backend!(conn, |c| {
        let mut query = listed.into_boxed();
        if let Some(org) = filter.organization_id {
            query = query.filter(cases::organization_id.eq(org));
        }
        if let Some(ids) = &filter.only_ids {
            query = query.filter(among(cases::id, ids));
        }
        if let Some(status) = &filter.status {
            query = query.filter(cases::status.eq(status.clone()));
        }
        if let Some(product_type) = &filter.product_type {
            query = query.filter(cases::effective_product_type.eq(product_type.clone()));
        }
        if let Some(category) = &filter.category {
            query = query.filter(cases::id.eq_any(in_category(category.clone())));
        }
        if let Some(text) = &filter.text {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            query = query.filter(
                lower(cases::title)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(cases::description).like(pattern).escape('\\')),
            );
        }
        if let Some((received_at, id)) = filter.before {
            query = query.filter(
                cases::received_at
                    .lt(received_at)
                    .or(cases::received_at.eq(received_at).and(cases::id.lt(id))),
            );
        }
        query.load(c)
    })?)
}

/// The ids of the cases whose effective categories include `category`.
#[diesel::dsl::auto_type]
fn in_category(category: String) -> _ {
    case_categories::table
        .filter(case_categories::category.eq(category))
        .filter(case_categories::effective.eq(true))
        .select(case_categories::case_id)
}

pub(crate) fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Untriaged cases (submitted, or claimed but not triaged), oldest first.
/// One entry of the triage queue: what the desk's list shows, not the case.
#[derive(Debug, Clone, Queryable)]
pub struct QueueRow {
    pub id: i64,
    pub number: String,
    pub title: String,
    pub status: String,
    pub product_type: String,
    pub organization_name: String,
    pub received_at: i64,
    pub claimed_by: Option<i64>,
    pub version: i64,
}

/// The `limit` oldest untriaged cases (submitted, or claimed and not yet
/// triaged), oldest first. One query per status, merged here: within one
/// status the index `cases_status (status, received_at)` is already in queue
/// order and the query stops after `limit` rows, while `status IN (…)` made
/// SQLite sort every untriaged case (thousands on a busy desk) to return the
/// first hundred. Only the listed columns are read, not the descriptions.
///
/// Every supporter keeps the queue open, and it changes only when a case is
/// filed, claimed or triaged: a reader thread answers it again from what it
/// read while the database has not changed ([`super::readers::memoized`]),
/// shared rather than copied: the same rows also identify the answer to the
/// HTTP layer, which keeps the JSON it wrote of them.
pub fn triage_queue(
    conn: &mut AnyConnection,
    filter: &QueueFilter,
    limit: i64,
) -> DbResult<Shared<[QueueRow]>> {
    super::readers::memoized_shared(conn, (filter.clone(), limit), |conn| {
        load_triage_queue(conn, filter, limit).map(Arc::from)
    })
}

fn load_triage_queue(
    conn: &mut AnyConnection,
    filter: &QueueFilter,
    limit: i64,
) -> DbResult<Vec<QueueRow>> {
    let mut rows = Vec::new();
    let statuses: &[&str] = if filter.unclaimed_only {
        &["submitted"]
    } else {
        &["submitted", "triage"]
    };
    let whole_queue =
        filter.product_type.is_none() && filter.category.is_none() && !filter.unclaimed_only;
    for &status in statuses {
        let listed = cases::table.filter(cases::status.eq(status)).select((
            cases::id,
            cases::number,
            cases::title,
            cases::status,
            cases::product_type,
            cases::organization_name,
            cases::received_at,
            cases::claimed_by,
            cases::version,
        ));
        let in_queue_order = (cases::received_at.asc(), cases::id.asc());
        // On the concrete connection, not through `MultiConnection`, whose
        // row decoding was a third of the queue's CPU; the whole queue (no
        // filter) as a fixed statement, which the statement cache keeps
        // (a boxed query is built and prepared anew every time).
        let loaded: Vec<QueueRow> = if whole_queue {
            let query = listed.order(in_queue_order).limit(limit);
            on_backend!(conn, |c| query.load(c))?
        } else {
            on_backend!(conn, |c| {
                let mut query = listed.order(in_queue_order).limit(limit).into_boxed();
                if filter.unclaimed_only {
                    query = query.filter(cases::claimed_by.is_null());
                }
                if let Some(product_type) = &filter.product_type {
                    query = query.filter(cases::effective_product_type.eq(product_type.clone()));
                }
                if let Some(category) = &filter.category {
                    query = query.filter(cases::id.eq_any(in_category(category.clone())));
                }
                query.load(c)
            })?
        };
        rows.extend(loaded);
    }
    rows.sort_by_key(|row| (row.received_at, row.id));
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(rows)
}

/// Which untriaged cases the queue shows (each filter in the query itself).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueFilter {
    pub product_type: Option<String>,
    pub category: Option<String>,
    /// Only cases nobody has claimed yet.
    pub unclaimed_only: bool,
}

pub struct NewEvent<'a> {
    pub case_id: i64,
    pub at: i64,
    pub actor_id: Option<i64>,
    pub kind: &'a str,
    pub from_status: Option<&'a str>,
    pub to_status: Option<&'a str>,
    pub detail: Option<String>,
    /// Desk-only events (internal notes and messages) are hidden from applicants.
    pub desk_only: bool,
}

pub const AUDIENCE_ALL: &str = "all";
pub const AUDIENCE_DESK: &str = "desk";

pub fn insert_event(conn: &mut AnyConnection, event: NewEvent<'_>) -> DbResult<()> {
    let insert = diesel::insert_into(case_events::table).values((
        case_events::case_id.eq(event.case_id),
        case_events::at.eq(event.at),
        case_events::actor_id.eq(event.actor_id),
        case_events::kind.eq(event.kind),
        case_events::from_status.eq(event.from_status),
        case_events::to_status.eq(event.to_status),
        case_events::detail.eq(event.detail),
        case_events::audience.eq(if event.desk_only {
            AUDIENCE_DESK
        } else {
            AUDIENCE_ALL
        }),
    ));
    on_backend!(conn, |c| insert.execute(c))?;
    Ok(())
}

#[derive(Debug, Queryable)]
pub struct EventRow {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub detail: Option<String>,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub actor_role: Option<String>,
}

pub fn events(conn: &mut AnyConnection, case_id: i64, desk: bool) -> DbResult<Vec<EventRow>> {
    let mut query = case_events::table
        .left_join(users::table.on(users::id.nullable().eq(case_events::actor_id)))
        .filter(case_events::case_id.eq(case_id))
        .select((
            case_events::id,
            case_events::at,
            case_events::kind,
            case_events::from_status,
            case_events::to_status,
            case_events::detail,
            case_events::actor_id,
            users::name.nullable(),
            users::role.nullable(),
        ))
        .order(case_events::id.asc())
        .into_boxed();
    if !desk {
        query = query.filter(case_events::audience.eq(AUDIENCE_ALL));
    }
    Ok(query.load(conn)?)
}

pub fn insert_message(
    conn: &mut AnyConnection,
    case_id: i64,
    author_id: i64,
    visibility: &str,
    body: &str,
    now: i64,
) -> DbResult<i64> {
    Ok(diesel::insert_into(case_messages::table)
        .values((
            case_messages::case_id.eq(case_id),
            case_messages::author_id.eq(author_id),
            case_messages::visibility.eq(visibility),
            case_messages::body.eq(body),
            case_messages::created_at.eq(now),
        ))
        .returning(case_messages::id)
        .get_result(conn)?)
}

#[derive(Debug, Queryable)]
pub struct MessageRow {
    pub id: i64,
    pub created_at: i64,
    pub visibility: String,
    pub body: String,
    pub author_id: i64,
    pub author_name: String,
    pub author_role: String,
}

pub fn messages(
    conn: &mut AnyConnection,
    case_id: i64,
    only_visibility: Option<&str>,
) -> DbResult<Vec<MessageRow>> {
    let mut query = case_messages::table
        .inner_join(users::table.on(users::id.eq(case_messages::author_id)))
        .filter(case_messages::case_id.eq(case_id))
        .select((
            case_messages::id,
            case_messages::created_at,
            case_messages::visibility,
            case_messages::body,
            users::id,
            users::name,
            users::role,
        ))
        .order(case_messages::id.asc())
        .into_boxed();
    if let Some(visibility) = only_visibility {
        query = query.filter(case_messages::visibility.eq(visibility.to_owned()));
    }
    Ok(query.load(conn)?)
}

pub fn log_access(
    conn: &mut AnyConnection,
    case_ids: &[i64],
    user_id: i64,
    what: &str,
    now: i64,
) -> DbResult<()> {
    if case_ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = case_ids
        .iter()
        .map(|case_id| {
            (
                case_access_log::case_id.eq(*case_id),
                case_access_log::user_id.eq(user_id),
                case_access_log::at.eq(now),
                case_access_log::what.eq(what),
            )
        })
        .collect();
    insert_rows!(conn, rows, |values| diesel::insert_into(
        case_access_log::table
    )
    .values(values))?;
    Ok(())
}

#[derive(Debug, Queryable)]
pub struct AccessRow {
    pub id: i64,
    pub case_id: i64,
    pub case_number: String,
    pub user_id: i64,
    pub user_email: String,
    pub user_role: String,
    pub at: i64,
    pub what: String,
}

pub fn access_log(
    conn: &mut AnyConnection,
    case_id: Option<i64>,
    user_id: Option<i64>,
    before_id: Option<i64>,
    limit: i64,
) -> DbResult<Vec<AccessRow>> {
    let mut query = case_access_log::table
        .inner_join(cases::table)
        .inner_join(users::table.on(users::id.eq(case_access_log::user_id)))
        .select((
            case_access_log::id,
            case_access_log::case_id,
            cases::number,
            case_access_log::user_id,
            users::email,
            users::role,
            case_access_log::at,
            case_access_log::what,
        ))
        .order(case_access_log::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(case_id) = case_id {
        query = query.filter(case_access_log::case_id.eq(case_id));
    }
    if let Some(user_id) = user_id {
        query = query.filter(case_access_log::user_id.eq(user_id));
    }
    if let Some(before) = before_id {
        query = query.filter(case_access_log::id.lt(before));
    }
    Ok(query.load(conn)?)
}

/// Untriaged cases received before `received_before` that supporters have
/// not been told about yet (candidates; the caller applies the calendar).
pub fn overdue_candidates(
    conn: &mut AnyConnection,
    received_before: i64,
    limit: i64,
) -> DbResult<Vec<CaseRow>> {
    Ok(cases::table
        .filter(cases::status.eq_any(["submitted", "triage"]))
        .filter(cases::triaged_at.is_null())
        .filter(cases::overdue_notified_at.is_null())
        .filter(cases::received_at.le(received_before))
        .select(cases::all_columns)
        .order(cases::received_at.asc())
        .limit(limit)
        .load(conn)?)
}

/// Marks the overdue reminder as sent; false if another instance did first.
pub fn mark_overdue_notified(conn: &mut AnyConnection, id: i64, now: i64) -> DbResult<bool> {
    Ok(diesel::update(
        cases::table
            .find(id)
            .filter(cases::overdue_notified_at.is_null()),
    )
    .set(cases::overdue_notified_at.eq(now))
    .execute(conn)?
        == 1)
}

/// The desk member who last asked the applicant for information.
pub fn last_info_requester(conn: &mut AnyConnection, case_id: i64) -> DbResult<Option<i64>> {
    Ok(case_events::table
        .filter(case_events::case_id.eq(case_id))
        .filter(case_events::kind.eq("info_requested"))
        .order(case_events::id.desc())
        .select(case_events::actor_id)
        .first::<Option<i64>>(conn)
        .optional()?
        .flatten())
}

#[cfg(test)]
impl<'a> NewCase<'a> {
    /// A medical device case `number` in `submitted`, filed by `founder`
    /// under their organisation `organization_name`, received on
    /// 2026-12-04 (at 7).
    pub(crate) fn sample(
        number: &'a str,
        founder: &crate::db::users::UserRow,
        organization_name: &'a str,
    ) -> Self {
        NewCase {
            number,
            organization_id: founder.organization_id.expect("an applicant"),
            applicant_id: Some(founder.id),
            filed_by: Some(founder.id),
            title: "治験の相談",
            description: "説明",
            product_type: "medical_device",
            stage: "basic_research",
            language: "ja",
            organization_name,
            organization_kind: "startup",
            status: "submitted",
            effective_product_type: "medical_device",
            outcome: None,
            received_on: "2026-12-04",
            received_at: 7,
            updated_at: 7,
            closed_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use crate::db::Database;
    use crate::db::users::{NewUser, register_applicant};

    /// On SQLite the filed row is built from what was inserted, not read
    /// back (`insert`): it must be the row a later read finds, defaults
    /// included, or a new column with a default would go unnoticed.
    /// An applicant of "A KK", the organisation these tests file for.
    fn founder_of_a_kk(conn: &mut AnyConnection) -> DbResult<crate::db::users::UserRow> {
        register_applicant(
            conn,
            NewUser {
                email: "f@a.example",
                password_hash: "-",
                name: "F",
                role: "applicant",
                locale: "ja",
                organization_id: None,
                created_at: 1,
            },
            "A KK",
        )
    }

    /// Many cases asked for at once: one answer per id, in the order
    /// asked, a missing id `None`, and a case whose stored category is
    /// unknown failing alone.
    #[tokio::test]
    async fn cases_asked_for_together_are_answered_each_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cases.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 2).unwrap();
        let answers = db
            .write(|conn| {
                let founder = founder_of_a_kk(conn)?;
                let mut ids = Vec::new();
                for (number, categories) in [
                    ("MD-2026-00001", &["fundraising"][..]),
                    ("MD-2026-00002", &["regulatory", "reimbursement"][..]),
                    ("MD-2026-00003", &["fundraising"][..]),
                ] {
                    let filed = insert_filed(
                        conn,
                        &NewCase::sample(number, &founder, "A KK"),
                        categories,
                        FilingEvent {
                            actor_id: founder.id,
                            kind: "submitted",
                            detail: "{}",
                        },
                    )?;
                    ids.push(filed.id);
                }
                diesel::update(case_categories::table.filter(case_categories::case_id.eq(ids[2])))
                    .set(case_categories::category.eq("from_a_newer_version"))
                    .execute(conn)?;
                find_full_many(conn, &[ids[1], 999_999, ids[2], ids[0]])
            })
            .await
            .unwrap();
        let numbers: Vec<Option<String>> = answers
            .iter()
            .map(|answer| match answer {
                Ok(found) => found.as_ref().map(|case| case.row.number.clone()),
                Err(unknown) => Some(format!("unknown {}", unknown.value)),
            })
            .collect();
        assert_eq!(
            numbers,
            [
                Some("MD-2026-00002".to_owned()),
                None,
                Some("unknown from_a_newer_version".to_owned()),
                Some("MD-2026-00001".to_owned()),
            ]
        );
        let second = answers[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(second.categories.applicant.len(), 2);
    }

    #[tokio::test]
    async fn a_filed_case_is_the_row_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cases.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 2).unwrap();
        let (filed, stored) = db
            .write(|conn| {
                let founder = founder_of_a_kk(conn)?;
                let filed = insert_filed(
                    conn,
                    &NewCase {
                        received_at: 7,
                        updated_at: 8,
                        ..NewCase::sample("MD-2026-00001", &founder, "A KK")
                    },
                    &["funding"],
                    FilingEvent {
                        actor_id: founder.id,
                        kind: "submitted",
                        detail: "{}",
                    },
                )?;
                let stored = find(conn, filed.id)?;
                Ok::<_, DbError>((filed, stored))
            })
            .await
            .unwrap();
        assert!(filed.id > 0);
        assert_eq!(format!("{:?}", Some(filed)), format!("{stored:?}"));
    }
}
