//! A case's meetings and support plan, as pages linked from the case page:
//! the desk schedules and records meetings and writes the plan's revisions;
//! the applicant reads the meetings and the current plan.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Serialize;

use super::auth::see_other;
use super::form::{Form, errors_by_field};
use super::i18n;
use super::page::{choices, desk_error, local_time, path_id, signed_in, signed_in_form_on};
use super::render::Viewer;
use super::session;
use crate::desk::assignments::{self, CaseAssignment};
use crate::desk::cases;
use crate::desk::meetings::{self, RecordMeeting, ScheduleMeeting, WritePlan};
use crate::desk::{Caller, DeskError};
use crate::domain::case::{desk_offset, parse_text};
use crate::domain::meeting::{Timing, VideoUrl};
use crate::domain::plan::RevisionKind;
use crate::domain::time::parse_local_timestamp;
use crate::domain::validation::{Invalid, Problems};
use crate::domain::vocabulary::{CaseStatus, MeetingMode};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(meetings_page)
        .service(schedule)
        .service(record)
        .service(plan_page)
        .service(write_plan);
}

/// A refused meeting form: which one, what was typed, and why.
#[derive(Default)]
struct Refused<'a> {
    which: &'a str,
    form: Option<&'a Form>,
    errors: BTreeMap<String, Vec<String>>,
}

#[derive(Serialize)]
struct MeetingLine {
    starts: String,
    duration_minutes: i32,
    mode_label: &'static str,
    expert: String,
    video_url: Option<String>,
    recorded: bool,
    notes: Option<String>,
    advice: Option<String>,
}

#[derive(Serialize)]
struct ExpertChoice {
    id: i64,
    name: String,
}

/// The experts a meeting may be with: those accepted on the case (a
/// recorded meeting's expert may have completed since).
fn engaged_experts(assignments: &[CaseAssignment], include_completed: bool) -> Vec<ExpertChoice> {
    let mut shown: Vec<ExpertChoice> = Vec::new();
    for a in assignments {
        let engaged = a.assignment.status == "accepted"
            || (include_completed && a.assignment.status == "completed");
        if engaged && !shown.iter().any(|e| e.id == a.assignment.expert_id) {
            shown.push(ExpertChoice {
                id: a.assignment.expert_id,
                name: a.expert_name.clone(),
            });
        }
    }
    shown
}

/// The typed values of a meeting form (empty when it was not the refused one).
fn typed(refused: &Refused<'_>, which: &str) -> minijinja::Value {
    let form = refused.form.filter(|_| refused.which == which);
    let get = |name: &str| form.and_then(|f| f.get(name)).unwrap_or("").to_owned();
    minijinja::context! {
        expert_id => get("expert_id"),
        starts_at => get("starts_at"),
        duration_minutes => form.map_or("60".to_owned(), |_| get("duration_minutes")),
        mode => form.map_or("online".to_owned(), |_| get("mode")),
        video_url => get("video_url"),
        notes => get("notes"),
        advice_summary => get("advice_summary"),
        errors => if refused.which == which { refused.errors.clone() } else { BTreeMap::new() },
    }
}

/// The case a meetings or plan page is about: its heading, and whether it
/// is still open.
async fn case_heading(
    desk: &crate::desk::Desk,
    caller: Caller,
    id: i64,
) -> Result<(minijinja::Value, bool), DeskError> {
    let snapshot = cases::read_case(desk, caller, id).await?;
    let open = snapshot.row.status != CaseStatus::Closed;
    let heading = minijinja::context! {
        id, number => snapshot.row.number, title => snapshot.row.title,
    };
    Ok((heading, open))
}

async fn meetings_view(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    id: i64,
    status: StatusCode,
    refused: Refused<'_>,
) -> HttpResponse {
    let desk = &session::state(req).desk;
    let (heading, open) = match case_heading(desk, caller, id).await {
        Ok(found) => found,
        Err(error) => return desk_error(viewer, error),
    };
    let rows = match meetings::meetings(desk, caller, id).await {
        Ok(rows) => rows,
        Err(error) => return desk_error(viewer, error),
    };
    let staff = caller.role.is_desk_staff();
    let case_assignments = if staff {
        match assignments::case_assignments(desk, caller, id).await {
            Ok(found) => found,
            Err(error) => return desk_error(viewer, error),
        }
    } else {
        Vec::new()
    };
    let lang = i18n::lang(viewer.locale);
    let lines: Vec<MeetingLine> = rows
        .into_iter()
        .map(|m| MeetingLine {
            starts: local_time(viewer.locale, m.row.starts_at),
            duration_minutes: m.row.duration_minutes,
            mode_label: m
                .row
                .mode
                .parse::<MeetingMode>()
                .map_or("", |mode| mode.label(lang)),
            expert: m.expert_name,
            video_url: m.row.video_url,
            recorded: m.row.recorded,
            notes: m.row.notes,
            advice: m.row.advice_summary,
        })
        .collect();
    viewer.render(
        status,
        "meetings.html",
        minijinja::context! {
            case => heading,
            meetings => lines,
            can_schedule => staff && open,
            schedule_experts => engaged_experts(&case_assignments, false),
            record_experts => engaged_experts(&case_assignments, true),
            modes => choices(&MeetingMode::ALL, MeetingMode::as_str, MeetingMode::label, lang),
            schedule => typed(&refused, "scheduled"),
            record => typed(&refused, "recorded"),
        },
    )
}

