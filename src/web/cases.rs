//! The case pages: the list, filing a consultation, and one case with its
//! messages and timeline. Each calls the desk's use cases, as the JSON API
//! does.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::DateTime;
use serde::Serialize;

use super::auth::see_other;
use super::error::PageError;
use super::form::{Form, errors_by_field};
use super::i18n;
use super::page::{choices, desk_error, local_time, signed_in, signed_in_form};
use super::render::Viewer;
use super::session;
use crate::desk::cases::{self, CaseQuery, CaseSnapshot, FileCase, PostMessage, StatusChange};
use crate::desk::{Caller, DeskError};
use crate::domain::case::{self, CaseView, IntakeForm, parse_text};
use crate::domain::lifecycle::ActionKind;
use crate::domain::role::Role;
use crate::domain::validation::{Code, Invalid, Refusal};
use crate::domain::vocabulary::{
    CaseStatus, Category, Lang, MessageVisibility, ProductType, Stage,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `/cases/new` before `/cases/{id}`.
    cfg.service(list)
        .service(new_case_page)
        .service(file)
        .service(show)
        .service(message)
        .service(withdraw)
        .service(queue)
        .service(claim);
}

fn waiting_for(viewer: &Viewer, status: CaseStatus, staff: bool) -> String {
    let key = match status {
        CaseStatus::AwaitingInfo if staff => "waiting_awaiting_info_staff".to_owned(),
        other => format!("waiting_{}", other.as_str()),
    };
    viewer.text(&key)
}

#[derive(Serialize)]
struct CaseLine {
    id: i64,
    number: String,
    title: String,
    status: &'static str,
    status_label: &'static str,
    waiting_for: String,
    received: String,
}

/// The filters of `/cases` and `/queue` as the query string carries them;
/// a value that is no code of its vocabulary filters nothing.
#[derive(serde::Deserialize, Default)]
struct ListQuery {
    cursor: Option<String>,
    status: Option<String>,
    product_type: Option<String>,
    category: Option<String>,
    q: Option<String>,
    unclaimed: Option<String>,
}

impl ListQuery {
    fn code<T: std::str::FromStr>(raw: Option<&String>) -> Option<T> {
        raw.and_then(|v| v.parse().ok())
    }

    fn text(&self) -> Option<String> {
        self.q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned)
    }

    /// The filters again, for the next page's link (`&`-joined, encoded).
    fn again(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("status", &self.status),
            ("product_type", &self.product_type),
            ("category", &self.category),
            ("q", &self.q),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                query.append_pair(name, value);
            }
        }
        query.finish()
    }

    /// The filters as the form shows them.
    fn shown(&self) -> minijinja::Value {
        minijinja::context! {
            status => self.status.as_deref().unwrap_or(""),
            product_type => self.product_type.as_deref().unwrap_or(""),
            category => self.category.as_deref().unwrap_or(""),
            q => self.q.as_deref().unwrap_or(""),
            unclaimed => self.unclaimed.is_some(),
        }
    }
}

/// The options of the filter forms.
fn filter_choices(lang: Lang) -> minijinja::Value {
    minijinja::context! {
        statuses => choices(&CaseStatus::ALL, CaseStatus::as_str, CaseStatus::label, lang),
        product_types => choices(&ProductType::ALL, ProductType::as_str, ProductType::label, lang),
        categories => choices(&Category::ALL, Category::as_str, Category::label, lang),
    }
}

