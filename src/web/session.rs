//! Who is asking for a page: the session cookie, the language, and the
//! CSRF token that every state-changing form must carry.
//!
//! Signed in, the token is the session's own (stored server-side with it).
//! Before sign-in (the sign-in and registration forms) it is a random value
//! in a cookie that the form repeats ("double submit"). In both cases a
//! POST whose `Origin` or `Sec-Fetch-Site` says it came from another site
//! is refused before the token is even compared.

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::error::PageError;
use super::i18n;
use super::render::Viewer;
use crate::auth::tokens;
use crate::desk::sessions::{self, SessionPolicy};
use crate::http::AppState;

/// The session cookie (its value opens a server-side session).
pub const SESSION_COOKIE: &str = "medesk_session";
/// The visitor's CSRF cookie before sign-in.
pub const VISITOR_CSRF_COOKIE: &str = "medesk_csrf";

pub(crate) fn state(req: &HttpRequest) -> &web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
}

/// Whether cookies must only travel over HTTPS (production).
pub(crate) fn secure_cookies(req: &HttpRequest) -> bool {
    state(req).config.is_production()
}

pub(crate) fn cookie(secure: bool, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish()
}

/// The session cookie for a new session (a browser-session cookie: it is
/// forgotten when the browser closes, and the server ends it anyway).
pub fn session_cookie(req: &HttpRequest, token: String) -> Cookie<'static> {
    cookie(secure_cookies(req), SESSION_COOKIE, token)
}

/// Removes the session cookie.
pub fn expired_session_cookie(req: &HttpRequest) -> Cookie<'static> {
    let mut gone = cookie(secure_cookies(req), SESSION_COOKIE, String::new());
    gone.set_max_age(time::Duration::ZERO);
    gone
}

impl FromRequest for Viewer {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { viewer(&req).await })
    }
}

async fn viewer(req: &HttpRequest) -> Result<Viewer, PageError> {
    let state = state(req);
    let visitor_locale = i18n::visitor_locale(req);
    let session = match req.cookie(SESSION_COOKIE) {
        Some(cookie) if !cookie.value().is_empty() => sessions::browser_session(
            &state.desk,
            session_policy(state),
            cookie.value().to_owned(),
            !is_background(req),
        )
        .await
        .map_err(|error| PageError::from_desk(error, visitor_locale))?,
        _ => None,
    };
    let locale = session
        .as_ref()
        .map_or(visitor_locale, |s| s.account.locale);
    let (csrf, new_visitor_csrf) = match &session {
        Some(session) => (session.csrf_token.clone(), false),
        None => match req.cookie(VISITOR_CSRF_COOKIE) {
            Some(c) if c.value().len() >= 32 => (c.value().to_owned(), false),
            _ => (tokens::new_refresh_token(), true),
        },
    };
    let notice = web::Query::<NoticeQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().notice)
        .filter(|key| key.starts_with("notice_") && i18n::has(key))
        .map(|key| i18n::text(locale, &key));
    Ok(Viewer {
        locale,
        session,
        csrf,
        new_visitor_csrf,
        notice,
        path: req.uri().path().to_owned(),
        url: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned()),
        refresh_seconds: state.config.page_refresh_seconds,
        secure_cookies: secure_cookies(req),
    })
}

/// The header a page's own background refresh sends (`hx-headers` in the
/// templates): such a request is not the person's activity.
pub const BACKGROUND_HEADER: &str = "medesk-background";

/// Whether a request is a page refreshing itself, not a person's.
pub fn is_background(req: &HttpRequest) -> bool {
    req.headers().contains_key(BACKGROUND_HEADER)
}

#[derive(serde::Deserialize)]
struct NoticeQuery {
    notice: Option<String>,
}

pub(crate) fn session_policy(state: &AppState) -> SessionPolicy {
    state.config.browser_sessions
}

/// Refuses a form that came from another site or lacks this viewer's token.
pub fn check_form(
    req: &HttpRequest,
    viewer: &Viewer,
    form_token: Option<&str>,
) -> Result<(), PageError> {
    let refused = || PageError::Csrf {
        locale: viewer.locale,
    };
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(refused());
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = req.connection_info().host().to_owned();
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if origin == "null" || origin_host != host {
            return Err(refused());
        }
    }
    // A token made for this very response was never given to a form.
    if viewer.new_visitor_csrf {
        return Err(refused());
    }
    match form_token {
        Some(token) if constant_time_eq(token.as_bytes(), viewer.csrf.as_bytes()) => Ok(()),
        _ => Err(refused()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
