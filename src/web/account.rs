//! The account pages: a forgotten password (the mailed link), the
//! signed-in person's account and their password change. The same use
//! cases, limits and password rules as the JSON API.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};

use super::auth::see_other;
use super::form::{Form, errors_by_field};
use super::page::{desk_error, signed_in, signed_in_form};
use super::render::Viewer;
use super::session::{self, check_form};
use crate::desk::DeskError;
use crate::desk::accounts::{
    self, ChangePassword, PasswordChange, RequestPasswordReset, ResetRequested, SetPassword,
};
use crate::desk::organizations;
use crate::domain::account::NewPassword;
use crate::domain::validation::{Invalid, Problems};
use crate::http::extract::client_address;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(forgot_page)
        .service(forgot)
        .service(reset_page)
        .service(reset)
        .service(account_page)
        .service(change_password);
}

/// A 429 answer waits this long at least.
fn with_retry_after(mut response: HttpResponse, retry_after: std::time::Duration) -> HttpResponse {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_after.as_secs().max(1).into());
    response
}

/// The new password typed twice, checked with the API's rules; problems
/// under `field` (and `{field}_again` when the two differ).
fn new_password(form: &Form, field: &str, problems: &mut Problems) -> Option<NewPassword> {
    let typed = problems.required(field, form.filled(field))?;
    let password = problems.check(field, NewPassword::parse(typed))?;
    let again = format!("{field}_again");
    if form.get(&again) != Some(typed) {
        problems.push(&again, "does not match the new password");
        return None;
    }
    Some(password)
}

// ---------------------------------------------------------------- forgotten password

fn forgot_form(
    viewer: &Viewer,
    status: StatusCode,
    email: &str,
    error: Option<String>,
) -> HttpResponse {
    viewer.render(
        status,
        "password_forgot.html",
        minijinja::context! { email, error, sent => false },
    )
}

#[get("/password/forgot")]
pub async fn forgot_page(viewer: Viewer) -> HttpResponse {
    forgot_form(&viewer, StatusCode::OK, "", None)
}

