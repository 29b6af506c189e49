//! Organisations and invitations: teammates join by invitation, never by
//! typing an organisation's name.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, error_fields, problem};
use crate::mailbox::{token_in, wait_for_mail};

on_both_backends!(
    owner_invites_and_the_invitee_joins_by_token,
    invitation_token_is_single_use_and_bound_to_the_address,
    only_the_owner_invites_and_outsiders_see_nothing,
    invitation_validates_the_address,
);

async fn owner_and_org(app: &TestApp) -> (String, i64) {
    let (email, user) = app.new_applicant("株式会社メドテック").await;
    let token = app.tokens(&email, PASSWORD).await.0;
    (token, user["organization_id"].as_i64().unwrap())
}

async fn invite(app: &TestApp, token: &str, org: i64, email: &str) -> reqwest::Response {
    app.post(
        &format!("/api/v1/organizations/{org}/invitations"),
        Some(token),
        &json!({ "email": email }),
    )
    .await
}

fn joining(email: &str, invitation_token: &str) -> Value {
    json!({"email": email, "password": PASSWORD, "name": "Teammate", "locale": "en",
           "invitation_token": invitation_token})
}

async fn owner_invites_and_the_invitee_joins_by_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, org) = owner_and_org(&app).await;
    let response = invite(&app, &owner, org, "Teammate@MedTech.example").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let invitation: Value = response.json().await.unwrap();
    assert!(invitation["id"].is_i64());
    assert!(invitation["expires_at"].as_str().unwrap().ends_with('Z'));
    // The token travels by mail only.
    assert!(invitation.get("token").is_none());

    let mail = wait_for_mail(&app.mail_dir, "teammate@medtech.example", |m| {
        m.subject.contains("株式会社メドテック")
    })
    .await;
    let token = token_in(&mail.text);
    let joined = app
        .register(&joining("teammate@medtech.example", &token))
        .await;
    assert_eq!(joined.status(), StatusCode::CREATED);
    let joined: Value = joined.json().await.unwrap();
    assert_eq!(joined["organization_id"], org);

    // The organisation now lists both members, and the newcomer sees its cases.
    let access = app.tokens("teammate@medtech.example", PASSWORD).await.0;
    let organization: Value = app
        .get(&format!("/api/v1/organizations/{org}"), Some(&access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(organization["members"].as_array().unwrap().len(), 2);
    assert_eq!(organization["name"], "株式会社メドテック");
}

async fn invitation_token_is_single_use_and_bound_to_the_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, org) = owner_and_org(&app).await;
    assert_eq!(
        invite(&app, &owner, org, "one@medtech.example")
            .await
            .status(),
        StatusCode::CREATED
    );
    let mail = wait_for_mail(&app.mail_dir, "one@medtech.example", |_| true).await;
    let token = token_in(&mail.text);

    // Another address cannot use it.
    let stolen = app
        .register(&joining("thief@elsewhere.example", &token))
        .await;
    let body = problem(stolen, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&body), vec!["invitation_token"]);

    assert_eq!(
        app.register(&joining("one@medtech.example", &token))
            .await
            .status(),
        StatusCode::CREATED
    );
    // Used once: a second registration with it is refused.
    let again = app.register(&joining("two@medtech.example", &token)).await;
    problem(again, StatusCode::UNPROCESSABLE_ENTITY).await;
    problem(
        app.login("two@medtech.example", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

async fn only_the_owner_invites_and_outsiders_see_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, org) = owner_and_org(&app).await;
    invite(&app, &owner, org, "member@medtech.example").await;
    let mail = wait_for_mail(&app.mail_dir, "member@medtech.example", |_| true).await;
    app.register(&joining("member@medtech.example", &token_in(&mail.text)))
        .await;
    let member = app.tokens("member@medtech.example", PASSWORD).await.0;
    let refused = invite(&app, &member, org, "friend@medtech.example").await;
    problem(refused, StatusCode::FORBIDDEN).await;

    let (outsider, _) = owner_and_org(&app).await;
    problem(
        invite(&app, &outsider, org, "x@medtech.example").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get(&format!("/api/v1/organizations/{org}"), Some(&outsider))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn invitation_validates_the_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, org) = owner_and_org(&app).await;
    let body = problem(
        invite(&app, &owner, org, "not-an-address").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&body), vec!["email"]);
    let (existing, _) = app.new_applicant("Other").await;
    problem(
        invite(&app, &owner, org, &existing).await,
        StatusCode::CONFLICT,
    )
    .await;
}
