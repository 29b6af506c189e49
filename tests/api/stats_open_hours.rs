//! Open Hours in the statistics (issue 18): bookings, attendance and
//! conversion to cases per month and category, as JSON and as CSV, for
//! the statistics' readers only.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::pages::signed_in_cookie;

on_both_backends!(
    open_hours_statistics_are_for_the_statistics_readers,
    bad_dates_and_languages_are_refused,
    a_range_without_bookings_lists_every_category_with_zeros,
    the_statistics_page_shows_the_open_hours_table_and_its_csv,
);

/// The nine categories in PRODUCT.md's order, then `none`.
const BUCKETS: [&str; 10] = [
    "regulatory",
    "marketing",
    "business_plan",
    "fundraising",
    "management_strategy",
    "ip_strategy",
    "international",
    "reimbursement",
    "other",
    "none",
];

const EMPTY_RANGE: &str = "from=2020-01-01&to=2020-12-31";

/// The body of a CSV answer after checking its headers; returns the lines.
async fn csv_lines(response: Response, file_name: &str) -> Vec<String> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        response.headers()[CONTENT_DISPOSITION].to_str().unwrap(),
        format!("attachment; filename=\"{file_name}\"")
    );
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM for Excel");
    let text = std::str::from_utf8(&bytes[3..]).expect("UTF-8");
    assert!(text.ends_with("\r\n"), "CRLF line ends");
    assert!(!text.trim_end_matches("\r\n").contains("\n\n"));
    text.split_terminator("\r\n").map(str::to_owned).collect()
}

fn zero_counts() -> Value {
    json!({"bookings": 0, "attended": 0, "no_show": 0, "unmarked": 0, "cases": 0})
}

async fn open_hours_statistics_are_for_the_statistics_readers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = format!("/api/v1/stats/open-hours?{EMPTY_RANGE}");
    let csv_path = format!("/api/v1/stats/open-hours.csv?{EMPTY_RANGE}");
    for role in ["manager", "supporter", "admin"] {
        let reader = app.staff(role).await;
        let body = json_body(app.get(&path, Some(&reader.token)).await, StatusCode::OK).await;
        assert_eq!(body["total"], zero_counts(), "{role}");
        let csv = app.get(&csv_path, Some(&reader.token)).await;
        assert_eq!(csv.status(), StatusCode::OK, "{role}");
    }
    let founder = app.applicant("OH Stats KK").await;
    let expert = app.staff("expert").await;
    for token in [&founder.token, &expert.token] {
        for path in [&path, &csv_path] {
            problem(app.get(path, Some(token)).await, StatusCode::FORBIDDEN).await;
        }
    }
    for path in [&path, &csv_path] {
        problem(app.get(path, None).await, StatusCode::UNAUTHORIZED).await;
    }
}

async fn bad_dates_and_languages_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let manager = app.staff("manager").await;
    for (query, field) in [
        ("from=2026-02-30", "from"),
        ("to=2026/12/01", "to"),
        ("from=yesterday", "from"),
        ("from=2026-12-02&to=2026-12-01", "from"),
        // A from after the default to (the last booking, or today).
        ("from=2999-01-01", "from"),
    ] {
        for endpoint in ["open-hours", "open-hours.csv"] {
            let response = app
                .get(
                    &format!("/api/v1/stats/{endpoint}?{query}"),
                    Some(&manager.token),
                )
                .await;
            let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(error_fields(&problem), [field], "{endpoint}?{query}");
        }
    }
    let response = app
        .get(
            &format!("/api/v1/stats/open-hours.csv?{EMPTY_RANGE}&lang=fr"),
            Some(&manager.token),
        )
        .await;
    let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), ["lang"]);
}

