//! `Idempotency-Key` on POST: the same key from the same user within 24
//! hours gets the first answer again (same status, same body, marked
//! `Idempotent-Replayed: true`) without the work being done twice; the same
//! key with another request (method, path, query or body) is a 422. A
//! request that is still running when its twin arrives is waited for.
//!
//! Applies to signed-in POSTs with a JSON body. Sign-in and token calls
//! (`/api/v1/auth/…`) create nothing a retry could duplicate and carry no
//! user yet; the CSV import is one all-or-nothing transaction of up to
//! 20 MiB that is not held in memory to be fingerprinted.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::AppState;
use super::extract::authenticate;
use super::problem::ApiError;
use crate::db::Database;
use crate::db::idempotency::{self as store, Claim, StoredResponse};

pub const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";
/// How long a retry waits for its twin that is still running.
const WAIT_FOR_TWIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// Headers of the first answer that are sent again with its body.
const REPLAYED_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::ETAG, header::LOCATION];

/// Whether a request's key is honoured (see the module doc).
pub(crate) fn applies(method: &Method, path: &str) -> bool {
    method == Method::POST
        && path.starts_with("/api/v1/")
        && !path.starts_with("/api/v1/auth/")
        && !path.starts_with("/api/v1/import/")
}

/// 1–255 visible ASCII characters (a UUID, a random token …).
fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// What makes two requests "the same": method, path, query and body.
fn fingerprint(request: &ServiceRequest, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [
        request.method().as_str().as_bytes(),
        request.path().as_bytes(),
        request.query_string().as_bytes(),
        body,
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

pub async fn middleware(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = request
        .headers()
        .get(HEADER)
        .map(|value| value.to_str().unwrap_or("").to_owned());
    let (Some(key), true) = (key, applies(request.method(), request.path())) else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    // Unauthenticated requests go on to be refused by their handler.
    let Ok(caller) = authenticate(request.request()) else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    if !valid_key(&key) {
        let refusal = ApiError::field(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        );
        return Ok(request.into_response(refusal.error_response()));
    }
    let body = match read_body(&mut request).await {
        Ok(body) => body,
        Err(refusal) => return Ok(request.into_response(refusal.error_response())),
    };
    let db = request
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .desk
        .database()
        .clone();
    let fingerprint = fingerprint(&request, &body);
    request.set_payload(Payload::from(body));

    let claimed = claim(&db, caller.id, &key, &fingerprint).await;
    match claimed {
        Ok(Claim::Run) => {}
        Ok(Claim::Replay(stored)) => {
            let response = replay(&stored).unwrap_or_else(|error| {
                ApiError::Internal(error.context(format!(
                    "user {}: the answer kept for Idempotency-Key {key:?} is unreadable",
                    caller.id
                )))
                .error_response()
            });
            return Ok(request.into_response(response));
        }
        Ok(Claim::Mismatch) => {
            let refusal = ApiError::field(
                "Idempotency-Key",
                "was already used for a different request",
            );
            return Ok(request.into_response(refusal.error_response()));
        }
        Ok(Claim::InFlight) => {
            let busy = ApiError::conflict(
                "a request with this Idempotency-Key is still being processed; retry later",
            );
            let mut response = busy.error_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(request.into_response(response));
        }
        Err(error) => return Ok(request.into_response(error.error_response())),
    }

    let response = next.call(request).await?;
    let status = response.status();
    if status.is_server_error() {
        // Nothing was done that a retry could repeat; let it try again.
        if let Err(error) = store::release(&db, caller.id, &key).await {
            tracing::warn!(error = %error, "idempotency key not released");
        }
        return Ok(response.map_into_boxed_body());
    }
    let (request, response) = response.into_parts();
    let headers = stored_headers(&response);
    let (head, body) = response.into_parts();
    let bytes = match to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let error = ApiError::Internal(anyhow::anyhow!("response body could not be read"));
            return Ok(ServiceResponse::new(request, error.error_response()));
        }
    };
    let stored = StoredResponse {
        status: i32::from(status.as_u16()),
        headers,
        body: bytes.to_vec(),
    };
    if let Err(error) = store::complete(&db, caller.id, &key, stored).await {
        // The answer stands; a retry after ABANDONED_AFTER may run again.
        tracing::warn!(error = %error, "idempotent answer not stored");
    }
    let response = head.set_body(bytes).map_into_boxed_body();
    Ok(ServiceResponse::new(request, response))
}

