//! Cases: intake, reading, listing, lifecycle actions, timeline, messages.

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::{AuthUser, IfMatch, Json, body};
use super::problem::ApiError;
use super::schema::{
    CaseCursor, CaseStage, Categories, IfMatchValue, LongText, OrganizationName, Title,
};
use crate::clock;
use crate::db::cases::{self as store, CaseCategories, CaseChanges, CaseFilter, CaseRow, NewEvent};
use crate::db::{AnyConnection, assignments, users};
use crate::domain::case::{
    self, CaseView, IntakeForm, NOTE_MAX_CHARS, Problems, case_view, parse_categories, parse_text,
};
use crate::domain::lifecycle::{self, Action, ActionKind, Actor, CaseState, Refusal};
use crate::domain::role::Role;
use crate::domain::vocabulary::{
    CaseStatus, Category, Lang, MessageVisibility, OrganizationKind, Outcome, Priority,
    ProductType, Route, Stage,
};
use crate::mail::notify::Notifier;

// ---------------------------------------------------------------- shapes

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationRef {
    pub id: i64,
    pub name: String,
    #[schema(value_type = OrganizationKind)]
    pub kind: String,
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
    pub product_type: String,
    /// As the applicant filed them.
    #[schema(value_type = Vec<Category>)]
    pub categories: Vec<String>,
    #[schema(value_type = CaseStage)]
    pub stage: String,
    #[schema(value_type = Lang)]
    pub language: String,
    pub organization: OrganizationRef,
    #[schema(value_type = CaseStatus)]
    pub status: String,
    /// Set once the case is closed.
    #[schema(required, value_type = Option<Outcome>)]
    pub outcome: Option<String>,
    #[schema(required, value_type = Option<Priority>)]
    pub priority: Option<String>,
    /// The product type triage confirmed.
    #[schema(required, value_type = Option<ProductType>)]
    pub confirmed_product_type: Option<String>,
    /// The categories triage confirmed.
    #[schema(required, value_type = Option<Vec<Category>>)]
    pub confirmed_categories: Option<Vec<String>>,
    #[schema(required, value_type = Option<Route>)]
    pub route: Option<String>,
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
}

fn case_response(
    row: CaseRow,
    categories: CaseCategories,
    view: CaseView,
    caller: &AuthUser,
) -> CaseResponse {
    let allowed_actions = lifecycle::allowed_actions(&case_state(&row), &actor(caller, &row, view));
    let desk = view == CaseView::Desk;
    CaseResponse {
        id: row.id,
        number: row.number,
        title: row.title,
        description: (view != CaseView::ExpertSummary).then_some(row.description),
        product_type: row.product_type,
        categories: categories.applicant,
        stage: row.stage,
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
    }
}

fn case_state(row: &CaseRow) -> CaseState {
    CaseState {
        status: row.status.parse().unwrap_or(CaseStatus::Submitted),
        resume_to: row.resume_to.as_deref().and_then(|s| s.parse().ok()),
    }
}

fn actor(caller: &AuthUser, row: &CaseRow, view: CaseView) -> Actor {
    Actor {
        role: caller.role,
        is_member: caller.organization_id == Some(row.organization_id),
        is_assigned_expert: caller.role == Role::Expert && view != CaseView::Hidden,
    }
}

/// What the caller may see of `row`; `assignment` is the caller's active
/// expert assignment on it (None for everyone else).
fn view_of(caller: &AuthUser, row: &CaseRow, assignment: Option<bool>) -> CaseView {
    case_view(
        caller.role,
        caller.organization_id == Some(row.organization_id),
        assignment,
    )
}

/// Loads a case the caller may see, or 404 (which leaks nothing).
pub(crate) fn visible_case(
    conn: &mut AnyConnection,
    caller: &AuthUser,
    id: i64,
) -> Result<(CaseRow, CaseView), ApiError> {
    let row = store::find(conn, id)?.ok_or(ApiError::NotFound)?;
    let assignment = if caller.role == Role::Expert {
        assignments::caller_assignment(conn, row.id, caller.id)?
    } else {
        None
    };
    match view_of(caller, &row, assignment) {
        CaseView::Hidden => Err(ApiError::NotFound),
        view => Ok((row, view)),
    }
}

