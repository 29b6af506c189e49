//! Accounts and sign-in, as API.md's Auth table pins them.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Backend, PASSWORD, TestApp, error_fields, problem, random_suffix,
};

on_both_backends!(
    registration_creates_an_applicant_who_can_sign_in,
    registration_refuses_a_taken_email_case_insensitively,
    registration_validates_every_field_and_stores_nothing,
    registration_with_unknown_invitation_is_refused,
    login_failures_are_indistinguishable,
    a_sign_in_rehashes_a_password_stored_with_older_parameters,
    login_is_rate_limited_per_account,
    login_is_rate_limited_per_address,
    access_token_is_hs256_for_fifteen_minutes,
    me_requires_a_valid_token,
    refresh_rotates_and_the_old_token_stops_working,
    reuse_of_a_rotated_refresh_token_revokes_the_login,
    logout_revokes_the_login,
    admin_creates_staff_users,
    only_admins_create_users,
    create_user_validates_and_refuses_duplicates,
);

fn registration(email: &str) -> Value {
    json!({
        "email": email, "password": PASSWORD, "name": "山田 花子",
        "organization": "株式会社メドテック", "locale": "ja",
    })
}

async fn registration_creates_an_applicant_who_can_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.register(&registration("Hanako@MedTech.example")).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "hanako@medtech.example");
    assert_eq!(user["role"], "applicant");
    assert_eq!(user["name"], "山田 花子");
    assert_eq!(user["locale"], "ja");
    assert!(user["organization_id"].is_i64());
    assert!(user.get("password_hash").is_none());

    let (access, _) = app.tokens("HANAKO@medtech.example", PASSWORD).await;
    let me: Value = app.me(&access).await.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["email"], "hanako@medtech.example");
    assert_eq!(me["role"], "applicant");
    assert_eq!(me["locale"], "ja");

    // Two registrations with the same organisation name get two organisations.
    let other: Value = app
        .register(&registration("taro@medtech.example"))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(other["organization_id"], user["organization_id"]);
}

