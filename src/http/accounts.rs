//! Accounts: registration, login, token refresh, logout, `me`, staff users.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::{AuthUser, Json, client_address};
use super::problem::ApiError;
use super::schema::{Email, OrganizationName, Password, PersonName};
use crate::desk::accounts::{
    self, Account, AccountForm, Creator, NewAccount, PeopleQuery, Person, RegistrationForm,
    Renewal, RequestPasswordReset, ResetRequested, Session, SetPassword, SignIn, SignInOutcome,
};
use crate::domain::account::{Locale, NewPassword};
use crate::domain::role::Role;
use crate::domain::validation::Problems;

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

impl From<Account> for UserResponse {
    fn from(account: Account) -> Self {
        Self {
            id: account.id,
            email: account.email,
            name: account.name,
            role: account.role.as_str().to_owned(),
            locale: account.locale.as_str().to_owned(),
            organization_id: account.organization_id,
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
    let command = RegistrationForm {
        account: AccountForm {
            email: body.email.as_deref(),
            password: body.password.as_deref(),
            name: body.name.as_deref(),
            locale: body.locale.as_deref(),
        },
        organization: body.organization.as_deref(),
        invitation_token: body.invitation_token.as_deref(),
    }
    .parse()?;
    let account = accounts::register(&state.desk, &state.hasher, command).await?;
    Ok(HttpResponse::Created().json(UserResponse::from(account)))
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
    // Admins only, before the body is looked at.
    caller.require(accounts::ACCOUNT_ADMINS)?;
    let body = body.into_inner();
    let mut problems = Problems::default();
    let details = AccountForm {
        email: body.email.as_deref(),
        password: body.password.as_deref(),
        name: body.name.as_deref(),
        locale: body.locale.as_deref(),
    }
    .parse(&mut problems);
    let role = problems
        .required("role", body.role.as_deref())
        .and_then(|r| problems.check("role", r.parse::<Role>()));
    let membership = role.and_then(|role| {
        problems.check(
            "organization",
            accounts::membership_for(role, body.organization.as_deref()),
        )
    });
    let command = problems.finish(|| {
        Some(NewAccount {
            details: details?,
            role: role?,
            membership: membership?,
        })
    })?;
    let account =
        accounts::create_account(&state.desk, Creator::User(caller), &state.hasher, command)
            .await?;
    Ok(HttpResponse::Created().json(UserResponse::from(account)))
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
    let mut problems = Problems::default();
    let email = problems.required("email", body.email.as_deref());
    let password = problems.required("password", body.password.as_deref());
    let command = problems.finish(|| {
        Some(SignIn {
            email: email?.to_owned(),
            password: password?.to_owned(),
            from: client_address(&request, state.config.trust_forwarded_for),
        })
    })?;
    match accounts::sign_in(&state.desk, &state.hasher, &state.login_limiter, command).await? {
        SignInOutcome::SignedIn(session) => Ok(HttpResponse::Ok().json(tokens(&state, session))),
        SignInOutcome::Refused => Err(ApiError::Unauthorized(BAD_CREDENTIALS)),
        SignInOutcome::Throttled { retry_after } => Err(ApiError::TooManyRequests {
            retry_after_seconds: retry_after.as_secs_f64().ceil().max(1.0) as u64,
        }),
    }
}

/// The JSON API's credentials for a session: a short-lived JWT access
/// token, and the session's refresh token.
fn tokens(state: &AppState, session: Session) -> TokenResponse {
    let Session {
        account,
        refresh_token,
    } = session;
    let (access_token, expires_in) = state.tokens.issue(
        account.id,
        account.role,
        account.organization_id,
        account.session_generation,
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

/// The refresh token of a refresh or logout request.
fn refresh_token(body: &RefreshRequest) -> Result<String, ApiError> {
    let mut problems = Problems::default();
    let token = problems
        .required("refresh_token", body.refresh_token.as_deref())
        .and_then(|t| problems.check("refresh_token", not_empty(t)));
    Ok(problems.finish(|| token.map(str::to_owned))?)
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
    let presented = refresh_token(&body)?;
    match accounts::renew_session(&state.desk, presented).await? {
        Renewal::Renewed(session) => Ok(HttpResponse::Ok().json(tokens(&state, session))),
        Renewal::Reused | Renewal::Invalid => Err(ApiError::Unauthorized(BAD_REFRESH)),
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
    let presented = refresh_token(&body)?;
    accounts::sign_out(&state.desk, presented).await?;
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
    let account = accounts::my_account(&state.desk, caller)
        .await?
        // A valid token for a deleted account is no longer a session.
        .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    Ok(HttpResponse::Ok().json(UserResponse::from(account)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SetPasswordRequest {
    /// The token from the mail.
    #[schema(value_type = String)]
    pub token: Option<String>,
    #[schema(value_type = Password)]
    pub password: Option<String>,
}

/// Set a password with a single-use token sent by mail: a new expert's
/// first password (the welcome mail, valid 7 days) or a reset (valid 30
/// minutes). Every session of the account ends: its refresh tokens stop
/// working, and so do the access tokens issued before.
#[utoipa::path(
    tag = "auth",
    request_body = SetPasswordRequest,
    responses(
        (status = 204, description = "the password is set; every session of the account ended"),
        (status = 422, description = "weak password, or the token is unknown, used already or expired (`errors` says which, under `token`)"),
    )
)]
#[post("/api/v1/auth/password")]
pub async fn set_password(
    state: web::Data<AppState>,
    body: Json<SetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut problems = Problems::default();
    let token = problems.required("token", body.token.as_deref());
    let password = problems
        .required("password", body.password.as_deref())
        .and_then(|p| problems.check("password", NewPassword::parse(p)));
    let command = problems.finish(|| {
        Some(SetPassword {
            token: token?.to_owned(),
            password: password?,
        })
    })?;
    accounts::set_password(&state.desk, &state.hasher, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    /// The account's address, compared without case and surrounding white
    /// space. Any text is taken: an address with no account is answered
    /// the same.
    #[schema(value_type = String)]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordResetAccepted {
    /// The same for every address, whether or not it has an account.
    #[schema(
        example = "if an account has this address, a mail with a link to set a new password is on its way"
    )]
    pub detail: &'static str,
    /// Minutes the mailed link works.
    #[schema(example = 30)]
    pub valid_minutes: i64,
}

const RESET_ACCEPTED: &str =
    "if an account has this address, a mail with a link to set a new password is on its way";

/// Forgotten password: mails a single-use link to set a new one (valid 30
/// minutes, `{base}/password/reset?token=…`; the token goes with `POST
/// /api/v1/auth/password`). The answer is the same whether or not the
/// address has an account. Limited per address and per client address.
#[utoipa::path(
    tag = "auth",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, body = PasswordResetAccepted),
        (status = 429, description = "too many requests for this address or from this client; see Retry-After"),
    )
)]
#[post("/api/v1/auth/password-reset")]
pub async fn request_password_reset(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Json<PasswordResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut problems = Problems::default();
    let email = problems.required("email", body.email.as_deref());
    let command = problems.finish(|| {
        Some(RequestPasswordReset {
            email: email?.to_owned(),
            from: client_address(&request, state.config.trust_forwarded_for),
        })
    })?;
    match accounts::request_password_reset(&state.desk, &state.reset_limiter, command).await? {
        ResetRequested::Accepted => Ok(HttpResponse::Accepted().json(PasswordResetAccepted {
            detail: RESET_ACCEPTED,
            valid_minutes: accounts::PASSWORD_RESET_MINUTES,
        })),
        ResetRequested::Throttled { retry_after } => Err(ApiError::TooManyRequests {
            retry_after_seconds: retry_after.as_secs_f64().ceil().max(1.0) as u64,
        }),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeopleParams {
    /// Text to find in the name or the e-mail address, in any case; blank
    /// finds everyone.
    #[param(value_type = String, required = false, max_length = 200)]
    pub q: Option<String>,
    #[param(value_type = Role, required = false)]
    pub role: Option<String>,
    /// Page size; 20 when absent.
    #[param(value_type = i64, required = false, minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = String, required = false, pattern = "^[0-9]+$")]
    pub cursor: Option<String>,
}

/// An organisation a person belongs to, by id and name. (Named apart from
/// the case's `OrganizationRef`, which has its kind too: two schemas of one
/// name would be one in the OpenAPI document, and the other's answers would
/// not match it.)
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonOrganization {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonResponse {
    pub id: i64,
    #[schema(format = Email)]
    pub email: String,
    pub name: String,
    #[schema(value_type = Role)]
    pub role: String,
    #[schema(value_type = Locale)]
    pub locale: String,
    /// The organisations the person belongs to (applicants: theirs; staff
    /// and experts: none).
    pub organizations: Vec<PersonOrganization>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeopleList {
    pub items: Vec<PersonResponse>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

fn person_response(person: Person) -> PersonResponse {
    let Person {
        account,
        organizations,
    } = person;
    PersonResponse {
        id: account.id,
        email: account.email,
        name: account.name,
        role: account.role.as_str().to_owned(),
        locale: account.locale.as_str().to_owned(),
        organizations: organizations
            .into_iter()
            .map(|(id, name)| PersonOrganization { id, name })
            .collect(),
    }
}

/// Find people by name or e-mail address (supporters and admins), e.g. to
/// file a case on an applicant's behalf; in the order they registered.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    params(PeopleParams),
    responses(
        (status = 200, body = PeopleList),
        (status = 403, description = "applicants, experts and managers"),
    )
)]
#[get("/api/v1/users")]
pub async fn find_people(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<PeopleParams>,
) -> Result<HttpResponse, ApiError> {
    // Refused by role before the query is looked at.
    caller.require(accounts::PEOPLE_SEARCHERS)?;
    let query = query.into_inner();
    let mut problems = Problems::default();
    let role = query
        .role
        .as_deref()
        .map(|r| problems.check("role", r.parse::<Role>()));
    let command = problems.finish(|| {
        Some(PeopleQuery {
            text: query.q,
            role: role.map_or(Some(None), |r| r.map(Some))?,
            cursor: query.cursor,
            limit: query.limit,
        })
    })?;
    let page = accounts::find_people(&state.desk, caller, command).await?;
    Ok(HttpResponse::Ok().json(PeopleList {
        items: page.items.into_iter().map(person_response).collect(),
        next_cursor: page.next_cursor,
    }))
}