fn full_response(
    conn: &mut AnyConnection,
    row: CaseRow,
    view: CaseView,
    caller: &AuthUser,
) -> Result<CaseResponse, ApiError> {
    let categories = store::categories_of(conn, &[row.id])?
        .remove(&row.id)
        .unwrap_or_default();
    Ok(case_response(row, categories, view, caller))
}

fn with_etag(response: CaseResponse, status: actix_web::http::StatusCode) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, format!("\"{}\"", response.version)))
        .json(response)
}

/// Managers see aggregates only: every case endpoint refuses them outright.
pub(crate) fn refuse_managers(caller: &AuthUser) -> Result<(), ApiError> {
    if caller.role == Role::Manager {
        Err(ApiError::Forbidden("managers see statistics, not cases"))
    } else {
        Ok(())
    }
}

/// Whether reads by this caller go to the access log (desk staff, experts).
fn reads_are_logged(caller: &AuthUser) -> bool {
    matches!(caller.role, Role::Supporter | Role::Admin | Role::Expert)
}

/// Cases whose text a read showed to desk staff or an expert.
#[derive(Default)]
struct SeenCases {
    case_ids: Vec<i64>,
    what: &'static str,
    listing: bool,
}

impl SeenCases {
    /// A read of one case.
    fn record(&mut self, case_ids: &[i64], what: &'static str) {
        self.case_ids.extend_from_slice(case_ids);
        self.what = what;
    }

    /// A listing of cases (see `domain::access` for how they are logged).
    fn record_listing(&mut self, case_ids: &[i64], what: &'static str) {
        self.record(case_ids, what);
        self.listing = true;
    }
}

