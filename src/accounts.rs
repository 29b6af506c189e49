//! Account creation outside HTTP: the start-up admin and `medesk user add`.

use anyhow::{Context, anyhow};

use crate::auth::password::hash_blocking;
use crate::clock;
use crate::db::users::{self, NewUser, UserRow};
use crate::db::{Database, DbError};
use crate::domain::account::{EmailAddress, Locale, NewPassword, parse_display_name};
use crate::domain::role::Role;

pub struct NewAccount<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub locale: Locale,
    /// For applicants: the organisation created for them.
    pub organization: Option<&'a str>,
}

/// Validates and stores an account (blocking: call from the CLI or start-up).
pub fn create_blocking(db: &Database, account: NewAccount<'_>) -> anyhow::Result<UserRow> {
    let email = EmailAddress::parse(account.email).map_err(|e| anyhow!("e-mail {e}"))?;
    let password = NewPassword::parse(account.password).map_err(|e| anyhow!("password {e}"))?;
    let name = parse_display_name(account.name, 100).map_err(|e| anyhow!("name {e}"))?;
    let organization = match (account.role, account.organization) {
        (Role::Applicant, None) => return Err(anyhow!("applicants need an organisation")),
        (_, org) => org
            .map(|o| parse_display_name(o, 200).map_err(|e| anyhow!("organisation {e}")))
            .transpose()?,
    };
    let hash = hash_blocking(password.expose());
    let user = NewUser {
        email: email.as_str(),
        password_hash: &hash,
        name: &name,
        role: account.role.as_str(),
        locale: account.locale.as_str(),
        organization_id: None,
        created_at: clock::now_micros(),
    };
    db.write_blocking(|conn| match &organization {
        Some(org) => users::register_applicant(conn, user, org),
        None => users::insert(conn, &user),
    })
    .map_err(|e| match e {
        DbError::UniqueViolation(_) => anyhow!("an account with e-mail {email} exists"),
        other => anyhow!(other),
    })
}

/// Creates the `MEDESK_ADMIN_EMAIL` admin unless that account exists.
pub fn bootstrap_admin(db: &Database, email: &str, password: &str) -> anyhow::Result<bool> {
    let address = EmailAddress::parse(email).map_err(|e| anyhow!("MEDESK_ADMIN_EMAIL {e}"))?;
    let exists = db
        .write_blocking(|conn| users::email_exists(conn, address.as_str()))
        .context("looking up the admin account")?;
    if exists {
        return Ok(false);
    }
    NewPassword::parse(password).map_err(|e| anyhow!("MEDESK_ADMIN_PASSWORD {e}"))?;
    create_blocking(
        db,
        NewAccount {
            email,
            password,
            name: "Administrator",
            role: Role::Admin,
            locale: Locale::Ja,
            organization: None,
        },
    )?;
    Ok(true)
}