#[get("/cases")]
pub async fn list(req: HttpRequest, viewer: Viewer, query: web::Query<ListQuery>) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let lang = i18n::lang(viewer.locale);
    let staff = caller.role.is_desk_staff();
    let filters = query.into_inner();
    let query = CaseQuery {
        status: ListQuery::code(filters.status.as_ref()),
        product_type: ListQuery::code(filters.product_type.as_ref()),
        category: ListQuery::code(filters.category.as_ref()),
        text: filters.text().filter(|_| staff),
        expert_id: None,
        before: filters.cursor.clone(),
        limit: CaseQuery::DEFAULT_LIMIT,
    };
    let page = match cases::list_cases(&session::state(&req).desk, caller, query).await {
        Ok(page) => page,
        Err(error) => return desk_error(&viewer, error),
    };
    let lines: Vec<CaseLine> = page
        .items
        .iter()
        .map(|snapshot| CaseLine {
            id: snapshot.row.id,
            number: snapshot.row.number.clone(),
            title: snapshot.row.title.clone(),
            status: snapshot.row.status.as_str(),
            status_label: snapshot.row.status.label(lang),
            waiting_for: waiting_for(&viewer, snapshot.row.status, staff),
            received: local_time(viewer.locale, snapshot.row.received_at),
        })
        .collect();
    // The next page's query string: the same filters, the cursor.
    let next = page.next_cursor.map(|cursor| {
        let mut again = filters.again();
        if !again.is_empty() {
            again.push('&');
        }
        let cursor: String = url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
        format!("{again}cursor={cursor}")
    });
    viewer.render(
        StatusCode::OK,
        "cases.html",
        minijinja::context! {
            cases => lines,
            next,
            staff,
            filter => filters.shown(),
            filtered => !filters.again().is_empty(),
            options => filter_choices(lang),
            can_file => caller.is_one_of(cases::FILERS),
        },
    )
}

// ---------------------------------------------------------------- filing

fn new_case_form(
    viewer: &Viewer,
    status: StatusCode,
    form: &Form,
    errors: BTreeMap<String, Vec<String>>,
) -> HttpResponse {
    let lang = i18n::lang(viewer.locale);
    let on_behalf = viewer
        .session
        .as_ref()
        .is_some_and(|s| s.account.role != Role::Applicant);
    viewer.render(
        status,
        "case_new.html",
        minijinja::context! {
            errors,
            on_behalf,
            shown_fields => ["title", "description", "product_type", "categories", "stage", "applicant_id"],
            product_types => choices(&ProductType::ALL, ProductType::as_str, ProductType::label, lang),
            categories => choices(&Category::ALL, Category::as_str, Category::label, lang),
            stages => choices(&Stage::ALL, Stage::as_str, Stage::label, lang),
            languages => choices(&Lang::ALL, Lang::as_str, Lang::label, lang),
            form => minijinja::context! {
                title => form.get("title").unwrap_or(""),
                description => form.get("description").unwrap_or(""),
                product_type => form.get("product_type").unwrap_or(""),
                categories => form.all("categories"),
                stage => form.get("stage").unwrap_or(""),
                language => form.get("language").unwrap_or(viewer.locale.as_str()),
                applicant_id => form.get("applicant_id").unwrap_or(""),
            },
        },
    )
}

#[get("/cases/new")]
pub async fn new_case_page(req: HttpRequest, viewer: Viewer) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !caller.is_one_of(cases::FILERS) {
        return PageError::Forbidden {
            locale: viewer.locale,
        }
        .page(&viewer);
    }
    new_case_form(&viewer, StatusCode::OK, &Form::default(), BTreeMap::new())
}

#[post("/cases/new")]
pub async fn file(req: HttpRequest, viewer: Viewer, form: Form) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let categories = form.all("categories");
    let categories = (!categories.is_empty()).then_some(categories);
    let intake = IntakeForm {
        title: form.get("title"),
        description: form.get("description"),
        product_type: form.get("product_type"),
        categories: categories.as_deref(),
        stage: form.filled("stage"),
        language: form.filled("language"),
        organization_name: None,
        organization_kind: None,
    }
    .validate();
    let applicant_id = match form.filled("applicant_id").map(|v| v.trim().parse::<i64>()) {
        Some(Err(_)) => Err(vec![Invalid::refused(
            "applicant_id",
            Refusal::new(Code::NotANumber, "must be a number"),
        )]),
        Some(Ok(id)) => Ok(Some(id)),
        None => Ok(None),
    };
    let command = match (intake, applicant_id) {
        (Ok(intake), Ok(applicant_id)) => FileCase {
            intake,
            applicant_id,
        },
        (intake, applicant_id) => {
            let mut problems = intake.err().unwrap_or_default();
            problems.extend(applicant_id.err().unwrap_or_default());
            return new_case_form(
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                errors_by_field(viewer.locale, &problems),
            );
        }
    };
    match cases::file_case(&session::state(&req).desk, caller, command).await {
        Ok(snapshot) => see_other(&format!("/cases/{}?notice=notice_filed", snapshot.row.id)),
        Err(DeskError::Invalid(problems)) => new_case_form(
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            errors_by_field(viewer.locale, &problems),
        ),
        Err(error) => desk_error(&viewer, error),
    }
}