/// The listing views, also after a panic elsewhere held the lock (the map
/// stays consistent: every update is one insert or one sweep).
fn lock(
    views: &std::sync::Mutex<crate::domain::access::ListingViews>,
) -> std::sync::MutexGuard<'_, crate::domain::access::ListingViews> {
    views
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a read on a pooled connection (in parallel with other reads), then
/// writes the access-log rows it recorded; the answer leaves only once they
/// are committed, so no case text is shown unlogged. Listings repeated
/// within a minute add no rows (and then need no write).
async fn read_as<T, F>(state: &AppState, caller: &AuthUser, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut AnyConnection, &mut SeenCases) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let (value, seen) = state
        .db
        .read(move |conn| {
            let mut seen = SeenCases::default();
            let value = work(conn, &mut seen)?;
            Ok::<_, ApiError>((value, seen))
        })
        .await?;
    let user_id = caller.id;
    let now = clock::now_micros();
    let SeenCases {
        mut case_ids,
        what,
        listing,
    } = seen;
    if listing {
        case_ids = lock(&state.listing_views).unlogged(user_id, &case_ids, what, now);
    }
    if !case_ids.is_empty() {
        let case_ids = state
            .db
            .write(move |conn| {
                store::log_access(conn, &case_ids, user_id, what, now)?;
                Ok::<_, ApiError>(case_ids)
            })
            .await?;
        if listing {
            lock(&state.listing_views).logged(user_id, &case_ids, what, now);
        }
    }
    Ok(value)
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
    caller.require(&[Role::Applicant, Role::Supporter, Role::Admin])?;
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
    let intake = form.validate().map_err(ApiError::from)?;
    let on_behalf = match caller.role {
        Role::Applicant => None,
        _ => Some(body.applicant_id.ok_or_else(|| {
            ApiError::field("applicant_id", "is required when staff file a case")
        })?),
    };

    let now = clock::now_micros();
    let received_on = case::desk_date(now);
    let year = chrono::Datelike::year(&received_on);
    // SQLite's writer takes the number inside the intake at no cost; only
    // PostgreSQL pays a round trip for it (see reserve_sequence).
    let reserved = match state.db.backend() {
        crate::db::Backend::Sqlite => None,
        crate::db::Backend::Postgres => {
            state
                .db
                .read(move |conn| store::reserve_sequence(conn, year))
                .await?
        }
    };
    let notifier = state.notifier.clone();
    let response = state
        .db
        .write(move |conn| {
            let (applicant_id, organization_id) = match on_behalf {
                None => (
                    caller.id,
                    caller
                        .organization_id
                        .ok_or(ApiError::Forbidden("your account has no organisation"))?,
                ),
                Some(applicant_id) => users::find_by_id(conn, applicant_id)?
                    .filter(|u| u.role == Role::Applicant.as_str())
                    .and_then(|u| u.organization_id.map(|org| (u.id, org)))
                    .ok_or_else(|| ApiError::field("applicant_id", "is not an applicant"))?,
            };
            let (registered_name, registered_kind) =
                store::organization(conn, organization_id)?.ok_or(ApiError::NotFound)?;
            let sequence = match reserved {
                Some(sequence) => sequence,
                None => store::next_sequence(conn, year)?,
            };
            let number = case::case_number(received_on, sequence);
            let kind = intake
                .organization_kind
                .map(|k| k.as_str().to_owned())
                .unwrap_or(registered_kind);
            let row = store::insert(
                conn,
                &store::NewCase {
                    number: &number,
                    organization_id,
                    applicant_id: Some(applicant_id),
                    filed_by: Some(caller.id),
                    title: &intake.title,
                    description: &intake.description,
                    product_type: intake.product_type.as_str(),
                    stage: intake.stage.as_str(),
                    language: intake.language.as_str(),
                    // The case records the organisation as registered: typing
                    // another organisation's name never moves the case there.
                    organization_name: &registered_name,
                    organization_kind: &kind,
                    status: CaseStatus::Submitted.as_str(),
                    effective_product_type: intake.product_type.as_str(),
                    outcome: None,
                    received_on: &received_on.to_string(),
                    received_at: now,
                    updated_at: now,
                    closed_at: None,
                },
            )?;
            let codes: Vec<&str> = intake.categories.iter().map(|c| c.as_str()).collect();
            store::insert_applicant_categories(conn, row.id, &codes)?;
            notifier.case_submitted(conn, &row, &codes, now)?;
            store::insert_event(
                conn,
                NewEvent {
                    case_id: row.id,
                    at: now,
                    actor_id: Some(caller.id),
                    kind: "submitted",
                    from_status: None,
                    to_status: Some(CaseStatus::Submitted.as_str()),
                    detail: Some(json!({"number": number}).to_string()),
                    desk_only: false,
                },
            )?;
            // Last: on PostgreSQL the day's statistics rows stay locked until
            // commit, and every intake of the day updates the same rows.
            crate::db::stats::count_case(
                conn,
                &row.received_on,
                &row.effective_product_type,
                &codes,
                1,
            )?;
            let view = view_of(&caller, &row, None);
            let categories = CaseCategories {
                applicant: codes.iter().map(|c| c.to_string()).collect(),
                confirmed: Vec::new(),
            };
            Ok::<_, ApiError>(case_response(row, categories, view, &caller))
        })
        .await?;
    state.mail_signal.queued();
    tracing::info!(case_id = response.id, number = %response.number, "case submitted");
    Ok(with_etag(response, actix_web::http::StatusCode::CREATED))
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
    refuse_managers(&caller)?;
    let id = id.into_inner();
    let read = move |conn: &mut AnyConnection, seen: &mut SeenCases| {
        let (row, view) = visible_case(conn, &caller, id)?;
        if view.is_logged() {
            seen.record(&[row.id], "case");
        }
        full_response(conn, row, view, &caller)
    };
    let response = read_as(&state, &caller, read).await?;
    Ok(with_etag(response, actix_web::http::StatusCode::OK))
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

fn parse_cursor(raw: &str) -> Option<(i64, i64)> {
    let (at, id) = raw.split_once('.')?;
    Some((at.parse().ok()?, id.parse().ok()?))
}

