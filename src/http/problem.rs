//! The one place where failures become `application/problem+json` (RFC 9457).

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::db::{DbError, Fault};
use crate::desk::DeskError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// `Retry-After` of a 503: the pool waits this long for a connection anyway.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The field as the request names it (`organization.name`, `limit`,
    /// `body` for a body of the wrong shape, `query` for a malformed query).
    pub field: String,
    pub message: String,
    /// The line of an uploaded file the problem is on (CSV import).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64, minimum = 1)]
    pub line: Option<u64>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            line: None,
        }
    }

    pub fn at_line(line: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            ..Self::new(field, message)
        }
    }
}

/// The problem document every 4xx/5xx body carries (its schema is written
/// out below: `extra` holds the few documented context fields).
#[derive(Debug, Serialize)]
pub struct Problem {
    /// A stable identifier of the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Extra machine-readable context (e.g. allowed transitions).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl utoipa::PartialSchema for Problem {
    fn schema() -> RefOr<Schema> {
        use super::schema::ExclusionReason;
        use crate::domain::lifecycle::ActionKind;
        use crate::domain::vocabulary::CaseStatus;
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaFormat, Type};
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let reference = |name: &str| RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name));
        ObjectBuilder::new()
            .description(Some(
                "An RFC 9457 problem document, sent as `application/problem+json`.",
            ))
            .property(
                "type",
                string()
                    .format(Some(SchemaFormat::Custom("uri-reference".to_owned())))
                    .pattern(Some("^/problems/[a-z-]+$"))
                    .description(Some("A stable identifier of the kind of problem."))
                    .examples(["/problems/validation"]),
            )
            .required("type")
            .property("title", string().description(Some("The status's reason phrase.")))
            .required("title")
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(400))
                    .maximum(Some(599))
                    .description(Some("The HTTP status code.")),
            )
            .required("status")
            .property("detail", string().description(Some("What went wrong, for people.")))
            .required("detail")
            .property(
                "errors",
                ArrayBuilder::new()
                    .items(reference(&FieldError::name()))
                    .min_items(Some(1))
                    .description(Some("Every invalid field (validation problems only).")),
            )
            .property(
                "case_status",
                reference(&CaseStatus::name()),
            )
            .property(
                "allowed_actions",
                ArrayBuilder::new()
                    .items(reference(&ActionKind::name()))
                    .description(Some(
                        "With `case_status`, on an impossible transition: what the caller may do now.",
                    )),
            )
            .property(
                "reason",
                reference(&ExclusionReason::name()),
            )
            .property(
                "terms_version",
                string().description(Some(
                    "On an acceptance naming other confidentiality terms: the current version.",
                )),
            )
            .property(
                "terms",
                string()
                    .format(Some(SchemaFormat::Custom("uri-reference".to_owned())))
                    .description(Some("With `terms_version`: where to read the current terms.")),
            )
            .property(
                "max_bytes",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .description(Some("With a 413: the most bytes the operation takes.")),
            )
            .into()
    }
}

impl ToSchema for Problem {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use crate::domain::lifecycle::ActionKind;
        use crate::domain::vocabulary::CaseStatus;
        for (name, schema) in [
            (FieldError::name(), FieldError::schema()),
            (CaseStatus::name(), CaseStatus::schema()),
            (ActionKind::name(), ActionKind::schema()),
            (
                super::schema::ExclusionReason::name(),
                super::schema::ExclusionReason::schema(),
            ),
        ] {
            schemas.push((name.into_owned(), schema));
        }
    }
}

/// Why a request to a protected resource has no valid bearer token, and
/// what its `WWW-Authenticate` challenge says (RFC 6750, section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token this server issued, past its expiry: refresh it.
    Expired,
    /// Not a token this server issued (bad signature, algorithm or shape).
    Invalid,
    /// A token of a session that ended (the password was reset).
    Ended,
}

impl BearerError {
    pub fn detail(self) -> &'static str {
        match self {
            BearerError::Missing => "a bearer access token is required",
            BearerError::Expired => {
                "the access token expired; get a new one with your refresh token (POST /api/v1/auth/refresh)"
            }
            BearerError::Invalid => "the access token is invalid: this server did not issue it",
            BearerError::Ended => "the session ended (the password was reset); sign in again",
        }
    }

    /// The `WWW-Authenticate` header value.
    pub fn challenge(self) -> &'static str {
        match self {
            BearerError::Missing => "Bearer",
            BearerError::Expired => {
                "Bearer error=\"invalid_token\", error_description=\"the access token expired\""
            }
            BearerError::Invalid => {
                "Bearer error=\"invalid_token\", error_description=\"the access token is invalid\""
            }
            BearerError::Ended => {
                "Bearer error=\"invalid_token\", error_description=\"the session ended; sign in again\""
            }
        }
    }
}

