//! Accounts: registration, login, token refresh, logout, `me`, staff users.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::extract::{AuthUser, Json, client_address};
use super::problem::{ApiError, FieldError};
use super::schema::{Email, OrganizationName, Password, PersonName};
use crate::auth::tokens::{self, REFRESH_TOKEN_DAYS};
use crate::clock;
use crate::db::tokens::{NewRefreshToken, Rotation};
use crate::db::users::{NewUser, UserRow};
use crate::db::{self, DbError};
use crate::domain::account::{EmailAddress, Locale, NewPassword, parse_display_name};
use crate::domain::role::Role;

pub(super) const NAME_MAX_CHARS: usize = 100;
pub(super) const ORGANIZATION_MAX_CHARS: usize = 200;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    pub id: i64,
    #[schema(format = Email)]
    pub email: String,
    pub name: String,
    #[schema(value_type = Role)]
    pub role: String,
    #[schema(value_type = Locale)]
    pub locale: String,
    /// Absent for staff and experts, who belong to no organisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64)]
    pub organization_id: Option<i64>,
}

impl From<UserRow> for UserResponse {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            name: row.name,
            role: row.role,
            locale: row.locale,
            organization_id: row.organization_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(pattern = "^Bearer$", example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(minimum = 1, example = 900)]
    pub expires_in: i64,
}

/// Fields are optional here so that a missing one is reported by name (422),
/// not as a parse failure.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(value_type = Email)]
    pub email: Option<String>,
    #[schema(value_type = Password)]
    pub password: Option<String>,
    #[schema(value_type = PersonName)]
    pub name: Option<String>,
    /// The name of the new organisation the registrant will own; required
    /// unless `invitation_token` is given, and then ignored.
    #[schema(value_type = Option<OrganizationName>)]
    pub organization: Option<String>,
    /// `ja` when absent.
    #[schema(value_type = Option<Locale>)]
    pub locale: Option<String>,
    /// Join the inviting organisation instead of creating one (the token
    /// from the invitation mail, for the address it was sent to).
    pub invitation_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    #[schema(value_type = Email)]
    pub email: Option<String>,
    #[schema(value_type = Password)]
    pub password: Option<String>,
    #[schema(value_type = PersonName)]
    pub name: Option<String>,
    #[schema(value_type = Role)]
    pub role: Option<String>,
    /// `ja` when absent.
    #[schema(value_type = Option<Locale>)]
    pub locale: Option<String>,
    /// Required for applicants: the name (as `OrganizationName`) of the
    /// organisation created for them; ignored for other roles.
    #[schema(value_type = Option<String>)]
    pub organization: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Compared without case and surrounding white space.
    #[schema(value_type = String)]
    pub email: Option<String>,
    #[schema(value_type = String)]
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    #[schema(value_type = String, min_length = 1)]
    pub refresh_token: Option<String>,
}

/// A validated account, ready to be stored.
struct AccountInput {
    email: EmailAddress,
    password: NewPassword,
    name: String,
    locale: Locale,
}

/// Collects every field error at once, so a form can show them all.
#[derive(Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    fn take<T, E: ToString>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result
            .map_err(|e| self.0.push(FieldError::new(field, e.to_string())))
            .ok()
    }

    fn required<'a>(&mut self, field: &str, value: &'a Option<String>) -> Option<&'a str> {
        if value.is_none() {
            self.0.push(FieldError::new(field, "is required"));
        }
        value.as_deref()
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

fn parse_account(
    fields: &mut Fields,
    email: &Option<String>,
    password: &Option<String>,
    name: &Option<String>,
    locale: &Option<String>,
) -> Option<AccountInput> {
    let email = fields
        .required("email", email)
        .and_then(|e| fields.take("email", EmailAddress::parse(e)));
    let password = fields
        .required("password", password)
        .and_then(|p| fields.take("password", NewPassword::parse(p)));
    let name = fields
        .required("name", name)
        .and_then(|n| fields.take("name", parse_display_name(n, NAME_MAX_CHARS)));
    let locale = match locale.as_deref() {
        None => Some(Locale::default()),
        Some(l) => fields.take("locale", l.parse::<Locale>()),
    };
    Some(AccountInput {
        email: email?,
        password: password?,
        name: name?,
        locale: locale?,
    })
}

fn email_taken(error: DbError) -> ApiError {
    match error {
        DbError::UniqueViolation(_) => ApiError::conflict("an account with this e-mail exists"),
        other => other.into(),
    }
}