fn list_filter(query: &ListQuery, caller: &AuthUser) -> Result<CaseFilter, ApiError> {
    let mut problems = Problems::default();
    let status = query.status.as_deref().and_then(|s| {
        problems
            .check("status", s.parse::<CaseStatus>())
            .map(|s| s.as_str().to_owned())
    });
    let product_type = query.product_type.as_deref().and_then(|p| {
        problems
            .check("product_type", p.parse::<ProductType>())
            .map(|p| p.as_str().to_owned())
    });
    let category = query.category.as_deref().and_then(|c| {
        problems
            .check("category", c.parse::<crate::domain::vocabulary::Category>())
            .map(|c| c.as_str().to_owned())
    });
    let limit = match query.limit {
        None => 20,
        Some(n) if (1..=100).contains(&n) => n,
        Some(_) => {
            problems.push("limit", "must be from 1 to 100");
            20
        }
    };
    let before = query.cursor.as_deref().and_then(|c| {
        let parsed = parse_cursor(c);
        if parsed.is_none() {
            problems.push("cursor", "is not a cursor this server issued");
        }
        parsed
    });
    let text = match query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(_) if !caller.role.is_desk_staff() => {
            problems.push("q", "text search is for desk staff");
            None
        }
        Some(q) if q.chars().count() > 200 => {
            problems.push("q", "must be at most 200 characters");
            None
        }
        other => other.map(str::to_owned),
    };
    problems.into_result().map_err(ApiError::from)?;
    Ok(CaseFilter {
        organization_id: None,
        only_ids: None,
        status,
        product_type,
        category,
        text,
        before,
        limit,
    })
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
    refuse_managers(&caller)?;
    let mut filter = list_filter(&query, &caller)?;
    if caller.role == Role::Applicant {
        filter.organization_id = Some(caller.organization_id.unwrap_or(-1));
    }
    let expert_filter = match query.expert_id {
        Some(_) if !caller.role.is_desk_staff() => {
            return Err(ApiError::field(
                "expert_id",
                "filtering by expert is for desk staff",
            ));
        }
        other => other,
    };
    let limit = filter.limit;
    let list = move |conn: &mut AnyConnection, seen: &mut SeenCases| {
        let mut filter = filter;
        // Experts see only the cases they are actively assigned to.
        let accepted: Option<std::collections::HashMap<i64, bool>> = if caller.role == Role::Expert
        {
            let mine = assignments::active_cases_of_user(conn, caller.id)?;
            filter.only_ids = Some(mine.iter().map(|(id, _)| *id).collect());
            Some(mine.into_iter().collect())
        } else {
            if let Some(expert_id) = expert_filter {
                filter.only_ids = Some(assignments::active_case_ids_of_expert(conn, expert_id)?);
            }
            None
        };
        let rows = store::list(conn, &filter)?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        if reads_are_logged(&caller) {
            seen.record_listing(&ids, "list");
        }
        let mut categories = store::categories_of(conn, &ids)?;
        let next_cursor = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| format!("{}.{}", r.received_at, r.id)))
            .flatten();
        let items = rows
            .into_iter()
            .map(|row| {
                let assignment = accepted.as_ref().and_then(|m| m.get(&row.id).copied());
                let view = view_of(&caller, &row, assignment);
                let cats = categories.remove(&row.id).unwrap_or_default();
                case_response(row, cats, view, &caller)
            })
            .collect();
        Ok::<_, ApiError>(CaseList { items, next_cursor })
    };
    let page = read_as(&state, &caller, list).await?;
    Ok(HttpResponse::Ok().json(page))
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
    /// Seconds since the case was received.
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
    caller.require(&[Role::Supporter, Role::Admin])?;
    let limit = match query.limit {
        None => 100,
        Some(n) if (1..=500).contains(&n) => n,
        Some(_) => return Err(ApiError::field("limit", "must be from 1 to 500")),
    };
    let now = clock::now_micros();
    let items = read_as(&state, &caller, move |conn, seen| {
        let rows = store::triage_queue(conn, limit)?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        seen.record_listing(&ids, "triage_queue");
        Ok::<_, ApiError>(
            rows.into_iter()
                .map(|r| QueueItem {
                    id: r.id,
                    number: r.number,
                    title: r.title,
                    status: r.status,
                    product_type: r.product_type,
                    organization: r.organization_name,
                    received_at: clock::to_rfc3339(r.received_at),
                    age_seconds: (now - r.received_at) / 1_000_000,
                    claimed_by: r.claimed_by,
                    version: r.version,
                })
                .collect(),
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(TriageQueue { items }))
}

// ---------------------------------------------------------------- lifecycle

/// What an action writes beside the status change.
#[derive(Default)]
pub(crate) struct Extra {
    pub(crate) priority: Option<Priority>,
    pub(crate) confirmed: Option<(ProductType, Vec<crate::domain::vocabulary::Category>)>,
    pub(crate) route: Option<Route>,
    pub(crate) refer_to: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) note: Option<String>,
}

