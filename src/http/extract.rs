//! Request extractors: the authenticated user and the client address.

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::AppState;
use super::problem::{ApiError, BearerError};
use crate::auth::tokens::Rejection;

/// The caller, from a valid `Authorization: Bearer` access token.
pub type AuthUser = crate::domain::role::Caller;

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

pub(crate) fn authenticate(req: &HttpRequest) -> Result<AuthUser, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered");
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .ok_or(ApiError::Unauthenticated(BearerError::Missing))?;
    let claims = state.tokens.verify(token.trim()).map_err(|rejection| {
        ApiError::Unauthenticated(match rejection {
            Rejection::Expired => BearerError::Expired,
            Rejection::Invalid => BearerError::Invalid,
        })
    })?;
    let id = claims
        .sub
        .parse()
        .map_err(|_| ApiError::Unauthenticated(BearerError::Invalid))?;
    // In memory: a password reset ended the sessions of older generations.
    if !state.desk.session_is_current(id, claims.generation) {
        return Err(ApiError::Unauthenticated(BearerError::Ended));
    }
    Ok(AuthUser {
        id,
        role: claims.role,
        organization_id: claims.org,
    })
}

/// The client's address: the peer, or the first `X-Forwarded-For` hop when
/// the operator says a trusted proxy sets it.
pub fn client_address(req: &HttpRequest, trust_forwarded_for: bool) -> IpAddr {
    let forwarded = trust_forwarded_for
        .then(|| {
            req.headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        })
        .flatten();
    forwarded
        .or_else(|| req.peer_addr().map(|addr| addr.ip()))
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// `If-Match: "<version>"` (also bare or weak `W/"…"`); absent means
/// "whatever the current version is".
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<i64>);

impl IfMatch {
    /// 412 when the client's version is not the current one.
    pub fn check(&self, current: i64) -> Result<(), ApiError> {
        match self.0 {
            Some(expected) if expected != current => {
                Err(ApiError::PreconditionFailed(expected.to_string()))
            }
            _ => Ok(()),
        }
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(value) = req.headers().get(header::IF_MATCH) else {
            return ready(Ok(IfMatch(None)));
        };
        let parsed = value.to_str().ok().and_then(|raw| {
            let raw = raw.trim();
            if raw == "*" {
                return Some(None);
            }
            let raw = raw.strip_prefix("W/").unwrap_or(raw);
            raw.trim_matches('"').parse::<i64>().ok().map(Some)
        });
        ready(match parsed {
            Some(version) => Ok(IfMatch(version)),
            None => Err(ApiError::BadRequest(
                "If-Match must be a case version, e.g. \"3\"".to_owned(),
            )),
        })
    }
}

/// A JSON body that is an object. Read here rather than by `web::Json` so
/// that each refusal says what is wrong, as problem+json:
///
/// - 415 unless the media type is `application/json` (or `…+json`) with no
///   charset or `charset=utf-8`: JSON is UTF-8 (RFC 8259 §8.1), and a
///   declared Shift_JIS body is not read as something else;
/// - 413 past [`super::JSON_BODY_LIMIT`], saying the limit;
/// - 400 for bytes that are not UTF-8 (saying so, and where) or text that is
///   not JSON;
/// - 422 for JSON of the wrong shape, naming the field by its path
///   (`title`, `organization.name`, `expertise[0].level`) with what was
///   expected and what was found. serde's derived structs would also take
///   an array of their fields in order, which no client means: a body that
///   is not an object is a 422 for `body`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let media_type = check_media_type(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            media_type?;
            let bytes = bytes.await.map_err(payload_error)?;
            Ok(Json(parse_json_object(&bytes)?))
        })
    }
}

/// A JSON object body that may be left out: a request with no body at all,
/// or the body `null`, gives None; any other body is read as [`Json`] reads
/// it (and refused as it would refuse it, naming the field), never ignored.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let empty = match length {
            Some(length) => length == "0",
            None => !headers.contains_key(header::TRANSFER_ENCODING),
        };
        if empty {
            return Box::pin(std::future::ready(Ok(OptionalJson(None))));
        }
        let media_type = check_media_type(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            media_type?;
            let bytes = bytes.await.map_err(payload_error)?;
            if bytes.trim_ascii() == b"null" {
                return Ok(OptionalJson(None));
            }
            Ok(OptionalJson(Some(parse_json_object(&bytes)?)))
        })
    }
}

/// `application/json` or `…+json`, in UTF-8 if a charset is named.
fn check_media_type(req: &HttpRequest) -> Result<(), ApiError> {
    let unsupported = || {
        ApiError::UnsupportedMediaType("the body must be application/json (in UTF-8)".to_owned())
    };
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<actix_web::mime::Mime>().ok())
        .ok_or_else(unsupported)?;
    let json =
        mime.subtype() == actix_web::mime::JSON || mime.suffix() == Some(actix_web::mime::JSON);
    if !json {
        return Err(unsupported());
    }
    match mime.get_param(actix_web::mime::CHARSET) {
        Some(charset) if !charset.as_str().eq_ignore_ascii_case("utf-8") => {
            Err(ApiError::UnsupportedMediaType(format!(
                "request bodies must be UTF-8 encoded; charset={charset} is not accepted"
            )))
        }
        _ => Ok(()),
    }
}

/// The body extractor's failures: 413 with the limit, else 400.
fn payload_error(error: actix_web::Error) -> ApiError {
    use actix_web::error::PayloadError;
    match error.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::PayloadTooLarge {
            limit: super::JSON_BODY_LIMIT,
        },
        _ => {
            // `web::Bytes` answers an oversized Content-Length with its own error.
            let text = error.to_string();
            if text.contains("larger than allowed") || text.contains("Payload reached size limit") {
                ApiError::PayloadTooLarge {
                    limit: super::JSON_BODY_LIMIT,
                }
            } else {
                ApiError::BadRequest(format!("reading the body failed: {text}"))
            }
        }
    }
}

