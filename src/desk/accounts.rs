//! Accounts and sign-in: register, create users, passwords, sessions.
//!
//! An account is created one way ([`create_account`] and [`register`] share
//! it), whoever asks: an admin on the API, the operator on the command line
//! or at start-up, a person registering their organisation or joining the
//! one that invited them. Passwords are kept as argon2 hashes
//! (`auth::password`); the hasher runs on threads of its own, so the
//! interface hands it in.
//!
//! Signing in checks the password and opens a *login*: a family of refresh
//! tokens, each used once and replaced by the next ([`renew_session`]);
//! presenting a replaced token again revokes the whole login, and signing
//! out revokes it too. How an interface then recognises the person between
//! requests — a short-lived JWT for the JSON API, a cookie for the pages —
//! is the interface's business.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::anyhow;

use super::{Desk, DeskError};
use crate::auth::password::{PasswordHasher, Verified};
use crate::auth::rate_limit::LoginLimiter;
use crate::auth::sessions::SessionRegistry;
use crate::auth::tokens::{self, REFRESH_TOKEN_DAYS};
use crate::clock;
use crate::db::tokens::{NewRefreshToken, Rotation};
use crate::db::users::{self, NewUser, PeopleFilter, TokenUse, UserRow};
use crate::db::{DbError, organizations, outbox};
use crate::domain::account::{
    EmailAddress, Locale, NAME_MAX_CHARS, NewPassword, ORGANIZATION_MAX_CHARS, parse_display_name,
};
use crate::domain::role::{Caller, Role};
use crate::domain::validation::{Code, Invalid, Problems, Refusal};
use crate::mail::templates;

/// Who creates accounts of any role on the API.
pub const ACCOUNT_ADMINS: &[Role] = &[Role::Admin];

const EMAIL_TAKEN: &str = "an account with this e-mail exists";

// ---------------------------------------------------------------- results

/// An account as the desk knows it (never its password hash).
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub locale: Locale,
    /// Applicants' organisation; None for everyone else.
    pub organization_id: Option<i64>,
    pub created_at: i64,
    /// The session generation credentials issued now belong to (a password
    /// reset moves it on and ends the older ones; `auth::sessions`).
    pub session_generation: i64,
}

/// The account of a stored row; an unknown stored role or locale is an
/// error naming the user, never a default.
pub(crate) fn account(row: UserRow) -> Result<Account, DeskError> {
    let unknown = |column: &str, value: &str| {
        DeskError::internal(anyhow!(
            "user {}: unknown {column} {value:?} in the database",
            row.id
        ))
    };
    let role = row.role.parse().map_err(|_| unknown("role", &row.role))?;
    let locale = row
        .locale
        .parse()
        .map_err(|_| unknown("locale", &row.locale))?;
    Ok(Account {
        id: row.id,
        email: row.email,
        name: row.name,
        role,
        locale,
        organization_id: row.organization_id,
        created_at: row.created_at,
        session_generation: row.session_generation,
    })
}

/// A login just opened or renewed: the account and the refresh token that
/// renews it (shown once; only its hash is stored).
pub struct Session {
    pub account: Account,
    pub refresh_token: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------- creating accounts

/// Who a new account is and how they sign in.
#[derive(Debug, Clone)]
pub struct AccountDetails {
    pub email: EmailAddress,
    pub password: NewPassword,
    /// A display name (see [`parse_display_name`], at most
    /// [`NAME_MAX_CHARS`]).
    pub name: String,
    pub locale: Locale,
}

/// The account fields of a form or command line, as typed.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountForm<'a> {
    pub email: Option<&'a str>,
    pub password: Option<&'a str>,
    pub name: Option<&'a str>,
    /// `ja` when absent.
    pub locale: Option<&'a str>,
}