fn refusal(refusal: Refusal) -> ApiError {
    let allowed: Vec<&str> = refusal.allowed().iter().map(|a| a.as_str()).collect();
    match refusal {
        Refusal::NotPermitted { .. } => {
            ApiError::Forbidden("your role may not do this to this case")
        }
        Refusal::InvalidTransition { from, .. } => {
            let mut extra = serde_json::Map::new();
            extra.insert("case_status".into(), json!(from.as_str()));
            extra.insert("allowed_actions".into(), json!(allowed));
            ApiError::Conflict {
                detail: format!(
                    "not possible while the case is {}; allowed: {}",
                    from.as_str(),
                    if allowed.is_empty() {
                        "nothing".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ),
                extra: Some(extra),
            }
        }
    }
}

fn event_kind(action: &Action) -> &'static str {
    match action {
        Action::Claim => "claimed",
        Action::Triage { .. } => "triaged",
        Action::RequestInfo => "info_requested",
        Action::ApplicantReply => "applicant_replied",
        Action::StartMatching => "matching_started",
        Action::ExpertAccepted => "expert_accepted",
        Action::ExpertDeclined => "expert_declined",
        Action::StartConsultation => "consultation_started",
        Action::Close { .. } => "closed",
        Action::Withdraw => "withdrawn",
        Action::Reopen => "reopened",
    }
}

