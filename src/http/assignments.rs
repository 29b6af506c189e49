//! Assignments of experts to cases, meetings (面談) and support plans (支援計画).

use actix_web::{HttpResponse, get, patch, post, put, web};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::{AuthUser, Json, body};
use super::problem::ApiError;
use super::schema::{
    AssignmentFilter, AssignmentRole, AssignmentStatus, MeetingMode, Note, RecordText,
};
use crate::clock;
use crate::db::assignments::{self as store, AssignmentChange, AssignmentRow, NewMeeting};
use crate::db::cases::{self as case_store, NewEvent};
use crate::db::{AnyConnection, DbError, experts};
use crate::desk::cases::{Extra, apply, refuse_managers, visible_case};
use crate::desk::experts::{expert_profile, match_case};
use crate::domain::assignment::{
    self, AssignmentAction, AssignmentActor, AssignmentRefusal, CaseEffect,
};
use crate::domain::case::{
    AssignmentDisclosure, CaseView, NOTE_MAX_CHARS, Problems, assignment_disclosure, parse_text,
};
use crate::domain::lifecycle::Action;
use crate::domain::role::Role;
use crate::domain::vocabulary::CaseStatus;

/// The confidentiality terms an expert acknowledges by accepting.
pub const CONFIDENTIALITY_TERMS_VERSION: &str = "2026-11";

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentResponse {
    pub id: i64,
    pub case_id: i64,
    pub expert_id: i64,
    #[schema(value_type = AssignmentRole)]
    pub role: String,
    #[schema(value_type = AssignmentStatus)]
    pub status: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required, format = DateTime)]
    pub responded_at: Option<String>,
    #[schema(required, format = DateTime)]
    pub ended_at: Option<String>,
    #[schema(required)]
    pub decline_reason: Option<String>,
    /// The confidentiality terms the expert acknowledged, and when.
    #[schema(required)]
    pub terms_version: Option<String>,
    #[schema(required, format = DateTime)]
    pub acknowledged_at: Option<String>,
}

fn assignment_response(row: AssignmentRow) -> AssignmentResponse {
    AssignmentResponse {
        id: row.id,
        case_id: row.case_id,
        expert_id: row.expert_id,
        role: row.role,
        status: row.status,
        created_at: clock::to_rfc3339(row.created_at),
        responded_at: row.responded_at.map(clock::to_rfc3339),
        ended_at: row.ended_at.map(clock::to_rfc3339),
        decline_reason: row.decline_reason,
        terms_version: row.terms_version,
        acknowledged_at: row.acknowledged_at.map(clock::to_rfc3339),
    }
}

/// Another expert on the case, as an accepted expert sees them: who, in
/// which role and state; nothing they answered the desk.
fn colleague_response(row: AssignmentRow) -> AssignmentResponse {
    AssignmentResponse {
        decline_reason: None,
        terms_version: None,
        acknowledged_at: None,
        ..assignment_response(row)
    }
}

fn event(
    conn: &mut AnyConnection,
    case_id: i64,
    actor: i64,
    kind: &str,
    detail: serde_json::Value,
    now: i64,
) -> Result<(), DbError> {
    insert_event(conn, case_id, actor, kind, detail, now, false)
}

/// An event only the desk (and accepted experts) see.
fn desk_event(
    conn: &mut AnyConnection,
    case_id: i64,
    actor: i64,
    kind: &str,
    detail: serde_json::Value,
    now: i64,
) -> Result<(), DbError> {
    insert_event(conn, case_id, actor, kind, detail, now, true)
}

fn insert_event(
    conn: &mut AnyConnection,
    case_id: i64,
    actor: i64,
    kind: &str,
    detail: serde_json::Value,
    now: i64,
    desk_only: bool,
) -> Result<(), DbError> {
    case_store::insert_event(
        conn,
        NewEvent {
            case_id,
            at: now,
            actor_id: Some(actor),
            kind,
            from_status: None,
            to_status: None,
            detail: Some(detail.to_string()),
            desk_only,
        },
    )
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AssignRequest {
    /// A registered expert (422 for any other id).
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(value_type = i64, required)]
    pub expert_id: Option<i64>,
    /// `lead` (one per case) or `member` (when absent).
    #[schema(value_type = Option<AssignmentRole>)]
    pub role: Option<String>,
}