/// Register an applicant and the organisation it owns.
#[utoipa::path(
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = UserResponse),
        (status = 409, description = "e-mail taken"),
        (status = 422, description = "weak password, bad e-mail, missing field, or an unknown, used or expired invitation token"),
    )
)]
#[post("/api/v1/auth/register")]
pub async fn register(
    state: web::Data<AppState>,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut fields = Fields::default();
    let account = parse_account(
        &mut fields,
        &body.email,
        &body.password,
        &body.name,
        &body.locale,
    );
    let membership = match body.invitation_token.as_deref() {
        Some(token) => Some(Membership::Invitation(tokens::hash_refresh_token(
            token.trim(),
        ))),
        None => fields
            .required("organization", &body.organization)
            .and_then(|o| {
                fields.take(
                    "organization",
                    parse_display_name(o, ORGANIZATION_MAX_CHARS),
                )
            })
            .map(Membership::NewOrganization),
    };
    fields.finish()?;
    let (Some(account), Some(membership)) = (account, membership) else {
        unreachable!("finish() returned errors for every missing value");
    };

    let row = create_account(&state, account, Role::Applicant, membership).await?;
    tracing::info!(user_id = row.id, "applicant registered");
    Ok(HttpResponse::Created().json(UserResponse::from(row)))
}

/// Admins create users of any role (staff, experts, managers, applicants).
#[utoipa::path(
    tag = "auth",
    request_body = CreateUserRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = UserResponse),
        (status = 403, description = "not an admin"),
        (status = 409, description = "e-mail taken"),
    )
)]
#[post("/api/v1/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let body = body.into_inner();
    let mut fields = Fields::default();
    let account = parse_account(
        &mut fields,
        &body.email,
        &body.password,
        &body.name,
        &body.locale,
    );
    let role = fields
        .required("role", &body.role)
        .and_then(|r| fields.take("role", r.parse::<Role>()));
    let organization = match (role, body.organization.as_deref()) {
        (Some(Role::Applicant), None) => {
            fields.0.push(FieldError::new(
                "organization",
                "is required for applicants",
            ));
            None
        }
        (Some(Role::Applicant), Some(o)) => fields
            .take(
                "organization",
                parse_display_name(o, ORGANIZATION_MAX_CHARS),
            )
            .map(Membership::NewOrganization),
        _ => Some(Membership::None),
    };
    fields.finish()?;
    let (Some(account), Some(role), Some(membership)) = (account, role, organization) else {
        unreachable!("finish() returned errors for every missing value");
    };
    let row = create_account(&state, account, role, membership).await?;
    tracing::info!(user_id = row.id, role = %role, by = caller.id, "user created");
    Ok(HttpResponse::Created().json(UserResponse::from(row)))
}

/// Which organisation a new account belongs to.
enum Membership {
    /// Staff: none.
    None,
    /// A new organisation the account will own.
    NewOrganization(String),
    /// The organisation of this (hashed) invitation token.
    Invitation(String),
}

async fn create_account(
    state: &AppState,
    account: AccountInput,
    role: Role,
    membership: Membership,
) -> Result<UserRow, ApiError> {
    let email = account.email.into_string();
    // Cheap pre-check so a taken address does not cost an argon2 hash.
    let probe = email.clone();
    if state
        .db
        .read(move |conn| db::users::email_exists(conn, &probe))
        .await?
    {
        return Err(ApiError::conflict("an account with this e-mail exists"));
    }
    let password_hash = state
        .hasher
        .hash(account.password.expose().to_owned())
        .await;
    let name = account.name;
    let locale = account.locale;
    state
        .db
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
                Membership::None => db::users::insert(conn, &user),
                Membership::NewOrganization(org) => db::users::register_applicant(conn, user, org),
                Membership::Invitation(token_hash) => {
                    let organization_id =
                        db::organizations::redeem_invitation(conn, token_hash, &email, now)?
                            .ok_or_else(|| {
                                ApiError::field(
                                    "invitation_token",
                                    "is unknown, used, expired or meant for another address",
                                )
                            })?;
                    db::users::insert(
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
        .await
}

const BAD_CREDENTIALS: &str = "the e-mail address or password is wrong";

/// Exchange e-mail and password for an access token and a refresh token.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "unknown e-mail or wrong password (indistinguishable)"),
        (status = 429, description = "too many attempts; see Retry-After"),
    )
)]
#[post("/api/v1/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut fields = Fields::default();
    let email = fields.required("email", &body.email).map(str::to_owned);
    let password = fields
        .required("password", &body.password)
        .map(str::to_owned);
    fields.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        unreachable!("finish() returned errors for every missing value");
    };
    // Normalise the way accounts are stored; a malformed address simply
    // matches no account (and still costs a hash).
    let email = email.trim().to_lowercase();

    let address = client_address(&request, state.config.trust_forwarded_for);
    if let Err(wait) = state.login_limiter.check(&email, address) {
        return Err(ApiError::TooManyRequests {
            retry_after_seconds: wait.as_secs_f64().ceil().max(1.0) as u64,
        });
    }

    let lookup = email.clone();
    let user = state
        .db
        .read(move |conn| db::users::find_by_email(conn, &lookup))
        .await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    if !state.hasher.verify(password, stored).await {
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    }
    let user = user.expect("verify is false without an account");
    let tokens = start_login(&state, &user).await?;
    tracing::info!(user_id = user.id, "login");
    Ok(HttpResponse::Ok().json(tokens))
}

