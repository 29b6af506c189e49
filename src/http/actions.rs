//! Case actions by the names a case's `allowed_actions` lists:
//! `POST /api/v1/cases/{id}/actions/{action}`, one operation per action with
//! its own body. Each calls the use case of the endpoint that does the same
//! thing (`/claim`, `/triage`, `/status` for closing), so an action and its
//! older spelling cannot behave differently.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::cases::{
    CaseResponse, StatusRequest, TriageRequest, optional_text, status_change, triage_command,
    with_etag,
};
use super::extract::{AuthUser, IfMatch, Json, OptionalJson};
use super::problem::ApiError;
use super::schema::{IfMatchValue, Note};
use crate::desk::cases::{self, CaseAction};
use crate::domain::case::{NOTE_MAX_CHARS, parse_text};
use crate::domain::lifecycle::ActionKind;
use crate::domain::validation::Problems;
use crate::domain::vocabulary::{CaseStatus, Outcome};

/// The body of `request_info`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestInfoRequest {
    /// What the applicant is asked: sent to them by mail and shown in the
    /// timeline (as the event's `reason`, as `/status` with
    /// `awaiting_info` stores its `reason`).
    #[schema(value_type = Note)]
    pub question: Option<String>,
}

/// The body of the actions that carry only a reason (`applicant_reply`,
/// `start_matching`, `start_consultation`, `withdraw`, `reopen`); it may be
/// left out.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReasonRequest {
    /// Why (kept in the timeline, which the applicant reads too); blank is
    /// no reason.
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub reason: Option<String>,
}

/// The body of `close`: `/status`'s body without `status`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CloseRequest {
    /// How the case ended. `withdrawn` is the `withdraw` action's outcome:
    /// closing with it is a 409 pointing to `withdraw`.
    #[schema(value_type = Outcome)]
    pub outcome: Option<String>,
    /// Why (kept in the timeline); blank is no reason.
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub reason: Option<String>,
    /// Required with the outcome `duplicate`, refused with any other (422):
    /// the id of the case this one duplicates (as in `/status`).
    #[schema(value_type = Option<i64>)]
    pub duplicate_of: Option<i64>,
}

/// Refuses a role that never takes `kind` (before the body is read), then
/// takes the action and answers with the case.
async fn take(
    state: &AppState,
    caller: AuthUser,
    id: i64,
    if_match: IfMatch,
    action: CaseAction,
) -> Result<HttpResponse, ApiError> {
    let snapshot = cases::take_action(&state.desk, caller, id, if_match.0, action).await?;
    Ok(with_etag(snapshot, StatusCode::OK))
}

/// A reason-only action: the optional body's reason.
fn reason_of(body: OptionalJson<ReasonRequest>) -> Result<Option<String>, ApiError> {
    let raw = body.0.and_then(|b| b.reason);
    let mut problems = Problems::default();
    let reason = optional_text(&mut problems, "reason", raw.as_deref());
    Ok(problems.finish(|| reason)?)
}

/// Take a new case for triage (`submitted → triage`); the same as `POST
/// …/claim`. No body.
#[utoipa::path(
    tag = "cases",
    operation_id = "action_claim",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "not desk staff"),
        (status = 409, description = "not submitted; `allowed_actions` lists what the caller may do now"),
        (status = 412, description = "stale If-Match"),
    )
)]
#[post("/api/v1/cases/{id}/actions/claim")]
pub async fn claim(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    cases::may_take(&caller, ActionKind::Claim)?;
    take(&state, caller, id.into_inner(), if_match, CaseAction::Claim).await
}

/// Record triage and route the case; the same body and effect as `POST
/// …/triage`.
#[utoipa::path(
    tag = "cases",
    operation_id = "action_triage",
    request_body = TriageRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "not desk staff"),
        (status = 409, description = "not in triage; `allowed_actions` lists what the caller may do now"),
        (status = 412, description = "stale If-Match"),
    )
)]
#[post("/api/v1/cases/{id}/actions/triage")]
pub async fn triage(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<TriageRequest>,
) -> Result<HttpResponse, ApiError> {
    cases::may_take(&caller, ActionKind::Triage)?;
    let command = triage_command(body.into_inner())?;
    let action = CaseAction::Triage(command);
    take(&state, caller, id.into_inner(), if_match, action).await
}

/// Ask the applicant something (`triage`, `matching`, `in_consultation` →
/// `awaiting_info`); the applicant is mailed the question, and their reply
/// (a message, or `applicant_reply`) returns the case to where it was.
#[utoipa::path(
    tag = "cases",
    operation_id = "action_request_info",
    request_body = RequestInfoRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "not desk staff"),
        (status = 409, description = "not possible from this status; `allowed_actions` lists what the caller may do now"),
        (status = 412, description = "stale If-Match"),
    )
)]
#[post("/api/v1/cases/{id}/actions/request_info")]
pub async fn request_info(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<RequestInfoRequest>,
) -> Result<HttpResponse, ApiError> {
    cases::may_take(&caller, ActionKind::RequestInfo)?;
    let mut problems = Problems::default();
    let question = problems
        .required("question", body.question.as_deref())
        .and_then(|q| problems.check("question", parse_text(q, NOTE_MAX_CHARS)));
    let action = problems.finish(|| {
        Some(CaseAction::RequestInfo {
            question: question?,
        })
    })?;
    take(&state, caller, id.into_inner(), if_match, action).await
}