#[get("/cases/{id}/meetings")]
pub async fn meetings_page(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<String>,
) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match path_id(&viewer, &id) {
        Ok(id) => {
            meetings_view(
                &req,
                &viewer,
                caller,
                id,
                StatusCode::OK,
                Refused::default(),
            )
            .await
        }
        Err(response) => response,
    }
}

/// The fields scheduling and recording share, checked.
struct Common {
    expert_id: i64,
    starts_at: chrono::DateTime<chrono::FixedOffset>,
    duration_minutes: i32,
    mode: MeetingMode,
}

fn common(form: &Form, problems: &mut Problems) -> Option<Common> {
    let expert_id = problems
        .required("expert_id", form.filled("expert_id"))
        .and_then(|v| {
            problems.check(
                "expert_id",
                v.parse::<i64>().map_err(|_| "is not an expert"),
            )
        });
    let starts_at = problems
        .required("starts_at", form.filled("starts_at"))
        .and_then(|v| problems.check("starts_at", parse_local_timestamp(v, desk_offset())));
    let duration_minutes = problems
        .required("duration_minutes", form.filled("duration_minutes"))
        .and_then(|v| {
            let range = meetings::DURATION_MINUTES;
            problems.check(
                "duration_minutes",
                v.trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|d| range.contains(d))
                    .ok_or_else(|| format!("must be from {} to {}", range.start(), range.end())),
            )
        });
    let mode = problems
        .required("mode", form.filled("mode"))
        .and_then(|v| {
            problems.check(
                "mode",
                v.parse::<MeetingMode>()
                    .map_err(|_| "must be online or onsite"),
            )
        });
    Some(Common {
        expert_id: expert_id?,
        starts_at: starts_at?,
        duration_minutes: duration_minutes?,
        mode: mode?,
    })
}

/// Optional text: blank is none.
fn optional_text(
    form: &Form,
    field: &str,
    max: usize,
    problems: &mut Problems,
) -> Option<Option<String>> {
    match form.filled(field) {
        None => Some(None),
        Some(text) => problems.check(field, parse_text(text, max)).map(Some),
    }
}

/// What a meeting form leads to: the meetings with `notice`, or the form
/// again with its errors (the use case's too), or the error page.
async fn after_meeting<T>(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    id: i64,
    which: &str,
    form: &Form,
    result: Result<T, Vec<Invalid>>,
) -> HttpResponse {
    match result {
        Ok(_) => see_other(&format!(
            "/cases/{id}/meetings?notice=notice_meeting_{which}"
        )),
        Err(problems) => {
            let refused = Refused {
                which,
                form: Some(form),
                errors: errors_by_field(viewer.locale, &problems),
            };
            meetings_view(
                req,
                viewer,
                caller,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                refused,
            )
            .await
        }
    }
}

/// A use case's refusal by field stays on the form; the rest is a page.
fn by_field<T>(result: Result<T, DeskError>) -> Result<Result<T, Vec<Invalid>>, DeskError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(DeskError::Invalid(problems)) => Ok(Err(problems)),
        Err(DeskError::Conflict { detail, .. }) => Ok(Err(vec![Invalid::new("expert_id", detail)])),
        Err(error) => Err(error),
    }
}

#[post("/cases/{id}/meetings")]
pub async fn schedule(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    meeting_form(req, viewer, id, form, Timing::Scheduled).await
}

#[post("/cases/{id}/meetings/recorded")]
pub async fn record(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    meeting_form(req, viewer, id, form, Timing::Recorded).await
}

