//! The supporter's side of a case: triage, a question to the applicant,
//! the lifecycle steps the case allows, expert suggestions and assignment.
//! Each form calls the desk's use case the JSON API calls, and a refused
//! form comes back on the case page with its errors and what was typed.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Serialize;

use super::cases::{Draft, Refused, after_change, case_page};
use super::form::{Form, errors_by_field};
use super::i18n;
use super::page::{Choice, choices, desk_error, signed_in_form};
use super::render::Viewer;
use super::session;
use crate::desk::assignments::{self, Assign};
use crate::desk::cases::{self, CaseAction, CaseSnapshot, StatusChange, TriageFields};
use crate::desk::experts;
use crate::desk::{Caller, Desk, DeskError};
use crate::domain::assignment::AssignmentStatus;
use crate::domain::case::{self, parse_text};
use crate::domain::lifecycle::ActionKind;
use crate::domain::validation::Invalid;
use crate::domain::vocabulary::{
    AssignmentRole, CaseStatus, Category, Outcome, Priority, ProductType, Route,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(triage)
        .service(request_info)
        .service(step)
        .service(assign);
}

/// How many suggested experts the case page lists.
const SUGGESTIONS_SHOWN: usize = 10;

/// The lifecycle steps offered as small forms, in this order, when the case
/// allows them for the caller.
const STEPS: [(ActionKind, &str); 4] = [
    (ActionKind::StartMatching, "start_matching"),
    (ActionKind::StartConsultation, "start_consultation"),
    (ActionKind::Close, "close"),
    (ActionKind::Reopen, "reopen"),
];

// ---------------------------------------------------------------- the panel

#[derive(Serialize)]
struct Suggested {
    expert_id: i64,
    name: String,
    score: u32,
    reasons: Vec<String>,
}

#[derive(Serialize)]
struct Left {
    name: String,
    why: String,
}

#[derive(Serialize)]
struct Assigned {
    name: String,
    role: &'static str,
    status: String,
}

/// The values of a form shown on the page: what was typed when it was
/// refused, else `default`.
fn typed<'a>(refused: Option<&'a Refused>, which: &str, name: &str, default: &'a str) -> &'a str {
    match refused.filter(|r| r.which == which) {
        Some(r) => r
            .fields
            .get(name)
            .and_then(|v| v.first())
            .map_or("", String::as_str),
        None => default,
    }
}

/// What the desk staff's part of the case page shows (`case_desk.html`).
pub(crate) async fn desk_panel(
    desk: &Desk,
    viewer: &Viewer,
    caller: Caller,
    snapshot: &CaseSnapshot,
    refused: Option<&Refused>,
) -> Result<minijinja::Value, DeskError> {
    let lang = i18n::lang(viewer.locale);
    let row = &snapshot.row;
    let allowed = &snapshot.allowed_actions;
    let offers_experts = matches!(
        row.status,
        CaseStatus::Matching | CaseStatus::InConsultation
    );
    let (suggested, excluded) = if offers_experts {
        let found = experts::suggestions(desk, caller, row.id, SUGGESTIONS_SHOWN).await?;
        let suggested: Vec<Suggested> = found
            .items
            .into_iter()
            .map(|s| Suggested {
                expert_id: s.suggestion.expert_id,
                name: s.name,
                score: s.suggestion.score,
                reasons: s.suggestion.reason_labels(lang),
            })
            .collect();
        let excluded: Vec<Left> = found
            .excluded
            .into_iter()
            .map(|e| Left {
                why: e.excluded.reason.label(lang),
                name: e.name,
            })
            .collect();
        (suggested, excluded)
    } else {
        (Vec::new(), Vec::new())
    };
    let assigned: Vec<Assigned> = assignments::case_assignments(desk, caller, row.id)
        .await?
        .into_iter()
        .map(|a| Assigned {
            role: a
                .assignment
                .role
                .parse::<AssignmentRole>()
                .map_or("", |r| r.label(lang)),
            status: AssignmentStatus::ALL
                .iter()
                .find(|s| s.as_str() == a.assignment.status)
                .map_or_else(String::new, |s| {
                    viewer.text(&format!("desk_assignment_{}", s.as_str()))
                }),
            name: a.expert_name,
        })
        .collect();

    // Triage starts from the applicant's choice, or from an earlier triage.
    let confirmed_type = row.confirmed_product_type.unwrap_or(row.product_type);
    let confirmed_categories: Vec<String> = if snapshot.categories.confirmed.is_empty() {
        &snapshot.categories.applicant
    } else {
        &snapshot.categories.confirmed
    }
    .iter()
    .map(|c| c.as_str().to_owned())
    .collect();
    let triage_categories = match refused.filter(|r| r.which == "triage") {
        Some(r) => r.fields.get("categories").cloned().unwrap_or_default(),
        None => confirmed_categories,
    };
    let steps: Vec<&str> = STEPS
        .iter()
        .filter(|(kind, _)| allowed.contains(kind))
        .map(|(_, name)| *name)
        .collect();
    let errors = refused.map_or_else(BTreeMap::new, |r| r.errors.clone());
    Ok(minijinja::context! {
        refused_form => refused.map(|r| r.which),
        errors,
        can_triage => allowed.contains(&ActionKind::Triage),
        can_request_info => allowed.contains(&ActionKind::RequestInfo),
        steps,
        applicant_product_type => row.product_type.label(lang),
        applicant_categories => snapshot.categories.applicant.iter().map(|c| c.label(lang)).collect::<Vec<_>>(),
        priorities => choices(&Priority::ALL, Priority::as_str, Priority::label, lang),
        product_types => choices(&ProductType::ALL, ProductType::as_str, ProductType::label, lang),
        categories => choices(&Category::ALL, Category::as_str, Category::label, lang),
        routes => choices(&Route::ALL, Route::as_str, Route::label, lang),
        outcomes => choices(&Outcome::ALL, Outcome::as_str, Outcome::label, lang)
            .into_iter()
            .filter(|o| o.code != Outcome::Withdrawn.as_str())
            .collect::<Vec<Choice>>(),
        assignment_roles => choices(&AssignmentRole::ALL, AssignmentRole::as_str, AssignmentRole::label, lang),
        triage => minijinja::context! {
            priority => typed(refused, "triage", "priority", row.priority.map_or(Priority::Normal.as_str(), Priority::as_str)),
            product_type => typed(refused, "triage", "product_type", confirmed_type.as_str()),
            categories => triage_categories,
            route => typed(refused, "triage", "route", ""),
            refer_to => typed(refused, "triage", "refer_to", ""),
            note => typed(refused, "triage", "note", ""),
        },
        question => typed(refused, "request_info", "question", ""),
        close => minijinja::context! {
            outcome => typed(refused, "close", "outcome", ""),
            reason => typed(refused, "close", "reason", ""),
            duplicate_of => typed(refused, "close", "duplicate_of", ""),
        },
        offers_experts,
        suggested,
        excluded,
        assigned,
    })
}

