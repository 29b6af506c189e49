//! Rendering pages: templates in `templates/pages`, compiled into the binary
//! and rendered with the same engine as the mails (minijinja), every value
//! HTML-escaped. Undefined values are errors, so a misspelt label fails the
//! tests instead of showing an empty space.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use super::i18n::{self, Labels};
use super::session;
use crate::desk::sessions::BrowserSession;
use crate::domain::account::Locale;

macro_rules! page_templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/pages/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = page_templates!(
    "layout.html",
    "fields.html",
    "landing.html",
    "login.html",
    "register.html",
    "cases.html",
    "case_new.html",
    "case.html",
    "error.html",
    "queue.html",
    "statistics.html",
    "case_desk.html",
    "filters.html",
    "password_forgot.html",
    "password_reset.html",
    "account.html",
    "organization.html",
    "assignments.html",
    "terms.html",
    "meetings.html",
    "plan.html",
    "open_hours.html",
    "open_hours_book.html",
    "open_hours_desk.html",
    "open_hours_admin.html",
);

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("page template {name}: {e}"));
    }
    env
});

/// Who is looking at a page: their language, and their session if signed in.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub locale: Locale,
    pub session: Option<BrowserSession>,
    /// The CSRF token forms carry: the session's, or the visitor cookie's.
    pub csrf: String,
    /// The visitor's CSRF token was made for this response (its cookie is
    /// set by [`Viewer::render`]; no form can carry it yet).
    pub new_visitor_csrf: bool,
    /// A one-line confirmation of what the previous request did.
    pub notice: Option<String>,
    /// The path shown, for the language switch to return to.
    pub path: String,
    /// The path and query shown, for a part of the page that refreshes
    /// itself.
    pub url: String,
    /// How often such parts refresh (`MEDESK_PAGE_REFRESH_SECONDS`).
    pub refresh_seconds: u32,
    pub secure_cookies: bool,
}

#[derive(Serialize)]
struct UserView<'a> {
    name: &'a str,
    role: &'a str,
    organization_id: Option<i64>,
}

impl Viewer {
    pub fn text(&self, key: &str) -> String {
        i18n::text(self.locale, key)
    }

    /// Renders `template` with `context` and the layout's values.
    pub fn render(&self, status: StatusCode, template: &str, context: Value) -> HttpResponse {
        let user = self.session.as_ref().map(|s| {
            Value::from_serialize(UserView {
                name: &s.account.name,
                role: s.account.role.as_str(),
                organization_id: s.account.organization_id,
            })
        });
        let layout = minijinja::context! {
            lang => self.locale.as_str(),
            other_lang => i18n::other(self.locale).as_str(),
            t => Value::from_object(Labels(self.locale)),
            user => user,
            csrf => &self.csrf,
            path => &self.path,
            url => &self.url,
            refresh_seconds => self.refresh_seconds,
            notice => &self.notice,
        };
        let context = minijinja::context! { ..context, ..layout };
        let body = ENVIRONMENT
            .get_template(template)
            .and_then(|t| t.render(context));
        match body {
            Ok(body) => {
                let mut response = HttpResponse::build(status);
                response
                    .content_type("text/html; charset=utf-8")
                    .insert_header(("Cache-Control", "no-store"));
                if self.new_visitor_csrf {
                    response.cookie(session::cookie(
                        self.secure_cookies,
                        session::VISITOR_CSRF_COOKIE,
                        self.csrf.clone(),
                    ));
                }
                response.body(body)
            }
            Err(error) => {
                tracing::error!(template, error = %error, "page template failed");
                HttpResponse::InternalServerError()
                    .content_type("text/plain; charset=utf-8")
                    .body("500: the page could not be rendered")
            }
        }
    }
}
