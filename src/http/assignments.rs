//! Assignments of experts to cases, meetings (面談) and support plans (支援計画):
//! requests parsed into the commands of `crate::desk::assignments` and
//! `crate::desk::meetings`, their results shaped as JSON.

use actix_web::{HttpResponse, get, patch, post, put, web};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::{AuthUser, Json, body};
use super::problem::ApiError;
use super::schema::{
    AssignmentFilter, AssignmentRole, AssignmentStatus, MeetingMode, Note, RecordText,
};
use crate::clock;
use crate::db::assignments::AssignmentRow;
use crate::desk::assignments::{self, MyAssignment};
use crate::desk::cases::refuse_managers;
use crate::desk::meetings::{self, Meeting, SupportPlan};
use crate::domain::case::{NOTE_MAX_CHARS, parse_text};
use crate::domain::meeting::VideoUrl;
use crate::domain::time::parse_timestamp;
use crate::domain::validation::Problems;
use crate::domain::vocabulary;

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
    caller.require(assignments::PROPOSERS)?;
    let mut problems = Problems::default();
    let expert_id = body.expert_id;
    if expert_id.is_none() {
        problems.push("expert_id", "is required");
    }
    let role = match body.role.as_deref() {
        None => Some(vocabulary::AssignmentRole::Member),
        Some(role) => problems.check(
            "role",
            role.parse::<vocabulary::AssignmentRole>()
                .map_err(|_| "must be lead or member"),
        ),
    };
    let command = problems.finish(|| {
        Some(assignments::Assign {
            expert_id: expert_id?,
            role: role?,
        })
    })?;
    let row = assignments::assign(&state.desk, caller, id.into_inner(), command).await?;
    Ok(HttpResponse::Created().json(assignment_response(row)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AcceptRequest {
    /// The confidentiality terms version the expert read
    /// (`GET /api/v1/terms/confidentiality`); when given it must be the
    /// current one (409 otherwise).
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
        (status = 409, description = "not proposed any more, or `terms_version` is not the current version (the problem names it as `terms_version` and where to read the terms as `terms`: GET /api/v1/terms/confidentiality)"),
    )
)]
#[post("/api/v1/assignments/{id}/accept")]
pub async fn accept(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Option<Json<AcceptRequest>>,
) -> Result<HttpResponse, ApiError> {
    let command = assignments::Accept {
        terms_version: body.and_then(|b| b.into_inner().terms_version),
    };
    let row = assignments::accept(&state.desk, caller, id.into_inner(), command).await?;
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
    caller.require(assignments::EXPERTS)?;
    let mut problems = Problems::default();
    let reason = problems
        .required("reason", body.reason.as_deref())
        .and_then(|r| problems.check("reason", parse_text(r, NOTE_MAX_CHARS)));
    let command = problems.finish(|| Some(assignments::Decline { reason: reason? }))?;
    let row = assignments::decline(&state.desk, caller, id.into_inner(), command).await?;
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
    let row = assignments::withdraw(&state.desk, caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(assignment_response(row)))
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
    let row = assignments::complete(&state.desk, caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(assignment_response(row)))
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
    caller.require(assignments::EXPERTS)?;
    let mut problems = Problems::default();
    let filter = match query.status.as_deref() {
        None | Some("active") => Some(assignments::AssignmentFilter::Active),
        Some("all") => Some(assignments::AssignmentFilter::All),
        Some(_) => {
            problems.push("status", "must be active or all");
            None
        }
    };
    let filter = problems.finish(|| filter)?;
    let mine = assignments::my_assignments(&state.desk, caller, filter).await?;
    let items = mine
        .into_iter()
        .map(
            |MyAssignment {
                 assignment,
                 case_number,
                 case_title,
             }| QueueEntry {
                assignment: assignment_response(assignment),
                case_number,
                case_title,
            },
        )
        .collect();
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
    let shown = assignments::case_assignments(&state.desk, caller, id.into_inner()).await?;
    let items = shown
        .into_iter()
        .map(|shown| CaseAssignment {
            assignment: assignment_response(shown.assignment),
            expert_name: shown.expert_name,
        })
        .collect();
    Ok(HttpResponse::Ok().json(CaseAssignmentList { items }))
}

// ---------------------------------------------------------------- meetings