/// Decides and applies one lifecycle action inside the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply(
    conn: &mut AnyConnection,
    notifier: &Notifier,
    caller: &AuthUser,
    row: &CaseRow,
    view: CaseView,
    action: Action,
    extra: Extra,
    now: i64,
) -> Result<(), ApiError> {
    let from = case_state(row);
    let transition =
        lifecycle::decide(&from, &action, &actor(caller, row, view)).map_err(refusal)?;
    let to = transition.to.as_str();
    let (confirmed_type, confirmed_categories) = match &extra.confirmed {
        Some((product_type, categories)) => (
            Some(product_type.as_str()),
            Some(categories.iter().map(|c| c.as_str()).collect::<Vec<_>>()),
        ),
        None => (None, None),
    };
    let changes = CaseChanges {
        status: Some(to),
        resume_to: Some(transition.resume_to.map(|s| s.as_str())),
        outcome: Some(transition.outcome.map(|o| o.as_str())),
        priority: extra.priority.map(|p| p.as_str()),
        confirmed_product_type: confirmed_type,
        route: extra.route.map(|r| r.as_str()),
        refer_to: extra.refer_to.as_deref().map(Some),
        claimed_by: matches!(action, Action::Claim).then_some(caller.id),
        triaged_at: matches!(action, Action::Triage { .. }).then_some(now),
        closed_at: Some((transition.to == CaseStatus::Closed).then_some(now)),
    };
    if !store::update_if_version(conn, row.id, row.version, &changes, now)? {
        // Someone else changed the case between our read and our write.
        return Err(ApiError::conflict(
            "the case was changed by someone else just now; reload it and try again",
        ));
    }
    if let (Some(product_type), Some(categories)) = (confirmed_type, &confirmed_categories) {
        // The statistics follow the case from the applicant's cells to the
        // confirmed ones, in this same transaction.
        let before = store::categories_of(conn, &[row.id])?
            .remove(&row.id)
            .map(|c| {
                if c.confirmed.is_empty() {
                    c.applicant
                } else {
                    c.confirmed
                }
            })
            .unwrap_or_default();
        let before: Vec<&str> = before.iter().map(String::as_str).collect();
        crate::db::stats::recount_case(
            conn,
            &row.received_on,
            (&row.effective_product_type, &before),
            (product_type, categories),
        )?;
        store::confirm_categories(conn, row.id, categories)?;
    }
    let mut detail = serde_json::Map::new();
    if let Some(outcome) = transition.outcome {
        detail.insert("outcome".into(), json!(outcome.as_str()));
    }
    if let Some(reason) = &extra.reason {
        detail.insert("reason".into(), json!(reason));
    }
    if let Some(priority) = extra.priority {
        detail.insert("priority".into(), json!(priority.as_str()));
    }
    if let Some(route) = extra.route {
        detail.insert("route".into(), json!(route.as_str()));
    }
    if let Some(refer_to) = &extra.refer_to {
        detail.insert("refer_to".into(), json!(refer_to));
    }
    if let (Some(product_type), Some(categories)) = (confirmed_type, &confirmed_categories) {
        detail.insert("product_type".into(), json!(product_type));
        detail.insert("categories".into(), json!(categories));
    }
    store::insert_event(
        conn,
        NewEvent {
            case_id: row.id,
            at: now,
            actor_id: Some(caller.id),
            kind: event_kind(&action),
            from_status: Some(from.status.as_str()),
            to_status: Some(to),
            detail: (!detail.is_empty()).then(|| Value::Object(detail).to_string()),
            desk_only: false,
        },
    )?;
    match action {
        Action::RequestInfo => {
            notifier.info_requested(conn, row, extra.reason.as_deref(), now)?;
        }
        Action::ApplicantReply => notifier.applicant_replied(conn, row, now)?,
        _ => {}
    }
    if let (CaseStatus::Closed, Some(outcome)) = (transition.to, transition.outcome) {
        let refer_to = extra.refer_to.as_deref().or(row.refer_to.as_deref());
        notifier.case_closed(conn, row, outcome, refer_to, now)?;
        assignments::end_active_on_case(conn, row.id, now)?;
    }
    if let Some(note) = extra.note {
        // Internal triage notes stay on the desk side of the timeline.
        store::insert_event(
            conn,
            NewEvent {
                case_id: row.id,
                at: now,
                actor_id: Some(caller.id),
                kind: "note",
                from_status: None,
                to_status: None,
                detail: Some(json!({ "note": note }).to_string()),
                desk_only: true,
            },
        )?;
    }
    Ok(())
}

