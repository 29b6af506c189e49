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
    /// Access tokens of an older generation no longer work (see
    /// `auth::sessions`).
    pub session_generation: i64,
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
        // The columns of `UserRow`, in its order (`as_returning` does not
        // work through the MultiConnection).
        .returning((
            users::id,
            users::email,
            users::password_hash,
            users::name,
            users::role,
            users::locale,
            users::organization_id,
            users::created_at,
            users::session_generation,
        ))
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

/// What presenting a password token came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// The password is set; the account's sessions ended and it is now in
    /// this session generation.
    Set { user_id: i64, generation: i64 },
    /// No such token.
    Unknown,
    /// The token was used already (or another token of the account was).
    Used,
    /// The token is past its expiry.
    Expired,
}

#[derive(Queryable)]
struct PasswordToken {
    id: i64,
    user_id: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

/// Uses a password token (single use, unexpired) and sets the new hash.
/// Call inside a transaction: every other outstanding token of the account
/// is used up with it, and every session of the account ends (its refresh
/// tokens are revoked and its session generation moves on, which refuses
/// the access tokens already issued).
pub fn set_password_with_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    password_hash: &str,
    now: i64,
) -> DbResult<TokenUse> {
    let Some(token) = password_tokens::table
        .filter(password_tokens::token_hash.eq(token_hash))
        .select((
            password_tokens::id,
            password_tokens::user_id,
            password_tokens::expires_at,
            password_tokens::used_at,
        ))
        .first::<PasswordToken>(conn)
        .optional()?
    else {
        return Ok(TokenUse::Unknown);
    };
    if token.used_at.is_some() {
        return Ok(TokenUse::Used);
    }
    if token.expires_at <= now {
        return Ok(TokenUse::Expired);
    }
    // Conditional: of two requests with one token, one wins.
    let used = diesel::update(
        password_tokens::table
            .find(token.id)
            .filter(password_tokens::used_at.is_null()),
    )
    .set(password_tokens::used_at.eq(now))
    .execute(conn)?;
    if used != 1 {
        return Ok(TokenUse::Used);
    }
    let generation = change_password(conn, token.user_id, password_hash, now)?;
    Ok(TokenUse::Set {
        user_id: token.user_id,
        generation,
    })
}

/// Sets a new password hash (a mailed token was used, or a signed-in
/// account confirmed its current password). Call inside a transaction: outstanding password tokens are
/// used up and the account's other sessions end (refresh tokens revoked,
/// session generation moved on); returns the new generation. Browser
/// sessions are the caller's to end (`browser_sessions`).
pub fn change_password(
    conn: &mut AnyConnection,
    user_id: i64,
    password_hash: &str,
    now: i64,
) -> DbResult<i64> {
    diesel::update(
        password_tokens::table
            .filter(password_tokens::user_id.eq(user_id))
            .filter(password_tokens::used_at.is_null()),
    )
    .set(password_tokens::used_at.eq(now))
    .execute(conn)?;
    let generation: i64 = diesel::update(users::table.find(user_id))
        .set((
            users::password_hash.eq(password_hash),
            users::session_generation.eq(users::session_generation + 1),
            users::sessions_ended_at.eq(now),
        ))
        .returning(users::session_generation)
        .get_result(conn)?;
    super::tokens::revoke_user(conn, user_id, now)?;
    Ok(generation)
}

/// Puts `rehashed` in place of the account's hash while it is still `older`
/// (the same password hashed with today's parameters, at a sign-in); ends
/// no session. Returns whether it replaced it.
pub fn replace_password_hash(
    conn: &mut AnyConnection,
    user_id: i64,
    older: &str,
    rehashed: &str,
) -> DbResult<bool> {
    let replaced = diesel::update(
        users::table
            .find(user_id)
            .filter(users::password_hash.eq(older)),
    )
    .set(users::password_hash.eq(rehashed))
    .execute(conn)?;
    Ok(replaced == 1)
}

/// `(user, generation, when)` of every account whose sessions ended after
/// `since`.
pub fn sessions_ended_since(
    conn: &mut AnyConnection,
    since: i64,
) -> DbResult<Vec<(i64, i64, i64)>> {
    let rows: Vec<(i64, i64, Option<i64>)> = users::table
        .filter(users::sessions_ended_at.gt(since))
        .select((
            users::id,
            users::session_generation,
            users::sessions_ended_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, generation, at)| Some((id, generation, at?)))
        .collect())
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// Which accounts a people search asks for.
#[derive(Debug, Clone, Default)]
pub struct PeopleFilter {
    /// Lower-case text to find in the name or the e-mail address.
    pub text: Option<String>,
    pub role: Option<String>,
    /// Only accounts with a larger id (the previous page's last one).
    pub after: Option<i64>,
    pub limit: i64,
}

