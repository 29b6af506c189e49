//! The pages' quality across every page: checked by axe-core for
//! accessibility, used with the keyboard alone, read on a phone, errors in
//! the viewer's language, sessions that end.

use fantoccini::key::Key;
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::*;

on_both_backends!(
    every_page_passes_the_accessibility_check,
    every_form_can_be_filled_and_sent_with_the_keyboard,
    form_errors_are_in_the_viewers_language,
);

/// Signs in through the form and lands on `next`.
async fn sign_in(browser: &Browser, email: &str, next: &str) {
    browser.goto(&format!("/login?next={next}")).await;
    browser.fill("#email", email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_through("form.card button[type=submit]").await;
    assert_eq!(browser.path().await, next);
}

/// Visits `path` and checks it.
async fn check(browser: &Browser, path: &str) {
    browser.goto(path).await;
    browser.assert_accessible().await;
}

async fn every_page_passes_the_accessibility_check(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let founder = app.applicant("Accessible KK").await;
    let case = app
        .new_case_with(
            &founder.token,
            &json!({"title": "読みやすい相談", "description": "画面の確認", "product_type": "drug",
                    "categories": ["regulatory"], "stage": "basic_research"}),
        )
        .await;
    let supporter = app.staff("supporter").await;
    app.claimed(&supporter.token, &case["id"]).await;
    app.post_message(
        &supporter.token,
        &case["id"],
        &json!({"body": "追加の資料はありますか？", "visibility": "applicant"}),
        None,
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
    browser.tab_to("#name").await;
    browser.press("鍵盤 太郎").await;
    browser.tab_to("#organization").await;
    browser.press("キーボード株式会社").await;
    browser.tab_to("#email").await;
    browser.press("keys@keyboard.example").await;
    browser.tab_to("#password").await;
    browser.press(PASSWORD).await;
    browser.press_through(&enter).await;
    assert_eq!(browser.path().await, "/cases");

    // File a case: radios and boxes with the space bar, the select with
    // the arrow keys.
    browser.tab_to("main a.button").await;
    browser.press_through(&enter).await;
    assert_eq!(browser.path().await, "/cases/new");
    browser.tab_to("#title").await;
    browser.press("キーボードだけで申し込む").await;
    browser.tab_to("#description").await;
    browser.press("マウスを使わずに記入しました。").await;
    browser.tab_to("input[name=product_type]").await;
    browser.press(space).await;
    browser.tab_to("input[name=categories]").await;
    browser.press(space).await;
    browser.tab_to("#stage").await;
    browser.press(&Key::Down.to_string()).await;
    browser.tab_to("form.card button[type=submit]").await;
    browser.press_through(&enter).await;
    assert!(
        browser.path().await.starts_with("/cases/"),
        "filed: {}",
        browser.page_text().await
    );
    assert!(browser.text(".notice").await.contains("受け付けました"));

    // A message, then sign out and in again.
    browser.tab_to("#body").await;
    browser.press("キーボードからの追記です。").await;
    browser.tab_to("form[action$='/messages'] button").await;
    browser.press_through(&enter).await;
    assert!(browser.text(".notice").await.contains("送信しました"));
    browser.tab_to("form[action='/logout'] button").await;
    browser.press_through(&enter).await;
    browser.goto("/login").await;
    browser.tab_to("#email").await;
    browser.press("keys@keyboard.example").await;
    browser.tab_to("#password").await;
    browser.press(PASSWORD).await;
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
    assert_eq!(
        browser.text("#name-error").await,
        "文字の表示順を変える制御文字（U+202E）は使えません。"
    );
    assert_eq!(
        browser.text("#organization-error").await,
        "入力してください。"
    );
    assert_eq!(
        browser.text("#email-error").await,
        "メールアドレスの形式が正しくありません。"
    );
    assert_eq!(
        browser.text("#password-error").await,
        "12文字以上で入力してください。"
    );
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
    for (field, says) in [
        ("title", "入力してください。"),
        ("description", "入力してください。"),
        ("product_type", "選んでください。"),
        ("categories", "相談分野を1つ以上選んでください。"),
        ("stage", "選んでください。"),
    ] {
        assert_eq!(
            browser.text(&format!("#{field}-error")).await,
            says,
            "{field}"
        );
    }
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