/// Loads the case, checks visibility and `If-Match`, lets `plan` choose the
/// action, applies it and returns the updated case — one transaction.
async fn act(
    state: &AppState,
    caller: AuthUser,
    id: i64,
    if_match: IfMatch,
    plan: impl FnOnce(&CaseRow) -> Result<(Action, Extra), ApiError> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    refuse_managers(&caller)?;
    let notifier = state.notifier.clone();
    let response = state
        .db
        .write(move |conn| {
            let (row, view) = visible_case(conn, &caller, id)?;
            if_match.check(row.version)?;
            let (action, extra) = plan(&row)?;
            let now = clock::now_micros();
            apply(conn, &notifier, &caller, &row, view, action, extra, now)?;
            let (row, view) = visible_case(conn, &caller, id)?;
            if view.is_logged() {
                // The answer carries the case's text: that is a read too.
                store::log_access(conn, &[row.id], caller.id, "update", now)?;
            }
            full_response(conn, row, view, &caller)
        })
        .await?;
    state.mail_signal.queued();
    Ok(with_etag(response, actix_web::http::StatusCode::OK))
}

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
    caller.require(&[Role::Supporter, Role::Admin])?;
    act(&state, caller, id.into_inner(), if_match, |_| {
        Ok((Action::Claim, Extra::default()))
    })
    .await
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
    caller.require(&[Role::Supporter, Role::Admin])?;
    let body = body.into_inner();
    let mut problems = Problems::default();
    let priority = problems
        .required("priority", body.priority.as_deref())
        .and_then(|p| problems.check("priority", p.parse::<Priority>()));
    let product_type = problems
        .required("product_type", body.product_type.as_deref())
        .and_then(|p| problems.check("product_type", p.parse::<ProductType>()));
    let categories = match &body.categories {
        None => {
            problems.push("categories", "must name at least one category");
            None
        }
        Some(raw) => problems.check("categories", parse_categories(raw)),
    };
    let route = problems
        .required("route", body.route.as_deref())
        .and_then(|r| problems.check("route", r.parse::<Route>()));
    let note = body
        .note
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .and_then(|n| problems.check("note", parse_text(n, NOTE_MAX_CHARS)));
    let refer_to = match (route, body.refer_to.as_deref()) {
        (Some(Route::Refer), None) => {
            problems.push("refer_to", "is required when route is refer");
            None
        }
        (Some(Route::Refer), Some(name)) => problems.check(
            "refer_to",
            crate::domain::account::parse_display_name(name, 200),
        ),
        (_, Some(_)) => {
            problems.push("refer_to", "is only for route refer");
            None
        }
        _ => None,
    };
    problems.into_result().map_err(ApiError::from)?;
    let route = route.expect("checked");
    let extra = Extra {
        priority,
        confirmed: Some((product_type.expect("checked"), categories.expect("checked"))),
        route: Some(route),
        refer_to,
        reason: None,
        note,
    };
    act(&state, caller, id.into_inner(), if_match, move |_| {
        Ok((Action::Triage { route }, extra))
    })
    .await
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
        (status = 409, description = "impossible transition; lists allowed actions"),
        (status = 412, description = "stale If-Match"),
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
    let body = body.into_inner();
    let mut problems = Problems::default();
    let target = problems
        .required("status", body.status.as_deref())
        .and_then(|s| problems.check("status", s.parse::<CaseStatus>()));
    let outcome = body
        .outcome
        .as_deref()
        .and_then(|o| problems.check("outcome", o.parse::<Outcome>()));
    let reason = body
        .reason
        .as_deref()
        .filter(|r| !r.trim().is_empty())
        .and_then(|r| problems.check("reason", parse_text(r, NOTE_MAX_CHARS)));
    if target == Some(CaseStatus::Closed)
        && body.outcome.is_none()
        && caller.role != Role::Applicant
    {
        problems.push("outcome", "is required when closing a case");
    }
    problems.into_result().map_err(ApiError::from)?;
    let target = target.expect("checked");
    let role = caller.role;
    act(&state, caller, id.into_inner(), if_match, move |row| {
        let state = case_state(row);
        let action = case::action_for_status(&state, target, outcome, role).ok_or_else(|| {
            refusal(Refusal::InvalidTransition {
                from: state.status,
                allowed: lifecycle::allowed_actions(
                    &state,
                    &Actor {
                        role,
                        is_member: true,
                        is_assigned_expert: false,
                    },
                ),
            })
        })?;
        Ok((
            action,
            Extra {
                reason,
                ..Extra::default()
            },
        ))
    })
    .await
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
    refuse_managers(&caller)?;
    let id = id.into_inner();
    let read = move |conn: &mut AnyConnection, seen: &mut SeenCases| {
        let (row, view) = visible_case(conn, &caller, id)?;
        if view.is_logged() {
            seen.record(&[row.id], "events");
        }
        let rows = store::events(conn, row.id, view.sees_internal())?;
        Ok::<_, ApiError>(EventList {
            items: rows
                .into_iter()
                .map(|e| {
                    let mut detail = e
                        .detail
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or_else(|| json!({}));
                    case::redact_event_detail(caller.role, &e.kind, &mut detail);
                    EventResponse {
                        id: e.id,
                        at: clock::to_rfc3339(e.at),
                        actor: match (e.actor_id, e.actor_name, e.actor_role) {
                            (Some(id), Some(name), Some(role)) => Some(Person { id, name, role }),
                            _ => None,
                        },
                        kind: e.kind,
                        from: e.from_status,
                        to: e.to_status,
                        detail,
                    }
                })
                .collect(),
        })
    };
    let list = read_as(&state, &caller, read).await?;
    Ok(HttpResponse::Ok().json(list))
}