impl AccountForm<'_> {
    /// The details, or None with every refused field recorded in
    /// `problems` (under `email`, `password`, `name`, `locale`).
    pub fn parse(&self, problems: &mut Problems) -> Option<AccountDetails> {
        let email = problems
            .required("email", self.email)
            .and_then(|e| problems.check("email", EmailAddress::parse(e)));
        let password = problems
            .required("password", self.password)
            .and_then(|p| problems.check("password", NewPassword::parse(p)));
        let name = problems
            .required("name", self.name)
            .and_then(|n| problems.check("name", parse_display_name(n, NAME_MAX_CHARS)));
        let locale = match self.locale {
            None => Some(Locale::default()),
            Some(l) => problems.check(
                "locale",
                l.parse::<Locale>()
                    .map_err(|e| Refusal::new(Code::NotAllowed, e)),
            ),
        };
        Some(AccountDetails {
            email: email?,
            password: password?,
            name: name?,
            locale: locale?,
        })
    }
}

/// The organisation a new account belongs to.
#[derive(Clone, PartialEq, Eq)]
pub enum Membership {
    /// None: desk staff, experts and managers belong to no organisation.
    None,
    /// A new organisation of this (checked) name, owned by the account.
    NewOrganization(String),
    /// The organisation whose invitation mail carried this token.
    Invitation(String),
}

/// The organisation a new account of `role` starts with, from the name
/// given (the rule of `medesk user add` and `POST /users`): applicants need
/// one, which is created for them; other roles belong to none, and a name
/// given for them is ignored. The error is about the organisation field.
pub fn membership_for(role: Role, organization: Option<&str>) -> Result<Membership, Refusal> {
    match (role, organization) {
        (Role::Applicant, None) => Err(Refusal::new(Code::Required, "is required for applicants")),
        (Role::Applicant, Some(name)) => {
            parse_display_name(name, ORGANIZATION_MAX_CHARS).map(Membership::NewOrganization)
        }
        _ => Ok(Membership::None),
    }
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Membership::None => f.write_str("None"),
            Membership::NewOrganization(name) => write!(f, "NewOrganization({name:?})"),
            // The token admits anyone who has it: never in a log.
            Membership::Invitation(_) => f.write_str("Invitation(..)"),
        }
    }
}

/// A new account of any role.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub details: AccountDetails,
    pub role: Role,
    /// See [`membership_for`]: applicants need an organisation, no one
    /// else has one.
    pub membership: Membership,
}

/// Who creates an account.
#[derive(Debug, Clone, Copy)]
pub enum Creator {
    /// A signed-in user on an interface (must be one of [`ACCOUNT_ADMINS`]).
    User(Caller),
    /// Whoever runs `medesk` against its database: the command line, the
    /// start-up admin.
    Operator,
}

/// Creates an account of any role (an admin, or the operator).
pub async fn create_account(
    desk: &Desk,
    creator: Creator,
    hasher: &PasswordHasher,
    command: NewAccount,
) -> Result<Account, DeskError> {
    if let Creator::User(caller) = creator {
        caller.require(ACCOUNT_ADMINS)?;
    }
    let NewAccount {
        details,
        role,
        membership,
    } = command;
    match (role, &membership) {
        (Role::Applicant, Membership::None) => {
            return Err(DeskError::field(
                "organization",
                "is required for applicants",
            ));
        }
        (Role::Applicant, _) | (_, Membership::None) => {}
        (_, _) => {
            return Err(DeskError::field("organization", "is only for applicants"));
        }
    }
    let account = create(desk, hasher, details, role, membership).await?;
    match creator {
        Creator::User(caller) => {
            tracing::info!(user_id = account.id, role = %role, by = caller.id, "user created");
        }
        Creator::Operator => {
            tracing::info!(user_id = account.id, role = %role, "user created by the operator");
        }
    }
    Ok(account)
}

/// How a registrant joins the desk.
#[derive(Clone, PartialEq, Eq)]
pub enum Joining {
    /// With a new organisation of this (checked) name, which they own.
    NewOrganization(String),
    /// The organisation whose invitation mail carried this token (for the
    /// address it was sent to).
    Invitation(String),
}