#[derive(thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// Credentials that are not a bearer token (a login, a refresh token).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A protected resource without a valid bearer token.
    #[error("{}", .0.detail())]
    Unauthenticated(BearerError),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    /// A path that names nothing, with what it could have named.
    #[error("{0}")]
    NoSuchPath(String),
    /// Carries the value of the `Allow` header.
    #[error("this method is not allowed here; allowed: {0}")]
    MethodNotAllowed(String),
    #[error("{detail}")]
    Conflict {
        detail: String,
        extra: Option<serde_json::Map<String, serde_json::Value>>,
    },
    /// No seat is left in an Open Hours slot (409, `/problems/slot_full`).
    #[error("no seat is left in this slot")]
    SlotFull,
    #[error("the resource has changed since version {0} was read")]
    PreconditionFailed(String),
    /// Carries the operation's limit, in bytes.
    #[error("the request body is too large: this operation takes at most {} ({limit} bytes)", human_bytes(*.limit))]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("too many attempts; retry in {retry_after_seconds} s")]
    TooManyRequests { retry_after_seconds: u64 },
    /// The database (or another part of the infrastructure) is not there
    /// for a moment; nothing was changed.
    #[error("the service is briefly unavailable; retry in {retry_after_seconds} s")]
    Unavailable { retry_after_seconds: u64 },
    /// The disk is full; nothing was changed.
    #[error("the server has no space left to store this; retry later")]
    InsufficientStorage,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn conflict(detail: impl Into<String>) -> Self {
        ApiError::Conflict {
            detail: detail.into(),
            extra: None,
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "malformed-request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Unauthenticated(BearerError::Expired) => "token-expired",
            ApiError::Unauthenticated(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound | ApiError::NoSuchPath(_) => "not-found",
            ApiError::MethodNotAllowed(_) => "method-not-allowed",
            ApiError::Conflict { .. } => "conflict",
            ApiError::SlotFull => "slot_full",
            ApiError::PreconditionFailed(_) => "stale-version",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Validation(_) => "validation",
            ApiError::TooManyRequests { .. } => "rate-limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::InsufficientStorage => "storage-full",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// Request logs record errors with `Debug`: keep it as terse as `Display` so
/// field values (which may be passwords or case text) never reach a log.
impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Internal(source) => write!(f, "Internal({source:#})"),
            ApiError::Validation(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                write!(f, "Validation({})", fields.join(", "))
            }
            other => write!(f, "{}({other})", other.slug()),
        }
    }
}

