//! The pages, black-box: a real browser for the stories people play, plain
//! HTTP for what a browser would never send (forged forms, stale cookies).

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::helpers::*;

const FOUNDER_PASSWORD: &str = "創業者のパスワード 2026";

pages_on_backends!(
    both: a_founder_registers_files_in_japanese_and_answers_the_desks_question,
        a_supporter_claims_the_oldest_case_from_the_queue;
    sqlite:
        a_form_from_another_site_or_without_its_token_is_refused_and_changes_nothing,
        a_signed_out_session_cookie_opens_nothing,
        error_pages_are_pages_in_the_visitors_language_with_security_headers,
);

/// The value of `name="csrf"` in a page's form.
pub(crate) fn csrf_in(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// `name=value` of the `Set-Cookie` for `name`.
pub(crate) fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

async fn a_founder_registers_files_in_japanese_and_answers_the_desks_question(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = Browser::open(&app.address, "ja").await;

    browser.goto("/").await;
    assert!(browser.text("h1").await.contains("医療系ベンチャー"));
    browser.screenshot(&format!("{backend:?}-landing")).await;
    browser.click_through("a.button").await;
    assert_eq!(browser.path().await, "/register");
    browser.fill("#name", "山田 花子").await;
    browser.fill("#organization", "メドテック株式会社").await;
    browser.fill("#email", "hanako@medtech.example").await;
    browser.fill("#password", FOUNDER_PASSWORD).await;
    browser.click_through("form.card button[type=submit]").await;
    assert_eq!(browser.path().await, "/cases");
    assert!(browser.text(".notice").await.contains("ようこそ"));

    // A first try without a topic: the error sits by the topics, and
    // nothing typed is lost.
    browser.click_through("a.button").await;
    assert_eq!(browser.path().await, "/cases/new");
    let title = "心電図解析ソフトウェアの承認申請について";
    let description = "AIで心電図を解析するプログラム医療機器を開発しています。\n承認申請に必要な臨床データを知りたいです。";
    browser.fill("#title", title).await;
    browser.fill("#description", description).await;
    browser
        .click("input[name=product_type][value=medical_device]")
        .await;
    browser.select("#stage", "non_clinical").await;
    browser.click_through("form.card button[type=submit]").await;
    assert_eq!(browser.path().await, "/cases/new");
    assert!(!browser.text("#categories-error").await.is_empty());
    assert_eq!(browser.value("#title").await, title);
    assert_eq!(browser.value("#description").await, description);
    assert_eq!(browser.value("#stage").await, "non_clinical");
    browser
        .screenshot(&format!("{backend:?}-case-new-error"))
        .await;

    browser
        .click("input[name=categories][value=regulatory]")
        .await;
    browser
        .click("input[name=categories][value=reimbursement]")
        .await;
    browser.click_through("form.card button[type=submit]").await;
    let case_path = browser.path().await;
    let id: i64 = case_path
        .strip_prefix("/cases/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("on the case page, not {case_path}"));
    assert!(browser.text(".notice").await.contains("受け付けました"));
    assert_eq!(browser.text("h1").await, title);
    assert_eq!(browser.text(".status").await, "受付");
    browser.screenshot(&format!("{backend:?}-case-filed")).await;

    // The desk asks a question (on the API, as a supporter's client would).
    let supporter = app.staff("supporter").await;
    let id_value = json!(id);
    app.claimed(&supporter.token, &id_value).await;
    app.moved(
        &supporter.token,
        &id_value,
        json!({"status": "awaiting_info", "reason": "臨床データの有無"}),
    )
    .await;
    let question = "既存の臨床試験データはありますか？";
    let posted = app
        .post_message(
            &supporter.token,
            &id_value,
            &json!({"body": question, "visibility": "applicant"}),
            None,
        )
        .await;
    assert_eq!(posted.status(), StatusCode::CREATED);

    browser.goto(&format!("/cases/{id}")).await;
    assert!(
        browser
            .text(".waiting")
            .await
            .contains("回答を待っています")
    );
    assert!(browser.page_text().await.contains(question));
    browser
        .fill("#body", "後ろ向きの臨床データが300例あります。")
        .await;
    browser
        .click_through("form[action$='/messages'] button")
        .await;
    assert!(browser.text(".notice").await.contains("送信しました"));
    browser
        .screenshot(&format!("{backend:?}-case-answered"))
        .await;
    let case = app.case(&supporter.token, &id_value).await;
    assert_eq!(case["status"], "triage", "the answer resumes the case");
    assert_eq!(case["title"], title);
    assert_eq!(case["categories"], json!(["regulatory", "reimbursement"]));

    // Another organisation's case is a "not found" page that names nothing.
    let other = app.applicant("Competitor KK").await;
    let secret = app
        .new_case_with(
            &other.token,
            &json!({"title": "競合の秘密の案件", "description": "極秘",
                    "product_type": "drug", "categories": ["fundraising"], "stage": "basic_research"}),
        )
        .await;
    browser.goto(&format!("/cases/{}", secret["id"])).await;
    assert!(browser.text("h1").await.contains("見つかりません"));
    assert!(!browser.page_text().await.contains("競合の秘密"));

    // Signing out ends the session.
    browser.goto("/cases").await;
    browser.click_through("form[action='/logout'] button").await;
    assert_eq!(browser.path().await, "/");
    assert!(browser.text(".notice").await.contains("ログアウト"));
    browser.goto(&format!("/cases/{id}")).await;
    assert_eq!(browser.path().await, "/login");
    browser.close().await;
}

/// A visitor's CSRF cookie and the token of the sign-in form.
pub(crate) async fn sign_in_form(app: &TestApp) -> (String, String) {
    let page = app
        .client
        .get(app.url("/login"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let cookie = set_cookie(&page, "medesk_csrf").expect("a visitor CSRF cookie");
    let token = csrf_in(&page.text().await.unwrap());
    (cookie, token)
}

/// Signs in through the form; returns the session cookie.
pub(crate) async fn signed_in_cookie(app: &TestApp, email: &str, password: &str) -> String {
    let (cookie, token) = sign_in_form(app).await;
    let response = app
        .client
        .post(app.url("/login"))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", token.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    set_cookie(&response, "medesk_session").expect("a session cookie")
}

async fn a_form_from_another_site_or_without_its_token_is_refused_and_changes_nothing(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let founder = app.applicant("Forged Forms KK").await;
    let (cookie, token) = sign_in_form(&app).await;
    let credentials = [("email", founder.email.as_str()), ("password", PASSWORD)];

    // Posted from another site, even with a valid token.
    let forged = app
        .client
        .post(app.url("/login"))
        .header(COOKIE, &cookie)
        .header("Origin", "https://evil.example")
        .form(&[credentials[0], credentials[1], ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&forged, "medesk_session").is_none());
    assert!(
        forged.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // Without the token, or with another.
    for token in [None, Some("0".repeat(64))] {
        let mut form = credentials.to_vec();
        if let Some(token) = &token {
            form.push(("csrf", token.as_str()));
        }
        let refused = app
            .client
            .post(app.url("/login"))
            .header(COOKIE, &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "token {token:?}");
        assert!(set_cookie(&refused, "medesk_session").is_none());
    }

    // Signed in, a forged filing stores nothing.
    let session = signed_in_cookie(&app, &founder.email, PASSWORD).await;
    let forged_filing = app
        .client
        .post(app.url("/cases/new"))
        .header(COOKIE, &session)
        .form(&[
            ("csrf", token.as_str()),
            ("title", "forged"),
            ("description", "forged"),
            ("product_type", "drug"),
            ("categories", "regulatory"),
            ("stage", "basic_research"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged_filing.status(), StatusCode::FORBIDDEN);
    assert!(app.listed_ids(&founder.token, "").await.is_empty());
}

async fn a_signed_out_session_cookie_opens_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let founder = app.applicant("Sign Out KK").await;
    let session = signed_in_cookie(&app, &founder.email, PASSWORD).await;
    let cases = app
        .client
        .get(app.url("/cases"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(cases.status(), StatusCode::OK);
    let token = csrf_in(&cases.text().await.unwrap());
    let signed_out = app
        .client
        .post(app.url("/logout"))
        .header(COOKIE, &session)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    // The browser forgets the cookie; a copy of it opens nothing either.
    let replayed = app
        .client
        .get(app.url("/cases"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    assert!(
        replayed.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
}

async fn error_pages_are_pages_in_the_visitors_language_with_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (language, title) in [("en", "Not found"), ("ja", "見つかりません")] {
        let response = app
            .client
            .get(app.url("/no-such-page"))
            .header("Accept", "text/html,application/xhtml+xml")
            .header("Accept-Language", language)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let headers = response.headers().clone();
        assert!(
            headers[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "same-origin");
        let html = response.text().await.unwrap();
        assert!(html.contains(title), "{language}: {html}");
        assert!(html.contains(&format!("<html lang=\"{language}\">")));
    }
    // The API keeps answering problem+json.
    let api = app.get("/api/v1/no-such-thing", None).await;
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    assert_eq!(api.headers()[CONTENT_TYPE], "application/problem+json");
    let _: Value = api.json().await.unwrap();
}

async fn a_supporter_claims_the_oldest_case_from_the_queue(backend: Backend) {
    // With no grace period every waiting case is overdue.
    let app = TestApp::spawn_with(backend, &[("MEDESK_TRIAGE_REMINDER_DAYS", "0")]).await;
    let founder = app.applicant("Queue KK").await;
    let older = app
        .new_case_with(
            &founder.token,
            &json!({"title": "Older request", "description": "first", "product_type": "drug",
                    "categories": ["fundraising"], "stage": "basic_research"}),
        )
        .await;
    let newer = app
        .new_case_with(
            &founder.token,
            &json!({"title": "Newer request", "description": "second", "product_type": "drug",
                    "categories": ["regulatory"], "stage": "basic_research"}),
        )
        .await;
    let supporter = app.staff("supporter").await;

    // The founder has no queue.
    let founder_session = signed_in_cookie(&app, &founder.email, PASSWORD).await;
    let refused = app
        .client
        .get(app.url("/queue"))
        .header(COOKIE, &founder_session)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!refused.text().await.unwrap().contains("Older request"));

    let browser = Browser::open(&app.address, "en").await;
    browser.goto("/login?next=/queue").await;
    browser.fill("#email", &supporter.email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_through("form.card button[type=submit]").await;
    assert_eq!(browser.path().await, "/queue");
    let rows = browser.text("table.queue tbody").await;
    let (first, second) = (
        rows.find("Older request")
            .expect("the older case is listed"),
        rows.find("Newer request")
            .expect("the newer case is listed"),
    );
    assert!(first < second, "oldest first: {rows}");
    assert!(
        browser
            .text("tr.overdue .overdue-mark")
            .await
            .contains("overdue")
    );
    browser.screenshot(&format!("{backend:?}-queue")).await;

    browser
        .click_through(&format!(
            "form[action='/cases/{}/claim'] button",
            older["id"]
        ))
        .await;
    assert_eq!(browser.path().await, format!("/cases/{}", older["id"]));
    assert!(browser.text(".notice").await.contains("claimed"));
    assert_eq!(
        app.case(&supporter.token, &older["id"]).await["status"],
        "triage"
    );
    assert_eq!(
        app.case(&supporter.token, &newer["id"]).await["status"],
        "submitted"
    );

    // Back in the queue the claimed case has no claim button any more.
    browser.goto("/queue").await;
    let claim_buttons = browser
        .client
        .find_all(fantoccini::Locator::Css("form[action$='/claim'] button"))
        .await
        .unwrap();
    assert_eq!(
        claim_buttons.len(),
        1,
        "only the unclaimed case can be claimed"
    );
    browser.close().await;
}