impl std::fmt::Debug for Joining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Joining::NewOrganization(name) => write!(f, "NewOrganization({name:?})"),
            Joining::Invitation(_) => f.write_str("Invitation(..)"),
        }
    }
}

/// Someone registers as an applicant.
#[derive(Debug, Clone)]
pub struct Registration {
    pub details: AccountDetails,
    pub joining: Joining,
}

/// A registration as typed in a form or a request body.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistrationForm<'a> {
    pub account: AccountForm<'a>,
    /// The new organisation's name (unless joining by invitation).
    pub organization: Option<&'a str>,
    /// The token of an invitation mail.
    pub invitation_token: Option<&'a str>,
}

impl RegistrationForm<'_> {
    /// The registration, or every refused field (`organization` is
    /// required unless an invitation token is given).
    pub fn parse(&self) -> Result<Registration, Vec<crate::domain::validation::Invalid>> {
        let mut problems = Problems::default();
        let details = self.account.parse(&mut problems);
        let joining = match self
            .invitation_token
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            Some(token) => Some(Joining::Invitation(token.to_owned())),
            None => problems
                .required("organization", self.organization)
                .and_then(|o| {
                    problems.check(
                        "organization",
                        parse_display_name(o, ORGANIZATION_MAX_CHARS),
                    )
                })
                .map(Joining::NewOrganization),
        };
        problems.finish(|| {
            Some(Registration {
                details: details?,
                joining: joining?,
            })
        })
    }
}

/// Registers an applicant with their new organisation, or into the
/// organisation that invited them (anyone may; no one is signed in yet).
pub async fn register(
    desk: &Desk,
    hasher: &PasswordHasher,
    command: Registration,
) -> Result<Account, DeskError> {
    let membership = match command.joining {
        Joining::NewOrganization(name) => Membership::NewOrganization(name),
        Joining::Invitation(token) => Membership::Invitation(token),
    };
    let account = create(desk, hasher, command.details, Role::Applicant, membership).await?;
    tracing::info!(user_id = account.id, "applicant registered");
    Ok(account)
}

/// At start-up: creates the configured admin unless an account with that
/// address exists; true when it was created.
pub async fn ensure_admin(
    desk: &Desk,
    hasher: &PasswordHasher,
    email: EmailAddress,
    password: NewPassword,
) -> Result<bool, DeskError> {
    let probe = email.as_str().to_owned();
    if desk
        .read(move |conn| Ok(users::email_exists(conn, &probe)?))
        .await?
    {
        return Ok(false);
    }
    let command = NewAccount {
        details: AccountDetails {
            email,
            password,
            name: "Administrator".to_owned(),
            locale: Locale::Ja,
        },
        role: Role::Admin,
        membership: Membership::None,
    };
    create_account(desk, Creator::Operator, hasher, command).await?;
    Ok(true)
}

fn email_taken(error: DbError) -> DeskError {
    match error {
        DbError::UniqueViolation(_) => DeskError::conflict(EMAIL_TAKEN),
        other => other.into(),
    }
}

