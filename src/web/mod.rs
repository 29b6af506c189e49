//! The pages: server-rendered HTML over the same use cases as the JSON API
//! (`crate::desk`), for founders, supporters, experts and managers in a
//! browser. Every page works without JavaScript.
//!
//! - `session`: the session cookie, the language, CSRF checks;
//! - `render`: templates (`templates/pages`) and the layout's values;
//! - `i18n`: Japanese and English texts;
//! - `error`: error pages;
//! - one module per area of pages (`auth`, `cases`, `triage`: the
//!   supporter's side of a case, `account`, `organizations`, `assignments`,
//!   `meetings`, `statistics`, `open_hours`).

pub mod account;
pub mod assignments;
pub mod auth;
pub mod cases;
pub mod error;
pub mod form;
pub mod i18n;
pub mod meetings;
pub mod open_hours;
pub mod organizations;
pub mod page;
pub mod render;
pub mod session;
pub mod statistics;
pub mod triage;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, get, web};

use crate::domain::account::Locale;
use crate::domain::vocabulary::Category;
use error::PageError;
use render::Viewer;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(landing)
        .service(stylesheet)
        .service(htmx)
        .service(switch_language)
        .service(auth::login_page)
        .service(auth::login)
        .service(auth::logout)
        .service(auth::register_page)
        .service(auth::register)
        .configure(cases::routes)
        .configure(triage::routes)
        .configure(account::routes)
        .configure(organizations::routes)
        .configure(assignments::routes)
        .configure(meetings::routes)
        .configure(statistics::routes)
        .configure(open_hours::routes);
}

#[get("/")]
async fn landing(viewer: Viewer) -> HttpResponse {
    let lang = i18n::lang(viewer.locale);
    let categories: Vec<_> = Category::ALL
        .iter()
        .map(|c| minijinja::context! { label => c.label(lang) })
        .collect();
    viewer.render(
        StatusCode::OK,
        "landing.html",
        minijinja::context! { categories },
    )
}

#[get("/static/medesk.css")]
async fn stylesheet() -> HttpResponse {
    static_file(
        "text/css; charset=utf-8",
        "public, max-age=3600",
        include_str!("../../static/medesk.css"),
    )
}

/// htmx 2 (`static/htmx.min.js`, BSD-0 licence in `static/htmx.LICENSE`),
/// served by medesk itself: no CDN. The layout names it with its version
/// (`?v=`), so a long cache is safe across upgrades.
#[get("/static/htmx.min.js")]
async fn htmx() -> HttpResponse {
    static_file(
        "text/javascript; charset=utf-8",
        "public, max-age=31536000, immutable",
        include_str!("../../static/htmx.min.js"),
    )
}

fn static_file(content_type: &str, cache: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, cache))
        .body(body)
}

#[derive(serde::Deserialize)]
struct BackQuery {
    back: Option<String>,
}

/// The language switch: remembered in a cookie (and used for a signed-in
/// viewer's pages until they change their account's language).
#[get("/lang/{locale}")]
async fn switch_language(
    req: HttpRequest,
    locale: web::Path<String>,
    query: web::Query<BackQuery>,
) -> HttpResponse {
    let Ok(locale) = locale.parse::<Locale>() else {
        return PageError::NotFound {
            locale: i18n::visitor_locale(&req),
        }
        .error_response_for(&req);
    };
    let back = query
        .into_inner()
        .back
        .filter(|p| p.starts_with('/') && !p.starts_with("//") && !p.contains('\\'))
        .unwrap_or_else(|| "/".to_owned());
    let mut response = auth::see_other(&back);
    let mut cookie = session::cookie(
        session::secure_cookies(&req),
        i18n::LANGUAGE_COOKIE,
        locale.as_str().to_owned(),
    );
    cookie.set_max_age(actix_web::cookie::time::Duration::days(365));
    let _ = response.add_cookie(&cookie);
    response
}

impl PageError {
    /// The error page for a request whose viewer was not built.
    pub fn error_response_for(&self, _req: &HttpRequest) -> HttpResponse {
        actix_web::ResponseError::error_response(self)
    }
}

/// Whether a request is for the pages rather than the API (which answers
/// problem+json): not under `/api` or `/docs`, and asking for HTML.
pub fn wants_page(req: &HttpRequest) -> bool {
    let path = req.path();
    if path.starts_with("/api/") || path.starts_with("/docs") || path == "/health" {
        return false;
    }
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The page for a path no route has.
pub fn not_found_page(req: &HttpRequest) -> HttpResponse {
    PageError::NotFound {
        locale: i18n::visitor_locale(req),
    }
    .error_response_for(req)
}

/// Security headers for every HTML response: no inline script or style,
/// no framing, no referrer to other sites, no type sniffing.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    let is_docs = response.request().path().starts_with("/docs");
    if is_html && !is_docs {
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                 form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Ok(response)
}

impl Viewer {
    /// A visitor who is not signed in (for error pages shown before the
    /// session could be read).
    pub fn visitor(locale: Locale) -> Self {
        Viewer {
            locale,
            session: None,
            csrf: String::new(),
            new_visitor_csrf: false,
            notice: None,
            path: "/".to_owned(),
            url: "/".to_owned(),
            refresh_seconds: 30,
            secure_cookies: false,
        }
    }
}
