//! The pages' quality across every page: checked by axe-core for
//! accessibility, used with the keyboard alone, read on a phone, errors in
//! the viewer's language, sessions that end.

use fantoccini::key::Key;
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::*;

pages_on_backends!(
    both: ;
    sqlite:
        every_page_passes_the_accessibility_check,
        every_form_can_be_filled_and_sent_with_the_keyboard,
        form_errors_are_in_the_viewers_language,
        case_tables_become_cards_on_a_phone,
        the_queue_and_the_messages_refresh_themselves,
        an_idle_session_ends_and_a_signed_out_one_opens_nothing,
);

/// Signs in through the form and lands on `next`.
async fn sign_in(browser: &Browser, email: &str, next: &str) {
    browser.goto(&format!("/login?next={next}")).await;
    browser.fill("#email", email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_through("form.card button[type=submit]").await;
    assert_eq!(browser.path().await, next);
}

/// A filing's body with this title.
fn filing(title: &str) -> serde_json::Value {
    json!({"title": title, "description": "画面の確認", "product_type": "medical_device",
           "categories": ["regulatory"], "stage": "clinical"})
}

/// The desk writes to the applicant (on the API).
async fn desk_writes(app: &TestApp, token: &str, id: &serde_json::Value, body: &str) {
    let posted = app
        .post_message(
            token,
            id,
            &json!({"body": body, "visibility": "applicant"}),
            None,
        )
        .await;
    assert_eq!(posted.status(), reqwest::StatusCode::CREATED);
}

/// Each field's error beside it says exactly this.
async fn assert_errors(browser: &Browser, expected: &[(&str, &str)]) {
    for (field, says) in expected {
        assert_eq!(
            browser.text(&format!("#{field}-error")).await,
            *says,
            "{field}"
        );
    }
}

/// A founder of `organization`, their case `title`, and the supporter who
/// claimed it.
async fn claimed_case(
    app: &TestApp,
    organization: &str,
    title: &str,
) -> (User, serde_json::Value, User) {
    let founder = app.applicant(organization).await;
    let case = app.new_case_with(&founder.token, &filing(title)).await;
    let supporter = app.staff("supporter").await;
    app.claimed(&supporter.token, &case["id"]).await;
    (founder, case, supporter)
}

/// Visits `path` and checks it.
async fn check(browser: &Browser, path: &str) {
    browser.goto(path).await;
    browser.assert_accessible().await;
}

async fn every_page_passes_the_accessibility_check(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (founder, case, supporter) = claimed_case(&app, "Accessible KK", "読みやすい相談").await;
    desk_writes(
        &app,
        &supporter.token,
        &case["id"],
        "追加の資料はありますか？",
    )
    .await;

    for language in ["ja", "en"] {
        let browser = Browser::open(&app.address, language).await;
        for path in ["/", "/login", "/register", "/no-such-page"] {
            check(&browser, path).await;
        }
        // The registration form with its errors.
        browser.goto("/register").await;
        browser.click_through("form.card button[type=submit]").await;
        browser.assert_accessible().await;

        sign_in(&browser, &founder.email, "/cases").await;
        browser.assert_accessible().await;
        check(&browser, &format!("/cases/{}", case["id"])).await;
        browser.goto("/cases/new").await;
        browser.click_through("form.card button[type=submit]").await;
        browser.assert_accessible().await;
        browser.click_through("form[action='/logout'] button").await;

        sign_in(&browser, &supporter.email, "/queue").await;
        browser.assert_accessible().await;
        check(&browser, "/cases").await;
        check(&browser, &format!("/cases/{}", case["id"])).await;
        browser.close().await;
    }
}

async fn every_form_can_be_filled_and_sent_with_the_keyboard(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = Browser::open(&app.address, "ja").await;
    let (enter, space) = (Key::Enter.to_string(), " ");

    // Register: Tab from field to field, Enter sends.
    browser.goto("/register").await;
    browser.tab_and_type("#name", "鍵盤 太郎").await;
    browser
        .tab_and_type("#organization", "キーボード株式会社")
        .await;
    browser
        .tab_and_type("#email", "keys@keyboard.example")
        .await;
    browser.tab_and_type("#password", PASSWORD).await;
    browser.press_through(&enter).await;
    assert_eq!(browser.path().await, "/cases");

    // File a case: radios and boxes with the space bar, the select with
    // the arrow keys.
    browser.tab_to("main a.button").await;
    browser.press_through(&enter).await;
    assert_eq!(browser.path().await, "/cases/new");
    browser
        .tab_and_type("#title", "キーボードだけで申し込む")
        .await;
    browser
        .tab_and_type("#description", "マウスを使わずに記入しました。")
        .await;
    browser
        .tab_and_type("input[name=product_type]", space)
        .await;
    browser.tab_and_type("input[name=categories]", space).await;
    browser.tab_and_type("#stage", &Key::Down.to_string()).await;
    browser.tab_to("form.card button[type=submit]").await;
    browser.press_through(&enter).await;
    assert!(
        browser.path().await.starts_with("/cases/"),
        "filed: {}",
        browser.page_text().await
    );
    assert!(browser.text(".notice").await.contains("受け付けました"));

    // A message, then sign out and in again.
    browser
        .tab_and_type("#body", "キーボードからの追記です。")
        .await;
    browser.tab_to("form[action$='/messages'] button").await;
    browser.press_through(&enter).await;
    assert!(browser.text(".notice").await.contains("送信しました"));
    browser.tab_to("form[action='/logout'] button").await;
    browser.press_through(&enter).await;
    browser.goto("/login").await;
    browser
        .tab_and_type("#email", "keys@keyboard.example")
        .await;
    browser.tab_and_type("#password", PASSWORD).await;
    browser.press_through(&enter).await;
    assert_eq!(browser.path().await, "/cases");
    assert!(
        browser
            .page_text()
            .await
            .contains("キーボードだけで申し込む")
    );
    browser.close().await;
}

async fn form_errors_are_in_the_viewers_language(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let founder = app.applicant("Errors KK").await;
    let browser = Browser::open(&app.address, "ja").await;

    // Registration: every field refused, in Japanese.
    browser.goto("/register").await;
    browser.fill("#name", "\u{202E}abc").await;
    browser.fill("#email", "not an address").await;
    browser.fill("#password", "short").await;
    browser.click_through("form.card button[type=submit]").await;
    assert_errors(
        &browser,
        &[
            (
                "name",
                "文字の表示順を変える制御文字（U+202E）は使えません。",
            ),
            ("organization", "入力してください。"),
            ("email", "メールアドレスの形式が正しくありません。"),
            ("password", "12文字以上で入力してください。"),
        ],
    )
    .await;
    // A taken address.
    browser.fill("#name", "二重 登録").await;
    browser.fill("#organization", "二重登録株式会社").await;
    browser.fill("#email", &founder.email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_through("form.card button[type=submit]").await;
    assert!(
        browser
            .text("#email-error")
            .await
            .contains("すでに登録されています")
    );

    // The filing form sent empty: each field says what is missing.
    sign_in(&browser, &founder.email, "/cases").await;
    browser.goto("/cases/new").await;
    browser.click_through("form.card button[type=submit]").await;
    assert_errors(
        &browser,
        &[
            ("title", "入力してください。"),
            ("description", "入力してください。"),
            ("product_type", "選んでください。"),
            ("categories", "相談分野を1つ以上選んでください。"),
            ("stage", "選んでください。"),
        ],
    )
    .await;
    browser
        .screenshot(&format!("{backend:?}-case-new-errors-ja"))
        .await;
    browser.close().await;

    // The API keeps its English messages.
    let refused = app
        .post("/api/v1/cases", Some(&founder.token), &json!({"title": ""}))
        .await;
    assert_eq!(refused.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body.to_string().contains("must not be empty"), "{body}");
}

async fn case_tables_become_cards_on_a_phone(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("MEDESK_TRIAGE_REMINDER_DAYS", "0")]).await;
    let founder = app.applicant("スマートフォン医療株式会社").await;
    for title in [
        "在宅医療向けの遠隔モニタリング機器の保険適用について",
        "海外展開",
    ] {
        app.new_case_with(&founder.token, &filing(title)).await;
    }
    let supporter = app.staff("supporter").await;
    let browser = Browser::open(&app.address, "ja").await;
    browser.resize(390, 844).await;
    let width = browser.run("return window.innerWidth").await;
    assert!(width.as_u64().is_some_and(|w| w <= 400), "{width}");

    for (who, path) in [(&founder, "/cases"), (&supporter, "/queue")] {
        sign_in(&browser, &who.email, path).await;
        // Rows are cards: the column headers are hidden, each cell names its
        // column, and nothing is wider than the screen.
        let layout = browser
            .run(
                "const cell = document.querySelector('table.cases tbody td');
                 return [getComputedStyle(cell).display,
                         getComputedStyle(cell, '::before').content,
                         document.querySelector('table.cases thead').getBoundingClientRect().width,
                         document.documentElement.scrollWidth];",
            )
            .await;
        assert_eq!(layout[0], "block", "{path}: {layout}");
        // The label in the viewer's language (the supporter reads English).
        assert!(
            ["\"番号\"", "\"Number\""].contains(&layout[1].as_str().unwrap()),
            "{path}: {layout}"
        );
        assert!(layout[2].as_f64().unwrap() <= 1.0, "{path}: {layout}");
        assert!(layout[3].as_u64().unwrap() <= 390, "{path}: {layout}");
        browser.assert_accessible().await;
        browser
            .screenshot(&format!("{backend:?}-phone{}", path.replace('/', "-")))
            .await;
        browser.click_through("form[action='/logout'] button").await;
    }
    browser.close().await;
}

