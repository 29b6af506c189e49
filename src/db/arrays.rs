//! PostgreSQL statements diesel's DSL cannot say in one piece. Rows
//! inserted from arrays (`INSERT … SELECT … FROM unnest(…)`), so that one
//! statement text serves any number of rows and is prepared once per
//! connection: diesel's multi-row `VALUES` has a text per row count and is
//! never prepared, so PostgreSQL parsed and planned it on every intake. And
//! the mail worker's claim, an `UPDATE` of the rows a locking subquery
//! picks. And cases read by a list of ids, their categories and duplicates
//! as arrays.

use diesel::pg::Pg;
use diesel::pg::sql_types::Record;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel::{QueryResult, RunQueryDsl};

use super::outbox::MailState;
use super::schema::{cases, outbox};

/// `case_categories` rows of one case: one per category, all of `kind`.
#[derive(Debug, Clone, Copy)]
pub struct CategoriesOfCase<'a> {
    pub case_id: i64,
    pub kind: &'a str,
    pub categories: &'a [&'a str],
    pub effective: bool,
}

impl QueryFragment<Pg> for CategoriesOfCase<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("INSERT INTO case_categories (case_id, kind, category, effective) SELECT ");
        out.push_bind_param::<BigInt, i64>(&self.case_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, str>(self.kind)?;
        out.push_sql(", category, ");
        out.push_bind_param::<Bool, bool>(&self.effective)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<Text>, [&str]>(self.categories)?;
        out.push_sql(") AS category");
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for CategoriesOfCase<'_> {}

/// The prepared-statement cache's key of [`CategoriesOfCase`]: its SQL never varies.
pub struct CategoriesOfCaseStatement;

impl QueryId for CategoriesOfCase<'_> {
    type QueryId = CategoriesOfCaseStatement;
    const HAS_STATIC_QUERY_ID: bool = true;
}

/// `outbox` rows, one per element of the (equally long) columns, each due
/// when it was queued.
#[derive(Debug, Clone)]
pub struct QueuedMails<'a> {
    pub message_ids: Vec<String>,
    pub kinds: Vec<&'a str>,
    pub case_ids: Vec<Option<i64>>,
    pub recipients: Vec<&'a str>,
    pub subjects: Vec<&'a str>,
    pub bodies: Vec<&'a str>,
    pub locales: Vec<&'a str>,
    pub links: Vec<Option<&'a str>>,
    pub calendars: Vec<Option<&'a str>>,
    /// Each mail's `created_at` and `next_attempt_at`.
    pub queued_at: Vec<i64>,
}

impl QueryFragment<Pg> for QueuedMails<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO outbox (message_id, kind, case_id, recipient, subject, body_text, \
             locale, link, calendar, next_attempt_at, created_at) \
             SELECT message_id, kind, case_id, recipient, subject, body_text, locale, link, \
             calendar, queued_at, queued_at FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, Vec<String>>(&self.message_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, Vec<Option<i64>>>(&self.case_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.recipients)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.subjects)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.bodies)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.locales)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, Vec<Option<&str>>>(&self.links)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, Vec<Option<&str>>>(&self.calendars)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, Vec<i64>>(&self.queued_at)?;
        out.push_sql(
            ") AS mail (message_id, kind, case_id, recipient, subject, body_text, locale, link, \
             calendar, queued_at)",
        );
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for QueuedMails<'_> {}

/// The prepared-statement cache's key of [`QueuedMails`]: its SQL never varies.
pub struct QueuedMailsStatement;

impl QueryId for QueuedMails<'_> {
    type QueryId = QueuedMailsStatement;
    const HAS_STATIC_QUERY_ID: bool = true;
}

/// Claims up to `limit` mails due from `due_from` to `now` until `until`:
/// `UPDATE outbox … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
/// RETURNING` every column, in `OutboxRow`'s order (`outbox::claim_due`).
#[derive(Debug, Clone, Copy)]
pub struct ClaimDue {
    pub due_from: i64,
    pub now: i64,
    pub until: i64,
    pub limit: i64,
}

impl QueryFragment<Pg> for ClaimDue {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE outbox SET locked_until = ");
        out.push_bind_param::<BigInt, i64>(&self.until)?;
        out.push_sql(", attempts = attempts + 1 WHERE id IN (SELECT id FROM outbox WHERE state = ");
        out.push_bind_param::<Text, str>(MailState::Pending.as_str())?;
        out.push_sql(" AND next_attempt_at >= ");
        out.push_bind_param::<BigInt, i64>(&self.due_from)?;
        out.push_sql(" AND next_attempt_at <= ");
        out.push_bind_param::<BigInt, i64>(&self.now)?;
        out.push_sql(" AND (locked_until IS NULL OR locked_until < ");
        out.push_bind_param::<BigInt, i64>(&self.now)?;
        out.push_sql(") ORDER BY next_attempt_at, id LIMIT ");
        out.push_bind_param::<BigInt, i64>(&self.limit)?;
        out.push_sql(" FOR UPDATE SKIP LOCKED) RETURNING ");
        outbox::all_columns.walk_ast(out.reborrow())
    }
}

