//! Accounts and access (issue 16): the confidentiality terms, a forgotten
//! password, the expert's welcome link, finding people, and telling an
//! expired access token from an invalid one.

use std::time::Duration;

use medesk::auth::tokens::TokenKeys;
use medesk::config::DEVELOPMENT_JWT_SECRET;
use medesk::domain::role::Role;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::expert_helpers::expert_profile;
use crate::helpers::{
    Backend, PASSWORD, TestApp, User, error_fields, items, json_body, problem, random_suffix,
};
use crate::mailbox::token_in;
use crate::smtp::{ReceivedMail, SmtpServer};

on_both_backends!(
    // the confidentiality terms
    the_confidentiality_terms_are_readable_without_signing_in,
    accepting_other_terms_names_the_current_version_and_where_to_read_it,
    the_proposal_mail_points_to_the_terms_and_names_their_version,
    // a forgotten password
    a_reset_answers_the_same_whether_or_not_the_address_has_an_account,
    a_reset_link_sets_a_password_once_and_ends_every_session,
    an_expired_reset_link_is_refused_and_changes_nothing,
    reset_requests_are_limited_per_address,
    reset_requests_are_limited_per_client,
    the_expert_welcome_mail_links_to_the_password_page,
    // finding people
    desk_staff_find_people_by_name_or_address_and_role,
    people_search_pages_and_validates_its_parameters,
    only_desk_staff_search_people,
    // access tokens
    expired_invalid_and_missing_access_tokens_are_told_apart,
);

const WAIT: Duration = Duration::from_secs(30);
const NEW_PASSWORD: &str = "a brand new long password";

// ------------------------------------------------------------------ helpers

async fn smtp_app(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let mut vars = vec![("MEDESK_SMTP_URL", url.as_str())];
    vars.extend_from_slice(extra);
    (TestApp::spawn_with(backend, &vars).await, smtp)
}

impl TestApp {
    async fn terms(&self, token: Option<&str>) -> Response {
        self.get("/api/v1/terms/confidentiality", token).await
    }

    async fn request_reset(&self, email: &str) -> Response {
        self.post(
            "/api/v1/auth/password-reset",
            None,
            &json!({ "email": email }),
        )
        .await
    }

    async fn find_people(&self, token: &str, query: &str) -> Response {
        self.get(&format!("/api/v1/users?{query}"), Some(token))
            .await
    }

    /// The people `token` finds with `query` (asserting 200).
    async fn people(&self, token: &str, query: &str) -> Vec<Value> {
        items(json_body(self.find_people(token, query).await, StatusCode::OK).await)
    }