// ---------------------------------------------------------------- one case

#[derive(Serialize)]
struct CaseDetails {
    id: i64,
    number: String,
    title: String,
    description: String,
    status: &'static str,
    status_label: &'static str,
    outcome_label: Option<&'static str>,
    received: String,
    organization: String,
    waiting_for: String,
    product_type_label: &'static str,
    category_labels: Vec<&'static str>,
    stage_label: String,
    version: i64,
}

#[derive(Serialize)]
struct MessageLine {
    author: String,
    at: String,
    visibility: String,
    body: String,
}

#[derive(Serialize)]
struct EventLine {
    at: String,
    text: String,
}

/// What the case page shows besides the case: a message that could not be
/// sent, kept with its error, or another refused form.
#[derive(Default)]
pub(crate) struct Draft {
    pub body: String,
    pub error: Option<String>,
    pub refused: Option<Refused>,
}

/// A form of the desk's panel (`web::triage`) that was refused: which one,
/// what was typed, and the problems by field.
pub(crate) struct Refused {
    pub which: &'static str,
    pub fields: BTreeMap<String, Vec<String>>,
    pub errors: BTreeMap<String, Vec<String>>,
}

pub(crate) async fn case_page(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    id: i64,
    status: StatusCode,
    draft: Draft,
) -> HttpResponse {
    let desk = &session::state(req).desk;
    let snapshot = match cases::read_case(desk, caller, id).await {
        Ok(snapshot) => snapshot,
        Err(error) => return desk_error(viewer, error),
    };
    let reads_messages = snapshot.view != CaseView::ExpertSummary;
    let messages = if reads_messages {
        match cases::messages(desk, caller, id).await {
            Ok(rows) => rows,
            Err(error) => return desk_error(viewer, error),
        }
    } else {
        Vec::new()
    };
    let events = match cases::timeline(desk, caller, id).await {
        Ok(events) => events,
        Err(error) => return desk_error(viewer, error),
    };
    let lang = i18n::lang(viewer.locale);
    let staff = caller.role.is_desk_staff();
    let details = details(viewer, &snapshot, lang, staff);
    let messages: Vec<MessageLine> = messages
        .into_iter()
        .map(|m| MessageLine {
            author: m.author_name,
            at: local_time(viewer.locale, m.created_at),
            visibility: m.visibility,
            body: m.body,
        })
        .collect();
    let events: Vec<EventLine> = events
        .into_iter()
        .map(|e| {
            let key = format!("event_{}", e.event.kind);
            let label = if i18n::has(&key) {
                viewer.text(&key)
            } else {
                viewer.text("event_other")
            };
            let text = match e.event.actor_name {
                Some(actor) if e.event.kind != "submitted" => format!("{label} ({actor})"),
                _ => label,
            };
            EventLine {
                at: local_time(viewer.locale, e.event.at),
                text,
            }
        })
        .collect();
    let answering = snapshot.row.status == CaseStatus::AwaitingInfo && !staff;
    let panel = if staff {
        match super::triage::desk_panel(desk, viewer, caller, &snapshot, draft.refused.as_ref())
            .await
        {
            Ok(panel) => Some(panel),
            Err(error) => return desk_error(viewer, error),
        }
    } else {
        None
    };
    let (notes, messages): (Vec<MessageLine>, Vec<MessageLine>) = messages
        .into_iter()
        .partition(|m| m.visibility == MessageVisibility::Internal.as_str());
    viewer.render(
        status,
        "case.html",
        minijinja::context! {
            case => details,
            messages,
            notes,
            events,
            staff,
            desk => panel,
            answering,
            can_message => reads_messages && caller.role != Role::Manager && snapshot.row.status != CaseStatus::Closed,
            can_withdraw => snapshot.allowed_actions.contains(&ActionKind::Withdraw) && !staff,
            // The desk suggested a short Open Hours talk: the applicant
            // books one for this case.
            can_book_open_hours => caller.role == Role::Applicant
                && snapshot.row.route == Some(crate::domain::vocabulary::Route::OpenHours)
                && snapshot.row.status != CaseStatus::Closed,
            message_draft => draft.body,
            message_error => draft.error,
        },
    )
}

