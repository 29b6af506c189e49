//! Signing in, signing out and registering in the browser.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};

use super::error::PageError;
use super::form::{Form, errors_by_field};
use super::render::Viewer;
use super::session::{self, check_form, expired_session_cookie, session_cookie};
use crate::desk::accounts::{self, AccountForm, RegistrationForm, SignIn};
use crate::desk::sessions::{self, BrowserSignIn};
use crate::domain::role::Role;
use crate::domain::validation::{Code, Invalid, Refusal};
use crate::http::extract::client_address;

/// Where to go after signing in: a local path only, never another site;
/// without one, the page `role` starts its day on.
fn local_target(next: Option<&str>, role: Role) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => home(role).to_owned(),
    }
}

/// Where each role starts: the queue for the desk, the statistics for
/// managers (who read no case), their assignments for experts, their
/// organisation's cases for applicants.
pub fn home(role: Role) -> &'static str {
    match role {
        Role::Supporter | Role::Admin => "/queue",
        Role::Manager => "/statistics",
        Role::Expert => "/assignments",
        Role::Applicant => "/cases",
    }
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

#[derive(serde::Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[get("/login")]
pub async fn login_page(viewer: Viewer, query: web::Query<NextQuery>) -> HttpResponse {
    if let Some(session) = &viewer.session {
        return see_other(&local_target(query.next.as_deref(), session.account.role));
    }
    login_form(&viewer, StatusCode::OK, "", query.next.as_deref(), None)
}

fn login_form(
    viewer: &Viewer,
    status: StatusCode,
    email: &str,
    next: Option<&str>,
    error: Option<String>,
) -> HttpResponse {
    viewer.render(
        status,
        "login.html",
        minijinja::context! { email, next => next.unwrap_or(""), error },
    )
}

#[post("/login")]
pub async fn login(req: HttpRequest, viewer: Viewer, form: Form) -> HttpResponse {
    if let Err(refused) = check_form(&req, &viewer, form.get("csrf")) {
        return refused.page(&viewer);
    }
    let state = session::state(&req);
    let email = form.get("email").unwrap_or("").to_owned();
    let next = form.get("next");
    let command = SignIn {
        email: email.clone(),
        password: form.get("password").unwrap_or("").to_owned(),
        from: client_address(&req, state.config.trust_forwarded_for),
    };
    let outcome = sessions::open_browser_session(
        &state.desk,
        &state.hasher,
        &state.login_limiter,
        session::session_policy(state),
        command,
    )
    .await;
    match outcome {
        Ok(BrowserSignIn::SignedIn { token, session }) => {
            let mut response = see_other(&local_target(next, session.account.role));
            let _ = response.add_cookie(&session_cookie(&req, token));
            response
        }
        Ok(BrowserSignIn::Refused) => login_form(
            &viewer,
            StatusCode::UNAUTHORIZED,
            &email,
            next,
            Some(viewer.text("login_refused")),
        ),
        Ok(BrowserSignIn::Throttled { retry_after }) => {
            let mut response = login_form(
                &viewer,
                StatusCode::TOO_MANY_REQUESTS,
                &email,
                next,
                Some(viewer.text("login_throttled")),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after.as_secs().max(1).into());
            response
        }
        Err(error) => PageError::from_desk(error, viewer.locale).page(&viewer),
    }
}

#[post("/logout")]
pub async fn logout(req: HttpRequest, viewer: Viewer, form: Form) -> HttpResponse {
    if viewer.session.is_some() {
        if let Err(refused) = check_form(&req, &viewer, form.get("csrf")) {
            return refused.page(&viewer);
        }
        if let Some(cookie) = req.cookie(session::SESSION_COOKIE)
            && let Err(error) = sessions::close_browser_session(
                &session::state(&req).desk,
                cookie.value().to_owned(),
            )
            .await
        {
            return PageError::from_desk(error, viewer.locale).page(&viewer);
        }
    }
    let mut response = see_other("/?notice=notice_signed_out");
    let _ = response.add_cookie(&expired_session_cookie(&req));
    response
}

#[derive(serde::Deserialize)]
struct InvitationQuery {
    invitation: Option<String>,
}

#[get("/register")]
pub async fn register_page(viewer: Viewer, query: web::Query<InvitationQuery>) -> HttpResponse {
    if viewer.session.is_some() {
        return see_other("/cases");
    }
    let invitation = query.into_inner().invitation.unwrap_or_default();
    register_form(
        &viewer,
        StatusCode::OK,
        &Form::default(),
        &invitation,
        Default::default(),
    )
}

fn register_form(
    viewer: &Viewer,
    status: StatusCode,
    form: &Form,
    invitation: &str,
    errors: std::collections::BTreeMap<String, Vec<String>>,
) -> HttpResponse {
    let locale = form.get("locale").unwrap_or(viewer.locale.as_str());
    viewer.render(
        status,
        "register.html",
        minijinja::context! {
            invitation,
            errors,
            form => minijinja::context! {
                name => form.get("name").unwrap_or(""),
                organization => form.get("organization").unwrap_or(""),
                email => form.get("email").unwrap_or(""),
                locale,
            },
        },
    )
}

#[post("/register")]
pub async fn register(req: HttpRequest, viewer: Viewer, form: Form) -> HttpResponse {
    if let Err(refused) = check_form(&req, &viewer, form.get("csrf")) {
        return refused.page(&viewer);
    }
    let state = session::state(&req);
    let invitation = form.get("invitation").unwrap_or("").to_owned();
    let parsed = RegistrationForm {
        account: AccountForm {
            email: form.get("email"),
            password: form.get("password"),
            name: form.get("name"),
            locale: form.get("locale"),
        },
        organization: form.get("organization"),
        invitation_token: Some(invitation.as_str()),
    }
    .parse();
    let command = match parsed {
        Ok(command) => command,
        Err(problems) => {
            return register_form(
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &invitation,
                errors_by_field(viewer.locale, &problems),
            );
        }
    };
    let email = command.details.email.as_str().to_owned();
    match accounts::register(&state.desk, &state.hasher, command).await {
        Ok(_) => {}
        Err(crate::desk::DeskError::Invalid(problems)) => {
            return register_form(
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &invitation,
                errors_by_field(viewer.locale, &problems),
            );
        }
        Err(crate::desk::DeskError::Conflict { detail, .. }) => {
            // The one conflict of a registration: the address is taken.
            let problems = [Invalid::refused(
                "email",
                Refusal::new(Code::EmailTaken, detail),
            )];
            return register_form(
                &viewer,
                StatusCode::CONFLICT,
                &form,
                &invitation,
                errors_by_field(viewer.locale, &problems),
            );
        }
        Err(error) => return PageError::from_desk(error, viewer.locale).page(&viewer),
    }
    // Registered: sign the new account in with what it just typed.
    let command = SignIn {
        email,
        password: form.get("password").unwrap_or("").to_owned(),
        from: client_address(&req, state.config.trust_forwarded_for),
    };
    match sessions::open_browser_session(
        &state.desk,
        &state.hasher,
        &state.login_limiter,
        session::session_policy(state),
        command,
    )
    .await
    {
        Ok(BrowserSignIn::SignedIn { token, .. }) => {
            let mut response = see_other("/cases?notice=notice_registered");
            let _ = response.add_cookie(&session_cookie(&req, token));
            response
        }
        Ok(_) => see_other("/login"),
        Err(error) => PageError::from_desk(error, viewer.locale).page(&viewer),
    }
}