// ---------------------------------------------------------------- messages

#[derive(Debug, Deserialize, ToSchema)]
pub struct MessageRequest {
    /// Stored verbatim.
    #[schema(value_type = LongText)]
    pub body: Option<String>,
    /// `internal` (desk side only; the default for staff) or `applicant`.
    /// Applicants always write `applicant` messages.
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
        (status = 403, description = "an applicant asking for internal visibility, or a manager"),
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
    refuse_managers(&caller)?;
    let body = body.into_inner();
    let mut problems = Problems::default();
    let text = problems
        .required("body", body.body.as_deref())
        .and_then(|b| problems.check("body", parse_text(b, case::MESSAGE_MAX_CHARS)));
    let requested = body
        .visibility
        .as_deref()
        .and_then(|v| problems.check("visibility", v.parse::<MessageVisibility>()));
    problems.into_result().map_err(ApiError::from)?;
    let text = text.expect("checked");
    let id = id.into_inner();
    let notifier = state.notifier.clone();
    let message = state
        .db
        .write(move |conn| {
            let (row, view) = visible_case(conn, &caller, id)?;
            if_match.check(row.version)?;
            let visibility =
                case::message_visibility(view, requested).map_err(ApiError::Forbidden)?;
            let now = clock::now_micros();
            let message_id =
                store::insert_message(conn, row.id, caller.id, visibility.as_str(), &text, now)?;
            store::insert_event(
                conn,
                NewEvent {
                    case_id: row.id,
                    at: now,
                    actor_id: Some(caller.id),
                    kind: "message",
                    from_status: None,
                    to_status: None,
                    detail: Some(
                        json!({"message_id": message_id, "visibility": visibility.as_str()})
                            .to_string(),
                    ),
                    desk_only: visibility == MessageVisibility::Internal,
                },
            )?;
            let replies =
                view == CaseView::Applicant && row.status == CaseStatus::AwaitingInfo.as_str();
            if replies {
                apply(
                    conn,
                    &notifier,
                    &caller,
                    &row,
                    view,
                    Action::ApplicantReply,
                    Extra::default(),
                    now,
                )?;
            } else {
                store::touch(conn, row.id, now)?;
            }
            let author = users::find_by_id(conn, caller.id)?.ok_or(ApiError::NotFound)?;
            Ok::<_, ApiError>(MessageResponse {
                id: message_id,
                at: clock::to_rfc3339(now),
                author: Person {
                    id: author.id,
                    name: author.name,
                    role: author.role,
                },
                visibility: visibility.as_str().to_owned(),
                body: text,
            })
        })
        .await?;
    state.mail_signal.queued();
    Ok(HttpResponse::Created().json(message))
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
    refuse_managers(&caller)?;
    let id = id.into_inner();
    let read = move |conn: &mut AnyConnection, seen: &mut SeenCases| {
        let (row, view) = visible_case(conn, &caller, id)?;
        if view == CaseView::ExpertSummary {
            return Err(ApiError::Forbidden(
                "accept the assignment to read the case's messages",
            ));
        }
        if view.is_logged() {
            seen.record(&[row.id], "messages");
        }
        let only = (!view.sees_internal()).then_some(MessageVisibility::Applicant.as_str());
        let rows = store::messages(conn, row.id, only)?;
        Ok::<_, ApiError>(MessageList {
            items: rows
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
                .collect(),
        })
    };
    let list = read_as(&state, &caller, read).await?;
    Ok(HttpResponse::Ok().json(list))
}