/// An account found, with its organisation's id and name (applicants).
pub type Person = (UserRow, Option<(i64, String)>);

/// Accounts matching `filter`, by id.
pub fn search(conn: &mut AnyConnection, filter: &PeopleFilter) -> DbResult<Vec<Person>> {
    let mut query = users::table
        .left_join(organizations::table)
        .select((
            UserRow::as_select(),
            (organizations::id, organizations::name).nullable(),
        ))
        .order(users::id.asc())
        .limit(filter.limit)
        .into_boxed();
    if let Some(text) = &filter.text {
        let pattern = format!("%{}%", super::cases::escape_like(text));
        query = query.filter(
            lower(users::name)
                .like(pattern.clone())
                .escape('\\')
                .or(users::email.like(pattern).escape('\\')),
        );
    }
    if let Some(role) = &filter.role {
        query = query.filter(users::role.eq(role.clone()));
    }
    if let Some(after) = filter.after {
        query = query.filter(users::id.gt(after));
    }
    Ok(query.load(conn)?)
}

/// `(id, email, name, locale)` of every user with `role`.
pub fn contacts_with_role(conn: &mut AnyConnection, role: &str) -> DbResult<Vec<ContactRow>> {
    let query = users::table
        .filter(users::role.eq(role))
        .select((users::id, users::email, users::name, users::locale))
        .order(users::id.asc());
    Ok(on_backend!(conn, |c| query.load(c))?)
}

/// `(id, email, name, locale)` of a user to write to.
pub type ContactRow = (i64, String, String, String);

/// The [`ContactRow`]s of the users of `ids` that exist, in one statement.
pub fn contacts_by_id(conn: &mut AnyConnection, ids: &[i64]) -> DbResult<Vec<ContactRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let query = users::table.filter(users::id.eq_any(ids)).select((
        users::id,
        users::email,
        users::name,
        users::locale,
    ));
    Ok(on_backend!(conn, |c| query.load(c))?)
}

/// The organisation `(name, kind)` a case is filed under, as registered:
/// `None` when it is gone or the applicant is no longer its member. One
/// statement of two primary-key lookups. The people its mail goes to are
/// read when the mail worker writes that mail (`mail::fan_out`), not by
/// the intake.
pub fn filing_organization(
    conn: &mut AnyConnection,
    applicant_id: i64,
    organization_id: i64,
) -> DbResult<Option<(String, String)>> {
    let query = organizations::table
        .inner_join(users::table.on(users::organization_id.eq(organizations::id.nullable())))
        .filter(organizations::id.eq(organization_id))
        .filter(users::id.eq(applicant_id))
        .select((organizations::name, organizations::kind));
    Ok(on_backend!(conn, |c| query.first(c).optional())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use crate::db::Database;

    fn user<'a>(email: &'a str, role: &'a str) -> NewUser<'a> {
        NewUser {
            email,
            password_hash: "-",
            name: email,
            role,
            locale: "ja",
            organization_id: None,
            created_at: 1,
        }
    }

    /// The filing organisation's statement, as diesel writes it, looks both
    /// rows up by key: it scans no account and no organisation, however
    /// many register.
    #[tokio::test]
    async fn the_filing_organization_is_two_lookups_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db").to_string_lossy().into_owned();
        let (mut conn, statements) = crate::db::recording_sqlite(&path);
        filing_organization(&mut conn, 3, 5).unwrap();
        let (sql, steps) = crate::db::last_statement_plan(&mut conn, &statements);
        assert_eq!(steps.len(), 2, "{sql}: {steps:?}");
        assert!(
            steps[0].starts_with("SEARCH organizations USING INTEGER PRIMARY KEY (rowid=?)"),
            "{sql}: {steps:?}"
        );
        assert!(
            steps[1].starts_with("SEARCH users USING") && steps[1].contains("rowid=?"),
            "{sql}: {steps:?}"
        );
    }

    /// The organisation is read for its own member only.
    #[tokio::test]
    async fn the_filing_organization_is_the_applicants_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 2).unwrap();
        let (own, elsewhere, staff) = db
            .write(|conn| {
                let supporter = insert(conn, &user("s1@desk.example", "supporter"))?;
                let founder = register_applicant(conn, user("f@a.example", "applicant"), "A KK")?;
                let other = register_applicant(conn, user("o@b.example", "applicant"), "B KK")?;
                let org = founder.organization_id.unwrap();
                Ok::<_, DbError>((
                    filing_organization(conn, founder.id, org)?,
                    filing_organization(conn, founder.id, other.organization_id.unwrap())?,
                    filing_organization(conn, supporter.id, org)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(own, Some(("A KK".to_owned(), "startup".to_owned())));
        assert_eq!(elsewhere, None);
        assert_eq!(staff, None);
    }
}
