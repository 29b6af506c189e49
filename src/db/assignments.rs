//! Expert assignments, meetings and support plans of a case.

use diesel::prelude::*;

use super::schema::{assignments, cases, experts, meetings, support_plans, users};
use super::{AnyConnection, DbResult};

pub const ACTIVE: [&str; 2] = ["proposed", "accepted"];

#[derive(Debug, Clone, Queryable)]
pub struct AssignmentRow {
    pub id: i64,
    pub case_id: i64,
    pub expert_id: i64,
    pub role: String,
    pub status: String,
    pub assigned_by: i64,
    pub created_at: i64,
    pub responded_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub decline_reason: Option<String>,
    pub terms_version: Option<String>,
    pub acknowledged_at: Option<i64>,
}

pub fn insert(
    conn: &mut AnyConnection,
    case_id: i64,
    expert_id: i64,
    role: &str,
    assigned_by: i64,
    now: i64,
) -> DbResult<AssignmentRow> {
    Ok(diesel::insert_into(assignments::table)
        .values((
            assignments::case_id.eq(case_id),
            assignments::expert_id.eq(expert_id),
            assignments::role.eq(role),
            assignments::status.eq("proposed"),
            assignments::assigned_by.eq(assigned_by),
            assignments::created_at.eq(now),
        ))
        .returning(assignments::all_columns)
        .get_result(conn)?)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> DbResult<Option<AssignmentRow>> {
    Ok(assignments::table
        .find(id)
        .select(assignments::all_columns)
        .first(conn)
        .optional()?)
}

/// Assignments of a case with the expert's name, oldest first.
/// A case's assignments with each expert's name and user id, oldest first.
pub fn for_case(
    conn: &mut AnyConnection,
    case_id: i64,
) -> DbResult<Vec<(AssignmentRow, String, i64)>> {
    Ok(assignments::table
        .inner_join(experts::table)
        .filter(assignments::case_id.eq(case_id))
        .select((assignments::all_columns, experts::name, experts::user_id))
        .order(assignments::id.asc())
        .load(conn)?)
}

/// An expert's assignments with the case number and title, newest first.
pub fn for_expert(
    conn: &mut AnyConnection,
    expert_id: i64,
    only_active: bool,
) -> DbResult<Vec<(AssignmentRow, String, String)>> {
    let mut query = assignments::table
        .inner_join(cases::table)
        .filter(assignments::expert_id.eq(expert_id))
        .select((assignments::all_columns, cases::number, cases::title))
        .order(assignments::id.desc())
        .into_boxed();
    if only_active {
        query = query.filter(assignments::status.eq_any(ACTIVE));
    }
    Ok(query.load(conn)?)
}

/// The caller's active assignment on a case, if the caller is an expert:
/// Some(true) accepted, Some(false) proposed.
pub fn caller_assignment(
    conn: &mut AnyConnection,
    case_id: i64,
    user_id: i64,
) -> DbResult<Option<bool>> {
    let status: Option<String> = assignments::table
        .inner_join(experts::table)
        .filter(assignments::case_id.eq(case_id))
        .filter(experts::user_id.eq(user_id))
        .filter(assignments::status.eq_any(ACTIVE))
        .select(assignments::status)
        .first(conn)
        .optional()?;
    Ok(status.map(|s| s == "accepted"))
}

/// Cases an expert (by user id) is actively assigned to, with whether the
/// assignment is accepted.
pub fn active_cases_of_user(conn: &mut AnyConnection, user_id: i64) -> DbResult<Vec<(i64, bool)>> {
    let rows: Vec<(i64, String)> = assignments::table
        .inner_join(experts::table)
        .filter(experts::user_id.eq(user_id))
        .filter(assignments::status.eq_any(ACTIVE))
        .select((assignments::case_id, assignments::status))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(case_id, status)| (case_id, status == "accepted"))
        .collect())
}