async fn the_queue_and_the_messages_refresh_themselves(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("MEDESK_PAGE_REFRESH_SECONDS", "1")]).await;
    let founder = app.applicant("Refresh KK").await;
    let first = app
        .new_case_with(&founder.token, &filing("First request"))
        .await;
    let supporter = app.staff("supporter").await;
    let browser = Browser::open(&app.address, "en").await;
    sign_in(&browser, &supporter.email, "/queue").await;

    // htmx is loaded from medesk under the CSP, configured by the meta tag
    // (no eval, no injected style), and the page is not reloaded.
    let htmx = browser
        .run(
            "window.stillTheSamePage = true;
             return window.htmx ? [htmx.version, htmx.config.allowEval,
                                   htmx.config.includeIndicatorStyles,
                                   document.querySelectorAll('style').length] : null;",
        )
        .await;
    assert_eq!(htmx, json!(["2.0.11", false, false, 0]), "htmx: {htmx}");
    let served = app
        .client
        .get(app.url("/static/htmx.min.js"))
        .send()
        .await
        .unwrap();
    assert!(
        served.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );

    // A case filed meanwhile appears in the queue by itself.
    app.new_case_with(&founder.token, &filing("Filed while watching"))
        .await;
    browser
        .wait_for_text("#queue-entries", "Filed while watching")
        .await;
    assert_eq!(browser.run("return window.stillTheSamePage").await, true);
    assert_eq!(browser.path().await, "/queue");
    browser.assert_accessible().await;

    // The case page's messages too, while a draft is being typed.
    browser.goto(&format!("/cases/{}", first["id"])).await;
    browser
        .run("window.stillTheSamePage = true; return 0")
        .await;
    browser.fill("#body", "a draft").await;
    app.claimed(&supporter.token, &first["id"]).await;
    app.post_message(
        &founder.token,
        &first["id"],
        &json!({"body": "Any news?"}),
        None,
    )
    .await;
    browser.wait_for_text("#case-messages", "Any news?").await;
    assert_eq!(browser.run("return window.stillTheSamePage").await, true);
    assert_eq!(browser.value("#body").await, "a draft");
    browser.close().await;
}

