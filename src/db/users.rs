//! Users and organisations.

use diesel::prelude::*;

use super::schema::{organizations, password_tokens, users};
use super::{AnyConnection, DbError, DbResult};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub role: String,
    pub locale: String,
    pub organization_id: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub locale: &'a str,
    pub organization_id: Option<i64>,
    pub created_at: i64,
}

pub fn find_by_email(conn: &mut AnyConnection, email: &str) -> DbResult<Option<UserRow>> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_id(conn: &mut AnyConnection, id: i64) -> DbResult<Option<UserRow>> {
    // On the concrete connection: every intake looks its applicant up (see
    // `cases::insert`).
    Ok(on_backend!(conn, |c| users::table
        .find(id)
        .select(UserRow::as_select())
        .first(c)
        .optional())?)
}

pub fn email_exists(conn: &mut AnyConnection, email: &str) -> DbResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        users::table.filter(users::email.eq(email)),
    ))
    .get_result(conn)?)
}

/// Inserts a user; a taken e-mail is `UniqueViolation`.
pub fn insert(conn: &mut AnyConnection, user: &NewUser<'_>) -> DbResult<UserRow> {
    Ok(diesel::insert_into(users::table)
        .values(user)
        .returning(users::all_columns)
        .get_result(conn)?)
}

/// Self-registration: a new organisation owned by the new applicant.
pub fn register_applicant(
    conn: &mut AnyConnection,
    user: NewUser<'_>,
    organization_name: &str,
) -> DbResult<UserRow> {
    if email_exists(conn, user.email)? {
        return Err(DbError::UniqueViolation("users.email".into()));
    }
    let organization_id: i64 = diesel::insert_into(organizations::table)
        .values((
            organizations::name.eq(organization_name),
            organizations::kind.eq("startup"),
            organizations::created_at.eq(user.created_at),
        ))
        .returning(organizations::id)
        .get_result(conn)?;
    let row = insert(
        conn,
        &NewUser {
            organization_id: Some(organization_id),
            ..user
        },
    )?;
    diesel::update(organizations::table.find(organization_id))
        .set(organizations::owner_user_id.eq(row.id))
        .execute(conn)?;
    Ok(row)
}

pub fn insert_password_token(
    conn: &mut AnyConnection,
    user_id: i64,
    token_hash: &str,
    expires_at: i64,
    now: i64,
) -> DbResult<()> {
    diesel::insert_into(password_tokens::table)
        .values((
            password_tokens::user_id.eq(user_id),
            password_tokens::token_hash.eq(token_hash),
            password_tokens::created_at.eq(now),
            password_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Uses a password token (single use, unexpired) and sets the new hash;
/// returns false when the token is not valid.
pub fn set_password_with_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    password_hash: &str,
    now: i64,
) -> DbResult<bool> {
    let found: Option<(i64, i64)> = password_tokens::table
        .filter(password_tokens::token_hash.eq(token_hash))
        .filter(password_tokens::used_at.is_null())
        .filter(password_tokens::expires_at.gt(now))
        .select((password_tokens::id, password_tokens::user_id))
        .first(conn)
        .optional()?;
    let Some((id, user_id)) = found else {
        return Ok(false);
    };
    let used = diesel::update(
        password_tokens::table
            .find(id)
            .filter(password_tokens::used_at.is_null()),
    )
    .set(password_tokens::used_at.eq(now))
    .execute(conn)?;
    if used != 1 {
        return Ok(false);
    }
    diesel::update(users::table.find(user_id))
        .set(users::password_hash.eq(password_hash))
        .execute(conn)?;
    Ok(true)
}

/// (email, name, locale) of every user with `role`.
/// `(id, email, name, locale)` of every user with `role`.
pub fn contacts_with_role(
    conn: &mut AnyConnection,
    role: &str,
) -> DbResult<Vec<(i64, String, String, String)>> {
    let query = users::table
        .filter(users::role.eq(role))
        .select((users::id, users::email, users::name, users::locale))
        .order(users::id.asc());
    Ok(on_backend!(conn, |c| query.load(c))?)
}
