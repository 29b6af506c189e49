//! Cases: intake, reading, listing, lifecycle actions, timeline, messages.

use actix_web::http::{StatusCode, header};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, get, patch, post, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::{AuthUser, IfMatch, Json, body};
use super::problem::ApiError;
use super::schema::{
    CaseCursor, CaseStage, Categories, IfMatchValue, LongText, OrganizationName, Title,
};
use crate::clock;
use crate::desk::cases::{self, CaseSnapshot, TimelineEvent};
use crate::domain::case::{self, CaseView, IntakeForm, NOTE_MAX_CHARS, parse_text};
use crate::domain::lifecycle::ActionKind;
use crate::domain::role::Role;
use crate::domain::validation::Problems;
use crate::domain::vocabulary::{
    CaseStatus, Category, Lang, MessageVisibility, OrganizationKind, Outcome, Priority,
    ProductType, Route, Stage,
};

/// An optional free text: blank is none; too long is a problem of `field`.
/// `Some(None)` when absent or blank, `None` when refused.
pub(crate) fn optional_text(
    problems: &mut Problems,
    field: &str,
    raw: Option<&str>,
) -> Option<Option<String>> {
    match raw.filter(|t| !t.trim().is_empty()) {
        None => Some(None),
        Some(text) => problems
            .check(field, parse_text(text, NOTE_MAX_CHARS))
            .map(Some),
    }
}

// ---------------------------------------------------------------- shapes

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationRef {
    pub id: i64,
    pub name: String,
    #[schema(value_type = OrganizationKind)]
    pub kind: OrganizationKind,
}

/// Another case, named by a duplicate link.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseLink {
    pub id: i64,
    #[schema(example = "MD-2026-00041")]
    pub number: String,
}

impl From<cases::CaseRef> for CaseLink {
    fn from(case: cases::CaseRef) -> Self {
        CaseLink {
            id: case.id,
            number: case.number,
        }
    }
}

/// A case as its reader may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseResponse {
    pub id: i64,
    #[schema(example = "MD-2026-00042")]
    pub number: String,
    pub title: String,
    /// Absent for an expert who has not accepted the assignment yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub description: Option<String>,
    /// As the applicant filed it.
    #[schema(value_type = ProductType)]
    pub product_type: ProductType,
    /// As the applicant filed them.
    #[schema(value_type = Vec<Category>)]
    pub categories: Vec<Category>,
    #[schema(value_type = CaseStage)]
    pub stage: String,
    #[schema(value_type = Lang)]
    pub language: Lang,
    pub organization: OrganizationRef,
    #[schema(value_type = CaseStatus)]
    pub status: CaseStatus,
    /// Set once the case is closed.
    #[schema(required, value_type = Option<Outcome>)]
    pub outcome: Option<Outcome>,
    #[schema(required, value_type = Option<Priority>)]
    pub priority: Option<Priority>,
    /// The product type triage confirmed.
    #[schema(required, value_type = Option<ProductType>)]
    pub confirmed_product_type: Option<ProductType>,
    /// The categories triage confirmed.
    #[schema(required, value_type = Option<Vec<Category>>)]
    pub confirmed_categories: Option<Vec<Category>>,
    #[schema(required, value_type = Option<Route>)]
    pub route: Option<Route>,
    /// The organisation a referred case was sent to.
    #[schema(required)]
    pub refer_to: Option<String>,
    /// The supporter who claimed it (shown to desk staff only).
    #[schema(required)]
    pub claimed_by: Option<i64>,
    #[schema(format = DateTime)]
    pub received_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Send it back in `If-Match` to make a write conditional.
    #[schema(minimum = 1)]
    pub version: i64,
    /// What the reader may do now (from the lifecycle rules).
    pub allowed_actions: Vec<ActionKind>,
    /// The case this one was closed as a duplicate of (outcome
    /// `duplicate`); null otherwise, and null for a reader who may not read
    /// that case (another organisation's, or one an expert is not assigned
    /// to).
    #[schema(required)]
    pub duplicate_of: Option<CaseLink>,
    /// The cases closed as duplicates of this one, by id; only those the
    /// reader may read.
    pub duplicates: Vec<CaseLink>,
}

