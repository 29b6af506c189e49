//! Organisations: members and invitations.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::extract::{AuthUser, Json};
use super::problem::ApiError;
use super::schema::Email;
use crate::clock;
use crate::desk::organizations::{self, Invitation, Organization};
use crate::domain::account::EmailAddress;
use crate::domain::validation::Problems;
use crate::domain::vocabulary::OrganizationKind;

#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub id: i64,
    pub name: String,
    #[schema(format = Email)]
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationResponse {
    pub id: i64,
    pub name: String,
    #[schema(value_type = OrganizationKind)]
    pub kind: String,
    /// Null for organisations created by an import.
    #[schema(required)]
    pub owner_id: Option<i64>,
    pub members: Vec<Member>,
}

/// An organisation and its members (members and desk staff only).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = OrganizationResponse),
        (status = 404, description = "no such organisation, or not yours"),
    )
)]
#[get("/api/v1/organizations/{id}")]
pub async fn get_organization(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let Organization { row, kind, members } =
        organizations::read_organization(&state.desk, caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(OrganizationResponse {
        id: row.id,
        name: row.name,
        kind: kind.as_str().to_owned(),
        owner_id: row.owner_user_id,
        members: members
            .into_iter()
            .map(|m| Member {
                id: m.id,
                name: m.name,
                email: m.email,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InvitationRequest {
    #[schema(value_type = Email)]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationResponse {
    pub id: i64,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// Invite a teammate by e-mail (organisation owner). The single-use token
/// travels by mail only; registering with it joins this organisation.
#[utoipa::path(
    tag = "organizations",
    request_body = InvitationRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 201, body = InvitationResponse),
        (status = 403, description = "a member who is not the owner"),
        (status = 404, description = "no such organisation, or not yours"),
        (status = 409, description = "that address already has an account"),
    )
)]
#[post("/api/v1/organizations/{id}/invitations")]
pub async fn invite(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Json<InvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    // An outsider learns nothing, not even whether the body was valid.
    organizations::require_member(&caller, id)?;
    let mut problems = Problems::default();
    let email = problems
        .required("email", body.email.as_deref())
        .and_then(|raw| problems.check("email", EmailAddress::parse(raw)));
    let command = problems.finish(|| Some(organizations::Invite { email: email? }))?;
    let Invitation { id, expires_at } =
        organizations::invite(&state.desk, caller, id, command).await?;
    Ok(HttpResponse::Created().json(InvitationResponse {
        id,
        expires_at: clock::to_rfc3339(expires_at),
    }))
}