/// Propose an expert for a case.
#[utoipa::path(
    tag = "experts",
    request_body = AssignRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 201, body = AssignmentResponse),
        (status = 403, description = "not desk staff"),
        (status = 409, description = "conflict of interest, paused, at capacity, declined before (`reason`), a lead exists, or the case is not matching"),
    )
)]
#[post("/api/v1/cases/{id}/assignments")]
pub async fn assign(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Json<AssignRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Supporter, Role::Admin])?;
    let mut problems = Problems::default();
    let expert_id = match body.expert_id {
        Some(id) => Some(id),
        None => {
            problems.push("expert_id", "is required");
            None
        }
    };
    let role = match body.role.as_deref() {
        None | Some("member") => Some("member"),
        Some("lead") => Some("lead"),
        Some(_) => {
            problems.push("role", "must be lead or member");
            None
        }
    };
    problems.into_result().map_err(ApiError::from)?;
    let (expert_id, role) = (expert_id.expect("checked"), role.expect("checked"));
    let case_id = id.into_inner();
    let notifier = state.desk.notifier.clone();
    let row = state
        .db
        .write(move |conn| {
            let (case, _) = visible_case(conn, &caller, case_id)?;
            let status: CaseStatus = case.status.parse().unwrap_or(CaseStatus::Closed);
            if !matches!(status, CaseStatus::Matching | CaseStatus::InConsultation) {
                return Err(ApiError::conflict(format!(
                    "experts are assigned while a case is matching or in consultation; it is {}",
                    status.as_str()
                )));
            }
            let now = clock::now_micros();
            // Touching the expert first takes its row lock on PostgreSQL, so
            // two concurrent assignments of one expert cannot both pass the
            // capacity check (SQLite's single writer gives the same).
            if experts::touch_last_assigned(conn, expert_id, now)? == 0 {
                return Err(ApiError::field("expert_id", "is not a registered expert"));
            }
            let record = experts::find(conn, expert_id)?
                .ok_or_else(|| ApiError::field("expert_id", "is not a registered expert"))?;
            // The same rules as the suggestions decide whether this expert may be assigned.
            let verdict = match_case(conn, &case, &[expert_profile(&record)?], 1)?;
            if let Some(excluded) = verdict.excluded.first() {
                let mut extra = serde_json::Map::new();
                extra.insert("reason".into(), json!(excluded.reason.code()));
                return Err(ApiError::Conflict {
                    detail: excluded.detail.clone(),
                    extra: Some(extra),
                });
            }
            let row = store::insert(conn, case.id, expert_id, role, caller.id, now).map_err(
                |e| match e {
                    DbError::UniqueViolation(_) => {
                        ApiError::conflict("this case already has a lead expert")
                    }
                    other => other.into(),
                },
            )?;
            notifier.expert_assigned(conn, &case, record.row.user_id, role, now)?;
            // Proposals stay on the desk side until an expert accepts.
            desk_event(
                conn,
                case.id,
                caller.id,
                "expert_assigned",
                json!({"assignment_id": row.id, "expert_id": expert_id, "expert": record.row.name, "role": role}),
                now,
            )?;
            case_store::touch(conn, case.id, now)?;
            Ok(row)
        })
        .await?;
    state.desk.mail_signal.queued();
    Ok(HttpResponse::Created().json(assignment_response(row)))
}

/// The caller's own assignment, or 404 (another expert's is not theirs to see).
fn own_assignment(
    conn: &mut AnyConnection,
    caller: &AuthUser,
    id: i64,
) -> Result<AssignmentRow, ApiError> {
    let row = store::find(conn, id)?.ok_or(ApiError::NotFound)?;
    let expert = experts::find_by_user(conn, caller.id)?.ok_or(ApiError::NotFound)?;
    if row.expert_id != expert.id {
        return Err(ApiError::NotFound);
    }
    Ok(row)
}

fn not_in(status: &str, what: &str) -> ApiError {
    ApiError::conflict(format!("the assignment is {status}; it cannot be {what}"))
}