// ---------------------------------------------------------------- the forms

/// The case page again, 422, with the form `which` as it was typed and
/// its problems by field.
async fn refused_form(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    id: i64,
    which: &'static str,
    form: &Form,
    problems: &[Invalid],
) -> HttpResponse {
    let draft = Draft {
        refused: Some(Refused {
            which,
            fields: form.fields(),
            errors: errors_by_field(viewer.locale, problems),
        }),
        ..Draft::default()
    };
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

/// What a form of this module leads to: the use case's own validation
/// errors shown by the fields, the rest as every case-changing form.
#[allow(clippy::too_many_arguments, reason = "the request's parts, passed on")]
async fn answered<T>(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    id: i64,
    which: &'static str,
    form: &Form,
    result: Result<T, DeskError>,
    notice: &str,
) -> HttpResponse {
    match result {
        Err(DeskError::Invalid(problems)) => {
            refused_form(req, viewer, caller, id, which, form, &problems).await
        }
        result => after_change(req, viewer, caller, id, result, notice).await,
    }
}

/// The prologue of a form for a case action: a signed-in caller, a good
/// CSRF token, and a role that may take `kind` (else the 403 page).
#[allow(
    clippy::result_large_err,
    reason = "the Err is the response itself, returned at once"
)]
fn action_form(
    req: &HttpRequest,
    viewer: &Viewer,
    form: &Form,
    kind: ActionKind,
) -> Result<Caller, HttpResponse> {
    let caller = signed_in_form(req, viewer, form.get("csrf"))?;
    cases::may_take(&caller, kind).map_err(|error| desk_error(viewer, error))?;
    Ok(caller)
}

fn version(form: &Form) -> Option<i64> {
    form.get("version").and_then(|v| v.parse::<i64>().ok())
}

/// An optional reason: blank is none.
fn reason(form: &Form, field: &str) -> Result<Option<String>, Vec<Invalid>> {
    match form.filled(field) {
        None => Ok(None),
        Some(text) => parse_text(text, case::NOTE_MAX_CHARS)
            .map(Some)
            .map_err(|message| vec![Invalid::new(field, message)]),
    }
}

#[post("/cases/{id}/triage")]
pub async fn triage(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    form: Form,
) -> HttpResponse {
    let caller = match action_form(&req, &viewer, &form, ActionKind::Triage) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let id = id.into_inner();
    let categories = form.all("categories");
    let command = TriageFields {
        priority: form.filled("priority"),
        product_type: form.filled("product_type"),
        categories: Some(&categories),
        route: form.filled("route"),
        note: form.get("note"),
        refer_to: form.filled("refer_to"),
    }
    .parse();
    let command = match command {
        Ok(command) => command,
        Err(problems) => {
            return refused_form(&req, &viewer, caller, id, "triage", &form, &problems).await;
        }
    };
    let desk = &session::state(&req).desk;
    let result = cases::triage(desk, caller, id, version(&form), command).await;
    answered(
        &req,
        &viewer,
        caller,
        id,
        "triage",
        &form,
        result,
        "notice_triaged",
    )
    .await
}

