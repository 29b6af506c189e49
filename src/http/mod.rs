//! HTTP: routes, extractors, problem+json mapping and the OpenAPI document.

pub mod accounts;
pub mod actions;
pub mod admin;
pub mod assignments;
pub mod cases;
pub mod experts;
pub mod extract;
pub mod fallback;
pub mod idempotency;
pub mod import;
pub mod open_hours;
pub mod openapi;
pub mod organizations;
pub mod problem;
pub mod rendered;
pub mod schema;
pub mod service;
pub mod stats;
pub mod terms;
pub mod vocabulary;

use std::sync::Arc;

use actix_web::web;

use crate::auth::password::PasswordHasher;
use crate::auth::rate_limit::LoginLimiter;
use crate::auth::tokens::TokenKeys;
use crate::config::Config;

/// Everything a handler may need, shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    pub hasher: PasswordHasher,
    pub tokens: TokenKeys,
    pub login_limiter: LoginLimiter,
    /// Password-reset requests per address asked about and per client.
    pub reset_limiter: LoginLimiter,
    /// The use cases every handler calls.
    pub desk: crate::desk::Desk,
    /// The triage queue's JSON, kept while its rows and second stay the same.
    pub queue_bodies: rendered::RenderedBodies<[crate::db::cases::QueueRow]>,
    /// The first pages of the desk's and of each organisation's case list
    /// as JSON, kept per caller while the rows stay the same
    /// ([`LIST_BODIES_KEPT`] of them).
    pub list_bodies:
        rendered::RenderedBodies<crate::db::cases::ListedPage, crate::domain::role::Caller>,
}

/// Case-list bodies kept: one per reader thread, list and reader — every
/// member of some thirty organisations reading on two reader threads —
/// some 5 MiB at most for pages of 20 cases.
pub const LIST_BODIES_KEPT: usize = 128;

/// JSON bodies above this are refused with 413 before they are parsed.
pub const JSON_BODY_LIMIT: usize = 256 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(service::health)
        .service(vocabulary::vocabulary_terms)
        .service(openapi::swagger_ui())
        .route("/docs", web::get().to(openapi::docs_redirect))
        .service(accounts::register)
        .service(accounts::login)
        .service(accounts::refresh)
        .service(accounts::logout)
        .service(accounts::me)
        .service(accounts::create_user)
        .service(cases::create_case)
        .service(cases::list_cases)
        .service(cases::get_case)
        .service(cases::claim)
        .service(cases::triage)
        .service(cases::change_status)
        .service(cases::edit_case)
        .service(actions::claim)
        .service(actions::triage)
        .service(actions::request_info)
        .service(actions::applicant_reply)
        .service(actions::start_matching)
        .service(actions::start_consultation)
        .service(actions::close)
        .service(actions::withdraw)
        .service(actions::reopen)
        .service(actions::unknown_action)
        .service(cases::events)
        .service(cases::post_message)
        .service(cases::list_messages)
        .service(cases::triage_queue)
        .service(admin::access_log)
        .service(admin::list_outbox)
        .service(admin::retry_outbox)
        .service(organizations::get_organization)
        .service(organizations::invite)
        .service(accounts::set_password)
        .service(accounts::request_password_reset)
        .service(accounts::find_people)
        .service(terms::confidentiality)
        .service(experts::create_expert)
        .service(experts::list_experts)
        .service(experts::get_expert)
        .service(experts::update_expert)
        .service(experts::suggestions)
        .service(assignments::assign)
        .service(assignments::accept)
        .service(assignments::decline)
        .service(assignments::withdraw)
        .service(assignments::complete)
        .service(assignments::my_assignments)
        .service(assignments::case_assignments)
        .service(assignments::create_meeting)
        .service(assignments::record_meeting)
        .service(assignments::list_meetings)
        .service(assignments::record_advice)
        .service(assignments::write_plan)
        .service(assignments::read_plan)
        .service(stats::categories)
        .service(stats::categories_csv)
        .service(stats::trend)
        .service(stats::pipeline)
        .service(stats::experts)
        .service(stats::open_hours)
        .service(stats::open_hours_csv)
        .service(stats::verify)
        .service(import::import_cases)
        .service(open_hours::list_slots)
        .service(open_hours::change_slot)
        .service(open_hours::get_rules)
        .service(open_hours::change_rules)
        .service(open_hours::list_holidays)
        .service(open_hours::put_holiday)
        .service(open_hours::delete_holiday)
        .service(open_hours::book)
        .service(open_hours::list_bookings)
        .service(open_hours::get_booking)
        .service(open_hours::cancel_booking)
        .service(open_hours::record_attendance)
        .service(open_hours::open_case);
}