/// The row's status; an unknown stored value names its row and column.
fn stored_status(row: &AssignmentRow) -> Result<assignment::AssignmentStatus, ApiError> {
    row.status
        .parse()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("assignments row {}: status: {e}", row.id)))
}

/// Whether `caller` may do `action` to `row` now (`domain::assignment`):
/// the status it would leave and the one it would reach, or 403/409.
fn decide_move(
    conn: &mut AnyConnection,
    caller: &AuthUser,
    row: &AssignmentRow,
    action: AssignmentAction,
) -> Result<(assignment::AssignmentStatus, assignment::AssignmentStatus), ApiError> {
    let from = stored_status(row)?;
    let actor = AssignmentActor {
        role: caller.role,
        is_own: experts::find_row(conn, row.expert_id)?.is_some_and(|e| e.user_id == caller.id),
    };
    match assignment::decide(from, action, actor) {
        Ok(to) => Ok((from, to)),
        Err(AssignmentRefusal::NotPermitted) => Err(ApiError::Forbidden(
            "your role may not do this to this assignment",
        )),
        Err(AssignmentRefusal::WrongState { from }) => {
            Err(not_in(from.as_str(), action.target().as_str()))
        }
    }
}

/// Moves `row` by `action` as [`decide_move`] allows, conditional on the
/// status read (a concurrent change loses with 409). Returns the status it
/// left.
fn move_assignment(
    conn: &mut AnyConnection,
    caller: &AuthUser,
    row: &AssignmentRow,
    action: AssignmentAction,
    change: &AssignmentChange<'_>,
) -> Result<assignment::AssignmentStatus, ApiError> {
    let (from, to) = decide_move(conn, caller, row, action)?;
    if !store::transition(conn, row.id, &[from.as_str()], to.as_str(), change)? {
        let now = store::find(conn, row.id)?.ok_or(ApiError::NotFound)?;
        return Err(not_in(&now.status, to.as_str()));
    }
    Ok(from)
}

/// What the case does after an expert's assignment left `from` by `action`.
fn case_effect_of(
    conn: &mut AnyConnection,
    case: &case_store::CaseRow,
    action: AssignmentAction,
    from: assignment::AssignmentStatus,
) -> Result<CaseEffect, ApiError> {
    let status: CaseStatus = case
        .status
        .parse()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("cases row {}: status: {e:?}", case.id)))?;
    let accepted_left = store::accepted_count(conn, case.id)? as usize;
    Ok(assignment::case_effect(action, from, status, accepted_left))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AcceptRequest {
    /// The confidentiality terms version the expert read; when given it must
    /// be the current one (409 otherwise).
    pub terms_version: Option<String>,
}