#[post("/cases/{id}/request-info")]
pub async fn request_info(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    form: Form,
) -> HttpResponse {
    let caller = match action_form(&req, &viewer, &form, ActionKind::RequestInfo) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let id = id.into_inner();
    let question = match parse_text(form.get("question").unwrap_or(""), case::NOTE_MAX_CHARS) {
        Ok(question) => question,
        Err(message) => {
            let problems = [Invalid::new("question", message)];
            return refused_form(&req, &viewer, caller, id, "request_info", &form, &problems).await;
        }
    };
    let desk = &session::state(&req).desk;
    let action = CaseAction::RequestInfo { question };
    let result = cases::take_action(desk, caller, id, version(&form), action).await;
    answered(
        &req,
        &viewer,
        caller,
        id,
        "request_info",
        &form,
        result,
        "notice_info_requested",
    )
    .await
}

/// The command a step's form asks for, or the problems of its fields.
fn step_action(name: &str, form: &Form) -> Option<Result<CaseAction, Vec<Invalid>>> {
    let reason = match reason(form, "reason") {
        Ok(reason) => reason,
        Err(problems) => return Some(Err(problems)),
    };
    Some(Ok(match name {
        "start_matching" => CaseAction::StartMatching { reason },
        "start_consultation" => CaseAction::StartConsultation { reason },
        "reopen" => CaseAction::Reopen { reason },
        "close" => {
            let mut problems = crate::domain::validation::Problems::default();
            let outcome = problems
                .required("outcome", form.filled("outcome"))
                .and_then(|o| problems.check("outcome", o.parse::<Outcome>()));
            let duplicate_of = form.filled("duplicate_of").and_then(|d| {
                problems.check(
                    "duplicate_of",
                    d.trim().parse::<i64>().map_err(|_| "must be a number"),
                )
            });
            let outcome = match problems.finish(|| outcome) {
                Ok(outcome) => outcome,
                Err(problems) => return Some(Err(problems)),
            };
            CaseAction::Close(StatusChange {
                to: CaseStatus::Closed,
                outcome: Some(outcome),
                reason,
                duplicate_of,
            })
        }
        _ => return None,
    }))
}

#[post("/cases/{id}/steps/{step}")]
pub async fn step(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<(i64, String)>,
    form: Form,
) -> HttpResponse {
    let (id, name) = path.into_inner();
    let Some(&(kind, which)) = STEPS.iter().find(|(_, n)| *n == name) else {
        return super::error::PageError::NotFound {
            locale: viewer.locale,
        }
        .page(&viewer);
    };
    let caller = match action_form(&req, &viewer, &form, kind) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let action = match step_action(which, &form) {
        Some(Ok(action)) => action,
        Some(Err(problems)) => {
            return refused_form(&req, &viewer, caller, id, which, &form, &problems).await;
        }
        None => unreachable!("every step has a command"),
    };
    let desk = &session::state(&req).desk;
    let result = cases::take_action(desk, caller, id, version(&form), action).await;
    let notice = format!("notice_step_{which}");
    answered(&req, &viewer, caller, id, which, &form, result, &notice).await
}

#[post("/cases/{id}/assign")]
pub async fn assign(
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
    let mut problems = crate::domain::validation::Problems::default();
    let expert_id = problems
        .required("expert_id", form.filled("expert_id"))
        .and_then(|e| {
            problems.check(
                "expert_id",
                e.parse::<i64>().map_err(|_| "must be a number"),
            )
        });
    let role = problems
        .required("role", form.filled("role"))
        .and_then(|r| problems.check("role", r.parse::<AssignmentRole>()));
    let command = match problems.finish(|| {
        Some(Assign {
            expert_id: expert_id?,
            role: role?,
        })
    }) {
        Ok(command) => command,
        Err(problems) => {
            return refused_form(&req, &viewer, caller, id, "assign", &form, &problems).await;
        }
    };
    let desk = &session::state(&req).desk;
    let result = assignments::assign(desk, caller, id, command).await;
    answered(
        &req,
        &viewer,
        caller,
        id,
        "assign",
        &form,
        result,
        "notice_assigned",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_and_assignment_status_has_its_labels() {
        for (_, name) in STEPS {
            for prefix in ["notice_step_", "desk_step_"] {
                let key = format!("{prefix}{name}");
                assert!(i18n::has(&key), "{key}");
            }
        }
        for status in AssignmentStatus::ALL {
            let key = format!("desk_assignment_{}", status.as_str());
            assert!(i18n::has(&key), "{key}");
        }
    }
}