/// The case as the JSON API shows it.
pub(crate) fn case_response(snapshot: CaseSnapshot) -> CaseResponse {
    let CaseSnapshot {
        row,
        categories,
        view,
        allowed_actions,
        duplicate_of,
        duplicates,
    } = snapshot;
    let desk = view == CaseView::Desk;
    CaseResponse {
        id: row.id,
        number: row.number,
        title: row.title,
        description: (view != CaseView::ExpertSummary).then_some(row.description),
        product_type: row.product_type,
        categories: categories.applicant,
        stage: row
            .stage
            .map_or(crate::db::import::UNRECORDED_STAGE, Stage::as_str)
            .to_owned(),
        language: row.language,
        organization: OrganizationRef {
            id: row.organization_id,
            name: row.organization_name,
            kind: row.organization_kind,
        },
        status: row.status,
        outcome: row.outcome,
        priority: row.priority,
        confirmed_product_type: row.confirmed_product_type,
        confirmed_categories: (!categories.confirmed.is_empty()).then_some(categories.confirmed),
        route: row.route,
        refer_to: row.refer_to,
        claimed_by: if desk { row.claimed_by } else { None },
        received_at: clock::to_rfc3339(row.received_at),
        updated_at: clock::to_rfc3339(row.updated_at),
        version: row.version,
        allowed_actions,
        duplicate_of: duplicate_of.map(CaseLink::from),
        duplicates: duplicates.into_iter().map(CaseLink::from).collect(),
    }
}

/// The case with its version in `ETag`.
pub(crate) fn with_etag(snapshot: CaseSnapshot, status: StatusCode) -> HttpResponse {
    let response = case_response(snapshot);
    HttpResponse::build(status)
        .insert_header((header::ETAG, format!("\"{}\"", response.version)))
        .json(response)
}

// ---------------------------------------------------------------- intake

#[derive(Debug, Deserialize, ToSchema)]
pub struct OrganizationInput {
    /// Checked, but the case records the organisation as registered.
    #[schema(value_type = Option<OrganizationName>)]
    pub name: Option<String>,
    /// The registered kind when absent.
    #[schema(value_type = Option<OrganizationKind>)]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCaseRequest {
    #[schema(value_type = Title)]
    pub title: Option<String>,
    /// Stored verbatim.
    #[schema(value_type = LongText)]
    pub description: Option<String>,
    #[schema(value_type = ProductType)]
    pub product_type: Option<String>,
    #[schema(value_type = Categories, example = json!(["regulatory", "reimbursement"]))]
    pub categories: Option<Vec<String>>,
    #[schema(value_type = Stage)]
    pub stage: Option<String>,
    #[serde(default, deserialize_with = "body::object")]
    pub organization: Option<OrganizationInput>,
    /// `ja` when absent.
    #[schema(value_type = Option<Lang>)]
    pub language: Option<String>,
    /// Required when supporters and admins file on an applicant's behalf:
    /// that applicant; ignored for applicants.
    #[serde(default, deserialize_with = "body::optional_integer")]
    pub applicant_id: Option<i64>,
}

/// File a consultation request.
#[utoipa::path(
    tag = "cases",
    request_body = CreateCaseRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "experts and managers do not file cases"),
    )
)]
#[post("/api/v1/cases")]
pub async fn create_case(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: Json<CreateCaseRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(cases::FILERS)?;
    let body = body.into_inner();
    let form = IntakeForm {
        title: body.title.as_deref(),
        description: body.description.as_deref(),
        product_type: body.product_type.as_deref(),
        categories: body.categories.as_deref(),
        stage: body.stage.as_deref(),
        language: body.language.as_deref(),
        organization_name: body.organization.as_ref().and_then(|o| o.name.as_deref()),
        organization_kind: body.organization.as_ref().and_then(|o| o.kind.as_deref()),
    };
    let command = cases::FileCase {
        intake: form.validate()?,
        applicant_id: body.applicant_id,
    };
    let snapshot = cases::file_case(&state.desk, caller, command).await?;
    Ok(with_etag(snapshot, StatusCode::CREATED))
}

// ---------------------------------------------------------------- corrections

/// The fields of a case an applicant may correct while it is `submitted`.
/// Absent (or null) fields stay as they are; `{}` changes nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditCaseRequest {
    #[schema(value_type = Option<Title>)]
    pub title: Option<String>,
    /// Stored verbatim.
    #[schema(value_type = Option<LongText>)]
    pub description: Option<String>,
    #[schema(value_type = Option<ProductType>)]
    pub product_type: Option<String>,
    #[schema(value_type = Option<Categories>)]
    pub categories: Option<Vec<String>>,
    #[schema(value_type = Option<Stage>)]
    pub stage: Option<String>,
}