/// Accept a proposed assignment; acknowledges the confidentiality terms.
#[utoipa::path(
    tag = "experts",
    request_body(content = Option<AcceptRequest>, description = "optional; a body that is not an AcceptRequest is ignored"),
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = AssignmentResponse),
        (status = 403, description = "not an expert"),
        (status = 404, description = "not your assignment"),
        (status = 409, description = "not proposed any more, or other terms"),
    )
)]
#[post("/api/v1/assignments/{id}/accept")]
pub async fn accept(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Option<Json<AcceptRequest>>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Expert])?;
    if let Some(version) = body.as_ref().and_then(|b| b.terms_version.as_deref())
        && version != CONFIDENTIALITY_TERMS_VERSION
    {
        return Err(ApiError::conflict(format!(
            "the current confidentiality terms are version {CONFIDENTIALITY_TERMS_VERSION}"
        )));
    }
    let id = id.into_inner();
    let notifier = state.desk.notifier.clone();
    let row = state
        .db
        .write(move |conn| {
            let row = own_assignment(conn, &caller, id)?;
            let now = clock::now_micros();
            let change = AssignmentChange {
                responded_at: Some(now),
                terms_version: Some(CONFIDENTIALITY_TERMS_VERSION),
                acknowledged_at: Some(now),
                ..Default::default()
            };
            let from = move_assignment(conn, &caller, &row, AssignmentAction::Accept, &change)?;
            let (case, view) = visible_case(conn, &caller, row.case_id)?;
            if case_effect_of(conn, &case, AssignmentAction::Accept, from)?
                == CaseEffect::StartConsultation
            {
                apply(
                    conn,
                    &notifier,
                    &caller,
                    &case,
                    view,
                    Action::ExpertAccepted,
                    Extra::default(),
                    now,
                )?;
            } else {
                event(
                    conn,
                    case.id,
                    caller.id,
                    "expert_accepted",
                    json!({"assignment_id": id}),
                    now,
                )?;
            }
            let expert_name = experts::find_row(conn, row.expert_id)?
                .map(|e| e.name)
                .unwrap_or_default();
            notifier.assignment_answered(
                conn,
                &case,
                row.assigned_by,
                &expert_name,
                true,
                None,
                now,
            )?;
            store::find(conn, id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    state.desk.mail_signal.queued();
    Ok(HttpResponse::Ok().json(assignment_response(row)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeclineRequest {
    /// Why (kept on the assignment and, desk side, in the timeline).
    #[schema(value_type = Note)]
    pub reason: Option<String>,
}

/// Decline a proposed assignment; the case returns to matching without you.
#[utoipa::path(
    tag = "experts",
    request_body = DeclineRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = AssignmentResponse),
        (status = 403, description = "not an expert"),
        (status = 404, description = "not your assignment"),
        (status = 409, description = "not proposed any more"),
    )
)]
#[post("/api/v1/assignments/{id}/decline")]
pub async fn decline(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Json<DeclineRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Expert])?;
    let mut problems = Problems::default();
    let reason = problems
        .required("reason", body.reason.as_deref())
        .and_then(|r| problems.check("reason", parse_text(r, NOTE_MAX_CHARS)));
    problems.into_result().map_err(ApiError::from)?;
    let reason = reason.expect("checked");
    let id = id.into_inner();
    let notifier = state.desk.notifier.clone();
    let row = state
        .db
        .write(move |conn| {
            let row = own_assignment(conn, &caller, id)?;
            decide_move(conn, &caller, &row, AssignmentAction::Decline)?;
            // Read the case while still assigned; afterwards it is hidden.
            let (case, view) = visible_case(conn, &caller, row.case_id)?;
            let now = clock::now_micros();
            let change = AssignmentChange {
                responded_at: Some(now),
                ended_at: Some(now),
                decline_reason: Some(&reason),
                ..Default::default()
            };
            let from = move_assignment(conn, &caller, &row, AssignmentAction::Decline, &change)?;
            // The reason may concern another client of the expert: it stays
            // on the desk side of the timeline.
            desk_event(
                conn,
                case.id,
                caller.id,
                "expert_declined",
                json!({"assignment_id": id, "reason": reason}),
                now,
            )?;
            if case_effect_of(conn, &case, AssignmentAction::Decline, from)?
                == CaseEffect::BackToMatching
            {
                apply(
                    conn,
                    &notifier,
                    &caller,
                    &case,
                    view,
                    Action::ExpertDeclined,
                    Extra::default(),
                    now,
                )?;
            } else {
                case_store::touch(conn, case.id, now)?;
            }
            let expert_name = experts::find_row(conn, row.expert_id)?
                .map(|e| e.name)
                .unwrap_or_default();
            notifier.assignment_answered(
                conn,
                &case,
                row.assigned_by,
                &expert_name,
                false,
                Some(&reason),
                now,
            )?;
            store::find(conn, id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    state.desk.mail_signal.queued();
    Ok(HttpResponse::Ok().json(assignment_response(row)))
}

/// Ends an assignment (`withdrawn` by the desk, `completed` by desk or expert).
async fn end_assignment(
    state: &AppState,
    caller: AuthUser,
    id: i64,
    action: AssignmentAction,
) -> Result<HttpResponse, ApiError> {
    let notifier = state.desk.notifier.clone();
    let row = state
        .db
        .write(move |conn| {
            let row = if caller.role.is_desk_staff() {
                store::find(conn, id)?.ok_or(ApiError::NotFound)?
            } else {
                own_assignment(conn, &caller, id)?
            };
            let now = clock::now_micros();
            let change = AssignmentChange {
                ended_at: Some(now),
                ..Default::default()
            };
            let from = move_assignment(conn, &caller, &row, action, &change)?;
            let kind = match action {
                AssignmentAction::Withdraw => "assignment_withdrawn",
                _ => "assignment_completed",
            };
            event(
                conn,
                row.case_id,
                caller.id,
                kind,
                json!({"assignment_id": id}),
                now,
            )?;
            let case = case_store::find(conn, row.case_id)?.ok_or(ApiError::NotFound)?;
            if case_effect_of(conn, &case, action, from)? == CaseEffect::BackToMatching {
                // Only desk staff withdraw, and they see the whole case.
                apply(
                    conn,
                    &notifier,
                    &caller,
                    &case,
                    CaseView::Desk,
                    Action::ExpertDeclined,
                    Extra::default(),
                    now,
                )?;
            } else {
                case_store::touch(conn, row.case_id, now)?;
            }
            store::find(conn, id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    state.desk.mail_signal.queued();
    Ok(HttpResponse::Ok().json(assignment_response(row)))
}

/// Withdraw an expert from a case (desk). The expert's access ends.
#[utoipa::path(
    tag = "experts",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = AssignmentResponse),
        (status = 403, description = "not desk staff"),
        (status = 409, description = "the assignment has ended already"),
    )
)]
#[post("/api/v1/assignments/{id}/withdraw")]
pub async fn withdraw(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Supporter, Role::Admin])?;
    end_assignment(&state, caller, id.into_inner(), AssignmentAction::Withdraw).await
}

