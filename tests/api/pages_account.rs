//! The pages around a case: a forgotten password, the account, the
//! organisation and its invitations, the experts' assignments and the
//! confidentiality terms, meetings and the support plan. A real browser for
//! the stories, plain HTTP for what a browser would never send.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::expert_helpers::Expert;
use crate::helpers::*;
use crate::mailbox::{token_in, wait_for_mail};
use crate::pages::{csrf_in, set_cookie, signed_in_cookie};

const NEW_PASSWORD: &str = "a brand new password 2026";

pages_on_backends!(
    both: staff_schedule_a_meeting_and_write_the_plan_the_applicant_then_reads,
        an_expert_accepts_an_assignment_from_their_assignments;
    sqlite:
        a_founder_resets_a_forgotten_password_through_the_mailed_link,
        the_owner_invites_a_teammate_who_registers_through_the_link,
        forged_account_and_organisation_forms_are_refused_and_change_nothing,
        another_organisations_page_is_the_not_found_page_and_names_nothing,
        an_expert_sees_only_their_own_assignments,
        a_used_or_wrong_reset_token_is_refused,
        a_wrong_current_password_is_an_error_beside_the_field,
);

/// `value` as a path segment (ids are JSON numbers or strings).
fn raw(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Signs `email` in on the browser's sign-in page, going on to `next`.
async fn sign_in(browser: &Browser, email: &str, password: &str, next: &str) {
    browser.goto(&format!("/login?next={next}")).await;
    browser.fill("#email", email).await;
    browser.fill("#password", password).await;
    browser.click_through("form.card button[type=submit]").await;
}

/// Signs the browser out with the layout's button.
async fn sign_out(browser: &Browser) {
    browser.click_through("form[action='/logout'] button").await;
}

/// GET `path` as a signed-in (or visitor) cookie, asking for HTML.
async fn page(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header(COOKIE, cookie)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap()
}

/// POST a form as `cookie`.
async fn post_form(
    app: &TestApp,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header(COOKIE, cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// A visitor's CSRF cookie and the token of the form on `path`.
async fn visitor_form(app: &TestApp, path: &str) -> (String, String) {
    let response = page(app, path, "").await;
    let cookie = set_cookie(&response, "medesk_csrf").expect("a visitor CSRF cookie");
    let token = csrf_in(&response.text().await.unwrap());
    (cookie, token)
}

/// The token of the newest password mail to `email`.
async fn mailed_reset_token(app: &TestApp, email: &str) -> String {
    let mail = wait_for_mail(&app.mail_dir, email, |m| {
        m.text.contains("/password/reset?token=")
    })
    .await;
    token_in(&mail.text)
}

async fn a_founder_resets_a_forgotten_password_through_the_mailed_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let founder = app.applicant("Forgetful KK").await;
    let (_, refresh) = app.tokens(&founder.email, PASSWORD).await;
    let browser = Browser::open(&app.address, "en").await;

    browser.goto("/login").await;
    browser.click_through("a[href='/password/forgot']").await;
    assert_eq!(browser.path().await, "/password/forgot");
    browser.fill("#email", &founder.email).await;
    browser.click_through("form.card button[type=submit]").await;
    let sent = browser.text(".sent").await;
    assert!(
        sent.contains("If the address belongs to an account"),
        "{sent}"
    );
    browser
        .screenshot(&format!("{backend:?}-password-forgot"))
        .await;

    let token = mailed_reset_token(&app, &founder.email).await;
    browser
        .goto(&format!("/password/reset?token={token}"))
        .await;
    browser.fill("#password", NEW_PASSWORD).await;
    browser.fill("#password_again", NEW_PASSWORD).await;
    browser.click_through("form.card button[type=submit]").await;
    assert_eq!(browser.path().await, "/login");
    assert!(browser.text(".notice").await.contains("password is set"));

    sign_in(&browser, &founder.email, NEW_PASSWORD, "/account").await;
    assert_eq!(browser.path().await, "/account");
    assert!(browser.page_text().await.contains(&founder.email));
    browser.screenshot(&format!("{backend:?}-account")).await;
    browser.close().await;

    // The old password opens nothing, and the other sessions ended.
    assert_eq!(
        app.login(&founder.email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn the_owner_invites_a_teammate_who_registers_through_the_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.applicant("Team Builders KK").await;
    let teammate = format!("teammate-{}@builders.example", random_suffix());
    let browser = Browser::open(&app.address, "ja").await;

    sign_in(&browser, &owner.email, PASSWORD, "/cases").await;
    browser
        .click_through("header nav a[href^='/organizations/']")
        .await;
    let org_path = format!("/organizations/{}", raw(&owner.organization_id));
    assert_eq!(browser.path().await, org_path);
    assert!(browser.text("h1").await.contains("Team Builders KK"));
    browser.fill("#email", &teammate).await;
    browser
        .click_through(".org-invite button[type=submit]")
        .await;
    assert!(browser.text(".notice").await.contains("招待メール"));
    browser
        .screenshot(&format!("{backend:?}-organization"))
        .await;
    sign_out(&browser).await;

    let mail = wait_for_mail(&app.mail_dir, &teammate, |m| {
        m.text.contains("/register?invitation=")
    })
    .await;
    browser
        .goto(&format!("/register?invitation={}", token_in(&mail.text)))
        .await;
    browser.fill("#name", "鈴木 次郎").await;
    browser.fill("#email", &teammate).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_through("form.card button[type=submit]").await;
    assert_eq!(browser.path().await, "/cases");
    browser.goto(&org_path).await;
    let members = browser.text("table.members").await;
    assert!(
        members.contains("鈴木 次郎") && members.contains(&owner.email),
        "{members}"
    );
    // A teammate is not the owner: no invitation form.
    assert!(browser.page_text().await.contains("管理者が行います"));
    browser.close().await;
}

/// A supporter, a founder, an expert named `expert` and the founder's
/// case, triaged to experts (matching).
async fn case_for_an_expert(app: &TestApp, expert: &str) -> (User, User, Expert, Value) {
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    let founder = app.applicant("Consulting KK").await;
    let expert = app.expert_named(&admin, expert).await;
    let case = app.regulatory_case(&supporter, &founder).await;
    (supporter, founder, expert, case)
}

async fn an_expert_accepts_an_assignment_from_their_assignments(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (supporter, _, expert, case) = case_for_an_expert(&app, "Dr Sato").await;
    let assignment = app.proposed(&supporter, &case["id"], &expert).await;
    let browser = Browser::open(&app.address, "ja").await;

    sign_in(&browser, &expert.user.email, PASSWORD, "/cases").await;
    browser
        .click_through("header nav a[href='/assignments']")
        .await;
    let listed = browser.text("ul.assignments").await;
    assert!(
        listed.contains(case["number"].as_str().unwrap()),
        "{listed}"
    );
    assert!(listed.contains("依頼中"), "{listed}");
    browser
        .screenshot(&format!("{backend:?}-assignments"))
        .await;

    // The terms are one click away, in the expert's language.
    browser
        .click_through(".assignment a[href='/terms/confidentiality']")
        .await;
    assert!(browser.text("h1").await.contains("守秘"));
    assert!(browser.page_text().await.contains("2026-11"));
    browser.goto("/assignments").await;

    browser
        .click_through(&format!(
            "form[action='/assignments/{}/accept'] button",
            raw(&assignment["id"])
        ))
        .await;
    assert_eq!(browser.path().await, format!("/cases/{}", raw(&case["id"])));
    assert!(browser.text(".notice").await.contains("承諾しました"));
    let mine = json_body(
        app.my_assignments(&expert.user.token, "").await,
        StatusCode::OK,
    )
    .await;
    let accepted = &items(mine)[0];
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["terms_version"], "2026-11");
    assert_eq!(
        app.case(&supporter.token, &case["id"]).await["status"],
        "in_consultation"
    );
    browser.close().await;
}

async fn staff_schedule_a_meeting_and_write_the_plan_the_applicant_then_reads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (supporter, founder, expert, case) = case_for_an_expert(&app, "Dr Tanaka").await;
    app.engaged(&supporter, &case["id"], &expert).await;
    let id = raw(&case["id"]);
    let browser = Browser::open(&app.address, "ja").await;

    sign_in(
        &browser,
        &supporter.email,
        PASSWORD,
        &format!("/cases/{id}"),
    )
    .await;
    browser
        .click_through(".case-links a[href$='/meetings']")
        .await;
    assert_eq!(browser.path().await, format!("/cases/{id}/meetings"));
    browser.select("#schedule-expert", &raw(&expert.id)).await;
    browser.fill("#schedule-duration", "90").await;
    browser
        .fill("#schedule-video", "https://meet.example/room-42")
        .await;
    // Without a start: the error is by the field, and nothing typed is lost.
    browser
        .click_through("form[action$='/meetings'] button[type=submit]")
        .await;
    assert!(!browser.text("#starts_at-error").await.is_empty());
    assert_eq!(browser.value("#schedule-expert").await, raw(&expert.id));
    assert_eq!(
        browser.value("#schedule-video").await,
        "https://meet.example/room-42"
    );
    browser
        .client
        .execute(
            "document.querySelector('#schedule-starts').value = '2037-12-03T10:00'",
            vec![],
        )
        .await
        .expect("the start is set");
    browser
        .click_through("form[action$='/meetings'] button[type=submit]")
        .await;
    assert!(
        browser.text(".notice").await.contains("scheduled"),
        "{}",
        browser.page_text().await
    );
    let listed = browser.text("ol.meetings").await;
    assert!(
        listed.contains("3 Dec 2037, 10:00") && listed.contains("Dr Tanaka"),
        "{listed}"
    );
    browser.screenshot(&format!("{backend:?}-meetings")).await;

    browser.goto(&format!("/cases/{id}/plan")).await;
    let plan = "1. 臨床評価の方針を決める\n2. PMDA の対面助言を申し込む";
    browser.fill("#plan-body", plan).await;
    browser.click_through("form[action$='/plan'] button").await;
    assert!(browser.text(".notice").await.contains("saved"));
    assert!(browser.text(".plan-history").await.contains("Revision 1"));
    browser.screenshot(&format!("{backend:?}-plan-staff")).await;
    sign_out(&browser).await;

    sign_in(&browser, &founder.email, PASSWORD, &format!("/cases/{id}")).await;
    browser
        .click_through(".case-links a[href$='/meetings']")
        .await;
    let seen = browser.text("ol.meetings").await;
    assert!(seen.contains("2037年12月3日 10:00"), "{seen}");
    assert!(seen.contains("https://meet.example/room-42"), "{seen}");
    // The applicant reads; only the desk schedules.
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css("form[action$='/meetings']"))
            .await
            .is_err()
    );
    browser.goto(&format!("/cases/{id}/plan")).await;
    assert!(browser.text(".plan-current").await.contains("PMDA"));
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css(".plan-history"))
            .await
            .is_err(),
        "the applicant sees the current plan only"
    );
    browser
        .screenshot(&format!("{backend:?}-plan-applicant"))
        .await;
    browser.close().await;
    // The meeting is the API's too.
    let meetings = json_body(
        app.meetings(&supporter.token, &case["id"]).await,
        StatusCode::OK,
    )
    .await;
    let meetings = items(meetings);
    assert_eq!(meetings.len(), 1);
    assert_eq!(meetings[0]["duration_minutes"], 90);
}