impl Query for ClaimDue {
    type SqlType = outbox::SqlType;
}

impl<Conn> RunQueryDsl<Conn> for ClaimDue {}

/// The prepared-statement cache's key of [`ClaimDue`]: its SQL never varies.
pub struct ClaimDueStatement;

impl QueryId for ClaimDue {
    type QueryId = ClaimDueStatement;
    const HAS_STATIC_QUERY_ID: bool = true;
}

/// The cases of `ids`, one row each, with their categories `(kind,
/// category)` and the cases closed as their duplicates `(id, number,
/// organization_id)` as arrays of records. PostgreSQL runs the two
/// subqueries per case through their indexes however many ids there are;
/// the same as joins was planned as a hash join over every category row of
/// the desk (1.3–1.8 ms a statement for 13–28 cases, issue 19's twentieth
/// round).
#[derive(Debug, Clone, Copy)]
pub struct FullCases<'a> {
    pub ids: &'a [i64],
}

impl QueryFragment<Pg> for FullCases<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        cases::all_columns.walk_ast(out.reborrow())?;
        out.push_sql(
            ", ARRAY(SELECT ROW(category.kind, category.category) \
             FROM case_categories AS category WHERE category.case_id = cases.id), \
             ARRAY(SELECT ROW(duplicate.id, duplicate.number, duplicate.organization_id) \
             FROM case_duplicates AS link JOIN cases AS duplicate ON duplicate.id = link.case_id \
             WHERE link.original_id = cases.id) \
             FROM cases WHERE cases.id = ANY(",
        );
        out.push_bind_param::<Array<BigInt>, [i64]>(self.ids)?;
        out.push_sql(")");
        Ok(())
    }
}

impl Query for FullCases<'_> {
    type SqlType = (
        cases::SqlType,
        Array<Record<(Text, Text)>>,
        Array<Record<(BigInt, Text, BigInt)>>,
    );
}

impl<Conn> RunQueryDsl<Conn> for FullCases<'_> {}

/// The prepared-statement cache's key of [`FullCases`]: its SQL never varies.
pub struct FullCasesStatement;

impl QueryId for FullCases<'_> {
    type QueryId = FullCasesStatement;
    const HAS_STATIC_QUERY_ID: bool = true;
}

/// Cases that applicants file for their own organisations, each with its
/// applicant's categories, its filing event, its place in the statistics'
/// queue (`stats_pending`) and its `case_submitted` outbox row: in one
/// statement, the gathered intakes of `cases::file_own_together`. The
/// columns are equally long, one element per case; `category_numbers` and
/// `categories` pair each category with its case's number.
///
/// A case is inserted only where its applicant still belongs to its
/// organisation (the look-up `users::filing_organization` makes on its
/// own), under the organisation's registered name and, unless the
/// applicant named one, its registered kind; the others are left out of the
/// answer.
#[derive(Debug, Clone)]
pub struct OwnFilings<'a> {
    pub numbers: Vec<&'a str>,
    pub applicant_ids: Vec<i64>,
    pub organization_ids: Vec<i64>,
    pub titles: Vec<&'a str>,
    pub descriptions: Vec<&'a str>,
    pub product_types: Vec<&'a str>,
    pub stages: Vec<&'a str>,
    pub languages: Vec<&'a str>,
    pub organization_kinds: Vec<Option<&'a str>>,
    pub received_on: Vec<&'a str>,
    pub received_at: Vec<i64>,
    pub details: Vec<&'a str>,
    pub category_numbers: Vec<&'a str>,
    pub categories: Vec<&'a str>,
    /// Status, category kind, event kind, audience and outbox event of
    /// every case.
    pub status: &'a str,
    pub category_kind: &'a str,
    pub event_kind: &'a str,
    pub audience: &'a str,
    pub queued_event: &'a str,
}