/// The one way an account is stored: a taken address is refused before
/// the password is hashed, the membership settled in the same transaction.
async fn create(
    desk: &Desk,
    hasher: &PasswordHasher,
    details: AccountDetails,
    role: Role,
    membership: Membership,
) -> Result<Account, DeskError> {
    let email = details.email.into_string();
    // Cheap pre-check so a taken address does not cost an argon2 hash.
    let probe = email.clone();
    if desk
        .read(move |conn| Ok(users::email_exists(conn, &probe)?))
        .await?
    {
        return Err(DeskError::conflict(EMAIL_TAKEN));
    }
    let password_hash = hasher.hash(details.password.expose().to_owned()).await;
    let name = details.name;
    let locale = details.locale;
    let row = desk
        .write(move |conn| {
            let now = clock::now_micros();
            let user = NewUser {
                email: &email,
                password_hash: &password_hash,
                name: &name,
                role: role.as_str(),
                locale: locale.as_str(),
                organization_id: None,
                created_at: now,
            };
            let row = match &membership {
                Membership::None => users::insert(conn, &user),
                Membership::NewOrganization(org) => users::register_applicant(conn, user, org),
                Membership::Invitation(token) => {
                    let token_hash = tokens::hash_refresh_token(token);
                    let organization_id =
                        organizations::redeem_invitation(conn, &token_hash, &email, now)?
                            .ok_or_else(|| {
                                DeskError::Invalid(vec![Invalid::refused(
                                    "invitation_token",
                                    Refusal::new(
                                        Code::InvitationUnusable,
                                        "is unknown, used, expired or meant for another address",
                                    ),
                                )])
                            })?;
                    users::insert(
                        conn,
                        &NewUser {
                            organization_id: Some(organization_id),
                            ..user
                        },
                    )
                }
            };
            row.map_err(email_taken)
        })
        .await?;
    account(row)
}

// ---------------------------------------------------------------- the signed-in account

/// The caller's own account; None when it no longer exists (a credential
/// issued before it was removed is no longer a session).
pub async fn my_account(desk: &Desk, caller: Caller) -> Result<Option<Account>, DeskError> {
    desk.read(move |conn| users::find_by_id(conn, caller.id)?.map(account).transpose())
        .await
}

// ---------------------------------------------------------------- signing in and out

