//! Refresh tokens: stored as SHA-256 hashes, rotated on every use, grouped in
//! families (one per login) so that reuse of a rotated token revokes the login.

use diesel::prelude::*;

use super::schema::refresh_tokens;
use super::users::{self, UserRow};
use super::{AnyConnection, DbResult};

pub struct NewRefreshToken<'a> {
    pub user_id: i64,
    pub family: &'a str,
    pub token_hash: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert(conn: &mut AnyConnection, token: &NewRefreshToken<'_>) -> DbResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::user_id.eq(token.user_id),
            refresh_tokens::family.eq(token.family),
            refresh_tokens::token_hash.eq(token.token_hash),
            refresh_tokens::created_at.eq(token.now),
            refresh_tokens::expires_at.eq(token.expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug)]
pub enum Rotation {
    /// The presented token was current; the new one replaces it.
    Rotated(UserRow),
    /// The presented token had already been rotated: its login is revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

#[derive(Queryable)]
struct TokenState {
    id: i64,
    user_id: i64,
    family: String,
    expires_at: i64,
    rotated_at: Option<i64>,
    revoked_at: Option<i64>,
}

/// Call inside a transaction: exchanges `presented_hash` for `next_hash`.
pub fn rotate(
    conn: &mut AnyConnection,
    presented_hash: &str,
    next_hash: &str,
    now: i64,
    next_expires_at: i64,
) -> DbResult<Rotation> {
    let Some(token) = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(presented_hash))
        .select((
            refresh_tokens::id,
            refresh_tokens::user_id,
            refresh_tokens::family,
            refresh_tokens::expires_at,
            refresh_tokens::rotated_at,
            refresh_tokens::revoked_at,
        ))
        .first::<TokenState>(conn)
        .optional()?
    else {
        return Ok(Rotation::Invalid);
    };
    if token.revoked_at.is_some() || token.expires_at <= now {
        return Ok(Rotation::Invalid);
    }
    // The conditional update makes two concurrent refreshes of one token
    // produce exactly one winner; the loser is treated as reuse.
    let claimed = token.rotated_at.is_none()
        && diesel::update(
            refresh_tokens::table
                .find(token.id)
                .filter(refresh_tokens::rotated_at.is_null()),
        )
        .set(refresh_tokens::rotated_at.eq(now))
        .execute(conn)?
            == 1;
    if !claimed {
        revoke_family(conn, &token.family, now)?;
        return Ok(Rotation::Reused);
    }
    let Some(user) = users::find_by_id(conn, token.user_id)? else {
        return Ok(Rotation::Invalid);
    };
    insert(
        conn,
        &NewRefreshToken {
            user_id: token.user_id,
            family: &token.family,
            token_hash: next_hash,
            now,
            expires_at: next_expires_at,
        },
    )?;
    Ok(Rotation::Rotated(user))
}

fn revoke_family(conn: &mut AnyConnection, family: &str, now: i64) -> DbResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// Logout: revokes the whole login the presented token belongs to.
/// Unknown tokens are ignored (logout is idempotent).
pub fn revoke_login(conn: &mut AnyConnection, presented_hash: &str, now: i64) -> DbResult<()> {
    let family: Option<String> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(presented_hash))
        .select(refresh_tokens::family)
        .first(conn)
        .optional()?;
    if let Some(family) = family {
        revoke_family(conn, &family, now)?;
    }
    Ok(())
}

/// Revokes every login of `user_id` (its password was reset).
pub fn revoke_user(conn: &mut AnyConnection, user_id: i64, now: i64) -> DbResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}