impl QueryFragment<Pg> for OwnFilings<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH input AS (SELECT * FROM unnest(");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.numbers)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, Vec<i64>>(&self.applicant_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, Vec<i64>>(&self.organization_ids)?;
        for texts in [
            &self.titles,
            &self.descriptions,
            &self.product_types,
            &self.stages,
            &self.languages,
        ] {
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, Vec<&str>>(texts)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, Vec<Option<&str>>>(&self.organization_kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.received_on)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, Vec<i64>>(&self.received_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.details)?;
        out.push_sql(
            ") WITH ORDINALITY AS input (number, applicant_id, organization_id, title, \
             description, product_type, stage, language, organization_kind, received_on, \
             received_at, detail, place)), \
             new_cases AS (INSERT INTO cases (number, organization_id, applicant_id, filed_by, \
             title, description, product_type, stage, language, organization_name, \
             organization_kind, status, effective_product_type, received_on, received_at, \
             updated_at) \
             SELECT input.number, organizations.id, users.id, users.id, input.title, \
             input.description, input.product_type, input.stage, input.language, \
             organizations.name, coalesce(input.organization_kind, organizations.kind), ",
        );
        out.push_bind_param::<Text, str>(self.status)?;
        out.push_sql(
            ", input.product_type, input.received_on, input.received_at, input.received_at \
             FROM input JOIN users ON users.id = input.applicant_id \
             AND users.organization_id = input.organization_id \
             JOIN organizations ON organizations.id = input.organization_id \
             ORDER BY input.place RETURNING ",
        );
        cases::all_columns.walk_ast(out.reborrow())?;
        out.push_sql(
            "), new_categories AS (INSERT INTO case_categories (case_id, kind, category, \
             effective) SELECT new_cases.id, ",
        );
        out.push_bind_param::<Text, str>(self.category_kind)?;
        out.push_sql(", filed.category, TRUE FROM unnest(");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.category_numbers)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.categories)?;
        out.push_sql(
            ") AS filed (number, category) JOIN new_cases ON new_cases.number = filed.number), \
             filing AS (INSERT INTO case_events (case_id, at, actor_id, kind, from_status, \
             to_status, detail, audience) SELECT new_cases.id, new_cases.received_at, \
             new_cases.filed_by, ",
        );
        out.push_bind_param::<Text, str>(self.event_kind)?;
        out.push_sql(", NULL, new_cases.status, input.detail, ");
        out.push_bind_param::<Text, str>(self.audience)?;
        out.push_sql(
            " FROM new_cases JOIN input ON input.number = new_cases.number), \
             pending AS (INSERT INTO stats_pending (case_id) SELECT id FROM new_cases), \
             queued AS (INSERT INTO outbox (message_id, kind, case_id, recipient, subject, \
             body_text, next_attempt_at, created_at) SELECT '', ",
        );
        out.push_bind_param::<Text, str>(self.queued_event)?;
        out.push_sql(
            ", id, '', '', '', received_at, received_at FROM new_cases) \
             SELECT * FROM new_cases",
        );
        Ok(())
    }
}

impl Query for OwnFilings<'_> {
    type SqlType = cases::SqlType;
}

impl<Conn> RunQueryDsl<Conn> for OwnFilings<'_> {}

/// The prepared-statement cache's key of [`OwnFilings`]: its SQL never varies.
pub struct OwnFilingsStatement;

impl QueryId for OwnFilings<'_> {
    type QueryId = OwnFilingsStatement;
    const HAS_STATIC_QUERY_ID: bool = true;
}

/// Deletes the pending outbox rows of `ids` each still claimed with its
/// `held` token (`outbox::replace_events`), in one statement; answers the
/// ids deleted. Joined to the arrays, each row is found by its primary
/// key, as the one-row deletes it replaces were: one round trip per fan-out
/// instead of one per event (≈ 5,000 a second at a full PostgreSQL intake,
/// the busiest statement of the database in issue 19's twenty-first round).
#[derive(Debug, Clone)]
pub struct DeleteHeld<'a> {
    pub ids: &'a [i64],
    pub held: &'a [i64],
}

impl QueryFragment<Pg> for DeleteHeld<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("DELETE FROM outbox USING unnest(");
        out.push_bind_param::<Array<BigInt>, [i64]>(self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, [i64]>(self.held)?;
        out.push_sql(
            ") AS held (id, locked_until) WHERE outbox.id = held.id \
             AND outbox.locked_until = held.locked_until AND outbox.state = ",
        );
        out.push_bind_param::<Text, str>(MailState::Pending.as_str())?;
        out.push_sql(" RETURNING outbox.id");
        Ok(())
    }
}

impl Query for DeleteHeld<'_> {
    type SqlType = BigInt;
}

impl<Conn> RunQueryDsl<Conn> for DeleteHeld<'_> {}

/// The prepared-statement cache's key of [`DeleteHeld`]: its SQL never varies.
pub struct DeleteHeldStatement;

impl QueryId for DeleteHeld<'_> {
    type QueryId = DeleteHeldStatement;
    const HAS_STATIC_QUERY_ID: bool = true;
}