/// Correct a case the desk has not taken up yet: title, description, product
/// type, categories and stage, checked as at filing. The timeline records an
/// `edited` event naming the changed fields; the statistics follow the
/// product type and categories.
#[utoipa::path(
    tag = "cases",
    request_body = EditCaseRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "experts and managers"),
        (status = 404, description = "no such case, or not yours"),
        (status = 409, description = "the case is no longer `submitted` (the desk has taken it up); lists the allowed actions"),
        (status = 412, description = "stale If-Match"),
    )
)]
#[patch("/api/v1/cases/{id}")]
pub async fn edit_case(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<EditCaseRequest>,
) -> Result<HttpResponse, ApiError> {
    cases::refuse_managers(&caller)?;
    caller.require(cases::FILERS)?;
    let body = body.into_inner();
    let edit = case::EditForm {
        title: body.title.as_deref(),
        description: body.description.as_deref(),
        product_type: body.product_type.as_deref(),
        categories: body.categories.as_deref(),
        stage: body.stage.as_deref(),
    }
    .validate()?;
    let snapshot = cases::edit_case(&state.desk, caller, id.into_inner(), if_match.0, edit).await?;
    Ok(with_etag(snapshot, StatusCode::OK))
}

// ---------------------------------------------------------------- reading

/// Read a case.
#[utoipa::path(
    tag = "cases",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "managers"),
        (status = 404, description = "no such case, or not yours"),
    )
)]
#[get("/api/v1/cases/{id}")]
pub async fn get_case(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let snapshot = cases::read_case(&state.desk, caller, id.into_inner()).await?;
    Ok(with_etag(snapshot, StatusCode::OK))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    #[param(value_type = CaseStatus, required = false)]
    pub status: Option<String>,
    #[param(value_type = ProductType, required = false)]
    pub product_type: Option<String>,
    #[param(value_type = Category, required = false)]
    pub category: Option<String>,
    /// Text search in title and description (desk staff only: 422 for
    /// others); blank searches nothing.
    #[param(value_type = String, required = false, max_length = 200)]
    pub q: Option<String>,
    /// Page size; 20 when absent.
    #[param(value_type = i64, required = false, minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    #[param(value_type = CaseCursor, required = false)]
    pub cursor: Option<String>,
    /// Cases this expert is actively assigned to (desk staff only: 422 for
    /// others).
    #[param(value_type = i64, required = false)]
    pub expert_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseList {
    pub items: Vec<CaseResponse>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

fn case_query(query: ListQuery) -> Result<cases::CaseQuery, ApiError> {
    let mut problems = Problems::default();
    let status = query
        .status
        .as_deref()
        .map(|s| problems.check("status", s.parse::<CaseStatus>()));
    let product_type = query
        .product_type
        .as_deref()
        .map(|p| problems.check("product_type", p.parse::<ProductType>()));
    let category = query
        .category
        .as_deref()
        .map(|c| problems.check("category", c.parse::<Category>()));
    Ok(problems.finish(|| {
        Some(cases::CaseQuery {
            status: status.map_or(Some(None), |s| s.map(Some))?,
            product_type: product_type.map_or(Some(None), |p| p.map(Some))?,
            category: category.map_or(Some(None), |c| c.map(Some))?,
            // Blank searches nothing.
            text: query
                .q
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(str::to_owned),
            expert_id: query.expert_id,
            before: query.cursor,
            limit: query.limit.unwrap_or(cases::CaseQuery::DEFAULT_LIMIT),
        })
    })?)
}

/// List the cases the caller may see, newest first.
#[utoipa::path(
    tag = "cases",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = CaseList),
        (status = 403, description = "managers"),
    )
)]
#[get("/api/v1/cases")]
pub async fn list_cases(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = case_query(query.into_inner())?;
    let cases::CasePage {
        items,
        next_cursor,
        shared_rows,
    } = cases::list_cases(&state.desk, caller, query).await?;
    // A page of the desk's or of an organisation's list is the same for
    // every read by one caller until a case changes (the actions offered
    // are the caller's; see `rendered`).
    json_bytes(
        state
            .list_bodies
            .get_or_render(shared_rows.as_ref(), caller, || {
                serde_json::to_vec(&CaseList {
                    items: items.into_iter().map(case_response).collect(),
                    next_cursor,
                })
            }),
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItem {
    pub id: i64,
    pub number: String,
    pub title: String,
    /// `submitted` or `triage`.
    #[schema(value_type = CaseStatus)]
    pub status: String,
    #[schema(value_type = ProductType)]
    pub product_type: String,
    pub organization: String,
    #[schema(format = DateTime)]
    pub received_at: String,
    /// Whole seconds from the second the case was received to the second
    /// of the answer (never negative).
    #[schema(minimum = 0)]
    pub age_seconds: i64,
    #[schema(required)]
    pub claimed_by: Option<i64>,
    #[schema(minimum = 1)]
    pub version: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TriageQueue {
    pub items: Vec<QueueItem>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct QueueQuery {
    /// Page size; 100 when absent.
    #[param(value_type = i64, required = false, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Untriaged cases (submitted, or claimed and not yet triaged), oldest first.
#[utoipa::path(
    tag = "cases",
    security(("bearer" = [])),
    params(QueueQuery),
    responses(
        (status = 200, body = TriageQueue),
        (status = 403, description = "desk staff only"),
    )
)]
#[get("/api/v1/triage-queue")]
pub async fn triage_queue(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(cases::QUEUE_DEFAULT_LIMIT);
    let queue = cases::triage_queue(&state.desk, caller, limit).await?;
    // Within one second and while no case changes, every supporter gets
    // the same bytes (see `rendered`).
    json_bytes(state.queue_bodies.get_or_render(
        queue.cases.if_shared(),
        queue.as_of_second,
        || serde_json::to_vec(&TriageQueue::from(&queue)),
    ))
}

/// A JSON body written by serde_json, as the answer.
fn json_bytes(body: serde_json::Result<Bytes>) -> Result<HttpResponse, ApiError> {
    let body = body.map_err(|error| ApiError::Internal(error.into()))?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::mime::APPLICATION_JSON)
        .body(body))
}

impl From<&cases::TriageQueue> for TriageQueue {
    fn from(queue: &cases::TriageQueue) -> Self {
        let items = queue
            .cases
            .rows
            .iter()
            .map(|case| QueueItem {
                id: case.id,
                number: case.number.clone(),
                title: case.title.clone(),
                status: case.status.clone(),
                product_type: case.product_type.clone(),
                organization: case.organization_name.clone(),
                received_at: clock::to_rfc3339(case.received_at),
                age_seconds: queue.age_seconds(case),
                claimed_by: case.claimed_by,
                version: case.version,
            })
            .collect();
        TriageQueue { items }
    }
}

// ---------------------------------------------------------------- lifecycle

/// Take a new case for triage: `submitted → triage`.
#[utoipa::path(
    tag = "cases",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "not desk staff"),
        (status = 409, description = "already claimed, or not submitted; lists allowed actions"),
        (status = 412, description = "stale If-Match"),
    )
)]
#[post("/api/v1/cases/{id}/claim")]
pub async fn claim(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let snapshot = cases::claim(&state.desk, caller, id.into_inner(), if_match.0).await?;
    Ok(with_etag(snapshot, StatusCode::OK))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TriageRequest {
    #[schema(value_type = Priority)]
    pub priority: Option<String>,
    /// The confirmed product type.
    #[schema(value_type = ProductType)]
    pub product_type: Option<String>,
    /// The confirmed categories.
    #[schema(value_type = Categories)]
    pub categories: Option<Vec<String>>,
    #[schema(value_type = Route)]
    pub route: Option<String>,
    /// Internal note (desk side only); blank is no note.
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub note: Option<String>,
    /// Required with route `refer`, refused with any other: the
    /// organisation referred to.
    #[schema(value_type = Option<OrganizationName>)]
    pub refer_to: Option<String>,
}

/// Record triage and route the case.
#[utoipa::path(
    tag = "cases",
    request_body = TriageRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "not desk staff"),
        (status = 409, description = "the case is not in triage; lists allowed actions"),
        (status = 412, description = "stale If-Match"),
    )
)]
#[post("/api/v1/cases/{id}/triage")]
pub async fn triage(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<TriageRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(cases::DESK_STAFF)?;
    let command = triage_command(body.into_inner())?;
    let snapshot = cases::triage(&state.desk, caller, id.into_inner(), if_match.0, command).await?;
    Ok(with_etag(snapshot, StatusCode::OK))
}