async fn forged_account_and_organisation_forms_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let founder = app.applicant("Forged Account KK").await;
    let session = signed_in_cookie(&app, &founder.email, PASSWORD).await;
    let account = page(&app, "/account", &session).await;
    assert_eq!(account.status(), StatusCode::OK);
    let token = csrf_in(&account.text().await.unwrap());
    let change = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
        ("new_password_again", NEW_PASSWORD),
    ];
    let invite_path = format!(
        "/organizations/{}/invitations",
        raw(&founder.organization_id)
    );
    let victim = "victim@forged.example";

    let refused = |path: String,
                   fields: Vec<(&'static str, &'static str)>,
                   csrf: Option<String>,
                   origin: Option<&'static str>| {
        let (app, session) = (&app, &session);
        async move {
            let mut form: Vec<(&str, &str)> = fields;
            if let Some(csrf) = &csrf {
                form.push(("csrf", csrf.as_str()));
            }
            let mut request = app
                .client
                .post(app.url(&path))
                .header(COOKIE, session)
                .form(&form);
            if let Some(origin) = origin {
                request = request.header("Origin", origin);
            }
            assert_eq!(
                request.send().await.unwrap().status(),
                StatusCode::FORBIDDEN,
                "{path} {csrf:?} {origin:?}"
            );
        }
    };
    for (csrf, origin) in [
        (None, None),
        (Some("0".repeat(64)), None),
        (Some(token.clone()), Some("https://evil.example")),
    ] {
        refused(
            "/account/password".to_owned(),
            change.to_vec(),
            csrf.clone(),
            origin,
        )
        .await;
        refused(invite_path.clone(), vec![("email", victim)], csrf, origin).await;
    }
    // The password is unchanged and nobody was invited.
    assert_eq!(
        app.login(&founder.email, PASSWORD).await.status(),
        StatusCode::OK
    );
    let register = app
        .register(
            &json!({"email": victim, "password": PASSWORD, "name": "Victim",
                          "organization": "Victim KK", "locale": "en"}),
        )
        .await;
    assert_eq!(
        register.status(),
        StatusCode::CREATED,
        "no invitation holds the address"
    );

    // A visitor's forgotten-password form without its token mails nothing.
    let (cookie, _) = visitor_form(&app, "/password/forgot").await;
    let refused = post_form(
        &app,
        "/password/forgot",
        &cookie,
        &[("email", founder.email.as_str())],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

async fn another_organisations_page_is_the_not_found_page_and_names_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mine = app.applicant("Own Org KK").await;
    let theirs = app.applicant("Secret Rival KK").await;
    let session = signed_in_cookie(&app, &mine.email, PASSWORD).await;

    let own = page(
        &app,
        &format!("/organizations/{}", raw(&mine.organization_id)),
        &session,
    )
    .await;
    assert_eq!(own.status(), StatusCode::OK);
    let token = csrf_in(&own.text().await.unwrap());

    let other_path = format!("/organizations/{}", raw(&theirs.organization_id));
    let missing = page(&app, "/organizations/999999", &session).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let missing = missing.text().await.unwrap();
    let other = page(&app, &other_path, &session).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let other = other.text().await.unwrap();
    assert!(!other.contains("Secret Rival") && !other.contains(&theirs.email));
    let h1 = |html: &str| {
        html.split("<h1>")
            .nth(1)
            .and_then(|r| r.split("</h1>").next())
            .map(str::to_owned)
    };
    assert_eq!(
        h1(&other),
        h1(&missing),
        "the same page as a missing organisation"
    );

    // Inviting into it is the same 404, and mails nobody.
    let invited = post_form(
        &app,
        &format!("{other_path}/invitations"),
        &session,
        &[("csrf", token.as_str()), ("email", "mole@rival.example")],
    )
    .await;
    assert_eq!(invited.status(), StatusCode::NOT_FOUND);
    assert!(!invited.text().await.unwrap().contains("Secret Rival"));

    // Signed out, the page asks for sign-in first.
    let visitor = page(&app, &other_path, "").await;
    assert_eq!(visitor.status(), StatusCode::SEE_OTHER);
    assert!(
        visitor.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
}

async fn an_expert_sees_only_their_own_assignments(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    let founder = app.applicant("Two Cases KK").await;
    let [first, second] = app.experts_named(&admin, ["Dr First", "Dr Second"]).await;
    let case_a = app.regulatory_case(&supporter, &founder).await;
    let case_b = app.regulatory_case(&supporter, &founder).await;
    app.proposed(&supporter, &case_a["id"], &first).await;
    let theirs = app.proposed(&supporter, &case_b["id"], &second).await;

    let session = signed_in_cookie(&app, &first.user.email, PASSWORD).await;
    let listed = page(&app, "/assignments", &session).await;
    assert_eq!(listed.status(), StatusCode::OK);
    let html = listed.text().await.unwrap();
    assert!(html.contains(case_a["number"].as_str().unwrap()));
    assert!(!html.contains(case_b["number"].as_str().unwrap()));
    let token = csrf_in(&html);

    // Another expert's assignment cannot be answered: it does not exist.
    for action in ["accept", "decline", "complete"] {
        let refused = post_form(
            &app,
            &format!("/assignments/{}/{action}", raw(&theirs["id"])),
            &session,
            &[
                ("csrf", token.as_str()),
                ("terms_version", "2026-11"),
                ("reason", "no"),
            ],
        )
        .await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{action}");
    }
    let still = json_body(
        app.my_assignments(&second.user.token, "").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(items(still)[0]["status"], "proposed");

    // An applicant has no assignments page.
    let applicant = signed_in_cookie(&app, &founder.email, PASSWORD).await;
    assert_eq!(
        page(&app, "/assignments", &applicant).await.status(),
        StatusCode::FORBIDDEN
    );

    // The terms need no sign-in, in the visitor's language.
    for (language, needle) in [("en", "Conflicts of interest"), ("ja", "利益相反")] {
        let terms = app
            .client
            .get(app.url("/terms/confidentiality"))
            .header("Accept-Language", language)
            .send()
            .await
            .unwrap();
        assert_eq!(terms.status(), StatusCode::OK);
        assert!(terms.text().await.unwrap().contains(needle), "{language}");
    }
}

async fn a_used_or_wrong_reset_token_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let founder = app.applicant("Reset Twice KK").await;
    let (cookie, token) = visitor_form(&app, "/password/forgot").await;
    let asked = post_form(
        &app,
        "/password/forgot",
        &cookie,
        &[("csrf", token.as_str()), ("email", founder.email.as_str())],
    )
    .await;
    assert_eq!(asked.status(), StatusCode::OK);
    // An unknown address gets the very same page.
    let unknown = post_form(
        &app,
        "/password/forgot",
        &cookie,
        &[
            ("csrf", token.as_str()),
            ("email", "nobody@nowhere.example"),
        ],
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(asked.text().await.unwrap(), unknown.text().await.unwrap());

    let mailed = mailed_reset_token(&app, &founder.email).await;
    let set = |reset: String, password: &'static str| {
        let (cookie, token) = (cookie.clone(), token.clone());
        let app = &app;
        async move {
            post_form(
                app,
                "/password/reset",
                &cookie,
                &[
                    ("csrf", &token),
                    ("token", &reset),
                    ("password", password),
                    ("password_again", password),
                ],
            )
            .await
        }
    };
    // A weak password is an error by the field; the link still works.
    let weak = set(mailed.clone(), "short").await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.text().await.unwrap().contains("id=\"password-error\""));

    let done = set(mailed.clone(), NEW_PASSWORD).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        done.headers()[LOCATION],
        "/login?notice=notice_password_reset"
    );

    for (reset, what) in [(mailed, "used"), ("f".repeat(64), "wrong")] {
        let refused = set(reset, "yet another password 2027").await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{what}");
        let html = refused.text().await.unwrap();
        assert!(html.contains("href=\"/password/forgot\""), "{what}: {html}");
    }
    assert_eq!(
        app.login(&founder.email, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    let no_token = page(&app, "/password/reset", "").await;
    assert_eq!(no_token.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_wrong_current_password_is_an_error_beside_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let founder = app.applicant("Careful KK").await;
    let (_, refresh) = app.tokens(&founder.email, PASSWORD).await;
    let session = signed_in_cookie(&app, &founder.email, PASSWORD).await;
    let other_browser = signed_in_cookie(&app, &founder.email, PASSWORD).await;
    let token = csrf_in(&page(&app, "/account", &session).await.text().await.unwrap());

    let change = |current: &'static str, new: &'static str, again: &'static str| {
        let (app, session, token) = (&app, &session, &token);
        async move {
            post_form(
                app,
                "/account/password",
                session,
                &[
                    ("csrf", token.as_str()),
                    ("current_password", current),
                    ("new_password", new),
                    ("new_password_again", again),
                ],
            )
            .await
        }
    };
    let wrong = change("not my password at all", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = wrong.text().await.unwrap();
    assert!(html.contains("id=\"current_password-error\""), "{html}");
    assert!(html.contains("現在のパスワードが正しくありません"));
    assert!(
        !html.contains("not my password") && !html.contains(NEW_PASSWORD),
        "no password is echoed"
    );

    let mismatch = change(PASSWORD, NEW_PASSWORD, "something else entirely").await;
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        mismatch
            .text()
            .await
            .unwrap()
            .contains("id=\"new_password_again-error\"")
    );
    assert_eq!(
        app.login(&founder.email, PASSWORD).await.status(),
        StatusCode::OK
    );

    let changed = change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    // This session goes on; the other browser and the API's login ended.
    assert_eq!(
        page(&app, "/account", &session).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        page(&app, "/account", &other_browser).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&founder.email, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
}
