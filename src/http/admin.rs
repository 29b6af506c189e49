//! Admin views: the case access log and the mail outbox.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::AuthUser;
use super::problem::ApiError;
use super::schema::MailState;
use crate::clock;
use crate::desk::admin::{self, AccessEntry as AccessRead, Mail, Page};
use crate::domain::role::Role;
use crate::domain::validation::Problems;

#[derive(Debug, Deserialize, IntoParams)]
pub struct AccessLogQuery {
    #[param(value_type = i64, required = false)]
    pub case_id: Option<i64>,
    #[param(value_type = i64, required = false)]
    pub user_id: Option<i64>,
    /// Page size; 100 when absent.
    #[param(value_type = i64, required = false, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(value_type = i64, required = false)]
    pub cursor: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEntry {
    pub id: i64,
    pub case_id: i64,
    pub case_number: String,
    pub user_id: i64,
    #[schema(format = Email)]
    pub user_email: String,
    #[schema(value_type = Role)]
    pub user_role: String,
    #[schema(format = DateTime)]
    pub at: String,
    /// What was read: `case`, `list`, `events`, `messages`, `triage_queue`,
    /// `update`.
    pub what: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLog {
    pub items: Vec<AccessEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required)]
    pub next_cursor: Option<i64>,
}

/// Who read which case's text, when: newest first, by case and/or user.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(AccessLogQuery),
    responses(
        (status = 200, body = AccessLog),
        (status = 403, description = "admins only"),
    )
)]
#[get("/api/v1/admin/access-log")]
pub async fn access_log(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<AccessLogQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = admin::AccessLogQuery {
        case_id: query.case_id,
        user_id: query.user_id,
        before: query.cursor,
        limit: query.limit.unwrap_or(admin::DEFAULT_LIMIT),
    };
    let Page { items, next_cursor } = admin::access_log(&state.desk, caller, query).await?;
    let items = items
        .into_iter()
        .map(|AccessRead { row, user_role }| AccessEntry {
            id: row.id,
            case_id: row.case_id,
            case_number: row.case_number,
            user_id: row.user_id,
            user_email: row.user_email,
            user_role: user_role.as_str().to_owned(),
            at: clock::to_rfc3339(row.at),
            what: row.what,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AccessLog { items, next_cursor }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OutboxQuery {
    #[param(value_type = MailState, required = false)]
    pub state: Option<String>,
    /// Page size; 100 when absent.
    #[param(value_type = i64, required = false, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(value_type = i64, required = false)]
    pub cursor: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxEntry {
    pub id: i64,
    /// Empty on a `case_submitted` row.
    pub message_id: String,
    /// The mail's template (`case_submitted_applicant`, `invitation`, …), or
    /// `case_submitted`: a new case whose mails the worker has not written
    /// yet (no recipient, subject or message id until it replaces the row
    /// with them; docs/mail.md).
    pub kind: String,
    #[schema(required)]
    pub case_id: Option<i64>,
    /// Whom the mail goes to: one address, or several joined by ", " (the
    /// desk's mails to its supporters, one per language; a failed one is
    /// split into a mail each).
    pub recipient: String,
    pub subject: String,
    #[schema(value_type = MailState)]
    pub state: String,
    #[schema(minimum = 0)]
    pub attempts: i32,
    #[schema(format = DateTime)]
    pub next_attempt_at: String,
    #[schema(required)]
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required, format = DateTime)]
    pub sent_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxPage {
    pub items: Vec<OutboxEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required)]
    pub next_cursor: Option<i64>,
}

fn outbox_entry(Mail { row, state }: Mail) -> OutboxEntry {
    OutboxEntry {
        id: row.id,
        message_id: row.message_id,
        kind: row.kind,
        case_id: row.case_id,
        recipient: row.recipient,
        subject: row.subject,
        state: state.as_str().to_owned(),
        attempts: row.attempts,
        next_attempt_at: clock::to_rfc3339(row.next_attempt_at),
        last_error: row.last_error,
        created_at: clock::to_rfc3339(row.created_at),
        sent_at: row.sent_at.map(clock::to_rfc3339),
    }
}

/// The mail outbox with each mail's state and last error, newest first.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(OutboxQuery),
    responses(
        (status = 200, body = OutboxPage),
        (status = 403, description = "admins only"),
    )
)]
#[get("/api/v1/admin/outbox")]
pub async fn list_outbox(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<OutboxQuery>,
) -> Result<HttpResponse, ApiError> {
    // Admins only, before the query is looked at.
    caller.require(admin::ADMINS)?;
    let query = query.into_inner();
    let mut problems = Problems::default();
    let mail_state = match query.state.as_deref() {
        None => Some(None),
        Some(s) => problems
            .check("state", s.parse::<admin::MailState>())
            .map(Some),
    };
    let query = problems.finish(|| {
        Some(admin::OutboxQuery {
            state: mail_state?,
            before: query.cursor,
            limit: query.limit.unwrap_or(admin::DEFAULT_LIMIT),
        })
    })?;
    let Page { items, next_cursor } = admin::outbox(&state.desk, caller, query).await?;
    Ok(HttpResponse::Ok().json(OutboxPage {
        items: items.into_iter().map(outbox_entry).collect(),
        next_cursor,
    }))
}

/// Queue a failed mail again (due now, with a fresh attempt budget).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = OutboxEntry),
        (status = 403, description = "admins only"),
        (status = 409, description = "the mail has not failed"),
    )
)]
#[post("/api/v1/admin/outbox/{id}/retry")]
pub async fn retry_outbox(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mail = admin::retry_mail(&state.desk, caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(outbox_entry(mail)))
}