/// The triage body as the command `/triage` and the `triage` action share.
pub(crate) fn triage_command(body: TriageRequest) -> Result<cases::Triage, ApiError> {
    Ok(cases::TriageFields {
        priority: body.priority.as_deref(),
        product_type: body.product_type.as_deref(),
        categories: body.categories.as_deref(),
        route: body.route.as_deref(),
        note: body.note.as_deref(),
        refer_to: body.refer_to.as_deref(),
    }
    .parse()?)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusRequest {
    /// The status to move to.
    #[schema(value_type = CaseStatus)]
    pub status: Option<String>,
    /// Required when staff close a case (applicants withdrawing may omit it).
    #[schema(value_type = Option<Outcome>)]
    pub outcome: Option<String>,
    /// Why (kept in the timeline); blank is no reason.
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub reason: Option<String>,
    /// Required with the outcome `duplicate`, refused with any other (422):
    /// the id of the case this one duplicates — another case, visible to
    /// the caller, not itself closed as a duplicate (name its original
    /// instead); a case that others duplicate is not closed as a duplicate.
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(value_type = Option<i64>)]
    pub duplicate_of: Option<i64>,
}

/// Move a case along its lifecycle (ask for information, reopen, close, withdraw …).
#[utoipa::path(
    tag = "cases",
    request_body = StatusRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 200, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "a manager, or a role that may not make this change"),
        (status = 409, description = "impossible transition (lists allowed actions), or the case named in `duplicate_of` changed meanwhile"),
        (status = 412, description = "stale If-Match"),
        (status = 422, description = "a bad field; `duplicate_of` missing with the outcome `duplicate`, given with another, naming this case, a case the caller cannot see, or a duplicate (name its original); or this case is the original of others"),
    )
)]
#[post("/api/v1/cases/{id}/status")]
pub async fn change_status(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<StatusRequest>,
) -> Result<HttpResponse, ApiError> {
    let command = status_change(body.into_inner())?;
    let snapshot =
        cases::change_status(&state.desk, caller, id.into_inner(), if_match.0, command).await?;
    Ok(with_etag(snapshot, StatusCode::OK))
}