/// The body as a `T` read from a JSON object; see [`Json`] for each refusal.
pub fn parse_json_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "request bodies must be UTF-8 encoded (JSON is UTF-8); byte {} is not",
            e.valid_up_to() + 1
        ))
    })?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        if e.is_eof() && text.trim().is_empty() {
            ApiError::BadRequest("the body is empty; a JSON object is expected".to_owned())
        } else {
            ApiError::BadRequest(format!("malformed JSON: {e}"))
        }
    })?;
    if !value.is_object() {
        return Err(ApiError::field(
            "body",
            format!("expected a JSON object, found {}", json_kind(&value)),
        ));
    }
    from_value(value)
}

/// A `T` from JSON already read; a value of the wrong shape is a 422 naming
/// the field by its path. (`#[serde(flatten)]` hides the path of what it
/// flattens: a handler that needs one reads the rest as a map and passes it
/// here.)
pub fn from_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        let (nested, message) = body::split_nested(&inner);
        let field = match (path.as_str(), nested) {
            (".", None) => "body".to_owned(),
            (".", Some(inner)) => inner.to_owned(),
            (outer, None) => outer.to_owned(),
            (outer, Some(inner)) if inner.starts_with('[') => format!("{outer}{inner}"),
            (outer, Some(inner)) => format!("{outer}.{inner}"),
        };
        ApiError::field(&field, plain_type_error(message))
    })
}

/// What kind of JSON value `value` is, as a message says it.
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// serde's `invalid type: integer `5`, expected a string` as `expected a
/// string, found a number`; other messages as they are.
fn plain_type_error(message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message.to_owned();
    };
    let Some((found, expected)) = rest.split_once(", expected ") else {
        return message.to_owned();
    };
    let found = match found.split(' ').next().unwrap_or_default() {
        "integer" | "floating" => "a number",
        "boolean" => "a boolean",
        "string" | "character" => "a string",
        "sequence" => "an array",
        "map" => "an object",
        "null" | "unit" => "null",
        _ => found,
    };
    let expected = match expected {
        "a sequence" => "an array",
        "a map" => "an object",
        other => other,
    };
    format!("expected {expected}, found {found}")
}

/// serde helpers for body fields: nested objects that must be objects, and
/// integers that JSON may also write as `3.0`.
pub mod body {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};
    use serde_json::{Map, Number, Value};

    /// Separates a nested object's path from its message in an error of
    /// [`from_object`] (the outer path is serde_path_to_error's).
    const NESTED: char = '\u{1f}';

    fn from_object<T: DeserializeOwned, E: Error>(object: Map<String, Value>) -> Result<T, E> {
        serde_path_to_error::deserialize(Value::Object(object)).map_err(|e| {
            let inner = e.inner().to_string();
            let (nested, message) = split_nested(&inner);
            let path = match (e.path().to_string().as_str(), nested) {
                (".", None) => return E::custom(message),
                (".", Some(inner)) => inner.to_owned(),
                (outer, None) => outer.to_owned(),
                (outer, Some(inner)) if inner.starts_with('[') => format!("{outer}{inner}"),
                (outer, Some(inner)) => format!("{outer}.{inner}"),
            };
            E::custom(format!("{NESTED}{path}{NESTED}{message}"))
        })
    }

    /// `(path inside a nested object, message)` of an error message.
    pub fn split_nested(message: &str) -> (Option<&str>, &str) {
        message
            .strip_prefix(NESTED)
            .and_then(|rest| rest.split_once(NESTED))
            .map_or((None, message), |(path, message)| (Some(path), message))
    }

    /// An optional nested object (null or absent: None).
    pub fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned,
    {
        Option::<Map<String, Value>>::deserialize(deserializer)?
            .map(from_object)
            .transpose()
    }

    /// An optional list of nested objects (null or absent: None).
    pub fn objects<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned,
    {
        Option::<Vec<Map<String, Value>>>::deserialize(deserializer)?
            .map(|list| {
                list.into_iter()
                    .enumerate()
                    .map(|(index, object)| {
                        from_object(object).map_err(|e: D::Error| {
                            // The item's index goes before its path.
                            let message = e.to_string();
                            let (nested, message) = split_nested(&message);
                            let path = match nested {
                                Some(inner) if inner.starts_with('[') => {
                                    format!("[{index}]{inner}")
                                }
                                Some(inner) => format!("[{index}].{inner}"),
                                None => format!("[{index}]"),
                            };
                            D::Error::custom(format!("{NESTED}{path}{NESTED}{message}"))
                        })
                    })
                    .collect()
            })
            .transpose()
    }

    /// Integers a float holds exactly (±2^53): larger ones may be rounded.
    const EXACT: f64 = 9_007_199_254_740_992.0;

    fn integral<T: TryFrom<i64>, E: Error>(number: Number) -> Result<T, E> {
        let whole = number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= EXACT)
                .map(|f| f as i64)
        });
        whole.and_then(|n| T::try_from(n).ok()).ok_or_else(|| {
            E::custom(format!(
                "invalid value: {number}, expected an integer in range"
            ))
        })
    }

    /// An integer; `3.0` is the integer 3 as in JSON Schema, `3.5` is refused.
    pub fn integer<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64>,
    {
        integral(Number::deserialize(deserializer)?)
    }

    /// An optional integer (null or absent: None), as [`integer`].
    pub fn optional_integer<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64>,
    {
        Option::<Number>::deserialize(deserializer)?
            .map(integral)
            .transpose()
    }
}
