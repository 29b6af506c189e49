//! Browser sessions: the cookie's token is stored as a SHA-256 hash beside
//! the session's CSRF token and its two deadlines (idle and absolute).

use diesel::prelude::*;

use super::schema::{browser_sessions, users};
use super::users::UserRow;
use super::{AnyConnection, DbResult};

pub struct NewBrowserSession<'a> {
    pub token_hash: &'a str,
    pub user_id: i64,
    pub csrf_token: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert(conn: &mut AnyConnection, session: &NewBrowserSession<'_>) -> DbResult<()> {
    diesel::insert_into(browser_sessions::table)
        .values((
            browser_sessions::token_hash.eq(session.token_hash),
            browser_sessions::user_id.eq(session.user_id),
            browser_sessions::csrf_token.eq(session.csrf_token),
            browser_sessions::created_at.eq(session.now),
            browser_sessions::last_seen_at.eq(session.now),
            browser_sessions::expires_at.eq(session.expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// A live session with its user.
#[derive(Debug)]
pub struct LiveSession {
    pub csrf_token: String,
    pub last_seen_at: i64,
    pub user: UserRow,
}

/// The session whose token hashes to `token_hash`, if it has neither
/// expired nor been idle since `idle_since`.
pub fn find_live(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
    idle_since: i64,
) -> DbResult<Option<LiveSession>> {
    let found = browser_sessions::table
        .inner_join(users::table)
        .filter(browser_sessions::token_hash.eq(token_hash))
        .filter(browser_sessions::expires_at.gt(now))
        .filter(browser_sessions::last_seen_at.gt(idle_since))
        .select((
            browser_sessions::csrf_token,
            browser_sessions::last_seen_at,
            UserRow::as_select(),
        ))
        .first::<(String, i64, UserRow)>(conn)
        .optional()?;
    Ok(found.map(|(csrf_token, last_seen_at, user)| LiveSession {
        csrf_token,
        last_seen_at,
        user,
    }))
}

/// Records activity, which pushes the idle deadline back.
pub fn touch(conn: &mut AnyConnection, token_hash: &str, now: i64) -> DbResult<()> {
    diesel::update(browser_sessions::table.filter(browser_sessions::token_hash.eq(token_hash)))
        .set(browser_sessions::last_seen_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// Ends one session (logout).
pub fn delete(conn: &mut AnyConnection, token_hash: &str) -> DbResult<()> {
    diesel::delete(browser_sessions::table.filter(browser_sessions::token_hash.eq(token_hash)))
        .execute(conn)?;
    Ok(())
}

/// Ends every session of a user (password change or reset).
pub fn delete_for_user(conn: &mut AnyConnection, user_id: i64) -> DbResult<usize> {
    Ok(
        diesel::delete(browser_sessions::table.filter(browser_sessions::user_id.eq(user_id)))
            .execute(conn)?,
    )
}

/// Ends every session of a user but the one `keep_hash` opens (a password
/// change from that session).
pub fn delete_others_for_user(
    conn: &mut AnyConnection,
    user_id: i64,
    keep_hash: &str,
) -> DbResult<usize> {
    Ok(diesel::delete(
        browser_sessions::table
            .filter(browser_sessions::user_id.eq(user_id))
            .filter(browser_sessions::token_hash.ne(keep_hash)),
    )
    .execute(conn)?)
}

/// Forgets sessions that can no longer be used.
pub fn purge(conn: &mut AnyConnection, now: i64, idle_since: i64) -> DbResult<usize> {
    Ok(diesel::delete(
        browser_sessions::table.filter(
            browser_sessions::expires_at
                .le(now)
                .or(browser_sessions::last_seen_at.le(idle_since)),
        ),
    )
    .execute(conn)?)
}