/// Mark an accepted assignment completed (desk or the expert). Access ends.
#[utoipa::path(
    tag = "experts",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = AssignmentResponse),
        (status = 403, description = "neither desk staff nor an expert"),
        (status = 404, description = "no such assignment, or (for experts) not yours"),
        (status = 409, description = "the assignment is not accepted"),
    )
)]
#[post("/api/v1/assignments/{id}/complete")]
pub async fn complete(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Supporter, Role::Admin, Role::Expert])?;
    end_assignment(&state, caller, id.into_inner(), AssignmentAction::Complete).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEntry {
    #[serde(flatten)]
    pub assignment: AssignmentResponse,
    pub case_number: String,
    pub case_title: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    pub items: Vec<QueueEntry>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct QueueQuery {
    /// `active` (proposed and accepted; when absent) or `all`.
    #[param(value_type = AssignmentFilter, required = false)]
    pub status: Option<String>,
}

/// The calling expert's assignments, newest first.
#[utoipa::path(
    tag = "experts",
    security(("bearer" = [])),
    params(QueueQuery),
    responses(
        (status = 200, body = QueueList),
        (status = 403, description = "experts only"),
    )
)]
#[get("/api/v1/assignments")]
pub async fn my_assignments(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Expert])?;
    let only_active = match query.status.as_deref() {
        None | Some("active") => true,
        Some("all") => false,
        Some(_) => return Err(ApiError::field("status", "must be active or all")),
    };
    let items = state
        .db
        .read(move |conn| {
            let Some(expert) = experts::find_by_user(conn, caller.id)? else {
                return Ok::<_, ApiError>(Vec::new());
            };
            Ok(store::for_expert(conn, expert.id, only_active)?
                .into_iter()
                .map(|(row, number, title)| QueueEntry {
                    assignment: assignment_response(row),
                    case_number: number,
                    case_title: title,
                })
                .collect())
        })
        .await?;
    Ok(HttpResponse::Ok().json(QueueList { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseAssignment {
    pub assignment: AssignmentResponse,
    pub expert_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseAssignmentList {
    pub items: Vec<CaseAssignment>,
}

/// Assignments on a case. Desk staff see all of them; an expert who accepted
/// sees their own and the experts working beside them (accepted or completed,
/// without their answers to the desk); a proposed expert sees only their own.
#[utoipa::path(
    tag = "experts",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = CaseAssignmentList),
        (status = 403, description = "neither desk staff nor an expert"),
        (status = 404, description = "no such case, or not yours"),
    )
)]
#[get("/api/v1/cases/{id}/assignments")]
pub async fn case_assignments(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Supporter, Role::Admin, Role::Expert])?;
    let id = id.into_inner();
    let items = state
        .db
        .read(move |conn| {
            let (case, view) = visible_case(conn, &caller, id)?;
            store::for_case(conn, case.id)?
                .into_iter()
                .map(|(row, name, user_id)| {
                    let status = stored_status(&row)?;
                    let own = user_id == caller.id;
                    let shown = match assignment_disclosure(caller.role, view, own, status) {
                        AssignmentDisclosure::Full => assignment_response(row),
                        AssignmentDisclosure::Colleague => colleague_response(row),
                        AssignmentDisclosure::Hidden => return Ok(None),
                    };
                    Ok(Some(CaseAssignment {
                        assignment: shown,
                        expert_name: name,
                    }))
                })
                .filter_map(Result::transpose)
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(CaseAssignmentList { items }))
}

