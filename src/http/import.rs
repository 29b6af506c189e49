//! Import of historical cases from CSV (admins): all or nothing.

use std::io::{self, Read};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::AppState;
use super::extract::AuthUser;
use super::problem::{ApiError, FieldError};
use crate::desk::import::{self as desk, ImportCases, ImportOutcome};
use crate::domain::import::LineError;

/// Import files above this are refused with 413 (about 200,000 rows).
pub const IMPORT_BODY_LIMIT: usize = 20 * 1024 * 1024;
/// Body chunks on their way to the checks: a bound on the memory a fast
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
        return Err(ApiError::PayloadTooLarge {
            limit: IMPORT_BODY_LIMIT,
        });
    }
    Ok(())
}

/// A piece of the body on its way to the use case; `None` once the whole
/// body has been received.
type Chunk = Option<web::Bytes>;

/// Passes the body on to the use case as it arrives, refusing (413) as soon
/// as it passes the limit (a body without Content-Length, or a lying one).
/// The whole body is read even when the checks have stopped early (at a
/// byte that is not UTF-8), so that an oversized file is still a 413.
async fn forward_limited(
    mut payload: web::Payload,
    chunks: mpsc::Sender<Chunk>,
) -> Result<(), ApiError> {
    let mut received = 0;
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
        received += chunk.len();
        if received > IMPORT_BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge {
                limit: IMPORT_BODY_LIMIT,
            });
        }
        // A closed channel: the checks have their answer; only the size counts.
        let _ = chunks.send(Some(chunk)).await;
    }
    let _ = chunks.send(None).await;
    Ok(())
}

/// The request body as the use case reads it (blocking): chunks from the
/// channel. It ends only where the whole body was received; a body given
/// up before that (refused, or unreadable) is a read error, so a file cut
/// short is never imported.
struct Upload {
    chunks: mpsc::Receiver<Chunk>,
    current: web::Bytes,
    complete: bool,
}

impl Read for Upload {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.complete {
                return Ok(0);
            }
            match self.chunks.blocking_recv() {
                Some(Some(chunk)) => self.current = chunk,
                Some(None) => self.complete = true,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upload was given up before its end",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
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
    caller.require(desk::ROLES)?;
    require_csv(&req)?;
    refuse_declared_oversize(&req)?;
    // The body flows through a bounded channel into the use case, which
    // spools and checks it as it arrives; a refused body (413) stores
    // nothing, and its answer comes first.
    let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let upload = Upload {
        chunks: received,
        current: web::Bytes::new(),
        complete: false,
    };
    let command = ImportCases { csv: upload };
    let (outcome, forwarded) = futures_util::future::join(
        desk::import_cases(&state.desk, caller, command),
        forward_limited(payload, chunks),
    )
    .await;
    forwarded?;
    match outcome? {
        ImportOutcome::Imported(summary) => Ok(HttpResponse::Created().json(ImportResult {
            imported: summary.imported,
            organizations_created: summary.organizations_created,
        })),
        ImportOutcome::Refused(problems) => Err(line_errors(problems)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload() -> (mpsc::Sender<Chunk>, Upload) {
        let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let upload = Upload {
            chunks: received,
            current: web::Bytes::new(),
            complete: false,
        };
        (chunks, upload)
    }

    /// The use case reads the body to its end only when all of it came; a
    /// body given up part-way (413, a broken connection) is a read error,
    /// so it cannot be taken for a shorter file.
    #[test]
    fn an_upload_ends_only_where_the_whole_body_came() {
        let (chunks, mut whole) = upload();
        chunks
            .try_send(Some(web::Bytes::from_static(b"a,b\n")))
            .unwrap();
        chunks
            .try_send(Some(web::Bytes::from_static(b"1,2\n")))
            .unwrap();
        chunks.try_send(None).unwrap();
        drop(chunks);
        let mut read = String::new();
        whole.read_to_string(&mut read).unwrap();
        assert_eq!(read, "a,b\n1,2\n");
        assert_eq!(
            Read::read(&mut whole, &mut [0; 8]).unwrap(),
            0,
            "and stays ended"
        );

        let (chunks, mut cut) = upload();
        chunks
            .try_send(Some(web::Bytes::from_static(b"a,b\n")))
            .unwrap();
        drop(chunks);
        let mut read = Vec::new();
        let error = cut.read_to_end(&mut read).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(read, b"a,b\n");
    }
}