async fn a_range_without_bookings_lists_every_category_with_zeros(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let manager = app.staff("manager").await;
    let body = json_body(
        app.get(
            &format!("/api/v1/stats/open-hours?{EMPTY_RANGE}"),
            Some(&manager.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["from"], "2020-01-01");
    assert_eq!(body["to"], "2020-12-31");
    assert_eq!(body["months"], json!([]));
    let totals = body["totals"].as_array().unwrap();
    let categories: Vec<&str> = totals
        .iter()
        .map(|t| t["category"].as_str().unwrap())
        .collect();
    assert_eq!(categories, BUCKETS);
    for total in totals {
        let mut counts = total.clone();
        counts.as_object_mut().unwrap().remove("category");
        assert_eq!(counts, zero_counts());
    }

    // Without dates and without bookings: today to today.
    let today = json_body(
        app.get("/api/v1/stats/open-hours", Some(&manager.token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(today["from"], today["to"]);

    let lines = csv_lines(
        app.get(
            &format!("/api/v1/stats/open-hours.csv?{EMPTY_RANGE}"),
            Some(&manager.token),
        )
        .await,
        "medesk-open-hours-2020-01-01_2020-12-31.csv",
    )
    .await;
    let mut expected = vec!["month,category,bookings,attended,no_show,unmarked,cases".to_owned()];
    expected.extend(BUCKETS.iter().map(|b| format!("total,{b},0,0,0,0,0")));
    expected.push("total,all,0,0,0,0,0".to_owned());
    assert_eq!(lines, expected);

    let ja = csv_lines(
        app.get(
            &format!("/api/v1/stats/open-hours.csv?{EMPTY_RANGE}&lang=ja"),
            Some(&manager.token),
        )
        .await,
        "medesk-open-hours-2020-01-01_2020-12-31.csv",
    )
    .await;
    assert_eq!(ja[0], "月,相談分野,予約,出席,欠席,未記録,相談化");
    assert_eq!(ja[1], "合計,法規制対応,0,0,0,0,0");
    assert_eq!(ja[10], "合計,分野なし,0,0,0,0,0");
    let en = csv_lines(
        app.get(
            &format!("/api/v1/stats/open-hours.csv?{EMPTY_RANGE}&lang=en"),
            Some(&manager.token),
        )
        .await,
        "medesk-open-hours-2020-01-01_2020-12-31.csv",
    )
    .await;
    assert_eq!(
        en[0],
        "Month,Category,Bookings,Attended,No-show,Not marked,Cases"
    );
    assert_eq!(en.last().unwrap(), "Total,All,0,0,0,0,0");
}

async fn the_statistics_page_shows_the_open_hours_table_and_its_csv(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let manager = app.staff("manager").await;
    let session = signed_in_cookie(&app, &manager.email, PASSWORD).await;
    let page = app
        .client
        .get(app.url(&format!("/statistics?{EMPTY_RANGE}")))
        .header(COOKIE, &session)
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Open Hours bookings by month and category"),
        "{html}"
    );
    assert!(html.contains("No Open Hours bookings in this range."));
    assert!(
        html.contains("href=\"/statistics/open-hours.csv?from=2020-01-01&amp;to=2020-12-31\""),
        "{html}"
    );

    let csv = app
        .client
        .get(app.url("/statistics/open-hours.csv?from=2020-01-01&to=2020-12-31"))
        .header(COOKIE, &session)
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap();
    let lines = csv_lines(csv, "medesk-open-hours-2020-01-01_2020-12-31.csv").await;
    assert_eq!(
        lines[0],
        "Month,Category,Bookings,Attended,No-show,Not marked,Cases"
    );

    // Applicants learn nothing from it.
    let founder = app.applicant("OH Page KK").await;
    let session = signed_in_cookie(&app, &founder.email, PASSWORD).await;
    let refused = app
        .client
        .get(app.url("/statistics/open-hours.csv"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!refused.text().await.unwrap().contains("bookings,"));
}

// ---------------------------------------------------------------- with bookings

/// Bookings made, attended and turned into cases through the Open Hours API.
mod with_bookings {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        bookings_count_by_slot_month_and_each_category(Backend::Sqlite).await
    }

    #[tokio::test]
    async fn postgres() {
        bookings_count_by_slot_month_and_each_category(Backend::Postgres).await
    }
}

/// `YYYY-MM` and `YYYY-MM-DD` of a slot's start on the desk calendar (JST).
fn jst_month_and_day(starts_at: &Value) -> (String, String) {
    let jst = FixedOffset::east_opt(9 * 3600).unwrap();
    let at = DateTime::parse_from_rfc3339(starts_at.as_str().expect("starts_at"))
        .expect("RFC 3339")
        .with_timezone(&jst);
    (
        at.format("%Y-%m").to_string(),
        at.format("%Y-%m-%d").to_string(),
    )
}

/// Books `slot` as `founder` with `categories`, asserting 201.
async fn book(app: &TestApp, founder: &User, slot: &Value, categories: Value) -> Value {
    json_body(
        app.post(
            "/api/v1/open-hours/bookings",
            Some(&founder.token),
            &json!({"slot_id": slot["id"], "topic": "薬事の相談", "categories": categories,
                    "language": "ja"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await
}

fn booking_path(booking: &Value, suffix: &str) -> String {
    let id = match &booking["id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("/api/v1/open-hours/bookings/{id}/{suffix}")
}

async fn bookings_count_by_slot_month_and_each_category(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let supporter = app.staff("supporter").await;
    let manager = app.staff("manager").await;
    let slots = items(
        json_body(
            app.get("/api/v1/open-hours/slots", Some(&manager.token))
                .await,
            StatusCode::OK,
        )
        .await,
    );
    // Today's slots are listed too, and those already begun refuse bookings:
    // which ones depends on the hour the test runs at.
    let now = DateTime::from_timestamp_micros(app.clock.now_micros()).unwrap();
    let open: Vec<&Value> = slots
        .iter()
        .filter(|s| s["available"].as_i64() > Some(0) && s["closed"] == false)
        .filter(|s| {
            let starts_at = DateTime::parse_from_rfc3339(s["starts_at"].as_str().unwrap());
            starts_at.unwrap() > now + chrono::Duration::minutes(10)
        })
        .collect();
    assert!(open.len() >= 4, "four bookable slots: {slots:?}");

    // Four organisations, four slots: (categories, attended, turned into a case).
    let plan: [(Value, Option<bool>, bool); 4] = [
        (json!(["regulatory", "ip_strategy"]), Some(true), true),
        (json!(["regulatory"]), Some(false), false),
        (json!([]), None, false),
        // Cancelled below: not counted.
        (json!(["marketing"]), None, false),
    ];
    let mut expected: BTreeMap<(String, usize), [i64; 5]> = BTreeMap::new();
    let mut first_day = None;
    for (i, (categories, attended, case)) in plan.iter().enumerate() {
        let founder = app.applicant(&format!("OH Stats {i} KK")).await;
        let booking = book(&app, &founder, open[i], categories.clone()).await;
        if i == 3 {
            json_body(
                app.post(
                    &booking_path(&booking, "cancel"),
                    Some(&founder.token),
                    &json!({}),
                )
                .await,
                StatusCode::OK,
            )
            .await;
            continue;
        }
        if let Some(attended) = attended {
            json_body(
                app.post(
                    &booking_path(&booking, "attendance"),
                    Some(&supporter.token),
                    &json!({"attended": attended, "note": "話を聞いた"}),
                )
                .await,
                StatusCode::OK,
            )
            .await;
        }
        if *case {
            json_body(
                app.post(
                    &booking_path(&booking, "case"),
                    Some(&supporter.token),
                    &json!({}),
                )
                .await,
                StatusCode::CREATED,
            )
            .await;
        }
        let (month, day) = jst_month_and_day(&open[i]["starts_at"]);
        first_day.get_or_insert(day);
        let names: Vec<&str> = categories
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let buckets: Vec<usize> = if names.is_empty() {
            vec![BUCKETS.len() - 1]
        } else {
            names
                .iter()
                .map(|n| BUCKETS.iter().position(|b| b == n).unwrap())
                .collect()
        };
        for bucket in buckets {
            let cell = expected.entry((month.clone(), bucket)).or_default();
            cell[0] += 1;
            match attended {
                Some(true) => cell[1] += 1,
                Some(false) => cell[2] += 1,
                None => cell[3] += 1,
            }
            cell[4] += i64::from(*case);
        }
    }
    let as_json = |month: &str, bucket: usize, c: &[i64; 5]| {
        json!({"month": month, "category": BUCKETS[bucket], "bookings": c[0], "attended": c[1],
               "no_show": c[2], "unmarked": c[3], "cases": c[4]})
    };
    let expected_months: Vec<Value> = expected
        .iter()
        .map(|((month, bucket), c)| as_json(month, *bucket, c))
        .collect();

    // Without dates: from the first booking's slot date.
    let body = json_body(
        app.get("/api/v1/stats/open-hours", Some(&manager.token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["from"], first_day.clone().unwrap());
    assert_eq!(body["months"], json!(expected_months));
    assert_eq!(
        body["total"],
        json!({"bookings": 3, "attended": 1, "no_show": 1, "unmarked": 1, "cases": 1})
    );
    let total_of = |category: &str| {
        let mut total = body["totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["category"] == category)
            .unwrap_or_else(|| panic!("{category} in totals"))
            .clone();
        total.as_object_mut().unwrap().remove("category");
        total
    };
    // Counted in both of its categories; the cancelled booking nowhere.
    assert_eq!(
        total_of("regulatory"),
        json!({"bookings": 2, "attended": 1, "no_show": 1, "unmarked": 0, "cases": 1})
    );
    assert_eq!(
        total_of("ip_strategy"),
        json!({"bookings": 1, "attended": 1, "no_show": 0, "unmarked": 0, "cases": 1})
    );
    assert_eq!(
        total_of("none"),
        json!({"bookings": 1, "attended": 0, "no_show": 0, "unmarked": 1, "cases": 0})
    );
    assert_eq!(total_of("marketing"), zero_counts());

    // The CSV has the same rows.
    let (from, to) = (body["from"].as_str().unwrap(), body["to"].as_str().unwrap());
    let lines = csv_lines(
        app.get("/api/v1/stats/open-hours.csv", Some(&supporter.token))
            .await,
        &format!("medesk-open-hours-{from}_{to}.csv"),
    )
    .await;
    let month_lines: Vec<String> = expected
        .iter()
        .map(|((month, bucket), c)| {
            format!(
                "{month},{},{},{},{},{},{}",
                BUCKETS[*bucket], c[0], c[1], c[2], c[3], c[4]
            )
        })
        .collect();
    assert_eq!(lines[1..=month_lines.len()], month_lines[..]);
    assert_eq!(lines.last().unwrap(), "total,all,3,1,1,1,1");

    // A range before the first booking counts none of them.
    let before = json_body(
        app.get(
            &format!("/api/v1/stats/open-hours?{EMPTY_RANGE}"),
            Some(&manager.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(before["total"], zero_counts());

    // The page shows the same cells, and the total row counts each booking once.
    let session = signed_in_cookie(&app, &manager.email, PASSWORD).await;
    let html = app
        .client
        .get(app.url("/statistics"))
        .header(COOKIE, &session)
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let table = html
        .split("class=\"stats open-hours-stats\"")
        .nth(1)
        .expect("the Open Hours table")
        .split("</table>")
        .next()
        .unwrap();
    assert_eq!(
        table.matches("<tr").count(),
        1 + expected.len() + 1,
        "header, one row per cell, total: {table}"
    );
    assert!(table.contains("IP strategy"), "{table}");
    assert!(table.contains("No category"), "{table}");
    let total_row = table.split("class=\"total\"").nth(1).expect("total row");
    let numbers: Vec<&str> = total_row
        .split("<td class=\"number\">")
        .skip(1)
        .map(|cell| cell.split('<').next().unwrap())
        .collect();
    assert_eq!(numbers, ["3", "1", "1"], "bookings, attended, cases");
}
