//! The organisation's page for its members, and the owner's invitations.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};

use super::auth::see_other;
use super::form::{Form, errors_by_field};
use super::i18n;
use super::page::{desk_error, path_id, signed_in, signed_in_form_on};
use super::render::Viewer;
use super::session;
use crate::desk::organizations::{self, Invite};
use crate::desk::{Caller, DeskError};
use crate::domain::account::EmailAddress;
use crate::domain::validation::Invalid;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(show).service(invite);
}

/// The organisation page; `email` and `errors` are an invitation that was
/// not sent, kept with why.
async fn organization_page(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    id: i64,
    status: StatusCode,
    email: &str,
    errors: BTreeMap<String, Vec<String>>,
) -> HttpResponse {
    let desk = &session::state(req).desk;
    let org = match organizations::read_organization(desk, caller, id).await {
        Ok(org) => org,
        Err(error) => return desk_error(viewer, error),
    };
    let lang = i18n::lang(viewer.locale);
    let owner = org.row.owner_user_id;
    let members: Vec<_> = org
        .members
        .iter()
        .map(|m| {
            minijinja::context! {
                name => m.name, email => m.email,
                owner => owner == Some(m.id), me => m.id == caller.id,
            }
        })
        .collect();
    viewer.render(
        status,
        "organization.html",
        minijinja::context! {
            organization => minijinja::context! {
                id => org.row.id, name => org.row.name, kind_label => org.kind.label(lang),
            },
            members,
            can_invite => owner == Some(caller.id),
            invitation_days => organizations::INVITATION_DAYS,
            email,
            errors,
        },
    )
}

#[get("/organizations/{id}")]
pub async fn show(req: HttpRequest, viewer: Viewer, id: web::Path<String>) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let id = match path_id(&viewer, &id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    organization_page(
        &req,
        &viewer,
        caller,
        id,
        StatusCode::OK,
        "",
        BTreeMap::new(),
    )
    .await
}

#[post("/organizations/{id}/invitations")]
pub async fn invite(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let (caller, id) = match signed_in_form_on(&req, &viewer, &form, &id) {
        Ok(found) => found,
        Err(response) => return response,
    };
    // A non-member learns nothing, not even whether the address was valid.
    if let Err(error) = organizations::require_member(&caller, id) {
        return desk_error(&viewer, error);
    }
    let typed = form.get("email").unwrap_or("").trim().to_owned();
    let refused = |problems: Vec<Invalid>, status| {
        let errors = errors_by_field(viewer.locale, &problems);
        organization_page(&req, &viewer, caller, id, status, &typed, errors)
    };
    let email = match EmailAddress::parse(&typed) {
        Ok(email) => email,
        Err(why) => {
            return refused(
                vec![Invalid::new("email", why)],
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let desk = &session::state(&req).desk;
    match organizations::invite(desk, caller, id, Invite { email }).await {
        Ok(_) => see_other(&format!("/organizations/{id}?notice=notice_invited")),
        Err(DeskError::Invalid(problems)) => {
            refused(problems, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(DeskError::Conflict { detail, .. }) => {
            refused(vec![Invalid::new("email", detail)], StatusCode::CONFLICT).await
        }
        Err(error) => desk_error(&viewer, error),
    }
}