// ---------------------------------------------------------------- meetings

#[derive(Debug, Deserialize, ToSchema)]
pub struct MeetingRequest {
    /// A registered expert with an accepted assignment on the case.
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(value_type = i64, required)]
    pub expert_id: Option<i64>,
    /// RFC 3339 with offset.
    #[schema(value_type = String, format = DateTime, example = "2026-12-03T10:00:00+09:00")]
    pub starts_at: Option<String>,
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(value_type = i32, required, minimum = 5, maximum = 480)]
    pub duration_minutes: Option<i32>,
    #[schema(value_type = MeetingMode)]
    pub mode: Option<String>,
    /// The advice given, once the meeting took place; blank is none.
    #[schema(value_type = Option<String>, max_length = 20000)]
    pub advice_summary: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeetingResponse {
    pub id: i64,
    pub case_id: i64,
    pub expert_id: i64,
    pub expert_name: String,
    #[schema(format = DateTime)]
    pub starts_at: String,
    #[schema(minimum = 5, maximum = 480)]
    pub duration_minutes: i32,
    #[schema(value_type = MeetingMode)]
    pub mode: String,
    #[schema(required)]
    pub advice_summary: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeetingList {
    pub items: Vec<MeetingResponse>,
}

fn meeting_response(row: store::MeetingRow, expert_name: String) -> MeetingResponse {
    MeetingResponse {
        id: row.id,
        case_id: row.case_id,
        expert_id: row.expert_id,
        expert_name,
        starts_at: clock::to_rfc3339(row.starts_at),
        duration_minutes: row.duration_minutes,
        mode: row.mode,
        advice_summary: row.advice_summary,
    }
}

/// A desk-side participant: staff, or an expert who accepted this case.
fn require_desk_view(view: CaseView) -> Result<(), ApiError> {
    if view == CaseView::Desk {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the desk and accepted experts may do this",
        ))
    }
}

