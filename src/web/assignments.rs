//! The experts' pages: their assignments with accept (acknowledging the
//! confidentiality terms), decline and complete, and the terms themselves.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Serialize;

use super::auth::see_other;
use super::i18n;
use super::page::{desk_error, local_time, signed_in, signed_in_form};
use super::render::Viewer;
use super::session;
use crate::desk::assignments::{self, Accept, AssignmentFilter, Decline};
use crate::desk::terms;
use crate::domain::account::Locale;
use crate::domain::case::{NOTE_MAX_CHARS, parse_text};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(accept)
        .service(decline)
        .service(complete)
        .service(confidentiality);
}

#[derive(Serialize)]
struct AssignmentLine {
    id: i64,
    case_id: i64,
    case_number: String,
    case_title: String,
    status: String,
    role: String,
    proposed: String,
    terms_version: Option<String>,
}

/// The expert's assignments; `decline` is a decline that was refused, kept
/// with its reason and why.
async fn assignments_page(
    req: &HttpRequest,
    viewer: &Viewer,
    status: StatusCode,
    refused_decline: Option<(i64, String, String)>,
) -> HttpResponse {
    let caller = match signed_in(req, viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let desk = &session::state(req).desk;
    let mine = match assignments::my_assignments(desk, caller, AssignmentFilter::All).await {
        Ok(mine) => mine,
        Err(error) => return desk_error(viewer, error),
    };
    let lines: Vec<AssignmentLine> = mine
        .into_iter()
        .map(|m| AssignmentLine {
            id: m.assignment.id,
            case_id: m.assignment.case_id,
            case_number: m.case_number,
            case_title: m.case_title,
            status: m.assignment.status,
            role: m.assignment.role,
            proposed: local_time(viewer.locale, m.assignment.created_at),
            terms_version: m.assignment.terms_version,
        })
        .collect();
    let (decline_id, decline_reason, decline_error) = match refused_decline {
        Some((id, reason, error)) => (Some(id), reason, Some(error)),
        None => (None, String::new(), None),
    };
    viewer.render(
        status,
        "assignments.html",
        minijinja::context! {
            assignments => lines,
            terms_version => terms::CONFIDENTIALITY_TERMS_VERSION,
            terms_page => terms::CONFIDENTIALITY_TERMS_PAGE,
            decline_id, decline_reason, decline_error,
        },
    )
}

#[get("/assignments")]
pub async fn list(req: HttpRequest, viewer: Viewer) -> HttpResponse {
    assignments_page(&req, &viewer, StatusCode::OK, None).await
}

#[post("/assignments/{id}/accept")]
pub async fn accept(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    form: super::form::Form,
) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    // The version the page showed: accepting other terms than the current
    // ones is refused by the use case.
    let command = Accept {
        terms_version: Some(form.get("terms_version").unwrap_or("").to_owned()),
    };
    let desk = &session::state(&req).desk;
    match assignments::accept(desk, caller, id.into_inner(), command).await {
        Ok(row) => see_other(&format!("/cases/{}?notice=notice_accepted", row.case_id)),
        Err(error) => desk_error(&viewer, error),
    }
}

#[post("/assignments/{id}/decline")]
pub async fn decline(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    form: super::form::Form,
) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let id = id.into_inner();
    let typed = form.get("reason").unwrap_or("").to_owned();
    let reason = match parse_text(&typed, NOTE_MAX_CHARS) {
        Ok(reason) => reason,
        Err(refusal) => {
            let error = if typed.trim().is_empty() {
                viewer.text("assignment_reason_missing")
            } else {
                i18n::problem(viewer.locale, refusal.code, &refusal.message)
            };
            return assignments_page(
                &req,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some((id, typed, error)),
            )
            .await;
        }
    };
    let desk = &session::state(&req).desk;
    match assignments::decline(desk, caller, id, Decline { reason }).await {
        Ok(_) => see_other("/assignments?notice=notice_declined"),
        Err(error) => desk_error(&viewer, error),
    }
}

#[post("/assignments/{id}/complete")]
pub async fn complete(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    form: super::form::Form,
) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let desk = &session::state(&req).desk;
    match assignments::complete(desk, caller, id.into_inner()).await {
        Ok(_) => see_other("/assignments?notice=notice_completed"),
        Err(error) => desk_error(&viewer, error),
    }
}

/// One block of the terms' text: a heading or a paragraph.
#[derive(Serialize)]
struct Block {
    level: u8,
    text: String,
}

/// The terms' Markdown as headings and paragraphs (all the text uses).
fn blocks(markdown: &str) -> Vec<Block> {
    markdown
        .split("\n\n")
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|block| {
            let level = block.chars().take_while(|&c| c == '#').count();
            Block {
                level: u8::try_from(level).unwrap_or(0),
                text: block.trim_start_matches('#').trim().to_owned(),
            }
        })
        .collect()
}

/// The confidentiality terms in the viewer's language; no sign-in needed.
#[get("/terms/confidentiality")]
pub async fn confidentiality(viewer: Viewer) -> HttpResponse {
    let current = terms::confidentiality_terms();
    let text = match viewer.locale {
        Locale::Ja => current.ja,
        Locale::En => current.en,
    };
    let mut blocks = blocks(text);
    // The page's own heading is the first one.
    let title = match blocks.first() {
        Some(first) if first.level == 1 => blocks.remove(0).text,
        _ => viewer.text("terms_title"),
    };
    viewer.render(
        StatusCode::OK,
        "terms.html",
        minijinja::context! {
            title, blocks,
            version => current.version,
            effective_on => current.effective_on,
        },
    )
}
