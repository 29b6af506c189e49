//! Organisations: members and invitations.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::extract::{AuthUser, Json};
use super::problem::ApiError;
use super::schema::Email;
use crate::auth::tokens;
use crate::clock;
use crate::db::organizations::{self as store, NewInvitation};
use crate::db::{outbox, users};
use crate::domain::account::{EmailAddress, Locale};
use crate::domain::vocabulary::OrganizationKind;

pub const INVITATION_DAYS: i64 = 7;

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
    let id = id.into_inner();
    if !(caller.role.is_desk_staff() || caller.organization_id == Some(id)) {
        return Err(ApiError::NotFound);
    }
    let response = state
        .db
        .read(move |conn| {
            let org = store::find(conn, id)?.ok_or(ApiError::NotFound)?;
            let members = store::members(conn, id)?
                .into_iter()
                .map(|(id, name, email)| Member { id, name, email })
                .collect();
            Ok::<_, ApiError>(OrganizationResponse {
                id: org.id,
                name: org.name,
                kind: org.kind,
                owner_id: org.owner_user_id,
                members,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(response))
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
    if caller.organization_id != Some(id) {
        return Err(ApiError::NotFound);
    }
    let email = match body.email.as_deref() {
        None => return Err(ApiError::field("email", "is required")),
        Some(raw) => EmailAddress::parse(raw).map_err(|e| ApiError::field("email", e))?,
    };
    let token = tokens::new_refresh_token();
    let token_hash = tokens::hash_refresh_token(&token);
    let now = clock::now_micros();
    let expires_at = now + INVITATION_DAYS * 24 * 3600 * 1_000_000;
    let invitation_id = state
        .db
        .write(move |conn| {
            let org = store::find(conn, id)?.ok_or(ApiError::NotFound)?;
            if org.owner_user_id != Some(caller.id) {
                return Err(ApiError::Forbidden(
                    "only the organisation's owner invites members",
                ));
            }
            if users::email_exists(conn, email.as_str())? {
                return Err(ApiError::conflict("an account with this e-mail exists"));
            }
            let inviter = users::find_by_id(conn, caller.id)?.ok_or(ApiError::NotFound)?;
            let invitation_id = store::insert_invitation(
                conn,
                &NewInvitation {
                    organization_id: id,
                    email: email.as_str(),
                    token_hash: &token_hash,
                    invited_by: caller.id,
                    now,
                    expires_at,
                },
            )?;
            let locale = inviter.locale.parse().unwrap_or(Locale::Ja);
            let mail = crate::mail::templates::invitation(
                locale,
                email.as_str(),
                &inviter.name,
                &org.name,
                &token,
                &clock::to_rfc3339(expires_at),
            );
            outbox::enqueue(conn, &mail, now)?;
            Ok(invitation_id)
        })
        .await?;
    state.desk.mail_signal.queued();
    tracing::info!(organization_id = id, invitation_id, "invitation created");
    Ok(HttpResponse::Created().json(InvitationResponse {
        id: invitation_id,
        expires_at: clock::to_rfc3339(expires_at),
    }))
}