/// The status body as the command `/status` and the `close` action share.
pub(crate) fn status_change(body: StatusRequest) -> Result<cases::StatusChange, ApiError> {
    let mut problems = Problems::default();
    let to = problems
        .required("status", body.status.as_deref())
        .and_then(|s| problems.check("status", s.parse::<CaseStatus>()));
    let outcome = body
        .outcome
        .as_deref()
        .map(|o| problems.check("outcome", o.parse::<Outcome>()));
    let reason = optional_text(&mut problems, "reason", body.reason.as_deref());
    Ok(problems.finish(|| {
        Some(cases::StatusChange {
            to: to?,
            outcome: outcome.map_or(Some(None), |o| o.map(Some))?,
            reason: reason?,
            duplicate_of: body.duplicate_of,
        })
    })?)
}

// ---------------------------------------------------------------- timeline

#[derive(Debug, Serialize, ToSchema)]
pub struct Person {
    pub id: i64,
    pub name: String,
    #[schema(value_type = Role)]
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventResponse {
    pub id: i64,
    #[schema(format = DateTime)]
    pub at: String,
    /// Null for changes made by the system.
    #[schema(required)]
    pub actor: Option<Person>,
    #[schema(example = "claimed")]
    pub kind: String,
    /// The status before a status change; null for other events.
    #[schema(required, value_type = Option<CaseStatus>)]
    pub from: Option<String>,
    /// The status after a status change; null for other events.
    #[schema(required, value_type = Option<CaseStatus>)]
    pub to: Option<String>,
    /// What the event records, by kind (`{}` when nothing more).
    #[schema(value_type = Object)]
    pub detail: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub items: Vec<EventResponse>,
}

/// The case's timeline, oldest first.
#[utoipa::path(
    tag = "cases",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = EventList),
        (status = 403, description = "managers"),
        (status = 404, description = "no such case, or not yours"),
    )
)]
#[get("/api/v1/cases/{id}/events")]
pub async fn events(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let timeline = cases::timeline(&state.desk, caller, id.into_inner()).await?;
    let items = timeline
        .into_iter()
        .map(|TimelineEvent { event, detail }| EventResponse {
            id: event.id,
            at: clock::to_rfc3339(event.at),
            actor: match (event.actor_id, event.actor_name, event.actor_role) {
                (Some(id), Some(name), Some(role)) => Some(Person { id, name, role }),
                _ => None,
            },
            kind: event.kind,
            from: event.from_status,
            to: event.to_status,
            detail,
        })
        .collect();
    Ok(HttpResponse::Ok().json(EventList { items }))
}