async fn registration_refuses_a_taken_email_case_insensitively(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.register(&registration("dup@example.org"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let mut second = registration(" DUP@example.org ");
    second["password"] = json!("another long password");
    let body = problem(app.register(&second).await, StatusCode::CONFLICT).await;
    assert!(body["detail"].as_str().unwrap().contains("e-mail"));
    // The first account is untouched: its password still works, the second does not.
    assert_eq!(
        app.login("dup@example.org", PASSWORD).await.status(),
        StatusCode::OK
    );
    problem(
        app.login("dup@example.org", "another long password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

async fn registration_validates_every_field_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let weak = json!({"email": "weak@example.org", "password": "short", "name": "A",
                      "organization": "Org", "locale": "ja"});
    let body = problem(app.register(&weak).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&body), vec!["password"]);
    assert_eq!(body["type"], "/problems/validation");

    let eleven = json!({"email": "eleven@example.org", "password": "elevenchars", "name": "A",
                        "organization": "Org"});
    problem(
        app.register(&eleven).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let bad_email = json!({"email": "not-an-address", "password": PASSWORD, "name": "A",
                           "organization": "Org"});
    let body = problem(
        app.register(&bad_email).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&body), vec!["email"]);

    let body = problem(
        app.register(&json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mut fields = error_fields(&body);
    fields.sort();
    assert_eq!(fields, vec!["email", "name", "organization", "password"]);

    let bad_locale = json!({"email": "l@example.org", "password": PASSWORD, "name": "A",
                            "organization": "Org", "locale": "fr"});
    let body = problem(
        app.register(&bad_locale).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&body), vec!["locale"]);

    let wrong_type = json!({"email": 42, "password": PASSWORD, "name": "A", "organization": "O"});
    problem(
        app.register(&wrong_type).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // None of the refused registrations created an account.
    for email in ["weak@example.org", "eleven@example.org", "l@example.org"] {
        let response = app.register(&registration(email)).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{email} was still free"
        );
    }
}

async fn registration_with_unknown_invitation_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut body = registration("invited@example.org");
    body["invitation_token"] = json!("made-up-token");
    let problem = problem(app.register(&body).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), vec!["invitation_token"]);
    problem_free_login(&app, "invited@example.org").await;
}

async fn problem_free_login(app: &TestApp, email: &str) {
    problem(app.login(email, PASSWORD).await, StatusCode::UNAUTHORIZED).await;
}

async fn login_failures_are_indistinguishable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (email, _) = app.new_applicant("Org").await;
    let wrong_password = problem(
        app.login(&email, "not the right password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown_email = problem(
        app.login("nobody@example.org", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong_password, unknown_email);

    let missing = problem(
        app.post("/api/v1/auth/login", None, &json!({"email": email}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&missing), vec!["password"]);
}

async fn login_is_rate_limited_per_account(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("MEDESK_LOGIN_PER_ACCOUNT_PER_MINUTE", "3"),
            ("MEDESK_LOGIN_PER_ADDRESS_PER_MINUTE", "1000"),
        ],
    )
    .await;
    let (email, _) = app.new_applicant("Org").await;
    for _ in 0..3 {
        problem(
            app.login(&email, "wrong password!!").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    // Even the right password is refused once the budget is spent.
    let response = app.login(&email, PASSWORD).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "Retry-After {retry_after}");
    let body = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "/problems/rate-limited");
    // Another account is not affected.
    assert_eq!(
        app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
}

async fn login_is_rate_limited_per_address(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("MEDESK_LOGIN_PER_ACCOUNT_PER_MINUTE", "1000"),
            ("MEDESK_LOGIN_PER_ADDRESS_PER_MINUTE", "4"),
        ],
    )
    .await;
    for n in 0..4 {
        let email = format!("guess{n}@example.org");
        problem(app.login(&email, PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    }
    let response = app.login("guess-more@example.org", PASSWORD).await;
    assert!(response.headers().contains_key("retry-after"));
    problem(response, StatusCode::TOO_MANY_REQUESTS).await;
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn access_token_is_hs256_for_fifteen_minutes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(access, 0)["alg"], "HS256");
    let claims = jwt_part(access, 1);
    assert_eq!(claims["role"], "admin");
    assert!(claims["sub"].is_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    // The refresh token is opaque, not a JWT.
    assert!(!body["refresh_token"].as_str().unwrap().contains('.'));
}

async fn me_requires_a_valid_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = problem(app.get("/api/v1/me", None).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["type"], "/problems/unauthorized");
    problem(app.me("garbage").await, StatusCode::UNAUTHORIZED).await;

    let (access, _) = app.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // Flip the role claim without re-signing: the signature no longer matches.
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    let mut claims = jwt_part(&access, 1);
    claims["role"] = json!("admin");
    claims["sub"] = json!("999");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).unwrap());
    problem(app.me(&parts.join(".")).await, StatusCode::UNAUTHORIZED).await;

    // An unsigned token ("alg": "none") is refused.
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{header}.{}.", parts[1]);
    problem(app.me(&unsigned).await, StatusCode::UNAUTHORIZED).await;

    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
}

async fn refresh_rotates_and_the_old_token_stops_working(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, first) = app.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let response = app.refresh(&first).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(app.me(access).await.status(), StatusCode::OK);

    problem(app.refresh(&first).await, StatusCode::UNAUTHORIZED).await;
    problem(app.refresh("never-issued").await, StatusCode::UNAUTHORIZED).await;
    let missing = problem(
        app.post("/api/v1/auth/refresh", None, &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&missing), vec!["refresh_token"]);
}

async fn reuse_of_a_rotated_refresh_token_revokes_the_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, stolen) = app.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, other_login) = app.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // The legitimate client rotates.
    let rotated: Value = app.refresh(&stolen).await.json().await.unwrap();
    let current = rotated["refresh_token"].as_str().unwrap().to_owned();
    // The thief replays the old token: refused, and the whole login is revoked.
    problem(app.refresh(&stolen).await, StatusCode::UNAUTHORIZED).await;
    problem(app.refresh(&current).await, StatusCode::UNAUTHORIZED).await;
    // Another login of the same user is a different family and still works.
    assert_eq!(app.refresh(&other_login).await.status(), StatusCode::OK);
}

async fn logout_revokes_the_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, refresh) = app.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let response = app.logout(&refresh).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    problem(app.refresh(&refresh).await, StatusCode::UNAUTHORIZED).await;
    // Logging out twice, or with an unknown token, is harmless.
    assert_eq!(app.logout(&refresh).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.logout("unknown").await.status(), StatusCode::NO_CONTENT);
}