async fn start_login(state: &AppState, user: &UserRow) -> Result<TokenResponse, ApiError> {
    let refresh_token = tokens::new_refresh_token();
    let token_hash = tokens::hash_refresh_token(&refresh_token);
    let user_id = user.id;
    let now = clock::now_micros();
    state
        .db
        .write(move |conn| {
            db::tokens::insert(
                conn,
                &NewRefreshToken {
                    user_id,
                    family: &tokens::new_family(),
                    token_hash: &token_hash,
                    now,
                    expires_at: now + refresh_lifetime_micros(),
                },
            )
        })
        .await?;
    Ok(token_response(state, user, refresh_token))
}

fn refresh_lifetime_micros() -> i64 {
    REFRESH_TOKEN_DAYS * 24 * 3600 * 1_000_000
}

fn token_response(state: &AppState, user: &UserRow, refresh_token: String) -> TokenResponse {
    let role = user.role.parse().unwrap_or(Role::Applicant);
    let (access_token, expires_in) = state.tokens.issue(
        user.id,
        role,
        user.organization_id,
        chrono::Utc::now().timestamp(),
    );
    TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in,
    }
}

/// An empty refresh token is not one the server could have issued.
fn not_empty(token: &str) -> Result<&str, &'static str> {
    if token.is_empty() {
        Err("must not be empty")
    } else {
        Ok(token)
    }
}

const BAD_REFRESH: &str = "the refresh token is invalid, expired or already used";

/// Exchange a refresh token for new tokens. The presented token stops
/// working; presenting it again revokes the whole login.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "the refresh token is invalid, expired or already used"),
    )
)]
#[post("/api/v1/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut fields = Fields::default();
    let presented = fields
        .required("refresh_token", &body.refresh_token)
        .and_then(|t| fields.take("refresh_token", not_empty(t)))
        .map(tokens::hash_refresh_token);
    fields.finish()?;
    let presented = presented.expect("checked above");
    let next_token = tokens::new_refresh_token();
    let next_hash = tokens::hash_refresh_token(&next_token);
    let now = clock::now_micros();
    let rotation = state
        .db
        .write(move |conn| {
            db::tokens::rotate(
                conn,
                &presented,
                &next_hash,
                now,
                now + refresh_lifetime_micros(),
            )
        })
        .await?;
    match rotation {
        Rotation::Rotated(user) => {
            Ok(HttpResponse::Ok().json(token_response(&state, &user, next_token)))
        }
        Rotation::Reused => {
            tracing::warn!("refresh token reuse: login revoked");
            Err(ApiError::Unauthorized(BAD_REFRESH))
        }
        Rotation::Invalid => Err(ApiError::Unauthorized(BAD_REFRESH)),
    }
}

/// Revoke the login the refresh token belongs to. Idempotent.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "the login is revoked (also when it was already)"))
)]
#[post("/api/v1/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut fields = Fields::default();
    let presented = fields
        .required("refresh_token", &body.refresh_token)
        .and_then(|t| fields.take("refresh_token", not_empty(t)))
        .map(tokens::hash_refresh_token);
    fields.finish()?;
    let presented = presented.expect("checked above");
    let now = clock::now_micros();
    state
        .db
        .write(move |conn| db::tokens::revoke_login(conn, &presented, now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in user.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = UserResponse))
)]
#[get("/api/v1/me")]
pub async fn me(state: web::Data<AppState>, caller: AuthUser) -> Result<HttpResponse, ApiError> {
    let user = state
        .db
        .read(move |conn| db::users::find_by_id(conn, caller.id))
        .await?
        // A valid token for a deleted account is no longer a session.
        .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    Ok(HttpResponse::Ok().json(UserResponse::from(user)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SetPasswordRequest {
    /// The token from the mail.
    #[schema(value_type = String)]
    pub token: Option<String>,
    #[schema(value_type = Password)]
    pub password: Option<String>,
}

/// Set a password with a single-use token sent by mail (new experts).
#[utoipa::path(
    tag = "auth",
    request_body = SetPasswordRequest,
    responses(
        (status = 204, description = "the password is set"),
        (status = 422, description = "weak password, or the token is unknown, used or expired"),
    )
)]
#[post("/api/v1/auth/password")]
pub async fn set_password(
    state: web::Data<AppState>,
    body: Json<SetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut fields = Fields::default();
    let token = fields
        .required("token", &body.token)
        .map(tokens::hash_refresh_token);
    let password = fields
        .required("password", &body.password)
        .and_then(|p| fields.take("password", NewPassword::parse(p)));
    fields.finish()?;
    let (Some(token_hash), Some(password)) = (token, password) else {
        unreachable!("finish() returned errors for every missing value");
    };
    let password_hash = state.hasher.hash(password.expose().to_owned()).await;
    let now = clock::now_micros();
    let set = state
        .db
        .write(move |conn| {
            db::users::set_password_with_token(conn, &token_hash, &password_hash, now)
        })
        .await?;
    if !set {
        return Err(ApiError::field("token", "is unknown, used or expired"));
    }
    Ok(HttpResponse::NoContent().finish())
}
