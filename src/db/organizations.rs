//! Organisations, their members and invitations.

use diesel::prelude::*;

use super::schema::{invitations, organizations, users};
use super::{AnyConnection, DbResult};

#[derive(Debug, Clone, Queryable)]
pub struct OrganizationRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub owner_user_id: Option<i64>,
    pub created_at: i64,
}

pub fn find(conn: &mut AnyConnection, id: i64) -> DbResult<Option<OrganizationRow>> {
    Ok(organizations::table
        .find(id)
        .select(organizations::all_columns)
        .first(conn)
        .optional()?)
}

/// (id, name, email) of every member, oldest first.
pub fn members(conn: &mut AnyConnection, id: i64) -> DbResult<Vec<(i64, String, String)>> {
    Ok(users::table
        .filter(users::organization_id.eq(id))
        .select((users::id, users::name, users::email))
        .order(users::id.asc())
        .load(conn)?)
}

pub struct NewInvitation<'a> {
    pub organization_id: i64,
    pub email: &'a str,
    pub token_hash: &'a str,
    pub invited_by: i64,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert_invitation(conn: &mut AnyConnection, new: &NewInvitation<'_>) -> DbResult<i64> {
    Ok(diesel::insert_into(invitations::table)
        .values((
            invitations::organization_id.eq(new.organization_id),
            invitations::email.eq(new.email),
            invitations::token_hash.eq(new.token_hash),
            invitations::invited_by.eq(new.invited_by),
            invitations::created_at.eq(new.now),
            invitations::expires_at.eq(new.expires_at),
        ))
        .returning(invitations::id)
        .get_result(conn)?)
}

/// Uses the invitation for `email` (call inside a transaction); returns the
/// organisation it joins, or None when the token is unknown, used, expired or
/// meant for another address. The conditional update makes it single-use
/// even under concurrent registrations.
pub fn redeem_invitation(
    conn: &mut AnyConnection,
    token_hash: &str,
    email: &str,
    now: i64,
) -> DbResult<Option<i64>> {
    let found: Option<(i64, i64, String)> = invitations::table
        .filter(invitations::token_hash.eq(token_hash))
        .filter(invitations::used_at.is_null())
        .filter(invitations::expires_at.gt(now))
        .select((
            invitations::id,
            invitations::organization_id,
            invitations::email,
        ))
        .first(conn)
        .optional()?;
    let Some((id, organization_id, invited)) = found else {
        return Ok(None);
    };
    if invited != email {
        return Ok(None);
    }
    let used = diesel::update(
        invitations::table
            .find(id)
            .filter(invitations::used_at.is_null()),
    )
    .set(invitations::used_at.eq(now))
    .execute(conn)?;
    Ok((used == 1).then_some(organization_id))
}