fn details(viewer: &Viewer, snapshot: &CaseSnapshot, lang: Lang, staff: bool) -> CaseDetails {
    let row = &snapshot.row;
    let categories = crate::domain::case::effective_categories(
        snapshot.categories.applicant.clone(),
        snapshot.categories.confirmed.clone(),
    );
    CaseDetails {
        id: row.id,
        number: row.number.clone(),
        title: row.title.clone(),
        description: if snapshot.view == CaseView::ExpertSummary {
            String::new()
        } else {
            row.description.clone()
        },
        status: row.status.as_str(),
        status_label: row.status.label(lang),
        outcome_label: row.outcome.map(|o| o.label(lang)),
        received: local_time(viewer.locale, row.received_at),
        organization: row.organization_name.clone(),
        waiting_for: waiting_for(viewer, row.status, staff),
        product_type_label: row.effective_product_type.label(lang),
        category_labels: categories.into_iter().map(|c| c.label(lang)).collect(),
        stage_label: row
            .stage
            .map_or_else(String::new, |s| s.label(lang).to_owned()),
        version: row.version,
    }
}

#[get("/cases/{id}")]
pub async fn show(req: HttpRequest, viewer: Viewer, id: web::Path<String>) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Ok(id) = id.parse::<i64>() else {
        return PageError::NotFound {
            locale: viewer.locale,
        }
        .page(&viewer);
    };
    case_page(&req, &viewer, caller, id, StatusCode::OK, Draft::default()).await
}

#[post("/cases/{id}/messages")]
pub async fn message(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    form: Form,
) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let id = id.into_inner();
    let typed = form.get("body").unwrap_or("").to_owned();
    let body = match parse_text(&typed, case::MESSAGE_MAX_CHARS) {
        Ok(body) => body,
        Err(refusal) => {
            let error = if typed.trim().is_empty() {
                viewer.text("message_empty")
            } else {
                i18n::problem(viewer.locale, refusal.code, &refusal.message)
            };
            let draft = Draft {
                body: typed,
                error: Some(error),
                refused: None,
            };
            return refused_draft(&req, &viewer, caller, id, draft).await;
        }
    };
    let visibility = form
        .filled("visibility")
        .and_then(|v| v.parse::<MessageVisibility>().ok());
    let command = PostMessage { body, visibility };
    match cases::post_message(&session::state(&req).desk, caller, id, None, command).await {
        Ok(_) => see_other(&format!("/cases/{id}?notice=notice_message_sent")),
        Err(DeskError::Invalid(problems)) => {
            let draft = Draft {
                body: typed,
                error: Some(
                    problems
                        .iter()
                        .map(|p| i18n::problem(viewer.locale, p.code, &p.message))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                refused: None,
            };
            refused_draft(&req, &viewer, caller, id, draft).await
        }
        Err(error) => desk_error(&viewer, error),
    }
}

/// The case page again with a message that was not sent, kept with why.
async fn refused_draft(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    id: i64,
    draft: Draft,
) -> HttpResponse {
    case_page(
        req,
        viewer,
        caller,
        id,
        StatusCode::UNPROCESSABLE_ENTITY,
        draft,
    )
    .await
}