// ---------------------------------------------------------------- messages

#[derive(Debug, Deserialize, ToSchema)]
pub struct MessageRequest {
    /// Stored verbatim.
    #[schema(value_type = LongText)]
    pub body: Option<String>,
    /// Who reads the message: `internal` (the desk side only: desk staff
    /// and the experts who accepted) or `applicant` (the applicant too).
    /// Required of desk staff and experts, who must choose every time (422
    /// naming `visibility` when it is missing); applicants may leave it out
    /// and always write `applicant` messages (403 for `internal`).
    #[schema(value_type = Option<MessageVisibility>)]
    pub visibility: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    pub id: i64,
    #[schema(format = DateTime)]
    pub at: String,
    pub author: Person,
    #[schema(value_type = MessageVisibility)]
    pub visibility: String,
    pub body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    pub items: Vec<MessageResponse>,
}

/// Write a message on a case. An applicant's message answers an
/// information request: the case goes back to where it was.
#[utoipa::path(
    tag = "cases",
    request_body = MessageRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<IfMatchValue>, Header, description = "the version you read; 412 when it is not current")),
    responses(
        (status = 201, body = MessageResponse),
        (status = 403, description = "an applicant asking for internal visibility, an expert who has not accepted the assignment, or a manager"),
        (status = 422, description = "no or too long `body`; `visibility` missing from desk staff or an expert, or not `internal`/`applicant`"),
        (status = 404, description = "no such case, or not yours"),
        (status = 409, description = "the case changed while the answer to an information request was stored"),
        (status = 412, description = "stale If-Match"),
    )
)]
#[post("/api/v1/cases/{id}/messages")]
pub async fn post_message(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<MessageRequest>,
) -> Result<HttpResponse, ApiError> {
    cases::refuse_managers(&caller)?;
    let body = body.into_inner();
    let mut problems = Problems::default();
    let text = problems
        .required("body", body.body.as_deref())
        .and_then(|b| problems.check("body", parse_text(b, case::MESSAGE_MAX_CHARS)));
    let visibility = body
        .visibility
        .as_deref()
        .map(|v| problems.check("visibility", v.parse::<MessageVisibility>()));
    // A missing visibility is the use case's to refuse, after it checked
    // that the caller may write on the case at all (a stranger learns
    // nothing but 404); beside other problems of the body it is named now,
    // so the writer sees every problem at once.
    if visibility.is_none() && case::visibility_required(caller.role) && !problems.0.is_empty() {
        problems.push("visibility", case::VISIBILITY_REQUIRED);
    }
    let command = problems.finish(|| {
        Some(cases::PostMessage {
            body: text?,
            visibility: visibility.map_or(Some(None), |v| v.map(Some))?,
        })
    })?;
    let posted =
        cases::post_message(&state.desk, caller, id.into_inner(), if_match.0, command).await?;
    Ok(HttpResponse::Created().json(MessageResponse {
        id: posted.id,
        at: clock::to_rfc3339(posted.at),
        author: Person {
            id: posted.author.id,
            name: posted.author.name,
            role: posted.author.role,
        },
        visibility: posted.visibility.as_str().to_owned(),
        body: posted.body,
    }))
}

/// Messages of a case, oldest first; applicants see only `applicant` ones.
#[utoipa::path(
    tag = "cases",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = MessageList),
        (status = 403, description = "a manager, or an expert who has not accepted the assignment"),
        (status = 404, description = "no such case, or not yours"),
    )
)]
#[get("/api/v1/cases/{id}/messages")]
pub async fn list_messages(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let rows = cases::messages(&state.desk, caller, id.into_inner()).await?;
    let items = rows
        .into_iter()
        .map(|m| MessageResponse {
            id: m.id,
            at: clock::to_rfc3339(m.created_at),
            author: Person {
                id: m.author_id,
                name: m.author_name,
                role: m.author_role,
            },
            visibility: m.visibility,
            body: m.body,
        })
        .collect();
    Ok(HttpResponse::Ok().json(MessageList { items }))
}