/// Record a meeting (面談) of an expert on a case.
#[utoipa::path(
    tag = "experts",
    request_body = MeetingRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 201, body = MeetingResponse),
        (status = 403, description = "neither the desk nor an accepted expert, or an expert recording another's meeting"),
        (status = 404, description = "no such case, or not yours"),
        (status = 409, description = "the expert is not accepted on this case, or the case is closed"),
    )
)]
#[post("/api/v1/cases/{id}/meetings")]
pub async fn create_meeting(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Json<MeetingRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Supporter, Role::Admin, Role::Expert])?;
    let body = body.into_inner();
    let mut problems = Problems::default();
    let expert_id = body.expert_id;
    if expert_id.is_none() {
        problems.push("expert_id", "is required");
    }
    let starts_at = problems
        .required("starts_at", body.starts_at.as_deref())
        .and_then(|s| {
            problems.check(
                "starts_at",
                DateTime::parse_from_rfc3339(s).map_err(|_| "must be RFC 3339 with an offset"),
            )
        });
    let duration = match body.duration_minutes {
        Some(d) if (5..=480).contains(&d) => Some(d),
        Some(_) => {
            problems.push("duration_minutes", "must be from 5 to 480");
            None
        }
        None => {
            problems.push("duration_minutes", "is required");
            None
        }
    };
    let mode = match body.mode.as_deref() {
        Some(m @ ("online" | "onsite")) => Some(m.to_owned()),
        Some(_) => {
            problems.push("mode", "must be online or onsite");
            None
        }
        None => {
            problems.push("mode", "is required");
            None
        }
    };
    let advice = body
        .advice_summary
        .as_deref()
        .filter(|a| !a.trim().is_empty())
        .and_then(|a| problems.check("advice_summary", parse_text(a, 20_000)));
    problems.into_result().map_err(ApiError::from)?;
    let (expert_id, starts_at, duration, mode) = (
        expert_id.expect("checked"),
        starts_at.expect("checked").timestamp_micros(),
        duration.expect("checked"),
        mode.expect("checked"),
    );
    let case_id = id.into_inner();
    let notifier = state.desk.notifier.clone();
    let response = state
        .db
        .write(move |conn| {
            let (case, view) = visible_case(conn, &caller, case_id)?;
            require_desk_view(view)?;
            if case.status == CaseStatus::Closed.as_str() {
                return Err(ApiError::conflict("the case is closed"));
            }
            let expert = experts::find_row(conn, expert_id)?
                .ok_or_else(|| ApiError::field("expert_id", "is not a registered expert"))?;
            if caller.role == Role::Expert && expert.user_id != caller.id {
                return Err(ApiError::Forbidden("experts record their own meetings"));
            }
            let accepted = store::for_case(conn, case.id)?
                .iter()
                .any(|(a, _, _)| a.expert_id == expert_id && a.status == "accepted");
            if !accepted {
                return Err(ApiError::conflict(
                    "this expert has not accepted an assignment on this case",
                ));
            }
            let now = clock::now_micros();
            let row = store::insert_meeting(
                conn,
                &NewMeeting {
                    case_id: case.id,
                    expert_id,
                    starts_at,
                    duration_minutes: duration,
                    mode: &mode,
                    advice_summary: advice.as_deref(),
                    created_by: caller.id,
                    now,
                },
            )?;
            event(
                conn,
                case.id,
                caller.id,
                "meeting_scheduled",
                json!({"meeting_id": row.id, "expert": expert.name, "starts_at": clock::to_rfc3339(starts_at),
                       "duration_minutes": duration, "mode": mode}),
                now,
            )?;
            notifier.meeting_scheduled(
                conn,
                &case,
                row.id,
                expert.user_id,
                &expert.name,
                starts_at,
                duration,
                &mode,
                now,
            )?;
            case_store::touch(conn, case.id, now)?;
            Ok(meeting_response(row, expert.name))
        })
        .await?;
    state.desk.mail_signal.queued();
    Ok(HttpResponse::Created().json(response))
}

