//! Import of historical cases from CSV (admins): all or nothing.

use std::fs::File;
use std::io::{self, Read, Write};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::AppState;
use super::extract::AuthUser;
use super::problem::{ApiError, FieldError};
use crate::clock;
use crate::db::import as store;
use crate::domain::case::desk_date;
use crate::domain::import::{LineError, check_cases_csv};
use crate::domain::role::Role;

/// Import files above this are refused with 413 (about 200,000 rows).
pub const IMPORT_BODY_LIMIT: usize = 20 * 1024 * 1024;
/// Body chunks on their way to the checker: a bound on the memory a fast
/// upload takes while the checks catch up (they then slow the upload).
const CHUNKS_IN_FLIGHT: usize = 16;

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

/// Refuses (413) a body whose declared length is over the limit, before
/// any of it is read.
fn refuse_declared_oversize(req: &HttpRequest) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > IMPORT_BODY_LIMIT) {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(())
}

/// Passes the body on to the checker as it arrives, refusing (413) as soon
/// as it passes the limit (a body without Content-Length, or a lying one).
/// The whole body is read even when the checker has stopped early (at a
/// byte that is not UTF-8), so that an oversized file is still a 413.
async fn forward_limited(
    mut payload: web::Payload,
    chunks: mpsc::Sender<web::Bytes>,
) -> Result<(), ApiError> {
    let mut received = 0;
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
        received += chunk.len();
        if received > IMPORT_BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge);
        }
        // A closed channel: the checker has its answer; only the size counts.
        let _ = chunks.send(chunk).await;
    }
    Ok(())
}

/// The request body as the blocking checker reads it: chunks from the
/// channel, each written to the spool file as it passes. Ends when the
/// sender is dropped (the whole body, or a refused one).
struct Upload<'a> {
    chunks: mpsc::Receiver<web::Bytes>,
    current: web::Bytes,
    spool: &'a File,
}

impl Read for Upload<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            let Some(chunk) = self.chunks.blocking_recv() else {
                return Ok(0);
            };
            let mut spool = self.spool;
            spool.write_all(&chunk)?;
            self.current = chunk;
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

fn internal(error: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(error.into())
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
    refuse_declared_oversize(&req)?;
    let today = desk_date(clock::now_micros());
    // The body goes to an unnamed temporary file and, as it arrives, through
    // the checks on a blocking thread (CPU work, off the async threads);
    // only where each record is and the problems are kept in memory.
    let spool = tempfile::tempfile().map_err(internal)?;
    let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let checking = web::block(move || {
        let upload = Upload {
            chunks: received,
            current: web::Bytes::new(),
            spool: &spool,
        };
        let checked = check_cases_csv(upload, today);
        (spool, checked)
    });
    forward_limited(payload, chunks).await?;
    let (spool, checked) = checking.await.map_err(internal)?;
    let checked = checked.map_err(internal)?.map_err(line_errors)?;
    // Only now, with the whole file received and checked, is the writer
    // taken: the records are read back from the spool a batch at a time.
    let now = clock::now_micros();
    let summary = state
        .db
        .write_alone(move |conn| {
            let batches = checked
                .read_in_batches(&spool, store::batch_rows(conn))
                .map(|batch| batch.map_err(internal));
            store::import_cases(conn, batches, caller.id, now)
        })
        .await?;
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