/// Schedules a meeting (the invitations are mailed) or records a past one.
async fn meeting_form(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<String>,
    form: Form,
    timing: Timing,
) -> HttpResponse {
    let (caller, id) = match signed_in_form_on(&req, &viewer, &form, &id) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let desk = &session::state(&req).desk;
    let mut problems = Problems::default();
    let fields = common(&form, &mut problems);
    let result = match timing {
        Timing::Scheduled => {
            let video_url = match form.filled("video_url") {
                None => Some(None),
                Some(url) => problems.check("video_url", VideoUrl::parse(url)).map(Some),
            };
            match problems.finish(|| {
                let c = fields?;
                Some(ScheduleMeeting {
                    expert_id: c.expert_id,
                    starts_at: c.starts_at,
                    duration_minutes: c.duration_minutes,
                    mode: c.mode,
                    video_url: video_url?,
                    advice_summary: None,
                })
            }) {
                Ok(command) => meetings::schedule_meeting(desk, caller, id, command).await,
                Err(problems) => Err(DeskError::Invalid(problems)),
            }
        }
        Timing::Recorded => {
            let notes = optional_text(&form, "notes", meetings::NOTES_MAX_CHARS, &mut problems);
            let advice = optional_text(
                &form,
                "advice_summary",
                meetings::ADVICE_MAX_CHARS,
                &mut problems,
            );
            match problems.finish(|| {
                let c = fields?;
                Some(RecordMeeting {
                    expert_id: c.expert_id,
                    starts_at: c.starts_at,
                    duration_minutes: c.duration_minutes,
                    mode: c.mode,
                    notes: notes?,
                    advice_summary: advice?,
                })
            }) {
                Ok(command) => meetings::record_meeting(desk, caller, id, command).await,
                Err(problems) => Err(DeskError::Invalid(problems)),
            }
        }
    };
    let which = match timing {
        Timing::Scheduled => "scheduled",
        Timing::Recorded => "recorded",
    };
    match by_field(result) {
        Ok(result) => after_meeting(&req, &viewer, caller, id, which, &form, result).await,
        Err(error) => desk_error(&viewer, error),
    }
}

// ---------------------------------------------------------------- support plan

#[derive(Serialize)]
struct RevisionLine {
    revision: i32,
    plan: bool,
    author: String,
    at: String,
    body: String,
}

async fn plan_view(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    id: i64,
    status: StatusCode,
    draft: &str,
    error: Option<String>,
) -> HttpResponse {
    let desk = &session::state(req).desk;
    let (heading, open) = match case_heading(desk, caller, id).await {
        Ok(found) => found,
        Err(error) => return desk_error(viewer, error),
    };
    let plan = match meetings::support_plan(desk, caller, id).await {
        Ok(plan) => plan,
        Err(error) => return desk_error(viewer, error),
    };
    let revisions: Vec<RevisionLine> = plan
        .revisions
        .into_iter()
        .map(|(kind, row)| RevisionLine {
            revision: row.revision,
            plan: kind == RevisionKind::Plan,
            author: row.author_name,
            at: local_time(viewer.locale, row.created_at),
            body: row.body,
        })
        .collect();
    let staff = caller.role.is_desk_staff();
    let current = revisions.iter().position(|r| r.plan);
    viewer.render(
        status,
        "plan.html",
        minijinja::context! {
            case => heading,
            revisions,
            current,
            staff,
            can_write => staff && open,
            draft,
            error,
        },
    )
}

#[get("/cases/{id}/plan")]
pub async fn plan_page(req: HttpRequest, viewer: Viewer, id: web::Path<String>) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match path_id(&viewer, &id) {
        Ok(id) => plan_view(&req, &viewer, caller, id, StatusCode::OK, "", None).await,
        Err(response) => response,
    }
}

#[post("/cases/{id}/plan")]
pub async fn write_plan(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let (caller, id) = match signed_in_form_on(&req, &viewer, &form, &id) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let typed = form.get("body").unwrap_or("");
    let refused = |error: String| {
        plan_view(
            &req,
            &viewer,
            caller,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            typed,
            Some(error),
        )
    };
    let body = match parse_text(typed, meetings::PLAN_MAX_CHARS) {
        Ok(body) => body,
        Err(_) if typed.trim().is_empty() => return refused(viewer.text("plan_empty")).await,
        Err(refusal) => {
            return refused(i18n::problem(viewer.locale, refusal.code, &refusal.message)).await;
        }
    };
    let desk = &session::state(&req).desk;
    match meetings::write_plan(desk, caller, id, WritePlan { body }).await {
        Ok(_) => see_other(&format!("/cases/{id}/plan?notice=notice_plan_written")),
        Err(DeskError::Invalid(problems)) => {
            refused(
                problems
                    .into_iter()
                    .map(|p| p.message)
                    .collect::<Vec<_>>()
                    .join(" "),
            )
            .await
        }
        Err(error) => desk_error(&viewer, error),
    }
}