/// Cases an expert (by expert id) is actively assigned to.
pub fn active_case_ids_of_expert(conn: &mut AnyConnection, expert_id: i64) -> DbResult<Vec<i64>> {
    Ok(assignments::table
        .filter(assignments::expert_id.eq(expert_id))
        .filter(assignments::status.eq_any(ACTIVE))
        .select(assignments::case_id)
        .load(conn)?)
}

/// Experts who declined this case, and experts actively assigned to it.
pub fn declined_and_active(
    conn: &mut AnyConnection,
    case_id: i64,
) -> DbResult<(Vec<i64>, Vec<i64>)> {
    let rows: Vec<(i64, String)> = assignments::table
        .filter(assignments::case_id.eq(case_id))
        .select((assignments::expert_id, assignments::status))
        .load(conn)?;
    let declined = rows
        .iter()
        .filter(|(_, s)| s == "declined")
        .map(|(id, _)| *id)
        .collect();
    let active = rows
        .iter()
        .filter(|(_, s)| ACTIVE.contains(&s.as_str()))
        .map(|(id, _)| *id)
        .collect();
    Ok((declined, active))
}

pub fn accepted_count(conn: &mut AnyConnection, case_id: i64) -> DbResult<i64> {
    Ok(assignments::table
        .filter(assignments::case_id.eq(case_id))
        .filter(assignments::status.eq("accepted"))
        .count()
        .get_result(conn)?)
}

pub fn active_load(conn: &mut AnyConnection, expert_id: i64) -> DbResult<i64> {
    Ok(assignments::table
        .filter(assignments::expert_id.eq(expert_id))
        .filter(assignments::status.eq_any(ACTIVE))
        .count()
        .get_result(conn)?)
}

/// What a status change of an assignment writes.
#[derive(Debug, Default)]
pub struct AssignmentChange<'a> {
    pub responded_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub decline_reason: Option<&'a str>,
    pub terms_version: Option<&'a str>,
    pub acknowledged_at: Option<i64>,
}

#[derive(AsChangeset)]
#[diesel(table_name = assignments)]
struct ChangeSet<'a> {
    status: &'a str,
    responded_at: Option<i64>,
    ended_at: Option<i64>,
    decline_reason: Option<&'a str>,
    terms_version: Option<&'a str>,
    acknowledged_at: Option<i64>,
}

/// Moves an assignment from `from` to `to`; false if it was no longer in `from`.
pub fn transition(
    conn: &mut AnyConnection,
    id: i64,
    from: &[&str],
    to: &str,
    change: &AssignmentChange<'_>,
) -> DbResult<bool> {
    let updated = diesel::update(
        assignments::table
            .find(id)
            .filter(assignments::status.eq_any(from)),
    )
    .set(ChangeSet {
        status: to,
        responded_at: change.responded_at,
        ended_at: change.ended_at,
        decline_reason: change.decline_reason,
        terms_version: change.terms_version,
        acknowledged_at: change.acknowledged_at,
    })
    .execute(conn)?;
    Ok(updated == 1)
}

// ---------------------------------------------------------------- meetings

#[derive(Debug, Clone, Queryable)]
pub struct MeetingRow {
    pub id: i64,
    pub case_id: i64,
    pub expert_id: i64,
    pub starts_at: i64,
    pub duration_minutes: i32,
    pub mode: String,
    pub advice_summary: Option<String>,
    pub created_by: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The video-call link of the invitation.
    pub video_url: Option<String>,
    /// Recorded after it took place (no invitation was mailed).
    pub recorded: bool,
    /// What a recorded meeting was about.
    pub notes: Option<String>,
}

pub struct NewMeeting<'a> {
    pub case_id: i64,
    pub expert_id: i64,
    pub starts_at: i64,
    pub duration_minutes: i32,
    pub mode: &'a str,
    pub advice_summary: Option<&'a str>,
    pub video_url: Option<&'a str>,
    pub recorded: bool,
    pub notes: Option<&'a str>,
    pub created_by: i64,
    pub now: i64,
}

