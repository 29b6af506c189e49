//! The statistics page: a manager reads the category table the API gives
//! and downloads it as CSV for Excel; nobody else learns anything from it.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE};
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::helpers::*;
use crate::pages::signed_in_cookie;

pages_on_backends!(
    both: a_manager_reads_the_category_table_and_downloads_it_for_excel;
    sqlite:
        the_statistics_page_refuses_bad_dates_beside_the_field_and_keeps_them,
        applicants_and_experts_get_no_statistics_page,
);

/// Two cases: a drug (regulatory + fundraising) and a device (regulatory).
async fn two_cases(app: &TestApp) -> User {
    let founder = app.applicant("Stats KK").await;
    for (product, categories) in [
        ("drug", json!(["regulatory", "fundraising"])),
        ("medical_device", json!(["regulatory"])),
    ] {
        app.new_case_with(
            &founder.token,
            &json!({"title": "統計の確認", "description": "件数", "product_type": product,
                    "categories": categories, "stage": "basic_research"}),
        )
        .await;
    }
    founder
}

async fn a_manager_reads_the_category_table_and_downloads_it_for_excel(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    two_cases(&app).await;
    let manager = app.staff("manager").await;
    // A Japanese-speaking manager (staff accounts are made in English).
    app.execute_sql(&format!(
        "UPDATE users SET locale = 'ja' WHERE email = '{}'",
        manager.email
    ))
    .await;
    let api: Value = app
        .get("/api/v1/stats/categories", Some(&manager.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(api["total"]["cases"], 2);

    let browser = Browser::open(&app.address, "ja").await;
    browser.goto("/login").await;
    browser.fill("#email", &manager.email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_through("form.card button[type=submit]").await;
    // A manager reads no case: the day starts on the statistics.
    assert_eq!(browser.path().await, "/statistics");
    let total = browser.text("table.stats tr.total").await;
    assert!(total.starts_with("合計"), "{total}");
    let drug_row = browser.text("table.stats tbody tr:first-child").await;
    assert!(drug_row.contains("医薬品"), "{drug_row}");
    // The total row: 2 cases, regulatory in both (100 %), fundraising in one (50 %).
    let cells = browser.text("table.stats tr.total td:nth-of-type(1)").await;
    assert_eq!(cells.trim(), "2");
    assert!(total.contains("100%") && total.contains("50%"), "{total}");
    browser.screenshot(&format!("{backend:?}-statistics")).await;

    // A range with no case shows zeros, and the CSV link carries the range.
    browser
        .goto("/statistics?from=2020-01-01&to=2020-12-31")
        .await;
    let cells = browser.text("table.stats tr.total td:nth-of-type(1)").await;
    assert_eq!(cells.trim(), "0");
    assert_eq!(browser.value("#from").await, "2020-01-01");
    browser.close().await;

    // The download, as the browser would fetch it with the session.
    let session = signed_in_cookie(&app, &manager.email, PASSWORD).await;
    let csv = app
        .client
        .get(app.url("/statistics/categories.csv?from=&to="))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(csv.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
    let disposition = csv.headers()[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment; filename=\"medesk-categories-"));
    let bytes = csv.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "Excel needs the BOM");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(text.starts_with("製品種別,相談件数,"), "{text}");
    let total_line = text.lines().last().unwrap();
    assert!(total_line.starts_with("合計,2,"), "{total_line}");
}

async fn the_statistics_page_refuses_bad_dates_beside_the_field_and_keeps_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let manager = app.staff("manager").await;
    let session = signed_in_cookie(&app, &manager.email, PASSWORD).await;
    let page = |query: &'static str| {
        app.client
            .get(app.url(&format!("/statistics?{query}")))
            .header(COOKIE, &session)
            .header("Accept-Language", "en")
            .send()
    };
    let bad = page("from=2026-02-30&to=2026-03-01").await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.unwrap();
    assert!(html.contains("id=\"from-error\""), "{html}");
    assert!(
        html.contains("value=\"2026-02-30\""),
        "the typed date is kept"
    );
    assert!(
        !html.contains("class=\"stats\""),
        "no table for a refused range"
    );

    let reversed = page("from=2026-03-02&to=2026-03-01").await.unwrap();
    assert_eq!(reversed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reversed.text().await.unwrap().contains("id=\"from-error\""));

    let csv = app
        .client
        .get(app.url("/statistics/categories.csv?from=yesterday"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        csv.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

async fn applicants_and_experts_get_no_statistics_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let founder = two_cases(&app).await;
    let session = signed_in_cookie(&app, &founder.email, PASSWORD).await;
    for path in [
        "/statistics",
        "/statistics/categories.csv",
        "/statistics?from=bad",
    ] {
        let refused = app
            .client
            .get(app.url(path))
            .header(COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
        let body = refused.text().await.unwrap();
        assert!(!body.contains("class=\"stats\"") && !body.contains("製品種別,"));
    }
    // Signed out: the sign-in page, which brings the visitor back.
    let anonymous = app
        .client
        .get(app.url("/statistics/categories.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.headers()["location"],
        "/login?next=%2Fstatistics%2Fcategories.csv"
    );
}