/// What a case-changing form leads to: the case page with `notice` when the
/// change was made; when someone else changed the case first, the case as
/// it is now, saying so (409, nothing overwritten); else the error page.
pub(crate) async fn after_change<T>(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    id: i64,
    result: Result<T, DeskError>,
    notice: &str,
) -> HttpResponse {
    match result {
        Ok(_) => see_other(&format!("/cases/{id}?notice={notice}")),
        Err(DeskError::StaleVersion { .. }) => {
            let mut stale = viewer.clone();
            stale.notice = Some(viewer.text("notice_stale"));
            case_page(
                req,
                &stale,
                caller,
                id,
                StatusCode::CONFLICT,
                Draft::default(),
            )
            .await
        }
        Err(error) => desk_error(viewer, error),
    }
}

#[post("/cases/{id}/withdraw")]
pub async fn withdraw(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    form: Form,
) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let id = id.into_inner();
    let version = form.get("version").and_then(|v| v.parse::<i64>().ok());
    let command = StatusChange {
        to: CaseStatus::Closed,
        outcome: Some(crate::domain::vocabulary::Outcome::Withdrawn),
        reason: None,
        duplicate_of: None,
    };
    let result =
        cases::change_status(&session::state(&req).desk, caller, id, version, command).await;
    after_change(&req, &viewer, caller, id, result, "notice_withdrawn").await
}

// ---------------------------------------------------------------- the triage queue

#[derive(Serialize)]
struct QueueLine {
    id: i64,
    number: String,
    title: String,
    organization: String,
    received: String,
    /// Business days since the case was received.
    age: u32,
    /// Waiting as long as the triage reminder allows, or longer.
    overdue: bool,
    claimed: bool,
    version: i64,
}

#[get("/queue")]
pub async fn queue(req: HttpRequest, viewer: Viewer, query: web::Query<ListQuery>) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let state = session::state(&req);
    let filters = query.into_inner();
    let filter = cases::QueueFilter {
        product_type: ListQuery::code(filters.product_type.as_ref()),
        category: ListQuery::code(filters.category.as_ref()),
        unclaimed_only: filters.unclaimed.is_some(),
    };
    let found =
        cases::triage_queue_filtered(&state.desk, caller, filter, cases::QUEUE_DEFAULT_LIMIT).await;
    let queue = match found {
        Ok(queue) => queue,
        Err(error) => return desk_error(&viewer, error),
    };
    let calendar = match state.desk.calendar().await {
        Ok(calendar) => calendar,
        Err(error) => return desk_error(&viewer, error),
    };
    let desk_date = |micros: i64| {
        DateTime::from_timestamp_micros(micros)
            .unwrap_or_default()
            .with_timezone(&case::desk_offset())
            .date_naive()
    };
    let today = desk_date(crate::clock::now_micros());
    let lines: Vec<QueueLine> = queue
        .cases
        .rows
        .iter()
        .map(|case| {
            let age = calendar.business_days_between(desk_date(case.received_at), today);
            QueueLine {
                id: case.id,
                number: case.number.clone(),
                title: case.title.clone(),
                organization: case.organization_name.clone(),
                received: local_time(viewer.locale, case.received_at),
                age,
                overdue: age >= state.config.triage_reminder_days,
                claimed: case.claimed_by.is_some(),
                version: case.version,
            }
        })
        .collect();
    viewer.render(
        StatusCode::OK,
        "queue.html",
        minijinja::context! {
            entries => lines,
            filter => filters.shown(),
            options => filter_choices(i18n::lang(viewer.locale)),
        },
    )
}

#[post("/cases/{id}/claim")]
pub async fn claim(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    form: Form,
) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let id = id.into_inner();
    let version = form.get("version").and_then(|v| v.parse::<i64>().ok());
    let result = cases::claim(&session::state(&req).desk, caller, id, version).await;
    after_change(&req, &viewer, caller, id, result, "notice_claimed").await
}