/// Record the applicant's answer (`awaiting_info` → where the case was). An
/// applicant's message (`POST …/messages`) does the same and carries the
/// answer's text; desk staff use this for answers given by phone or mail.
#[utoipa::path(
    tag = "cases",
    operation_id = "action_applicant_reply",
    request_body(content = Option<ReasonRequest>, description = "optional"),
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "experts and managers"),
        (status = 404, description = "no such case, or not yours"),
        (status = 409, description = "not awaiting information; `allowed_actions` lists what the caller may do now"),
        (status = 412, description = "stale If-Match"),
        (status = 422, description = "the reason is too long"),
    )
)]
#[post("/api/v1/cases/{id}/actions/applicant_reply")]
pub async fn applicant_reply(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: OptionalJson<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    cases::may_take(&caller, ActionKind::ApplicantReply)?;
    let action = CaseAction::ApplicantReply {
        reason: reason_of(body)?,
    };
    take(&state, caller, id.into_inner(), if_match, action).await
}

/// Look for an expert after all (`in_consultation` → `matching`).
#[utoipa::path(
    tag = "cases",
    operation_id = "action_start_matching",
    request_body(content = Option<ReasonRequest>, description = "optional"),
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "not desk staff"),
        (status = 409, description = "not in consultation; `allowed_actions` lists what the caller may do now"),
        (status = 412, description = "stale If-Match"),
        (status = 422, description = "the reason is too long"),
    )
)]
#[post("/api/v1/cases/{id}/actions/start_matching")]
pub async fn start_matching(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: OptionalJson<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    cases::may_take(&caller, ActionKind::StartMatching)?;
    let action = CaseAction::StartMatching {
        reason: reason_of(body)?,
    };
    take(&state, caller, id.into_inner(), if_match, action).await
}

/// Handle a matching case directly after all (`matching` → `in_consultation`).
#[utoipa::path(
    tag = "cases",
    operation_id = "action_start_consultation",
    request_body(content = Option<ReasonRequest>, description = "optional"),
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "not desk staff"),
        (status = 409, description = "not matching; `allowed_actions` lists what the caller may do now"),
        (status = 412, description = "stale If-Match"),
        (status = 422, description = "the reason is too long"),
    )
)]
#[post("/api/v1/cases/{id}/actions/start_consultation")]
pub async fn start_consultation(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: OptionalJson<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    cases::may_take(&caller, ActionKind::StartConsultation)?;
    let action = CaseAction::StartConsultation {
        reason: reason_of(body)?,
    };
    take(&state, caller, id.into_inner(), if_match, action).await
}

/// Close the case with an outcome (any open status → `closed`); the same
/// command as `POST …/status` with `status: closed`. The applicant is mailed
/// the outcome.
#[utoipa::path(
    tag = "cases",
    operation_id = "action_close",
    request_body = CloseRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "not desk staff"),
        (status = 409, description = "closed already, or outcome `withdrawn`; `allowed_actions` lists what the caller may do now"),
        (status = 412, description = "stale If-Match"),
    )
)]
#[post("/api/v1/cases/{id}/actions/close")]
pub async fn close(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<StatusRequest>,
) -> Result<HttpResponse, ApiError> {
    cases::may_take(&caller, ActionKind::Close)?;
    // Read as `/status` reads its body, so every field it takes comes along.
    let mut body = body.into_inner();
    body.status = Some(CaseStatus::Closed.as_str().to_owned());
    let command = status_change(body)?;
    take(
        &state,
        caller,
        id.into_inner(),
        if_match,
        CaseAction::Close(command),
    )
    .await
}

/// Withdraw the case (any open status → `closed` with outcome `withdrawn`):
/// the applicant's decision, which desk staff may record for them.
#[utoipa::path(
    tag = "cases",
    operation_id = "action_withdraw",
    request_body(content = Option<ReasonRequest>, description = "optional"),
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "experts and managers"),
        (status = 404, description = "no such case, or not yours"),
        (status = 409, description = "closed already; `allowed_actions` lists what the caller may do now"),
        (status = 412, description = "stale If-Match"),
        (status = 422, description = "the reason is too long"),
    )
)]
#[post("/api/v1/cases/{id}/actions/withdraw")]
pub async fn withdraw(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: OptionalJson<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    cases::may_take(&caller, ActionKind::Withdraw)?;
    let action = CaseAction::Withdraw {
        reason: reason_of(body)?,
    };
    take(&state, caller, id.into_inner(), if_match, action).await
}

/// Reopen a closed case for follow-up (`closed` → `in_consultation`; the
/// outcome is cleared).
#[utoipa::path(
    tag = "cases",
    operation_id = "action_reopen",
    request_body(content = Option<ReasonRequest>, description = "optional"),
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "not desk staff"),
        (status = 409, description = "not closed; `allowed_actions` lists what the caller may do now"),
        (status = 412, description = "stale If-Match"),
        (status = 422, description = "the reason is too long"),
    )
)]
#[post("/api/v1/cases/{id}/actions/reopen")]
pub async fn reopen(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: OptionalJson<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    cases::may_take(&caller, ActionKind::Reopen)?;
    let action = CaseAction::Reopen {
        reason: reason_of(body)?,
    };
    take(&state, caller, id.into_inner(), if_match, action).await
}

/// Any other name under `…/actions/`: 404 naming the actions there are.
/// Registered after the actions themselves; not in the OpenAPI document,
/// which lists each action as its own path.
#[post("/api/v1/cases/{id}/actions/{action}")]
pub async fn unknown_action(path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (_, action) = path.into_inner();
    let names: Vec<&str> = ActionKind::CASE_ACTIONS.map(ActionKind::as_str).to_vec();
    Err(ApiError::NoSuchPath(format!(
        "there is no case action {action:?}; the actions are: {}",
        names.join(", ")
    )))
}
