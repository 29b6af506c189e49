//! Import of historical cases from CSV (admins): all or nothing.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::extract::AuthUser;
use super::problem::{ApiError, FieldError};
use crate::clock;
use crate::db::import as store;
use crate::domain::case::desk_date;
use crate::domain::import::{LineError, parse_cases_csv};
use crate::domain::role::Role;

/// Import files above this are refused with 413 (about 200,000 rows).
pub const IMPORT_BODY_LIMIT: usize = 20 * 1024 * 1024;

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    /// Cases stored.
    #[schema(minimum = 0)]
    pub imported: usize,
    /// Organisations created for names not seen in earlier imports.
    #[schema(minimum = 0)]
    pub organizations_created: usize,
}

fn line_errors(errors: Vec<LineError>) -> ApiError {
    ApiError::Validation(
        errors
            .into_iter()
            .map(|e| FieldError::at_line(e.line, e.field, e.message))
            .collect(),
    )
}

/// `text/csv` (any parameters, e.g. `charset=utf-8`), else 415.
fn require_csv(req: &HttpRequest) -> Result<(), ApiError> {
    let essence = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("text/csv") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(
            "the body must be text/csv".to_owned(),
        )),
    }
}

/// Reads the body, refusing (413) as soon as it passes the limit: up front
/// from Content-Length, or while streaming a body without one.
async fn read_limited(req: &HttpRequest, mut payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > IMPORT_BODY_LIMIT) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
        if body.len() + chunk.len() > IMPORT_BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Import closed historical cases from CSV: header
/// `received_on,product_type,categories,organization,title,status,outcome`,
/// categories separated by `;`, codes or Japanese labels. Either every row
/// is stored, in one transaction, or none is and every bad line is listed
/// (`errors[].line`). Imported cases count in the statistics at once and
/// send no mail.
#[utoipa::path(
    tag = "import",
    security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv", description = "UTF-8 (a BOM is fine), at most 20 MiB"),
    responses(
        (status = 201, body = ImportResult),
        (status = 400, description = "the body could not be read"),
        (status = 403, description = "admins only"),
        (status = 413, description = "over 20 MiB"),
        (status = 415, description = "not text/csv"),
        (status = 422, description = "every bad line, with its number; nothing stored"),
    )
)]
#[post("/api/v1/import/cases")]
pub async fn import_cases(
    state: web::Data<AppState>,
    caller: AuthUser,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    require_csv(&req)?;
    let body = read_limited(&req, payload).await?;
    let now = clock::now_micros();
    let today = desk_date(now);
    // Parsing 20 MiB is CPU work: off the async threads, before any lock.
    let records = web::block(move || parse_cases_csv(&body, today))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(line_errors)?;
    let summary = state
        .db
        .write(move |conn| store::import_cases(conn, &records, caller.id, now))
        .await
        .map_err(ApiError::from)?;
    tracing::info!(
        imported = summary.imported,
        organizations_created = summary.organizations_created,
        "historical cases imported"
    );
    // The import is stored whatever this says; a failure only costs speed.
    let analyzed = state.db.write(crate::db::stats::analyze_rollups).await;
    if let Err(error) = analyzed {
        tracing::warn!(%error, "could not refresh the rollups' planner statistics");
    }
    Ok(HttpResponse::Created().json(ImportResult {
        imported: summary.imported,
        organizations_created: summary.organizations_created,
    }))
}