#[derive(Debug, Deserialize, ToSchema)]
pub struct MeetingRequest {
    /// A registered expert with an accepted assignment on the case.
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(value_type = i64, required)]
    pub expert_id: Option<i64>,
    /// RFC 3339 with offset, in the future (422 otherwise: a meeting that
    /// took place is recorded with `POST /api/v1/cases/{id}/meetings/records`).
    #[schema(value_type = String, format = DateTime, example = "2036-12-03T10:00:00+09:00")]
    pub starts_at: Option<String>,
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(value_type = i32, required, minimum = 5, maximum = 480)]
    pub duration_minutes: Option<i32>,
    #[schema(value_type = MeetingMode)]
    pub mode: Option<String>,
    /// The video-call link, put in the invitation mail and its .ics:
    /// `https://` only, at most 2,000 characters; null or absent: none.
    #[schema(value_type = Option<String>, max_length = 2000, pattern = "^https://\\S+$", example = "https://meet.example.com/abc-defg-hij")]
    pub video_url: Option<String>,
    /// The advice given, once the meeting took place; blank is none.
    #[schema(value_type = Option<String>, max_length = 20000)]
    pub advice_summary: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MeetingRecordRequest {
    /// A registered expert with an accepted (or completed) assignment on the
    /// case.
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(value_type = i64, required)]
    pub expert_id: Option<i64>,
    /// RFC 3339 with offset, in the past (422 otherwise).
    #[schema(value_type = String, format = DateTime, example = "2026-11-20T10:00:00+09:00")]
    pub starts_at: Option<String>,
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(value_type = i32, required, minimum = 5, maximum = 480)]
    pub duration_minutes: Option<i32>,
    #[schema(value_type = MeetingMode)]
    pub mode: Option<String>,
    /// What the meeting was about; blank is none.
    #[schema(value_type = Option<String>, max_length = 20000)]
    pub notes: Option<String>,
    /// The advice given; blank is none.
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
    /// The video-call link of the invitation.
    #[schema(required)]
    pub video_url: Option<String>,
    /// true: recorded after it took place (no invitation was mailed);
    /// false: scheduled, with an invitation.
    pub recorded: bool,
    /// What a recorded meeting was about.
    #[schema(required)]
    pub notes: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeetingList {
    pub items: Vec<MeetingResponse>,
}

fn meeting_response(Meeting { row, expert_name }: Meeting) -> MeetingResponse {
    MeetingResponse {
        id: row.id,
        case_id: row.case_id,
        expert_id: row.expert_id,
        expert_name,
        starts_at: clock::to_rfc3339(row.starts_at),
        duration_minutes: row.duration_minutes,
        mode: row.mode,
        advice_summary: row.advice_summary,
        video_url: row.video_url,
        recorded: row.recorded,
        notes: row.notes,
    }
}

/// The fields scheduling and recording share, checked; `None` for each one
/// that recorded a problem.
struct MeetingFields {
    expert_id: Option<i64>,
    starts_at: Option<DateTime<FixedOffset>>,
    duration_minutes: Option<i32>,
    mode: Option<vocabulary::MeetingMode>,
}

fn meeting_fields(
    problems: &mut Problems,
    expert_id: Option<i64>,
    starts_at: Option<&str>,
    duration_minutes: Option<i32>,
    mode: Option<&str>,
) -> MeetingFields {
    if expert_id.is_none() {
        problems.push("expert_id", "is required");
    }
    let starts_at = problems
        .required("starts_at", starts_at)
        .and_then(|s| problems.check("starts_at", parse_timestamp(s)));
    let duration_minutes = match duration_minutes {
        Some(d) if meetings::DURATION_MINUTES.contains(&d) => Some(d),
        Some(_) => {
            problems.push("duration_minutes", "must be from 5 to 480");
            None
        }
        None => {
            problems.push("duration_minutes", "is required");
            None
        }
    };
    let mode = problems.required("mode", mode).and_then(|m| {
        problems.check(
            "mode",
            m.parse::<vocabulary::MeetingMode>()
                .map_err(|_| "must be online or onsite"),
        )
    });
    MeetingFields {
        expert_id,
        starts_at,
        duration_minutes,
        mode,
    }
}

/// Optional text: absent or blank is none.
fn optional_text(
    problems: &mut Problems,
    field: &str,
    raw: Option<&str>,
    max_chars: usize,
) -> Option<Option<String>> {
    match raw {
        None => Some(None),
        Some(text) if text.trim().is_empty() => Some(None),
        Some(text) => problems.check(field, parse_text(text, max_chars)).map(Some),
    }
}

/// Schedule a meeting (面談) of an expert on a case; the applicant and the
/// expert are mailed an invitation with an .ics file.
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
    caller.require(meetings::RECORDERS)?;
    let body = body.into_inner();
    let mut problems = Problems::default();
    let fields = meeting_fields(
        &mut problems,
        body.expert_id,
        body.starts_at.as_deref(),
        body.duration_minutes,
        body.mode.as_deref(),
    );
    let video_url = match body.video_url.as_deref() {
        None => Some(None),
        Some(url) => problems.check("video_url", VideoUrl::parse(url)).map(Some),
    };
    let advice = optional_text(
        &mut problems,
        "advice_summary",
        body.advice_summary.as_deref(),
        meetings::ADVICE_MAX_CHARS,
    );
    let command = problems.finish(|| {
        Some(meetings::ScheduleMeeting {
            expert_id: fields.expert_id?,
            starts_at: fields.starts_at?,
            duration_minutes: fields.duration_minutes?,
            mode: fields.mode?,
            video_url: video_url?,
            advice_summary: advice?,
        })
    })?;
    let meeting = meetings::schedule_meeting(&state.desk, caller, id.into_inner(), command).await?;
    Ok(HttpResponse::Created().json(meeting_response(meeting)))
}

