//! Admin views: the case access log.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::AuthUser;
use super::problem::{ApiError, Problem};
use crate::clock;
use crate::db::cases as store;
use crate::domain::role::Role;

#[derive(Debug, Deserialize, IntoParams)]
pub struct AccessLogQuery {
    pub case_id: Option<i64>,
    pub user_id: Option<i64>,
    /// 1–500, default 100.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEntry {
    pub id: i64,
    pub case_id: i64,
    pub case_number: String,
    pub user_id: i64,
    pub user_email: String,
    pub user_role: String,
    pub at: String,
    /// What was read: `case`, `list`, `events`, `messages`, `triage_queue`.
    pub what: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLog {
    pub items: Vec<AccessEntry>,
    pub next_cursor: Option<i64>,
}

/// Who read which case's text, when: newest first, by case and/or user.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(AccessLogQuery),
    responses(
        (status = 200, body = AccessLog),
        (status = 401, body = Problem),
        (status = 403, description = "admins only", body = Problem),
        (status = 422, body = Problem),
    )
)]
#[get("/api/v1/admin/access-log")]
pub async fn access_log(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<AccessLogQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let limit = match query.limit {
        None => 100,
        Some(n) if (1..=500).contains(&n) => n,
        Some(_) => return Err(ApiError::field("limit", "must be from 1 to 500")),
    };
    let (case_id, user_id, cursor) = (query.case_id, query.user_id, query.cursor);
    let rows = state
        .db
        .read(move |conn| store::access_log(conn, case_id, user_id, cursor, limit))
        .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let items = rows
        .into_iter()
        .map(|r| AccessEntry {
            id: r.id,
            case_id: r.case_id,
            case_number: r.case_number,
            user_id: r.user_id,
            user_email: r.user_email,
            user_role: r.user_role,
            at: clock::to_rfc3339(r.at),
            what: r.what,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AccessLog { items, next_cursor }))
}