async fn admin_creates_staff_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    for role in ["supporter", "expert", "manager", "admin"] {
        let email = format!("{role}@desk.example");
        let response = app
            .create_user(
                &admin,
                &json!({"email": email, "password": PASSWORD, "name": "Staff", "role": role, "locale": "en"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{role}");
        let user: Value = response.json().await.unwrap();
        assert_eq!(user["role"], role);
        assert_eq!(user["locale"], "en");
        let (access, _) = app.tokens(&email, PASSWORD).await;
        let me: Value = app.me(&access).await.json().await.unwrap();
        assert_eq!(me["role"], role);
    }
    let applicant = app
        .create_user(
            &admin,
            &json!({"email": "filed@startup.example", "password": PASSWORD, "name": "Filed",
                    "role": "applicant", "organization": "Filed Inc."}),
        )
        .await;
    assert_eq!(applicant.status(), StatusCode::CREATED);
    let applicant: Value = applicant.json().await.unwrap();
    assert!(applicant["organization_id"].is_i64());
}

async fn only_admins_create_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body =
        json!({"email": "x@desk.example", "password": PASSWORD, "name": "X", "role": "admin"});
    problem(
        app.post("/api/v1/users", None, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (email, _) = app.new_applicant("Org").await;
    let (applicant, _) = app.tokens(&email, PASSWORD).await;
    problem(
        app.create_user(&applicant, &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let (_, supporter) = app.new_staff("supporter").await;
    let refused = problem(
        app.create_user(&supporter, &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(refused["type"], "/problems/forbidden");
    // Nothing was created.
    problem(
        app.login("x@desk.example", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

async fn create_user_validates_and_refuses_duplicates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let bad_role =
        json!({"email": "r@desk.example", "password": PASSWORD, "name": "R", "role": "root"});
    let body = problem(
        app.create_user(&admin, &bad_role).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&body), vec!["role"]);

    let no_org = json!({"email": "a@startup.example", "password": PASSWORD, "name": "A", "role": "applicant"});
    let body = problem(
        app.create_user(&admin, &no_org).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&body), vec!["organization"]);

    let email = format!("dup-{}@desk.example", random_suffix());
    let user = json!({"email": email, "password": PASSWORD, "name": "D", "role": "supporter"});
    assert_eq!(
        app.create_user(&admin, &user).await.status(),
        StatusCode::CREATED
    );
    problem(app.create_user(&admin, &user).await, StatusCode::CONFLICT).await;
    let admin_again = json!({"email": ADMIN_EMAIL.to_uppercase(), "password": PASSWORD, "name": "D", "role": "admin"});
    problem(
        app.create_user(&admin, &admin_again).await,
        StatusCode::CONFLICT,
    )
    .await;
}

/// The name `GET /me` shows after `UPDATE … SET name` where the stored hash
/// is `hash_condition`: a way to ask which hash is stored on both backends.
async fn name_if_hash(
    app: &TestApp,
    access: &str,
    email: &str,
    name: &str,
    hash_condition: &str,
) -> Value {
    app.execute_sql(&format!(
        "UPDATE users SET name = '{name}' WHERE email = '{email}' AND password_hash {hash_condition}"
    ))
    .await;
    let me: Value = app.me(access).await.json().await.unwrap();
    me["name"].clone()
}

async fn a_sign_in_rehashes_a_password_stored_with_older_parameters(backend: Backend) {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let app = TestApp::spawn(backend).await;
    let email = "older@medtech.example";
    app.register(&registration(email)).await;
    let (access, _) = app.tokens(email, PASSWORD).await;
    // As medesk stored it before issue 19's eighteenth round.
    let older = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19 * 1024, 2, 1, None).unwrap(),
    )
    .hash_password(
        PASSWORD.as_bytes(),
        &SaltString::generate(&mut rand::rngs::OsRng),
    )
    .unwrap()
    .to_string();
    app.execute_sql(&format!(
        "UPDATE users SET password_hash = '{older}' WHERE email = '{email}'"
    ))
    .await;

    assert_eq!(
        app.login(email, "not the password at all").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let untouched = format!("= '{older}'");
    assert_eq!(
        name_if_hash(&app, &access, email, "still older", &untouched).await,
        "still older",
        "a wrong password changes no hash"
    );

    assert_eq!(app.login(email, PASSWORD).await.status(), StatusCode::OK);
    let today = "LIKE '$argon2id$v=19$m=7168,t=5,p=1$%'";
    assert_eq!(
        name_if_hash(&app, &access, email, "rehashed", today).await,
        "rehashed",
        "the sign-in stored today's parameters; the earlier session still works"
    );
    assert_eq!(app.login(email, PASSWORD).await.status(), StatusCode::OK);
}
