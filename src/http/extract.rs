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

/// A JSON body that is an object, read with the app's `JsonConfig` (size
/// limit, media type, problem mapping). serde's derived structs would also
/// take an array of their fields in order, which no client means: here
/// that is a 422 like any body of the wrong shape.
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
        let object =
            web::Json::<serde_json::Map<String, serde_json::Value>>::from_request(req, payload);
        Box::pin(async move {
            let object = object.await?.into_inner();
            serde_json::from_value(serde_json::Value::Object(object))
                .map(Json)
                .map_err(|e| ApiError::field("body", e.to_string()).into())
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
        let body = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            match body.await?.into_inner() {
                serde_json::Value::Null => Ok(OptionalJson(None)),
                object @ serde_json::Value::Object(_) => serde_json::from_value(object)
                    .map(|body| OptionalJson(Some(body)))
                    .map_err(|e| ApiError::field("body", e.to_string()).into()),
                _ => Err(ApiError::field("body", "must be a JSON object").into()),
            }
        })
    }
}

/// serde helpers for body fields: nested objects that must be objects, and
/// integers that JSON may also write as `3.0`.
pub mod body {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};
    use serde_json::{Map, Number, Value};

    fn from_object<T: DeserializeOwned, E: Error>(object: Map<String, Value>) -> Result<T, E> {
        serde_json::from_value(Value::Object(object)).map_err(E::custom)
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
            .map(|list| list.into_iter().map(from_object).collect())
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
