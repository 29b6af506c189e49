//! Organisations and their invitations.
//!
//! An organisation is created with the applicant who registers it, who owns
//! it (or by an import, and then has no owner). Teammates join only by an
//! invitation the owner sends to their address: the single-use token travels
//! by mail, and registering with it (`accounts::register`) joins the
//! organisation. Typing an organisation's name never joins it.

use anyhow::anyhow;

use super::{Desk, DeskError};
use crate::auth::tokens;
use crate::clock;
use crate::db::organizations::{self as store, NewInvitation, OrganizationRow};
use crate::db::users;
use crate::domain::account::EmailAddress;
use crate::domain::role::Caller;
use crate::domain::vocabulary::OrganizationKind;

/// How long an invitation can be used.
pub const INVITATION_DAYS: i64 = 7;

/// An organisation and its members.
#[derive(Debug)]
pub struct Organization {
    pub row: OrganizationRow,
    pub kind: OrganizationKind,
    /// Oldest first.
    pub members: Vec<Member>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: i64,
    pub name: String,
    pub email: String,
}

/// Reads an organisation: its members and desk staff may; to anyone else
/// it does not exist.
pub async fn read_organization(
    desk: &Desk,
    caller: Caller,
    id: i64,
) -> Result<Organization, DeskError> {
    if !(caller.role.is_desk_staff() || caller.organization_id == Some(id)) {
        return Err(DeskError::NotFound);
    }
    desk.read(move |conn| {
        let row = store::find(conn, id)?.ok_or(DeskError::NotFound)?;
        let kind = row.kind.parse().map_err(|_| {
            DeskError::internal(anyhow!(
                "organization {}: unknown kind {:?} in the database",
                row.id,
                row.kind
            ))
        })?;
        let members = store::members(conn, id)?
            .into_iter()
            .map(|(id, name, email)| Member { id, name, email })
            .collect();
        Ok(Organization { row, kind, members })
    })
    .await
}

/// Only members act for their organisation; to anyone else it does not
/// exist. (Interfaces that check the request after this call it first.)
pub fn require_member(caller: &Caller, organization_id: i64) -> Result<(), DeskError> {
    if caller.organization_id == Some(organization_id) {
        Ok(())
    } else {
        Err(DeskError::NotFound)
    }
}

/// Invite a teammate by e-mail.
#[derive(Debug, Clone)]
pub struct Invite {
    pub email: EmailAddress,
}

/// An invitation just sent.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: i64,
    pub expires_at: i64,
}

/// The owner invites a teammate: the invitation and its mail (in the
/// inviter's language), in one transaction. An address that already has an
/// account is refused.
pub async fn invite(
    desk: &Desk,
    caller: Caller,
    organization_id: i64,
    command: Invite,
) -> Result<Invitation, DeskError> {
    require_member(&caller, organization_id)?;
    let email = command.email;
    let token = tokens::new_refresh_token();
    let token_hash = tokens::hash_refresh_token(&token);
    let now = clock::now_micros();
    let expires_at = now + INVITATION_DAYS * 24 * 3600 * 1_000_000;
    let notifier = desk.notifier.clone();
    let id = desk
        .write_and_mail(move |conn| {
            let org = store::find(conn, organization_id)?.ok_or(DeskError::NotFound)?;
            if org.owner_user_id != Some(caller.id) {
                return Err(DeskError::Forbidden(
                    "only the organisation's owner invites members",
                ));
            }
            if users::email_exists(conn, email.as_str())? {
                return Err(DeskError::conflict("an account with this e-mail exists"));
            }
            let inviter = users::find_by_id(conn, caller.id)?.ok_or(DeskError::NotFound)?;
            let inviter = super::accounts::account(inviter)?;
            let id = store::insert_invitation(
                conn,
                &NewInvitation {
                    organization_id,
                    email: email.as_str(),
                    token_hash: &token_hash,
                    invited_by: caller.id,
                    now,
                    expires_at,
                },
            )?;
            notifier.invitation(
                conn,
                inviter.locale,
                email.as_str(),
                &inviter.name,
                &org.name,
                &token,
                expires_at,
                now,
            )?;
            Ok(id)
        })
        .await?;
    tracing::info!(organization_id, invitation_id = id, "invitation created");
    Ok(Invitation { id, expires_at })
}