    /// The admin's outbox, every state.
    async fn outbox_recipients(&self) -> Vec<String> {
        let admin = self.admin_token().await;
        let outbox = json_body(
            self.get("/api/v1/admin/outbox", Some(&admin)).await,
            StatusCode::OK,
        )
        .await;
        items(outbox)
            .iter()
            .map(|m| m["recipient"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// Registers and signs in an applicant named `name` with `locale`.
async fn applicant(app: &TestApp, name: &str, email: &str, locale: &str, org: &str) -> User {
    let user = json_body(
        app.register(&json!({
            "email": email, "password": PASSWORD, "name": name,
            "organization": org, "locale": locale,
        }))
        .await,
        StatusCode::CREATED,
    )
    .await;
    User {
        email: email.to_owned(),
        token: app.tokens(email, PASSWORD).await.0,
        id: user["id"].clone(),
        organization_id: user["organization_id"].clone(),
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}@access.example", random_suffix())
}

/// The mails that arrived for `address`.
fn mails_to<'a>(mails: &'a [ReceivedMail], address: &str) -> Vec<&'a ReceivedMail> {
    mails.iter().filter(|m| m.is_for(address)).collect()
}

/// The token of a `{base}/password/reset?token=…` link in `text`.
fn reset_token(app: &TestApp, text: &str) -> String {
    let prefix = format!("{}/password/reset?token=", app.address);
    let start = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no link starting {prefix} in {text}"));
    let token = token_in(&text[start + prefix.len()..]);
    assert!(text.contains(&format!("{prefix}{token}")));
    token
}

async fn set_password(app: &TestApp, token: &str, password: &str) -> Response {
    app.post(
        "/api/v1/auth/password",
        None,
        &json!({ "token": token, "password": password }),
    )
    .await
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

// ------------------------------------------------------------------ terms

async fn the_confidentiality_terms_are_readable_without_signing_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let terms = json_body(app.terms(None).await, StatusCode::OK).await;
    assert_eq!(terms["version"], "2026-11");
    assert_eq!(terms["effective_on"], "2026-11-01");
    let en = terms["text"]["en"].as_str().unwrap();
    let ja = terms["text"]["ja"].as_str().unwrap();
    for promise in [
        "Conflicts of interest",
        "Do not conceal",
        "Use confidential information only to advise the applicant",
        "Do not disclose",
        "return or destroy every document",
        "continue after your assignment and the case end",
    ] {
        assert!(en.contains(promise), "English terms lack {promise:?}");
    }
    for promise in [
        "利益相反",
        "隠してはなりません",
        "目的外利用",
        "開示してはなりません",
        "返却または廃棄",
        "終了した後も",
    ] {
        assert!(ja.contains(promise), "Japanese terms lack {promise:?}");
    }
    // Signed in, the same document.
    let expert = app.staff("expert").await;
    let signed_in = json_body(app.terms(Some(&expert.token)).await, StatusCode::OK).await;
    assert_eq!(signed_in, terms);
}

async fn accepting_other_terms_names_the_current_version_and_where_to_read_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    let founder = app.applicant("MedTech").await;
    let case = app.regulatory_case(&supporter, &founder).await;
    let expert = app.expert_named(&admin, "Terms Reader").await;
    let proposal = app.proposed(&supporter, &case["id"], &expert).await;

    let path = format!(
        "/api/v1/assignments/{}/accept",
        proposal["id"].as_i64().unwrap()
    );
    let refused = problem(
        app.post(
            &path,
            Some(&expert.user.token),
            &json!({"terms_version": "2025-01"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains("2026-11"), "{detail}");
    assert!(detail.contains("/terms/confidentiality"), "{detail}");
    assert_eq!(refused["terms_version"], "2026-11");
    assert_eq!(refused["terms"], "/api/v1/terms/confidentiality");

    // The refusal changed nothing: still proposed, no terms recorded …
    let listed = items(
        json_body(
            app.case_assignments(&supporter.token, &case["id"]).await,
            StatusCode::OK,
        )
        .await,
    );
    assert_eq!(listed[0]["assignment"]["status"], "proposed");
    assert!(listed[0]["assignment"]["terms_version"].is_null());
    // … and the version the terms endpoint names is accepted.
    let current = json_body(app.terms(None).await, StatusCode::OK).await;
    let accepted = json_body(
        app.post(
            &path,
            Some(&expert.user.token),
            &json!({"terms_version": current["version"]}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(accepted["terms_version"], "2026-11");
}

async fn the_proposal_mail_points_to_the_terms_and_names_their_version(backend: Backend) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    let founder = app.applicant("MedTech").await;
    let case = app.regulatory_case(&supporter, &founder).await;
    let expert = app.expert_named(&admin, "Proposed Expert").await;
    app.proposed(&supporter, &case["id"], &expert).await;

    let number = case["number"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mail = loop {
        let mails = smtp.mails();
        if let Some(mail) = mails
            .into_iter()
            .find(|m| m.is_for(&expert.user.email) && m.subject.contains(number))
        {
            break mail;
        }
        assert!(tokio::time::Instant::now() < deadline, "no proposal mail");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The expert's mail is in Japanese (experts are registered with `ja`).
    let text = mail.text();
    assert!(
        text.contains(&format!("{}/terms/confidentiality", app.address)),
        "{text}"
    );
    assert!(text.contains("2026-11"), "{text}");
    assert!(text.contains("守秘義務規定"), "{text}");
}

// ------------------------------------------------------------------ forgotten password

async fn a_reset_answers_the_same_whether_or_not_the_address_has_an_account(backend: Backend) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let known = unique("known");
    applicant(&app, "Jane Doe", &known, "en", "MedTech Inc.").await;
    let unknown = unique("nobody");

    let for_unknown = app.request_reset(&unknown).await;
    let for_known = app
        .request_reset(&format!("  {}  ", known.to_uppercase()))
        .await;
    assert_eq!(for_unknown.status(), StatusCode::ACCEPTED);
    assert_eq!(for_known.status(), StatusCode::ACCEPTED);
    assert_eq!(
        header(&for_unknown, "content-type"),
        header(&for_known, "content-type")
    );
    let (unknown_body, known_body) = (
        for_unknown.text().await.unwrap(),
        for_known.text().await.unwrap(),
    );
    assert_eq!(unknown_body, known_body, "the answers are identical");
    let body: Value = serde_json::from_str(&known_body).unwrap();
    assert_eq!(body["valid_minutes"], 30);

    // Only the known address gets a mail, in its owner's language …
    let mails = smtp.wait_for(1, WAIT).await;
    let mail = mails_to(&mails, &known)[0];
    assert!(
        mail.subject.contains("Reset your password"),
        "{}",
        mail.subject
    );
    let text = mail.text();
    assert!(text.contains("Dear Jane Doe"), "{text}");
    assert!(text.contains("30 minutes"), "{text}");
    assert!(
        !text.contains("POST") && !text.contains("{\""),
        "no JSON instructions: {text}"
    );
    reset_token(&app, text);
    // … and the outbox (written in the request's own transaction) holds no
    // mail for the unknown one.
    let recipients = app.outbox_recipients().await;
    assert!(recipients.contains(&known));
    assert!(!recipients.contains(&unknown), "{recipients:?}");

    // A missing address is a 422 naming it; nothing is mailed.
    let missing = problem(
        app.post("/api/v1/auth/password-reset", None, &json!({}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&missing), vec!["email"]);
    assert_eq!(app.outbox_recipients().await.len(), recipients.len());
}

async fn a_reset_link_sets_a_password_once_and_ends_every_session(backend: Backend) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let email = unique("forgetful");
    let founder = applicant(&app, "山田 花子", &email, "ja", "株式会社メドテック").await;
    let bystander = app.applicant("Other Org").await;
    // Two sessions of the account (say, laptop and phone).
    let (laptop_access, laptop_refresh) = app.tokens(&email, PASSWORD).await;
    let (phone_access, phone_refresh) = app.tokens(&email, PASSWORD).await;
    assert_eq!(app.me(&phone_access).await.status(), StatusCode::OK);

    assert_eq!(
        app.request_reset(&email).await.status(),
        StatusCode::ACCEPTED
    );
    let mails = smtp.wait_for(1, WAIT).await;
    let mail = mails_to(&mails, &email)[0];
    assert!(
        mail.subject.contains("パスワードの再設定"),
        "{}",
        mail.subject
    );
    assert!(mail.text().contains("30分間"), "{}", mail.text());
    let token = reset_token(&app, mail.text());

    // A weak password is refused and does not use the token up.
    let weak = problem(
        set_password(&app, &token, "short").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&weak), vec!["password"]);
    assert_eq!(app.me(&laptop_access).await.status(), StatusCode::OK);

    assert_eq!(
        set_password(&app, &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );

    // Every session ended: refresh tokens …
    for refresh in [&laptop_refresh, &phone_refresh] {
        problem(app.refresh(refresh).await, StatusCode::UNAUTHORIZED).await;
    }
    // … and access tokens issued before the reset.
    for access in [&laptop_access, &founder.token] {
        let response = app.me(access).await;
        assert_eq!(
            header(&response, "www-authenticate").as_deref(),
            Some(
                "Bearer error=\"invalid_token\", error_description=\"the session ended; sign in again\""
            )
        );
        let ended = problem(response, StatusCode::UNAUTHORIZED).await;
        assert!(ended["detail"].as_str().unwrap().contains("sign in again"));
    }
    // The old password no longer signs in; the new one does, and that
    // session works.
    problem(app.login(&email, PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    let (fresh, fresh_refresh) = app.tokens(&email, NEW_PASSWORD).await;
    let me = json_body(app.me(&fresh).await, StatusCode::OK).await;
    assert_eq!(me["id"], founder.id);
    assert_eq!(app.refresh(&fresh_refresh).await.status(), StatusCode::OK);
    // Other accounts are untouched.
    assert_eq!(app.me(&bystander.token).await.status(), StatusCode::OK);

    // The link works once.
    let again = problem(
        set_password(&app, &token, "yet another long password").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&again), vec!["token"]);
    assert!(
        again["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("used already"),
        "{again}"
    );
    // It changed nothing: the new password still signs in, the session lives.
    assert_eq!(
        app.login(&email, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.me(&fresh).await.status(), StatusCode::OK);
    // A token nobody was sent says so.
    let unknown = problem(
        set_password(&app, &"ab".repeat(32), NEW_PASSWORD).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&unknown), vec!["token"]);
}

async fn an_expired_reset_link_is_refused_and_changes_nothing(backend: Backend) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let email = unique("late");
    applicant(&app, "Late Larry", &email, "en", "Slow Inc.").await;
    let (access, refresh) = app.tokens(&email, PASSWORD).await;
    assert_eq!(
        app.request_reset(&email).await.status(),
        StatusCode::ACCEPTED
    );
    let mails = smtp.wait_for(1, WAIT).await;
    let token = reset_token(&app, mails_to(&mails, &email)[0].text());

    // Thirty minutes pass: the stored expiry moves into the past instead.
    app.execute_sql("UPDATE password_tokens SET expires_at = created_at - 1")
        .await;
    let expired = problem(
        set_password(&app, &token, NEW_PASSWORD).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&expired), vec!["token"]);
    assert!(
        expired["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{expired}"
    );
    // Nothing changed: the old password and the sessions still work.
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    problem(
        app.login(&email, NEW_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
}

async fn reset_requests_are_limited_per_address(backend: Backend) {
    let (app, smtp) = smtp_app(
        backend,
        &[
            ("MEDESK_PASSWORD_RESET_PER_ACCOUNT_PER_HOUR", "2"),
            ("MEDESK_PASSWORD_RESET_PER_ADDRESS_PER_HOUR", "1000"),
        ],
    )
    .await;
    let known = unique("eager");
    applicant(&app, "Eager Ed", &known, "en", "Eager Inc.").await;
    let unknown = unique("ghost");
    for address in [&known, &unknown] {
        for _ in 0..2 {
            assert_eq!(
                app.request_reset(address).await.status(),
                StatusCode::ACCEPTED
            );
        }
        // The third within the hour: 429, whether or not the address has an account.
        let response = app.request_reset(&address.to_uppercase()).await;
        let wait: u64 = header(&response, "retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!(wait > 60 && wait <= 3600, "{wait}");
        problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    }
    // Another address is not held up.
    assert_eq!(
        app.request_reset(&unique("other")).await.status(),
        StatusCode::ACCEPTED
    );
    // The throttled request mailed nothing: two mails to the known address.
    let mails = smtp.wait_for(2, WAIT).await;
    assert_eq!(mails_to(&mails, &known).len(), 2);
    let queued = app.outbox_recipients().await;
    assert_eq!(queued.iter().filter(|r| **r == known).count(), 2);
}

async fn reset_requests_are_limited_per_client(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("MEDESK_PASSWORD_RESET_PER_ACCOUNT_PER_HOUR", "1000"),
            ("MEDESK_PASSWORD_RESET_PER_ADDRESS_PER_HOUR", "3"),
        ],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            app.request_reset(&unique("spray")).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let response = app.request_reset(&unique("spray")).await;
    assert!(header(&response, "retry-after").is_some());
    let body = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "/problems/rate-limited");
    // Sign-in has budgets of its own.
    assert_eq!(
        app.login(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn the_expert_welcome_mail_links_to_the_password_page(backend: Backend) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let mut profile = expert_profile("Welcome Expert");
    profile.as_object_mut().unwrap().remove("password");
    let email = profile["email"].as_str().unwrap().to_owned();
    json_body(
        app.create_expert(&admin, &profile).await,
        StatusCode::CREATED,
    )
    .await;

    let mails = smtp.wait_for(1, WAIT).await;
    let mail = mails_to(&mails, &email)[0];
    let text = mail.text();
    assert!(text.contains("7日間"), "{text}");
    assert!(
        !text.contains("POST") && !text.contains("{\"token\"") && !text.contains("/api/"),
        "plain language, no JSON instructions: {text}"
    );
    let token = reset_token(&app, text);
    // The link is the clickable one in the HTML part too.
    assert!(
        mail.html().contains("password&#x2f;reset?token="),
        "{}",
        mail.html()
    );
    assert_eq!(
        set_password(&app, &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    let access = app.tokens(&email, NEW_PASSWORD).await.0;
    let me = json_body(app.me(&access).await, StatusCode::OK).await;
    assert_eq!(me["role"], "expert");
}

// ------------------------------------------------------------------ finding people

async fn desk_staff_find_people_by_name_or_address_and_role(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let supporter = app.staff("supporter").await;
    let admin = app.admin_token().await;
    let hanako = applicant(
        &app,
        "Hanako YAMADA",
        &unique("hanako"),
        "ja",
        "株式会社メドテック",
    )
    .await;
    let taro = applicant(&app, "山田 太郎", &unique("taro"), "en", "Taro Bio").await;
    let expert = app.expert_named(&admin, "Yamada Expert").await;

    for token in [&supporter.token, &admin] {
        // Name, in any case.
        let found = app.people(token, "q=yamada").await;
        let ids: Vec<&Value> = found.iter().map(|p| &p["id"]).collect();
        assert_eq!(ids, vec![&hanako.id, &expert.user.id], "{found:#?}");
        // Japanese names, and the role filter.
        let found = app
            .people(token, "q=%E5%B1%B1%E7%94%B0&role=applicant")
            .await;
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0]["id"], taro.id);
        // Part of the e-mail address, in any case.
        let local = hanako.email.split('@').next().unwrap().to_uppercase();
        let found = app.people(token, &format!("q={local}")).await;
        assert_eq!(found.len(), 1);
        let person = &found[0];
        assert_eq!(person["email"], hanako.email);
        assert_eq!(person["name"], "Hanako YAMADA");
        assert_eq!(person["role"], "applicant");
        assert_eq!(person["locale"], "ja");
        assert_eq!(
            person["organizations"],
            json!([{"id": hanako.organization_id, "name": "株式会社メドテック"}])
        );
        assert!(person.get("password_hash").is_none());
        // Experts and staff belong to no organisation.
        let experts = app.people(token, "role=expert").await;
        assert_eq!(experts.len(), 1);
        assert_eq!(experts[0]["organizations"], json!([]));
        // `%` and `_` are text, not patterns.
        assert!(app.people(token, "q=%25").await.is_empty());
        assert!(app.people(token, "q=y_m").await.is_empty());
        assert_eq!(app.people(token, "q=yam").await.len(), 2);
    }
}

async fn people_search_pages_and_validates_its_parameters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let supporter = app.staff("supporter").await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(
            applicant(&app, &format!("Pager {n}"), &unique("pager"), "en", "Pages")
                .await
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut query = "q=pager&limit=2".to_owned();
    loop {
        let page = json_body(
            app.find_people(&supporter.token, &query).await,
            StatusCode::OK,
        )
        .await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("q=pager&limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(seen.len() <= 5, "the pages end");
    }
    assert_eq!(seen, created);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("role=root", "role"),
        ("cursor=abc", "cursor"),
        ("limit=x", "query"),
    ] {
        let body = problem(
            app.find_people(&supporter.token, query).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&body), vec![field], "{query}: {body}");
    }
    let long = "x".repeat(201);
    let body = problem(
        app.find_people(&supporter.token, &format!("q={long}"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&body), vec!["q"]);
}

async fn only_desk_staff_search_people(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let founder = app.applicant("Curious Org").await;
    let expert = app.expert_named(&admin, "Curious Expert").await;
    let manager = app.staff("manager").await;
    for token in [&founder.token, &expert.user.token, &manager.token] {
        let body = problem(app.find_people(token, "q=a").await, StatusCode::FORBIDDEN).await;
        assert!(body.get("items").is_none());
        // Refused before the query is looked at: a bad limit is still 403.
        problem(
            app.find_people(token, "limit=0").await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let response = app.get("/api/v1/users", None).await;
    assert_eq!(
        header(&response, "www-authenticate").as_deref(),
        Some("Bearer")
    );
    problem(response, StatusCode::UNAUTHORIZED).await;
    // Creating users stays on the same path, for admins.
    let body = problem(
        app.create_user(&founder.token, &json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(body["type"], "/problems/forbidden");
}

// ------------------------------------------------------------------ access tokens

async fn expired_invalid_and_missing_access_tokens_are_told_apart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let founder = app.applicant("Token Org").await;
    let id = founder.id.as_i64().unwrap();
    let org = founder.organization_id.as_i64();
    let an_hour_ago = chrono::Utc::now().timestamp() - 3600;

    // Issued by this server an hour ago: expired.
    let ours = TokenKeys::new(DEVELOPMENT_JWT_SECRET.as_bytes());
    let (expired, _) = ours.issue(id, Role::Applicant, org, 0, an_hour_ago);
    let response = app.me(&expired).await;
    assert_eq!(
        header(&response, "www-authenticate").as_deref(),
        Some("Bearer error=\"invalid_token\", error_description=\"the access token expired\"")
    );
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["type"], "/problems/token-expired");
    assert!(body["detail"].as_str().unwrap().contains("expired"));
    assert!(body["detail"].as_str().unwrap().contains("refresh"));

    // Signed with another key, fresh or not: invalid, never "expired".
    let theirs = TokenKeys::new(b"someone-else-s-secret-someone-else-s");
    let now = chrono::Utc::now().timestamp();
    let (forged, _) = theirs.issue(id, Role::Admin, None, 0, now);
    let (forged_old, _) = theirs.issue(id, Role::Admin, None, 0, an_hour_ago);
    for token in [forged.as_str(), forged_old.as_str(), "not-a-token"] {
        let response = app.me(token).await;
        assert_eq!(
            header(&response, "www-authenticate").as_deref(),
            Some(
                "Bearer error=\"invalid_token\", error_description=\"the access token is invalid\""
            ),
            "{token}"
        );
        let body = problem(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["type"], "/problems/unauthorized");
        assert!(!body["detail"].as_str().unwrap().contains("expired"));
    }
    // A forged admin token does not let anyone in.
    problem(
        app.find_people(&forged, "q=a").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // No token at all: a bare challenge (RFC 6750 section 3.1).
    let response = app.get("/api/v1/me", None).await;
    assert_eq!(
        header(&response, "www-authenticate").as_deref(),
        Some("Bearer")
    );
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert!(body["detail"].as_str().unwrap().contains("required"));

    // A current token of this server still works.
    assert_eq!(app.me(&founder.token).await.status(), StatusCode::OK);
}

// ------------------------------------------------------------------ the document

#[test]
fn the_openapi_document_describes_every_answer_of_the_new_operations() {
    use utoipa::OpenApi;
    let doc = serde_json::to_value(medesk::http::openapi::ApiDoc::openapi()).unwrap();
    let statuses = |path: &str, method: &str| -> Vec<String> {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        let mut statuses: Vec<String> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        statuses.sort();
        statuses
    };
    assert_eq!(
        statuses("/api/v1/terms/confidentiality", "get"),
        ["200", "503"]
    );
    assert!(doc["paths"]["/api/v1/terms/confidentiality"]["get"]["security"].is_null());
    assert_eq!(
        statuses("/api/v1/auth/password-reset", "post"),
        ["202", "400", "413", "415", "422", "429", "503"]
    );
    assert_eq!(
        statuses("/api/v1/users", "get"),
        ["200", "401", "403", "422", "503"]
    );
    // Creating users is still there, beside the search.
    assert!(doc["paths"]["/api/v1/users"]["post"].is_object());
    let reset_429 = &doc["paths"]["/api/v1/auth/password-reset"]["post"]["responses"]["429"];
    assert!(reset_429["headers"]["Retry-After"].is_object());
    let unauthorized = &doc["components"]["responses"]["Unauthorized"];
    assert!(unauthorized["headers"]["WWW-Authenticate"].is_object());
    let search = &doc["paths"]["/api/v1/users"]["get"]["parameters"];
    let names: Vec<&str> = search
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["q", "role", "limit", "cursor"]);
}