/// An attempt to sign in.
#[derive(Clone)]
pub struct SignIn {
    /// As typed; compared without case and surrounding white space.
    pub email: String,
    pub password: String,
    /// Where the attempt comes from (attempts are limited per address too).
    pub from: IpAddr,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("email", &self.email)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// How a sign-in ended.
#[derive(Debug)]
pub enum SignInOutcome {
    /// The password matched: a new login.
    SignedIn(Session),
    /// Unknown address or wrong password (the two are indistinguishable,
    /// also in the time they take).
    Refused,
    /// Too many attempts for this account or from this address; nothing
    /// was checked.
    Throttled { retry_after: Duration },
}

/// How long a refresh token stays valid.
fn refresh_lifetime_micros() -> i64 {
    REFRESH_TOKEN_DAYS * 24 * 3600 * 1_000_000
}

/// What an address and password were found to be.
pub(crate) enum Credentials {
    Valid(Account),
    Refused,
    Throttled { retry_after: Duration },
}

/// Checks an address and password within the attempt limits; every
/// interface's sign-in goes through here, so they share the limits.
pub(crate) async fn check_credentials(
    desk: &Desk,
    hasher: &PasswordHasher,
    limiter: &LoginLimiter,
    command: SignIn,
) -> Result<Credentials, DeskError> {
    // Normalise the way accounts are stored; a malformed address simply
    // matches no account (and still costs a hash).
    let email = command.email.trim().to_lowercase();
    if let Err(retry_after) = limiter.check(&email, command.from) {
        return Ok(Credentials::Throttled { retry_after });
    }
    let user = desk
        .read(move |conn| Ok(users::find_by_email(conn, &email)?))
        .await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let (Verified::Yes { rehashed }, Some(user)) =
        (hasher.verify(command.password, stored).await, user)
    else {
        return Ok(Credentials::Refused);
    };
    if let Some(rehashed) = rehashed {
        // Stored with older parameters: today's hash takes its place, unless
        // the password changed meanwhile. No session ends.
        let (id, older) = (user.id, user.password_hash.clone());
        desk.write(move |conn| Ok(users::replace_password_hash(conn, id, &older, &rehashed)?))
            .await?;
    }
    Ok(Credentials::Valid(account(user)?))
}

/// Checks an address and password (within the attempt limits) and opens a
/// login.
pub async fn sign_in(
    desk: &Desk,
    hasher: &PasswordHasher,
    limiter: &LoginLimiter,
    command: SignIn,
) -> Result<SignInOutcome, DeskError> {
    let account = match check_credentials(desk, hasher, limiter, command).await? {
        Credentials::Valid(account) => account,
        Credentials::Refused => return Ok(SignInOutcome::Refused),
        Credentials::Throttled { retry_after } => {
            return Ok(SignInOutcome::Throttled { retry_after });
        }
    };
    let refresh_token = tokens::new_refresh_token();
    let token_hash = tokens::hash_refresh_token(&refresh_token);
    let user_id = account.id;
    desk.write(move |conn| {
        let now = clock::now_micros();
        crate::db::tokens::insert(
            conn,
            &NewRefreshToken {
                user_id,
                family: &tokens::new_family(),
                token_hash: &token_hash,
                now,
                expires_at: now + refresh_lifetime_micros(),
            },
        )?;
        Ok(())
    })
    .await?;
    tracing::info!(user_id, "login");
    Ok(SignInOutcome::SignedIn(Session {
        account,
        refresh_token,
    }))
}

/// How a renewal ended.
#[derive(Debug)]
pub enum Renewal {
    /// The presented token was current: this session replaces it.
    Renewed(Session),
    /// The presented token had been replaced already: the whole login is
    /// revoked now (someone else may hold a copy).
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

/// Renews a login with its current refresh token; the token stops working.
pub async fn renew_session(desk: &Desk, refresh_token: String) -> Result<Renewal, DeskError> {
    let presented = tokens::hash_refresh_token(&refresh_token);
    let next_token = tokens::new_refresh_token();
    let next_hash = tokens::hash_refresh_token(&next_token);
    let renewal = desk
        .write(move |conn| {
            let now = clock::now_micros();
            let rotation = crate::db::tokens::rotate(
                conn,
                &presented,
                &next_hash,
                now,
                now + refresh_lifetime_micros(),
            )?;
            Ok(match rotation {
                // Checked inside the transaction: an account the desk cannot
                // read keeps its current token.
                Rotation::Rotated(user) => Renewal::Renewed(Session {
                    account: account(user)?,
                    refresh_token: next_token,
                }),
                Rotation::Reused => Renewal::Reused,
                Rotation::Invalid => Renewal::Invalid,
            })
        })
        .await?;
    if let Renewal::Reused = renewal {
        tracing::warn!("refresh token reuse: login revoked");
    }
    Ok(renewal)
}

/// Revokes the login a refresh token belongs to; an unknown token changes
/// nothing (signing out twice is harmless).
pub async fn sign_out(desk: &Desk, refresh_token: String) -> Result<(), DeskError> {
    let presented = tokens::hash_refresh_token(&refresh_token);
    desk.write(move |conn| {
        crate::db::tokens::revoke_login(conn, &presented, clock::now_micros())?;
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------- passwords

/// How long a password-reset link works.
pub const PASSWORD_RESET_MINUTES: i64 = 30;

/// A new password, with the single-use token a mail carried.
#[derive(Clone)]
pub struct SetPassword {
    pub token: String,
    pub password: NewPassword,
}

impl std::fmt::Debug for SetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPassword").finish_non_exhaustive()
    }
}

/// Sets a password with a token sent by mail (a new expert's first
/// password, or a reset); the token and every other outstanding one of the
/// account are used up, and every session of the account ends: its refresh
/// tokens are revoked and the access tokens already issued stop working.
pub async fn set_password(
    desk: &Desk,
    hasher: &PasswordHasher,
    command: SetPassword,
) -> Result<(), DeskError> {
    let token_hash = tokens::hash_refresh_token(&command.token);
    let password_hash = hasher.hash(command.password.expose().to_owned()).await;
    let outcome = desk
        .write(move |conn| {
            let now = clock::now_micros();
            let outcome = users::set_password_with_token(conn, &token_hash, &password_hash, now)?;
            if let TokenUse::Set { user_id, .. } = &outcome {
                // Signed-in browsers end with the rest.
                crate::db::browser_sessions::delete_for_user(conn, *user_id)?;
            }
            Ok((outcome, now))
        })
        .await?;
    match outcome {
        (
            TokenUse::Set {
                user_id,
                generation,
            },
            at,
        ) => {
            // This instance refuses the old access tokens at once; others
            // learn it from the database (`learn_ended_sessions`).
            desk.sessions.ended(user_id, generation, at);
            tracing::info!(user_id, "password set with a mailed token; sessions ended");
            Ok(())
        }
        (TokenUse::Unknown, _) => Err(DeskError::field(
            "token",
            "is not a token this desk sent; copy the whole link from the mail",
        )),
        (TokenUse::Used, _) => Err(DeskError::field(
            "token",
            "was used already; each link sets a password once (ask for a new one)",
        )),
        (TokenUse::Expired, _) => Err(DeskError::field(
            "token",
            "has expired; ask for a new password-reset mail",
        )),
    }
}

/// A signed-in person changes their password: the current one, and the new.
#[derive(Clone)]
pub struct ChangePassword {
    pub current: String,
    pub password: NewPassword,
    /// The browser session's token the change comes from: it stays signed
    /// in while every other session of the account ends.
    pub keep_browser_session: Option<String>,
    /// Where the request comes from (attempts are limited as sign-ins are).
    pub from: IpAddr,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangePassword")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// How a password change ended.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordChange {
    /// Set; the account's other sessions ended.
    Changed,
    /// The current password was wrong; nothing changed.
    WrongCurrent,
    /// Too many attempts for this account or from this address.
    Throttled { retry_after: Duration },
}

/// Changes the caller's password after checking the current one (within
/// the sign-in attempt limits): the new hash, outstanding reset links used
/// up, and every other session of the account ended, as a reset does.
pub async fn change_password(
    desk: &Desk,
    hasher: &PasswordHasher,
    limiter: &LoginLimiter,
    caller: Caller,
    command: ChangePassword,
) -> Result<PasswordChange, DeskError> {
    let account = my_account(desk, caller).await?.ok_or(DeskError::NotFound)?;
    let check = SignIn {
        email: account.email.clone(),
        password: command.current,
        from: command.from,
    };
    match check_credentials(desk, hasher, limiter, check).await? {
        Credentials::Valid(checked) if checked.id == caller.id => {}
        Credentials::Valid(_) | Credentials::Refused => return Ok(PasswordChange::WrongCurrent),
        Credentials::Throttled { retry_after } => {
            return Ok(PasswordChange::Throttled { retry_after });
        }
    }
    let password_hash = hasher.hash(command.password.expose().to_owned()).await;
    let keep = command
        .keep_browser_session
        .map(|token| tokens::hash_refresh_token(&token))
        .unwrap_or_default();
    let user_id = caller.id;
    let (generation, at) = desk
        .write(move |conn| {
            let now = clock::now_micros();
            let generation = users::change_password(conn, user_id, &password_hash, now)?;
            crate::db::browser_sessions::delete_others_for_user(conn, user_id, &keep)?;
            Ok((generation, now))
        })
        .await?;
    desk.sessions.ended(user_id, generation, at);
    tracing::info!(user_id, "password changed; other sessions ended");
    Ok(PasswordChange::Changed)
}

/// Someone forgot their password.
#[derive(Clone)]
pub struct RequestPasswordReset {
    /// As typed; compared without case and surrounding white space.
    pub email: String,
    /// Where the request comes from (requests are limited per address too).
    pub from: IpAddr,
}

impl std::fmt::Debug for RequestPasswordReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestPasswordReset")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// How a reset request ended — the same for an address with an account and
/// one without, so that nobody learns which addresses have accounts.
#[derive(Debug, PartialEq, Eq)]
pub enum ResetRequested {
    /// If the address has an account, a mail with a link is on its way.
    Accepted,
    /// Too many requests for this address or from this client; nothing was
    /// done.
    Throttled { retry_after: Duration },
}

/// Mails a single-use password-reset link (valid [`PASSWORD_RESET_MINUTES`])
/// to the account with this address, if there is one. Both cases do the
/// same work — a random token, one write transaction that looks the address
/// up — and answer the same; no password is hashed here.
pub async fn request_password_reset(
    desk: &Desk,
    limiter: &LoginLimiter,
    command: RequestPasswordReset,
) -> Result<ResetRequested, DeskError> {
    let email = command.email.trim().to_lowercase();
    if let Err(retry_after) = limiter.check(&email, command.from) {
        return Ok(ResetRequested::Throttled { retry_after });
    }
    let token = tokens::new_refresh_token();
    let token_hash = tokens::hash_refresh_token(&token);
    let base_url = desk.notifier.base_url.clone();
    let mailed = desk
        .write_and_mail(move |conn| {
            let now = clock::now_micros();
            let Some(user) = users::find_by_email(conn, &email)? else {
                return Ok(None);
            };
            let user = account(user)?;
            users::insert_password_token(
                conn,
                user.id,
                &token_hash,
                now + PASSWORD_RESET_MINUTES * 60 * 1_000_000,
                now,
            )?;
            outbox::enqueue(
                conn,
                &templates::password_reset(
                    user.locale,
                    &user.email,
                    &user.name,
                    &base_url,
                    &token,
                    PASSWORD_RESET_MINUTES,
                ),
                now,
            )?;
            Ok(Some(user.id))
        })
        .await?;
    if let Some(user_id) = mailed {
        tracing::info!(user_id, "password reset mailed");
    }
    Ok(ResetRequested::Accepted)
}

/// Takes from the database the accounts whose sessions ended recently
/// (also on other instances); run every few seconds.
pub async fn learn_ended_sessions(desk: &Desk) -> Result<(), DeskError> {
    let now = clock::now_micros();
    let since = SessionRegistry::horizon(now);
    let recent = desk
        .read(move |conn| Ok(users::sessions_ended_since(conn, since)?))
        .await?;
    desk.sessions.learn(recent, now);
    Ok(())
}

// ---------------------------------------------------------------- finding people

/// Who may search the desk's accounts (to file a case on someone's behalf,
/// to see who belongs to which organisation).
pub const PEOPLE_SEARCHERS: &[Role] = &[Role::Supporter, Role::Admin];

/// A people search as typed.
#[derive(Debug, Clone, Default)]
pub struct PeopleQuery {
    /// Text to find in the name or e-mail address (any case); blank finds
    /// everyone.
    pub text: Option<String>,
    pub role: Option<Role>,
    /// A `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

impl PeopleQuery {
    pub const DEFAULT_LIMIT: i64 = 20;
    pub const MAX_LIMIT: i64 = 100;
    pub const MAX_TEXT_CHARS: usize = 200;
}

/// An account found, with its organisations.
#[derive(Debug, Clone)]
pub struct Person {
    pub account: Account,
    /// `(id, name)`; applicants belong to one, everyone else to none.
    pub organizations: Vec<(i64, String)>,
}

/// A page of people.
#[derive(Debug, Clone)]
pub struct PeoplePage {
    pub items: Vec<Person>,
    /// Pass as `cursor` for the next page; None on the last one.
    pub next_cursor: Option<String>,
}

/// Finds accounts by name or e-mail address, by id (supporters and
/// admins).
pub async fn find_people(
    desk: &Desk,
    caller: Caller,
    query: PeopleQuery,
) -> Result<PeoplePage, DeskError> {
    caller.require(PEOPLE_SEARCHERS)?;
    let mut problems = Problems::default();
    let limit = query.limit.unwrap_or(PeopleQuery::DEFAULT_LIMIT);
    if !(1..=PeopleQuery::MAX_LIMIT).contains(&limit) {
        problems.push(
            "limit",
            format!("must be from 1 to {}", PeopleQuery::MAX_LIMIT),
        );
    }
    let text = query
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase);
    if text
        .as_deref()
        .is_some_and(|t| t.chars().count() > PeopleQuery::MAX_TEXT_CHARS)
    {
        problems.push(
            "q",
            format!("must be at most {} characters", PeopleQuery::MAX_TEXT_CHARS),
        );
    }
    let after = query.cursor.as_deref().and_then(|c| {
        let parsed = c.parse::<i64>().ok();
        if parsed.is_none() {
            problems.push("cursor", "is not a cursor this server issued");
        }
        parsed
    });
    problems.into_result()?;
    let filter = PeopleFilter {
        text,
        role: query.role.map(|r| r.as_str().to_owned()),
        after,
        limit,
    };
    let rows = desk
        .read(move |conn| Ok(users::search(conn, &filter)?))
        .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|(user, _)| user.id.to_string()))
        .flatten();
    let items = rows
        .into_iter()
        .map(|(user, organization)| {
            Ok(Person {
                account: account(user)?,
                organizations: organization.into_iter().collect(),
            })
        })
        .collect::<Result<_, DeskError>>()?;
    Ok(PeoplePage { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(role: &str, locale: &str) -> UserRow {
        UserRow {
            id: 3,
            email: "a@desk.example".into(),
            password_hash: "x".into(),
            name: "A".into(),
            role: role.into(),
            locale: locale.into(),
            organization_id: None,
            created_at: 0,
            session_generation: 0,
        }
    }

    #[test]
    fn unknown_stored_role_or_locale_is_an_error_naming_the_user() {
        let ok = account(row("supporter", "en")).unwrap();
        assert_eq!((ok.role, ok.locale), (Role::Supporter, Locale::En));
        let error = account(row("root", "en")).unwrap_err();
        assert!(
            format!("{:#}", anyhow::Error::from(error)).contains("user 3: unknown role \"root\""),
        );
        let error = account(row("admin", "xx")).unwrap_err();
        assert!(
            format!("{:#}", anyhow::Error::from(error))
                .contains("user 3: unknown locale \"xx\" in the database"),
        );
    }

    #[test]
    fn applicants_need_an_organisation_and_no_one_else_has_one() {
        assert!(membership_for(Role::Applicant, None).is_err());
        assert!(membership_for(Role::Applicant, Some("  ")).is_err());
        assert_eq!(
            membership_for(Role::Applicant, Some(" Org ")),
            Ok(Membership::NewOrganization("Org".into()))
        );
        for role in Role::ALL.into_iter().filter(|r| *r != Role::Applicant) {
            assert_eq!(membership_for(role, Some("Org")), Ok(Membership::None));
            assert_eq!(membership_for(role, None), Ok(Membership::None));
        }
    }

    #[test]
    fn account_forms_report_every_field() {
        let mut problems = Problems::default();
        assert!(AccountForm::default().parse(&mut problems).is_none());
        let fields: Vec<&str> = problems.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "name"]);

        let mut problems = Problems::default();
        let form = AccountForm {
            email: Some(" A@Desk.Example "),
            password: Some("a long enough password"),
            name: Some(" A "),
            locale: Some("fr"),
        };
        assert!(form.parse(&mut problems).is_none());
        let fields: Vec<&str> = problems.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["locale"]);

        let mut problems = Problems::default();
        let details = AccountForm {
            locale: None,
            ..form
        }
        .parse(&mut problems)
        .unwrap();
        assert_eq!(details.email.as_str(), "a@desk.example");
        assert_eq!((details.name.as_str(), details.locale), ("A", Locale::Ja));
    }
}