/// Moves every browser session's last request `minutes` into the past.
async fn age_sessions(app: &TestApp, minutes: i64) {
    app.execute_sql(&format!(
        "UPDATE browser_sessions SET last_seen_at = last_seen_at - {}",
        minutes * 60 * 1_000_000
    ))
    .await;
}

async fn an_idle_session_ends_and_a_signed_out_one_opens_nothing(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("MEDESK_SESSION_IDLE_MINUTES", "5"),
            ("MEDESK_PAGE_REFRESH_SECONDS", "1"),
        ],
    )
    .await;
    let (founder, case, supporter) = claimed_case(&app, "Idle KK", "Left open").await;
    let browser = Browser::open(&app.address, "en").await;
    let case_path = format!("/cases/{}", case["id"]);

    // Idle longer than allowed: the next page is the sign-in page.
    sign_in(&browser, &founder.email, "/cases").await;
    age_sessions(&app, 6).await;
    browser.goto(&case_path).await;
    assert_eq!(browser.path().await, "/login");

    // A page left open refreshes itself, but that is not activity: four
    // idle minutes, refreshes meanwhile, two more, and the session has
    // ended — the open page goes to the sign-in page by itself.
    sign_in(&browser, &founder.email, "/cases").await;
    browser.goto(&case_path).await;
    age_sessions(&app, 4).await;
    desk_writes(&app, &supporter.token, &case["id"], "Seen by a refresh").await;
    browser
        .wait_for_text("#case-messages", "Seen by a refresh")
        .await;
    age_sessions(&app, 2).await;
    for _ in 0..600 {
        if browser.path().await == "/login" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(browser.path().await, "/login");

    // Signing out ends the session: its cookie opens nothing any more.
    sign_in(&browser, &founder.email, "/cases").await;
    let cookie = browser
        .client
        .get_named_cookie("medesk_session")
        .await
        .expect("the session cookie");
    let cookie = format!("medesk_session={}", cookie.value());
    let open = |path: &'static str| {
        app.client
            .get(app.url(path))
            .header(reqwest::header::COOKIE, cookie.clone())
            .send()
    };
    assert_eq!(
        open("/cases").await.unwrap().status(),
        reqwest::StatusCode::OK
    );
    browser.click_through("form[action='/logout'] button").await;
    let after = open("/cases").await.unwrap();
    assert_eq!(after.status(), reqwest::StatusCode::SEE_OTHER);
    assert!(
        after.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    browser.close().await;
}