pub fn insert_meeting(conn: &mut AnyConnection, m: &NewMeeting<'_>) -> DbResult<MeetingRow> {
    Ok(diesel::insert_into(meetings::table)
        .values((
            meetings::case_id.eq(m.case_id),
            meetings::expert_id.eq(m.expert_id),
            meetings::starts_at.eq(m.starts_at),
            meetings::duration_minutes.eq(m.duration_minutes),
            meetings::mode.eq(m.mode),
            meetings::advice_summary.eq(m.advice_summary),
            meetings::video_url.eq(m.video_url),
            meetings::recorded.eq(m.recorded),
            meetings::notes.eq(m.notes),
            meetings::created_by.eq(m.created_by),
            meetings::created_at.eq(m.now),
            meetings::updated_at.eq(m.now),
        ))
        .returning(meetings::all_columns)
        .get_result(conn)?)
}

pub fn meetings_of(conn: &mut AnyConnection, case_id: i64) -> DbResult<Vec<(MeetingRow, String)>> {
    Ok(meetings::table
        .inner_join(experts::table)
        .filter(meetings::case_id.eq(case_id))
        .select((meetings::all_columns, experts::name))
        .order((meetings::starts_at.asc(), meetings::id.asc()))
        .load(conn)?)
}

pub fn find_meeting(conn: &mut AnyConnection, id: i64) -> DbResult<Option<MeetingRow>> {
    Ok(meetings::table
        .find(id)
        .select(meetings::all_columns)
        .first(conn)
        .optional()?)
}

pub fn set_advice(conn: &mut AnyConnection, id: i64, advice: &str, now: i64) -> DbResult<()> {
    diesel::update(meetings::table.find(id))
        .set((
            meetings::advice_summary.eq(advice),
            meetings::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------- plans

#[derive(Debug, Clone, Queryable)]
pub struct PlanRow {
    pub revision: i32,
    pub body: String,
    pub author_id: i64,
    pub author_name: String,
    pub created_at: i64,
    pub author_role: String,
}

/// Adds a revision (the next number); revisions are never overwritten.
pub fn add_plan_revision(
    conn: &mut AnyConnection,
    case_id: i64,
    body: &str,
    author_id: i64,
    now: i64,
) -> DbResult<i32> {
    let last: Option<i32> = support_plans::table
        .filter(support_plans::case_id.eq(case_id))
        .select(diesel::dsl::max(support_plans::revision))
        .first(conn)?;
    let revision = last.unwrap_or(0) + 1;
    diesel::insert_into(support_plans::table)
        .values((
            support_plans::case_id.eq(case_id),
            support_plans::revision.eq(revision),
            support_plans::body.eq(body),
            support_plans::author_id.eq(author_id),
            support_plans::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(revision)
}

/// Every revision, newest first.
pub fn plan_revisions(conn: &mut AnyConnection, case_id: i64) -> DbResult<Vec<PlanRow>> {
    Ok(support_plans::table
        .inner_join(users::table.on(users::id.eq(support_plans::author_id)))
        .filter(support_plans::case_id.eq(case_id))
        .select((
            support_plans::revision,
            support_plans::body,
            support_plans::author_id,
            users::name,
            support_plans::created_at,
            users::role,
        ))
        .order(support_plans::revision.desc())
        .load(conn)?)
}

/// A closed case keeps no experts: proposals are withdrawn, accepted
/// assignments completed (their access ends with the case).
pub fn end_active_on_case(conn: &mut AnyConnection, case_id: i64, now: i64) -> DbResult<usize> {
    let withdrawn = diesel::update(
        assignments::table
            .filter(assignments::case_id.eq(case_id))
            .filter(assignments::status.eq("proposed")),
    )
    .set((
        assignments::status.eq("withdrawn"),
        assignments::ended_at.eq(now),
    ))
    .execute(conn)?;
    let completed = diesel::update(
        assignments::table
            .filter(assignments::case_id.eq(case_id))
            .filter(assignments::status.eq("accepted")),
    )
    .set((
        assignments::status.eq("completed"),
        assignments::ended_at.eq(now),
    ))
    .execute(conn)?;
    Ok(withdrawn + completed)
}