/// Meetings of a case, in time order.
#[utoipa::path(
    tag = "experts",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = MeetingList),
        (status = 403, description = "a manager, or an expert who has not accepted the assignment"),
        (status = 404, description = "no such case, or not yours"),
    )
)]
#[get("/api/v1/cases/{id}/meetings")]
pub async fn list_meetings(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    refuse_managers(&caller)?;
    let id = id.into_inner();
    let items = state
        .db
        .read(move |conn| {
            let (case, view) = visible_case(conn, &caller, id)?;
            if view == CaseView::ExpertSummary {
                return Err(ApiError::Forbidden("accept the assignment first"));
            }
            Ok::<_, ApiError>(
                store::meetings_of(conn, case.id)?
                    .into_iter()
                    .map(|(row, name)| meeting_response(row, name))
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(MeetingList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AdviceRequest {
    #[schema(value_type = RecordText)]
    pub advice_summary: Option<String>,
}

/// Record the advice given in a meeting.
#[utoipa::path(
    tag = "experts",
    request_body = AdviceRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = MeetingResponse),
        (status = 403, description = "neither the desk nor that meeting's expert"),
        (status = 404, description = "no such meeting, or not yours"),
    )
)]
#[patch("/api/v1/meetings/{id}")]
pub async fn record_advice(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Json<AdviceRequest>,
) -> Result<HttpResponse, ApiError> {
    refuse_managers(&caller)?;
    let mut problems = Problems::default();
    let advice = problems
        .required("advice_summary", body.advice_summary.as_deref())
        .and_then(|a| problems.check("advice_summary", parse_text(a, 20_000)));
    problems.into_result().map_err(ApiError::from)?;
    let advice = advice.expect("checked");
    let id = id.into_inner();
    let response = state
        .db
        .write(move |conn| {
            let meeting = store::find_meeting(conn, id)?.ok_or(ApiError::NotFound)?;
            let (case, view) = visible_case(conn, &caller, meeting.case_id)?;
            require_desk_view(view)?;
            let expert = experts::find_row(conn, meeting.expert_id)?.ok_or(ApiError::NotFound)?;
            if caller.role == Role::Expert && expert.user_id != caller.id {
                return Err(ApiError::Forbidden(
                    "only that meeting's expert records its advice",
                ));
            }
            let now = clock::now_micros();
            store::set_advice(conn, id, &advice, now)?;
            event(
                conn,
                case.id,
                caller.id,
                "advice_recorded",
                json!({"meeting_id": id}),
                now,
            )?;
            let meeting = store::find_meeting(conn, id)?.ok_or(ApiError::NotFound)?;
            Ok(meeting_response(meeting, expert.name))
        })
        .await?;
    Ok(HttpResponse::Ok().json(response))
}

// ---------------------------------------------------------------- plans

#[derive(Debug, Deserialize, ToSchema)]
pub struct PlanRequest {
    #[schema(value_type = RecordText)]
    pub body: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanRevision {
    #[schema(minimum = 1)]
    pub revision: i32,
    pub body: String,
    pub author_id: i64,
    pub author_name: String,
    #[schema(format = DateTime)]
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanResponse {
    /// The newest revision; null before the first is written.
    #[schema(required)]
    pub current: Option<PlanRevision>,
    /// Every revision, newest first.
    pub revisions: Vec<PlanRevision>,
}

fn plan_response(rows: Vec<store::PlanRow>) -> PlanResponse {
    let revisions: Vec<PlanRevision> = rows
        .into_iter()
        .map(|r| PlanRevision {
            revision: r.revision,
            body: r.body,
            author_id: r.author_id,
            author_name: r.author_name,
            at: clock::to_rfc3339(r.created_at),
        })
        .collect();
    PlanResponse {
        current: revisions.first().map(|r| PlanRevision {
            revision: r.revision,
            body: r.body.clone(),
            author_id: r.author_id,
            author_name: r.author_name.clone(),
            at: r.at.clone(),
        }),
        revisions,
    }
}

/// Write a new revision of the case's support plan (支援計画).
#[utoipa::path(
    tag = "cases",
    request_body = PlanRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = PlanResponse),
        (status = 403, description = "desk staff only"),
        (status = 404, description = "no such case"),
    )
)]
#[put("/api/v1/cases/{id}/support-plan")]
pub async fn write_plan(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Json<PlanRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Supporter, Role::Admin])?;
    let mut problems = Problems::default();
    let text = problems
        .required("body", body.body.as_deref())
        .and_then(|b| problems.check("body", parse_text(b, 20_000)));
    problems.into_result().map_err(ApiError::from)?;
    let text = text.expect("checked");
    let id = id.into_inner();
    let response = state
        .db
        .write(move |conn| {
            let (case, _) = visible_case(conn, &caller, id)?;
            let now = clock::now_micros();
            let revision = store::add_plan_revision(conn, case.id, &text, caller.id, now)?;
            case_store::insert_event(
                conn,
                NewEvent {
                    case_id: case.id,
                    at: now,
                    actor_id: Some(caller.id),
                    kind: "support_plan_revised",
                    from_status: None,
                    to_status: None,
                    detail: Some(json!({ "revision": revision }).to_string()),
                    desk_only: true,
                },
            )?;
            case_store::touch(conn, case.id, now)?;
            Ok::<_, ApiError>(plan_response(store::plan_revisions(conn, case.id)?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(response))
}

/// The case's support plan with every revision (desk and accepted experts).
#[utoipa::path(
    tag = "cases",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = PlanResponse),
        (status = 403, description = "a manager, or neither the desk nor an accepted expert"),
        (status = 404, description = "no such case, or not yours"),
    )
)]
#[get("/api/v1/cases/{id}/support-plan")]
pub async fn read_plan(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    refuse_managers(&caller)?;
    let id = id.into_inner();
    let response = state
        .db
        .read(move |conn| {
            let (case, view) = visible_case(conn, &caller, id)?;
            require_desk_view(view)?;
            Ok::<_, ApiError>(plan_response(store::plan_revisions(conn, case.id)?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(response))
}
