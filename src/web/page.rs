//! What every page handler does first — who is asking, and whether a form
//! may change anything — and the small view pieces many pages share.

use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Datelike, Timelike};
use serde::Serialize;

use super::auth::see_other;
use super::error::PageError;
use super::render::Viewer;
use super::session::check_form;
use crate::desk::{Caller, DeskError};
use crate::domain::account::Locale;
use crate::domain::case;
use crate::domain::vocabulary::Lang;

/// Signed-in viewers only: others are sent to the sign-in page (the `Err`),
/// which brings them back here.
#[allow(
    clippy::result_large_err,
    reason = "the Err is the response itself, returned at once"
)]
pub fn signed_in(req: &HttpRequest, viewer: &Viewer) -> Result<Caller, HttpResponse> {
    match &viewer.session {
        Some(session) => Ok(session.caller()),
        None => {
            let back = req.uri().path_and_query().map_or("/cases", |p| p.as_str());
            let encoded: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
            let login = format!("/login?next={encoded}");
            if super::session::is_background(req) {
                // A refresh in the background after the session ended: the
                // whole page goes to the sign-in page (htmx follows
                // `HX-Redirect`), rather than a part of it being replaced.
                return Err(HttpResponse::NoContent()
                    .insert_header(("HX-Redirect", login))
                    .finish());
            }
            Err(see_other(&login))
        }
    }
}

/// A state-changing form from a signed-in viewer, with this session's CSRF
/// token and from this site; anything else is answered by the `Err`.
#[allow(
    clippy::result_large_err,
    reason = "the Err is the response itself, returned at once"
)]
pub fn signed_in_form(
    req: &HttpRequest,
    viewer: &Viewer,
    csrf: Option<&str>,
) -> Result<Caller, HttpResponse> {
    let caller = signed_in(req, viewer)?;
    check_form(req, viewer, csrf).map_err(|refused| refused.page(viewer))?;
    Ok(caller)
}

/// A numeric id from a path; anything else is the not-found page (the
/// `Err`), as a missing record is.
#[allow(
    clippy::result_large_err,
    reason = "the Err is the response itself, returned at once"
)]
pub fn path_id(viewer: &Viewer, raw: &str) -> Result<i64, HttpResponse> {
    raw.parse::<i64>()
        .map_err(|_| desk_error(viewer, DeskError::NotFound))
}

/// A state-changing form about the record a path names (`/…/{id}/…`):
/// the caller as [`signed_in_form`] accepts them, and the id as
/// [`path_id`] reads it; anything else is the response (the `Err`).
#[allow(
    clippy::result_large_err,
    reason = "the Err is the response itself, returned at once"
)]
pub fn signed_in_form_on(
    req: &HttpRequest,
    viewer: &Viewer,
    form: &super::form::Form,
    raw_id: &str,
) -> Result<(Caller, i64), HttpResponse> {
    let caller = signed_in_form(req, viewer, form.get("csrf"))?;
    Ok((caller, path_id(viewer, raw_id)?))
}

/// The error page for a use case's refusal or fault.
pub fn desk_error(viewer: &Viewer, error: DeskError) -> HttpResponse {
    PageError::from_desk(error, viewer.locale).page(viewer)
}

/// A time as people at the desk read it: Japan time, in the viewer's way.
pub fn local_time(locale: Locale, micros: i64) -> String {
    let Some(utc) = DateTime::from_timestamp_micros(micros) else {
        return String::new();
    };
    let at = utc.with_timezone(&case::desk_offset());
    match locale {
        Locale::Ja => format!(
            "{}年{}月{}日 {:02}:{:02}",
            at.year(),
            at.month(),
            at.day(),
            at.hour(),
            at.minute()
        ),
        Locale::En => at.format("%-d %b %Y, %H:%M").to_string(),
    }
}

/// One option of a select or a checkbox group: the code sent, the label shown.
#[derive(Serialize)]
pub struct Choice {
    pub code: &'static str,
    pub label: &'static str,
}

/// The options for every value of a vocabulary, in its order.
pub fn choices<T: Copy>(
    all: &[T],
    code: fn(T) -> &'static str,
    label: fn(T, Lang) -> &'static str,
    lang: Lang,
) -> Vec<Choice> {
    all.iter()
        .map(|&v| Choice {
            code: code(v),
            label: label(v, lang),
        })
        .collect()
}