/// Takes the key, waiting while a twin request holds it.
async fn claim(
    db: &Database,
    user_id: i64,
    key: &str,
    fingerprint: &str,
) -> Result<Claim, ApiError> {
    let give_up = tokio::time::Instant::now() + WAIT_FOR_TWIN;
    loop {
        match store::claim(db, user_id, key, fingerprint).await? {
            Claim::InFlight if tokio::time::Instant::now() < give_up => {
                tokio::time::sleep(POLL).await;
            }
            other => return Ok(other),
        }
    }
}

/// The body, refused with 413 past the JSON limit (the handler's own limit).
async fn read_body(request: &mut ServiceRequest) -> Result<web::Bytes, ApiError> {
    let mut payload = request.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > super::JSON_BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge {
                limit: super::JSON_BODY_LIMIT,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn stored_headers<B>(response: &HttpResponse<B>) -> String {
    let headers: serde_json::Map<String, serde_json::Value> = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = response.headers().get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.into()))
        })
        .collect();
    serde_json::Value::Object(headers).to_string()
}

/// The kept answer again; a stored status or header list that is not one
/// this middleware wrote is an error, never a made-up answer.
fn replay(stored: &StoredResponse) -> anyhow::Result<HttpResponse> {
    let status = u16::try_from(stored.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| anyhow::anyhow!("status {} is not an HTTP status", stored.status))?;
    let mut response = HttpResponse::build(status);
    let headers: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&stored.headers)
        .map_err(|e| anyhow::anyhow!("headers are not a JSON object: {e}"))?;
    for (name, value) in headers {
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::try_from(name),
            value.as_str().map(HeaderValue::from_str),
        ) {
            response.insert_header((name, value));
        }
    }
    response.insert_header((
        HeaderName::from_static(REPLAYED),
        HeaderValue::from_static("true"),
    ));
    Ok(response.body(stored.body.clone()))
}

/// Forgets expired keys once an hour (a key is also renewed on use once expired).
pub fn spawn_purge(
    db: Database,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(error) = store::purge(&db).await {
                        tracing::warn!(error = %error, "expired idempotency keys not purged");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(valid_key("3f2a9c1e-7b7d-4c55-9a4e-0b7e2f1d6c11"));
        assert!(valid_key(&"k".repeat(255)));
        for bad in ["", " spaced", "tab\t", "日本語", &"k".repeat(256)] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn kept_answers_are_replayed_as_kept_or_not_at_all() {
        let kept = StoredResponse {
            status: 201,
            headers: r#"{"etag":"\"1\""}"#.to_owned(),
            body: b"{}".to_vec(),
        };
        let response = replay(&kept).unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers().get(header::ETAG).unwrap(), "\"1\"");
        assert_eq!(response.headers().get(REPLAYED).unwrap(), "true");
        for unreadable in [
            StoredResponse {
                status: 42,
                ..kept.clone()
            },
            StoredResponse {
                headers: "[".to_owned(),
                ..kept.clone()
            },
        ] {
            assert!(replay(&unreadable).is_err());
        }
    }

    #[test]
    fn keys_apply_to_signed_in_posts_but_not_sign_in_or_import() {
        assert!(applies(&Method::POST, "/api/v1/cases"));
        assert!(applies(&Method::POST, "/api/v1/cases/7/messages"));
        assert!(!applies(&Method::GET, "/api/v1/cases"));
        assert!(!applies(&Method::PATCH, "/api/v1/experts/1"));
        assert!(!applies(&Method::POST, "/api/v1/auth/login"));
        assert!(!applies(&Method::POST, "/api/v1/import/cases"));
    }
}