/// How long a client waits before retrying after the disk filled up.
const STORAGE_RETRY_AFTER_SECONDS: &str = "60";

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error.fault() {
            Some(Fault::Unavailable) => {
                tracing::warn!(error = %error, "database unavailable");
                return ApiError::Unavailable {
                    retry_after_seconds: UNAVAILABLE_RETRY_AFTER_SECONDS,
                };
            }
            Some(Fault::StorageFull) => {
                tracing::error!(error = %error, "database storage full");
                return ApiError::InsufficientStorage;
            }
            None => {}
        }
        match error {
            DbError::NotFound => ApiError::NotFound,
            DbError::UniqueViolation(_) => ApiError::conflict("the resource already exists"),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// The use cases' errors, mapped once for the JSON API.
impl From<DeskError> for ApiError {
    fn from(error: DeskError) -> Self {
        match error {
            DeskError::NotFound => ApiError::NotFound,
            DeskError::Forbidden(why) => ApiError::Forbidden(why),
            DeskError::Invalid(problems) => problems.into(),
            DeskError::Conflict { detail, context } => ApiError::Conflict {
                detail,
                extra: context,
            },
            DeskError::SlotFull => ApiError::SlotFull,
            DeskError::StaleVersion { expected } => {
                ApiError::PreconditionFailed(expected.to_string())
            }
            DeskError::Store(error) => error.into(),
            DeskError::Internal(error) => ApiError::Internal(error),
        }
    }
}

impl From<Vec<crate::domain::validation::Invalid>> for ApiError {
    fn from(problems: Vec<crate::domain::validation::Invalid>) -> Self {
        ApiError::Validation(
            problems
                .into_iter()
                .map(|p| FieldError::new(p.field, p.message))
                .collect(),
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::NoSuchPath(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::SlotFull => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let ApiError::Internal(source) = self {
            // Logged once, here; the client gets no internals.
            tracing::error!(error = ?source, "request failed");
        }
        let detail = match self {
            ApiError::Internal(_) => "the server could not complete the request".to_owned(),
            ApiError::Validation(errors) if errors.iter().any(|e| e.line.is_some()) => {
                let mut lines: Vec<u64> = errors.iter().filter_map(|e| e.line).collect();
                lines.dedup();
                let shown: Vec<String> = lines.iter().take(20).map(u64::to_string).collect();
                let more = if lines.len() > shown.len() {
                    ", …"
                } else {
                    ""
                };
                format!(
                    "{} problem(s) on {} line(s): {}{more}",
                    errors.len(),
                    lines.len(),
                    shown.join(", ")
                )
            }
            ApiError::Validation(errors) if errors.len() == 1 => {
                format!("{} {}", errors[0].field, errors[0].message)
            }
            ApiError::Validation(errors) => format!("{} fields are invalid", errors.len()),
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors: match self {
                ApiError::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
            extra: match self {
                ApiError::Conflict { extra, .. } => extra.clone(),
                ApiError::PayloadTooLarge { limit } => {
                    let mut extra = serde_json::Map::new();
                    extra.insert("max_bytes".to_owned(), (*limit).into());
                    Some(extra)
                }
                _ => None,
            },
        };
        let mut response = HttpResponse::build(status);
        match self {
            ApiError::TooManyRequests {
                retry_after_seconds,
            }
            | ApiError::Unavailable {
                retry_after_seconds,
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_seconds.to_string()));
            }
            ApiError::InsufficientStorage => {
                response.insert_header((header::RETRY_AFTER, STORAGE_RETRY_AFTER_SECONDS));
            }
            _ => {}
        }
        if let ApiError::MethodNotAllowed(allow) = self {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        if let ApiError::Unauthenticated(why) = self {
            response.insert_header((header::WWW_AUTHENTICATE, why.challenge()));
        }
        response.content_type(PROBLEM_JSON).json(problem)
    }
}

/// Safety net for responses made outside our handlers (unknown routes, wrong
/// methods, actix's own errors): any error response that is not already a
/// problem document becomes one, keeping its status and headers.
pub fn ensure_problem_body<B>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    // The pages answer their errors with error pages of their own.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/html"));
    if is_problem || is_page {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let detail = match status {
        StatusCode::NOT_FOUND => "no such resource".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this resource".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the request body is too large: JSON bodies are at most {} ({} bytes)",
            human_bytes(super::JSON_BODY_LIMIT),
            super::JSON_BODY_LIMIT
        ),
        _ => response
            .response()
            .error()
            .map(|e| e.to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
    };
    let slug = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        s if s.is_server_error() => "internal",
        _ => "malformed-request",
    };
    let problem = Problem {
        kind: format!("/problems/{slug}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        errors: None,
        extra: None,
    };
    let body = serde_json::to_string(&problem).unwrap_or_default();
    let (request, old) = response.into_parts();
    let mut new = HttpResponse::with_body(status, BoxBody::new(body));
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    new.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    let new: HttpResponse<EitherBody<B>> = new.map_body(|_, body| EitherBody::right(body));
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(
        request, new,
    )))
}

/// Maps actix's JSON extractor failures (bodies read with `web::Json`;
/// the API's own bodies go through `extract::Json`): syntax → 400, wrong
/// shape → 422.
pub fn json_error(error: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match error {
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            ApiError::PayloadTooLarge { limit }
        }
        E::ContentType => {
            ApiError::UnsupportedMediaType("the body must be application/json".to_owned())
        }
        E::Deserialize(e) if e.is_data() => {
            ApiError::Validation(vec![FieldError::new("body", e.to_string())])
        }
        E::Deserialize(e) => ApiError::BadRequest(format!("malformed JSON: {e}")),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// `262144` as `256 KiB`: limits as people write them.
pub fn human_bytes(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

pub fn query_error(error: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::Validation(vec![FieldError::new("query", error.to_string())])
}

pub fn path_error(_: actix_web::error::PathError) -> ApiError {
    // An id that cannot exist is simply not found: it leaks nothing.
    ApiError::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_failures_carry_their_rfc_6750_challenge() {
        let expired = ApiError::Unauthenticated(BearerError::Expired).error_response();
        assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            expired.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer error=\"invalid_token\", error_description=\"the access token expired\""
        );
        let missing = ApiError::Unauthenticated(BearerError::Missing).error_response();
        assert_eq!(
            missing.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer"
        );
        // A failed login is not a bearer challenge.
        let login = ApiError::Unauthorized("wrong").error_response();
        assert!(login.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn an_unreachable_database_is_503_with_retry_after() {
        let down = DbError::Commit("database is locked".to_owned());
        let error = ApiError::from(down);
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "1");
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );
    }
}