#[post("/password/forgot")]
pub async fn forgot(req: HttpRequest, viewer: Viewer, form: Form) -> HttpResponse {
    if let Err(refused) = check_form(&req, &viewer, form.get("csrf")) {
        return refused.page(&viewer);
    }
    let email = form.get("email").unwrap_or("").trim().to_owned();
    if email.is_empty() {
        let error = viewer.text("forgot_email_missing");
        return forgot_form(
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            &email,
            Some(error),
        );
    }
    let state = session::state(&req);
    let command = RequestPasswordReset {
        email: email.clone(),
        from: client_address(&req, state.config.trust_forwarded_for),
    };
    match accounts::request_password_reset(&state.desk, &state.reset_limiter, command).await {
        // The same page whether or not the address has an account.
        Ok(ResetRequested::Accepted) => viewer.render(
            StatusCode::OK,
            "password_forgot.html",
            minijinja::context! {
                email => "", error => None::<String>, sent => true,
                minutes => accounts::PASSWORD_RESET_MINUTES,
            },
        ),
        Ok(ResetRequested::Throttled { retry_after }) => with_retry_after(
            forgot_form(
                &viewer,
                StatusCode::TOO_MANY_REQUESTS,
                &email,
                Some(viewer.text("forgot_throttled")),
            ),
            retry_after,
        ),
        Err(error) => desk_error(&viewer, error),
    }
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn reset_form(
    viewer: &Viewer,
    status: StatusCode,
    token: &str,
    errors: BTreeMap<String, Vec<String>>,
) -> HttpResponse {
    viewer.render(
        status,
        "password_reset.html",
        minijinja::context! { token, errors, invalid_link => None::<String> },
    )
}

/// The mailed link is unknown, used or expired: say so, and offer a new one.
fn invalid_link(viewer: &Viewer, detail: String) -> HttpResponse {
    viewer.render(
        StatusCode::UNPROCESSABLE_ENTITY,
        "password_reset.html",
        minijinja::context! {
            token => "", errors => BTreeMap::<String, Vec<String>>::new(),
            invalid_link => Some(detail),
        },
    )
}

#[get("/password/reset")]
pub async fn reset_page(viewer: Viewer, query: web::Query<TokenQuery>) -> HttpResponse {
    match query.into_inner().token.filter(|t| !t.trim().is_empty()) {
        Some(token) => reset_form(&viewer, StatusCode::OK, &token, BTreeMap::new()),
        None => invalid_link(&viewer, viewer.text("reset_link_missing")),
    }
}

#[post("/password/reset")]
pub async fn reset(req: HttpRequest, viewer: Viewer, form: Form) -> HttpResponse {
    if let Err(refused) = check_form(&req, &viewer, form.get("csrf")) {
        return refused.page(&viewer);
    }
    let token = form.get("token").unwrap_or("").trim().to_owned();
    if token.is_empty() {
        return invalid_link(&viewer, viewer.text("reset_link_missing"));
    }
    let mut problems = Problems::default();
    let password = new_password(&form, "password", &mut problems);
    let Some(password) = password else {
        return reset_form(
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            &token,
            errors_by_field(viewer.locale, &problems.0),
        );
    };
    let state = session::state(&req);
    let command = SetPassword {
        token: token.clone(),
        password,
    };
    match accounts::set_password(&state.desk, &state.hasher, command).await {
        Ok(()) => see_other("/login?notice=notice_password_reset"),
        Err(DeskError::Invalid(problems)) if problems.iter().any(|p| p.field == "token") => {
            invalid_link(&viewer, viewer.text("reset_link_invalid"))
        }
        Err(DeskError::Invalid(problems)) => reset_form(
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            &token,
            errors_by_field(viewer.locale, &problems),
        ),
        Err(error) => desk_error(&viewer, error),
    }
}

// ---------------------------------------------------------------- the account

async fn account_view(
    req: &HttpRequest,
    viewer: &Viewer,
    status: StatusCode,
    errors: BTreeMap<String, Vec<String>>,
) -> HttpResponse {
    let caller = match signed_in(req, viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let desk = &session::state(req).desk;
    let account = match accounts::my_account(desk, caller).await {
        Ok(Some(account)) => account,
        Ok(None) => return desk_error(viewer, DeskError::NotFound),
        Err(error) => return desk_error(viewer, error),
    };
    let organization = match account.organization_id {
        Some(id) => match organizations::read_organization(desk, caller, id).await {
            Ok(org) => Some(minijinja::context! { id, name => org.row.name }),
            Err(error) => return desk_error(viewer, error),
        },
        None => None,
    };
    viewer.render(
        status,
        "account.html",
        minijinja::context! {
            account => minijinja::context! {
                name => account.name,
                email => account.email,
                role => account.role.as_str(),
                locale => account.locale.as_str(),
            },
            organization,
            errors,
        },
    )
}

#[get("/account")]
pub async fn account_page(req: HttpRequest, viewer: Viewer) -> HttpResponse {
    account_view(&req, &viewer, StatusCode::OK, BTreeMap::new()).await
}

#[post("/account/password")]
pub async fn change_password(req: HttpRequest, viewer: Viewer, form: Form) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let mut problems = Problems::default();
    let current = problems.required("current_password", form.filled("current_password"));
    let password = new_password(&form, "new_password", &mut problems);
    let (Some(current), Some(password)) = (current, password) else {
        return account_view(
            &req,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors_by_field(viewer.locale, &problems.0),
        )
        .await;
    };
    let state = session::state(&req);
    let command = ChangePassword {
        current: current.to_owned(),
        password,
        keep_browser_session: req
            .cookie(session::SESSION_COOKIE)
            .map(|c| c.value().to_owned()),
        from: client_address(&req, state.config.trust_forwarded_for),
    };
    let wrong = |key: &str| {
        errors_by_field(
            viewer.locale,
            &[Invalid::new("current_password", viewer.text(key))],
        )
    };
    match accounts::change_password(
        &state.desk,
        &state.hasher,
        &state.login_limiter,
        caller,
        command,
    )
    .await
    {
        Ok(PasswordChange::Changed) => see_other("/account?notice=notice_password_changed"),
        Ok(PasswordChange::WrongCurrent) => {
            account_view(
                &req,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                wrong("account_current_wrong"),
            )
            .await
        }
        Ok(PasswordChange::Throttled { retry_after }) => with_retry_after(
            account_view(
                &req,
                &viewer,
                StatusCode::TOO_MANY_REQUESTS,
                wrong("login_throttled"),
            )
            .await,
            retry_after,
        ),
        Err(error) => desk_error(&viewer, error),
    }
}