/// Record a meeting that took place already; nobody is mailed. It is
/// listed with the case's meetings with `recorded: true`.
#[utoipa::path(
    tag = "experts",
    request_body = MeetingRecordRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 201, body = MeetingResponse),
        (status = 403, description = "neither the desk nor an accepted expert, or an expert recording another's meeting"),
        (status = 404, description = "no such case, or not yours"),
        (status = 409, description = "the expert has neither accepted nor completed an assignment on this case, or the case is closed"),
    )
)]
#[post("/api/v1/cases/{id}/meetings/records")]
pub async fn record_meeting(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Json<MeetingRecordRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(meetings::RECORDERS)?;
    let body = body.into_inner();
    let mut problems = Problems::default();
    let fields = meeting_fields(
        &mut problems,
        body.expert_id,
        body.starts_at.as_deref(),
        body.duration_minutes,
        body.mode.as_deref(),
    );
    let notes = optional_text(
        &mut problems,
        "notes",
        body.notes.as_deref(),
        meetings::NOTES_MAX_CHARS,
    );
    let advice = optional_text(
        &mut problems,
        "advice_summary",
        body.advice_summary.as_deref(),
        meetings::ADVICE_MAX_CHARS,
    );
    let command = problems.finish(|| {
        Some(meetings::RecordMeeting {
            expert_id: fields.expert_id?,
            starts_at: fields.starts_at?,
            duration_minutes: fields.duration_minutes?,
            mode: fields.mode?,
            notes: notes?,
            advice_summary: advice?,
        })
    })?;
    let meeting = meetings::record_meeting(&state.desk, caller, id.into_inner(), command).await?;
    Ok(HttpResponse::Created().json(meeting_response(meeting)))
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
    let found = meetings::meetings(&state.desk, caller, id.into_inner()).await?;
    let items = found.into_iter().map(meeting_response).collect();
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
        .and_then(|a| problems.check("advice_summary", parse_text(a, meetings::ADVICE_MAX_CHARS)));
    let command = problems.finish(|| {
        Some(meetings::RecordAdvice {
            advice_summary: advice?,
        })
    })?;
    let meeting = meetings::record_advice(&state.desk, caller, id.into_inner(), command).await?;
    Ok(HttpResponse::Ok().json(meeting_response(meeting)))
}

// ---------------------------------------------------------------- plans

#[derive(Debug, Deserialize, ToSchema)]
pub struct PlanRequest {
    #[schema(value_type = RecordText)]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanRevision {
    #[schema(minimum = 1)]
    pub revision: i32,
    /// `plan`: the desk's text, which the startup reads; `proposal`: an
    /// accepted expert's proposed text, for the desk.
    #[schema(value_type = String, example = "plan")]
    pub kind: &'static str,
    pub body: String,
    pub author_id: i64,
    pub author_name: String,
    #[schema(format = DateTime)]
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanResponse {
    /// The newest revision the desk wrote (the plan, never a proposal);
    /// null before the first.
    #[schema(required)]
    pub current: Option<PlanRevision>,
    /// Every revision, newest first, proposals included; for the startup
    /// only the current plan.
    pub revisions: Vec<PlanRevision>,
}

fn plan_response(plan: SupportPlan) -> PlanResponse {
    let revisions: Vec<PlanRevision> = plan
        .revisions
        .into_iter()
        .map(|(kind, r)| PlanRevision {
            revision: r.revision,
            kind: kind.as_str(),
            body: r.body,
            author_id: r.author_id,
            author_name: r.author_name,
            at: clock::to_rfc3339(r.created_at),
        })
        .collect();
    PlanResponse {
        current: revisions.iter().find(|r| r.kind == "plan").cloned(),
        revisions,
    }
}

/// Write a new revision of the case's support plan (支援計画): the plan when
/// the desk writes it, a proposal when an accepted expert does.
#[utoipa::path(
    tag = "cases",
    request_body = PlanRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = PlanResponse),
        (status = 403, description = "applicants and managers, or an expert who has not accepted"),
        (status = 404, description = "no such case, or not yours"),
    )
)]
#[put("/api/v1/cases/{id}/support-plan")]
pub async fn write_plan(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Json<PlanRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(meetings::PLANNERS)?;
    let mut problems = Problems::default();
    let text = problems
        .required("body", body.body.as_deref())
        .and_then(|b| problems.check("body", parse_text(b, meetings::PLAN_MAX_CHARS)));
    let command = problems.finish(|| Some(meetings::WritePlan { body: text? }))?;
    let plan = meetings::write_plan(&state.desk, caller, id.into_inner(), command).await?;
    Ok(HttpResponse::Ok().json(plan_response(plan)))
}

/// The case's support plan: every revision for the desk and accepted
/// experts, the current plan alone for the startup.
#[utoipa::path(
    tag = "cases",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = PlanResponse),
        (status = 403, description = "a manager, or an expert who has not accepted"),
        (status = 404, description = "no such case, or not yours"),
    )
)]
#[get("/api/v1/cases/{id}/support-plan")]
pub async fn read_plan(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let plan = meetings::support_plan(&state.desk, caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(plan_response(plan)))
}
