//! Statistics and the CSV import: the published table reproduced exactly
//! from generated records (JSON and CSV), date ranges, what counts before and
//! after triage, rollups equal to a recount, import errors and limits, and
//! who may see what.

use chrono::{Duration, NaiveDate};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, PASSWORD, TestApp, User, error_fields, json_body, problem, random_suffix,
};

// ---------------------------------------------------------------- the published table

const PRODUCTS: [&str; 4] = ["drug", "medical_device", "regenerative", "other"];
const PRODUCT_LABELS_JA: [&str; 4] = ["医薬品", "医療機器", "再生医療等製品", "その他"];
const CATEGORIES: [&str; 9] = [
    "regulatory",
    "marketing",
    "business_plan",
    "fundraising",
    "management_strategy",
    "ip_strategy",
    "international",
    "reimbursement",
    "other",
];
const CATEGORY_LABELS_JA: [&str; 9] = [
    "法規制対応",
    "マーケティング",
    "事業計画",
    "資金調達",
    "経営戦略",
    "知財戦略",
    "国際展開",
    "保険収載",
    "その他",
];

/// PRODUCT.md, Statistics: cases, then (count, percent) per category.
const PUBLISHED: [(usize, [(i64, i64); 9]); 4] = [
    (
        249,
        [
            (111, 45),
            (53, 21),
            (85, 34),
            (98, 39),
            (62, 25),
            (60, 24),
            (41, 16),
            (38, 15),
            (54, 22),
        ],
    ),
    (
        494,
        [
            (285, 58),
            (161, 33),
            (170, 34),
            (159, 32),
            (126, 26),
            (106, 21),
            (108, 22),
            (141, 29),
            (118, 24),
        ],
    ),
    (
        90,
        [
            (50, 56),
            (18, 20),
            (29, 32),
            (31, 34),
            (21, 23),
            (14, 16),
            (13, 14),
            (11, 12),
            (19, 21),
        ],
    ),
    (
        205,
        [
            (79, 39),
            (65, 32),
            (44, 21),
            (58, 28),
            (42, 20),
            (31, 15),
            (33, 16),
            (21, 10),
            (57, 28),
        ],
    ),
];
const PUBLISHED_TOTAL: (i64, [(i64, i64); 9]) = (
    1038,
    [
        (525, 51),
        (297, 29),
        (328, 32),
        (346, 33),
        (251, 24),
        (211, 20),
        (195, 19),
        (211, 20),
        (248, 24),
    ],
);

const FROM: &str = "2018-02-05";
const TO: &str = "2022-12-31";

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// One generated historical case.
#[derive(Debug, Clone)]
struct Record {
    received_on: NaiveDate,
    product: usize,
    categories: Vec<usize>,
}

/// 1,038 cases whose table over FROM..=TO is exactly the published one.
/// Each product's category memberships are dealt round-robin over its cases
/// (so no case lists a category twice and every case gets at least one);
/// received dates are distinct days spread over the range, the first case on
/// FROM and the last on TO.
fn published_records() -> Vec<Record> {
    let start = date(FROM);
    let days = (date(TO) - start).num_days() + 1;
    let total: usize = PUBLISHED.iter().map(|(n, _)| n).sum();
    let mut records = Vec::with_capacity(total);
    for (product, (cases, counts)) in PUBLISHED.iter().enumerate() {
        let mut members = vec![Vec::new(); *cases];
        let mut next = 0;
        for (category, (count, _)) in counts.iter().enumerate() {
            for _ in 0..*count {
                members[next % cases].push(category);
                next += 1;
            }
        }
        for categories in members {
            let k = records.len() as i64;
            // 709 is coprime with the range's 1,791 days: distinct days.
            let offset = if k as usize == total - 1 {
                days - 1
            } else {
                (k * 709) % days
            };
            records.push(Record {
                received_on: start + Duration::days(offset),
                product,
                categories,
            });
        }
    }
    records
}

/// The organisation `import_csv` names on the `k`th case.
fn organization_of(k: usize) -> String {
    if k.is_multiple_of(3) {
        format!("株式会社ベンチャー{}", k % 40)
    } else {
        format!("Venture {}", k % 60)
    }
}

/// How many organisations the first `count` cases of `import_csv` name.
fn organizations_named(count: usize) -> usize {
    let names: std::collections::BTreeSet<String> = (0..count).map(organization_of).collect();
    names.len()
}

/// The records as an import file: BOM, CRLF, codes on even lines and
/// Japanese labels on odd ones, quoted titles with commas.
fn import_csv(records: &[Record]) -> Vec<u8> {
    let mut text = String::from(
        "\u{FEFF}received_on,product_type,categories,organization,title,status,outcome\r\n",
    );
    for (k, record) in records.iter().enumerate() {
        let japanese = k % 2 == 1;
        let product = if japanese {
            PRODUCT_LABELS_JA[record.product]
        } else {
            PRODUCTS[record.product]
        };
        let categories: Vec<&str> = record
            .categories
            .iter()
            .map(|c| {
                if japanese {
                    CATEGORY_LABELS_JA[*c]
                } else {
                    CATEGORIES[*c]
                }
            })
            .collect();
        let organization = organization_of(k);
        let (status, outcome) = if japanese {
            ("", "解決")
        } else {
            ("closed", "resolved")
        };
        text.push_str(&format!(
            "{},{product},{},{organization},\"Historical case {k}, imported\",{status},{outcome}\r\n",
            record.received_on,
            categories.join(";"),
        ));
    }
    text.into_bytes()
}

/// Percent as PRODUCT.md rounds it, computed independently of the server.
fn percent(count: i64, total: i64) -> i64 {
    if total == 0 {
        0
    } else {
        (200 * count + total) / (2 * total)
    }
}

fn per_category(values: impl IntoIterator<Item = i64>) -> Value {
    Value::Object(
        CATEGORIES
            .iter()
            .zip(values)
            .map(|(c, v)| ((*c).to_owned(), json!(v)))
            .collect(),
    )
}

/// The expected JSON for `records` received within `from..=to`.
fn expected_table(records: &[Record], from: &str, to: &str) -> Value {
    let (from_day, to_day) = (date(from), date(to));
    let mut cases = [0i64; 4];
    let mut counts = [[0i64; 9]; 4];
    for r in records
        .iter()
        .filter(|r| (from_day..=to_day).contains(&r.received_on))
    {
        cases[r.product] += 1;
        for c in &r.categories {
            counts[r.product][*c] += 1;
        }
    }
    let row = |n: i64, counts: [i64; 9]| {
        json!({
            "cases": n,
            "counts": per_category(counts),
            "percents": per_category(counts.map(|c| percent(c, n))),
        })
    };
    let rows: Vec<Value> = (0..4)
        .map(|p| {
            let mut r = row(cases[p], counts[p]);
            r["product_type"] = json!(PRODUCTS[p]);
            r
        })
        .collect();
    let mut total_counts = [0i64; 9];
    for p in counts {
        for (t, c) in total_counts.iter_mut().zip(p) {
            *t += c;
        }
    }
    json!({
        "from": from,
        "to": to,
        "categories": CATEGORIES,
        "rows": rows,
        "total": row(cases.iter().sum(), total_counts),
    })
}

/// PRODUCT.md's table as the JSON API.md describes, from the literal numbers.
fn published_json() -> Value {
    let row = |cases: i64, cells: [(i64, i64); 9]| {
        json!({
            "cases": cases,
            "counts": per_category(cells.map(|(c, _)| c)),
            "percents": per_category(cells.map(|(_, p)| p)),
        })
    };
    let rows: Vec<Value> = PUBLISHED
        .iter()
        .enumerate()
        .map(|(p, (cases, cells))| {
            let mut r = row(*cases as i64, *cells);
            r["product_type"] = json!(PRODUCTS[p]);
            r
        })
        .collect();
    json!({
        "from": FROM,
        "to": TO,
        "categories": CATEGORIES,
        "rows": rows,
        "total": row(PUBLISHED_TOTAL.0, PUBLISHED_TOTAL.1),
    })
}

// ---------------------------------------------------------------- helpers

impl TestApp {
    /// `POST /api/v1/import/cases` with a CSV body.
    async fn import_cases_csv(&self, token: &str, content_type: &str, body: Vec<u8>) -> Response {
        self.client
            .post(self.url("/api/v1/import/cases"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Imports `records` as the start-up admin, asserting 201.
    async fn imported(&self, records: &[Record]) -> Value {
        let admin = self.admin_token().await;
        json_body(
            self.import_cases_csv(&admin, "text/csv; charset=utf-8", import_csv(records))
                .await,
            StatusCode::CREATED,
        )
        .await
    }

    /// The category table as `token` sees it for the raw query string.
    async fn category_table(&self, token: &str, query: &str) -> Value {
        json_body(
            self.get(&format!("/api/v1/stats/categories?{query}"), Some(token))
                .await,
            StatusCode::OK,
        )
        .await
    }
}

/// The body of a CSV answer after checking its headers; returns the lines.
async fn csv_lines(response: Response, file_name: &str) -> Vec<String> {
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        header("content-disposition"),
        format!("attachment; filename=\"{file_name}\"")
    );
    let bytes = response.bytes().await.unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "UTF-8 BOM for Excel: {:?}",
        &bytes[..bytes.len().min(8)]
    );
    let text = std::str::from_utf8(&bytes[3..]).expect("UTF-8");
    assert!(text.ends_with("\r\n"), "CRLF line ends");
    text.split_terminator("\r\n").map(str::to_owned).collect()
}

fn published_csv_row(name: &str, cases: i64, cells: [(i64, i64); 9]) -> String {
    let mut fields = vec![name.to_owned(), cases.to_string()];
    for (count, percent) in cells {
        fields.push(count.to_string());
        fields.push(percent.to_string());
    }
    fields.join(",")
}

fn today() -> NaiveDate {
    (chrono::Utc::now() + Duration::hours(9)).date_naive()
}

fn mail_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(&app.mail_dir) {
        Err(_) => Vec::new(),
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect(),
    }
}

// ---------------------------------------------------------------- tests

async fn reproduces_the_published_table_as_json_and_csv(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let records = published_records();
    assert_eq!(records.len(), 1038);
    assert!(
        records
            .iter()
            .all(|r| (date(FROM)..=date(TO)).contains(&r.received_on))
    );
    let result = app.imported(&records).await;
    assert_eq!(result["imported"], 1038);

    let manager = app.staff("manager").await;
    let query = format!("from={FROM}&to={TO}");
    let table = app.category_table(&manager.token, &query).await;
    assert_eq!(table, published_json());
    // The generator's own expectation agrees (a check of the check).
    assert_eq!(table, expected_table(&records, FROM, TO));

    let file_name = format!("medesk-categories-{FROM}_{TO}.csv");
    let codes = csv_lines(
        app.get(
            &format!("/api/v1/stats/categories.csv?{query}"),
            Some(&manager.token),
        )
        .await,
        &file_name,
    )
    .await;
    let mut header = vec!["product_type".to_owned(), "cases".to_owned()];
    for c in CATEGORIES {
        header.push(c.to_owned());
        header.push(format!("{c}_percent"));
    }
    let mut expected = vec![header.join(",")];
    for (p, (cases, cells)) in PUBLISHED.iter().enumerate() {
        expected.push(published_csv_row(PRODUCTS[p], *cases as i64, *cells));
    }
    expected.push(published_csv_row(
        "total",
        PUBLISHED_TOTAL.0,
        PUBLISHED_TOTAL.1,
    ));
    assert_eq!(codes, expected);

    let ja = csv_lines(
        app.get(
            &format!("/api/v1/stats/categories.csv?{query}&lang=ja"),
            Some(&manager.token),
        )
        .await,
        &file_name,
    )
    .await;
    let mut header = vec!["製品種別".to_owned(), "相談件数".to_owned()];
    for c in CATEGORY_LABELS_JA {
        header.push(c.to_owned());
        header.push(format!("{c} (%)"));
    }
    let mut expected = vec![header.join(",")];
    for (p, (cases, cells)) in PUBLISHED.iter().enumerate() {
        expected.push(published_csv_row(
            PRODUCT_LABELS_JA[p],
            *cases as i64,
            *cells,
        ));
    }
    expected.push(published_csv_row(
        "合計",
        PUBLISHED_TOTAL.0,
        PUBLISHED_TOTAL.1,
    ));
    assert_eq!(ja, expected);

    let en = csv_lines(
        app.get(
            &format!("/api/v1/stats/categories.csv?{query}&lang=en"),
            Some(&manager.token),
        )
        .await,
        &file_name,
    )
    .await;
    assert!(en[0].starts_with("Product type,Cases,Regulatory,Regulatory (%),Marketing,"));
    assert!(en[0].ends_with(",Reimbursement,Reimbursement (%),Other,Other (%)"));
    assert_eq!(
        en[2],
        published_csv_row("Medical device", 494, PUBLISHED[1].1)
    );
    assert_eq!(en[5], published_csv_row("Total", 1038, PUBLISHED_TOTAL.1));

    let bad_lang = app
        .get(
            &format!("/api/v1/stats/categories.csv?{query}&lang=fr"),
            Some(&manager.token),
        )
        .await;
    assert_eq!(
        error_fields(&problem(bad_lang, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["lang"]
    );

    // Imported records are closed cases with desk numbers of their year.
    let admin = app.admin_token().await;
    let newest = json_body(app.list_cases(&admin, "limit=1").await, StatusCode::OK).await;
    let case = &newest["items"][0];
    assert_eq!(case["status"], "closed");
    assert_eq!(case["outcome"], "resolved");
    assert!(
        case["number"].as_str().unwrap().starts_with("MD-2022-"),
        "{case}"
    );
    assert!(
        case["received_at"]
            .as_str()
            .unwrap()
            .starts_with("2022-12-30T15:00:00")
    );
}

async fn date_ranges_are_inclusive_and_complete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let records = published_records();
    app.imported(&records).await;
    let manager = app.staff("manager").await;

    // Single days at both ends: the bounds are inclusive.
    for day in [FROM, TO] {
        let table = app
            .category_table(&manager.token, &format!("from={day}&to={day}"))
            .await;
        assert!(table["total"]["cases"].as_i64().unwrap() >= 1, "{day}");
        assert_eq!(table, expected_table(&records, day, day));
    }
    // A year, a month and an odd range.
    for (from, to) in [
        ("2019-01-01", "2019-12-31"),
        ("2020-02-01", "2020-02-29"),
        ("2018-03-17", "2021-07-04"),
    ] {
        let table = app
            .category_table(&manager.token, &format!("from={from}&to={to}"))
            .await;
        assert_eq!(table, expected_table(&records, from, to), "{from}..{to}");
    }
    // Outside every case: zeros, with every row and category present.
    let empty = app
        .category_table(&manager.token, "from=2010-01-01&to=2010-12-31")
        .await;
    assert_eq!(empty, expected_table(&records, "2010-01-01", "2010-12-31"));
    assert_eq!(empty["rows"].as_array().unwrap().len(), 4);
    assert_eq!(empty["rows"][2]["percents"]["other"], 0);

    // Defaults: from the first received date to today.
    let today = today().to_string();
    let all = app.category_table(&manager.token, "").await;
    assert_eq!(all["from"], FROM);
    assert_eq!(all["to"], today.as_str());
    assert_eq!(all["total"], published_json()["total"]);
    let until = app.category_table(&manager.token, "to=2018-12-31").await;
    assert_eq!(until, expected_table(&records, FROM, "2018-12-31"));

    // Bad dates and an inverted range are 422.
    for (query, field) in [
        ("from=2018-02-30", "from"),
        ("from=yesterday", "from"),
        ("to=2018/12/31", "to"),
        ("from=2019-01-02&to=2019-01-01", "from"),
    ] {
        let response = app
            .get(
                &format!("/api/v1/stats/categories?{query}"),
                Some(&manager.token),
            )
            .await;
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_fields(&body), [field], "{query}");
    }
    let response = app
        .get(
            "/api/v1/stats/categories.csv?from=2019-01-02&to=2019-01-01",
            Some(&manager.token),
        )
        .await;
    problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
}

async fn trend_counts_cases_per_month_and_year(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let records = published_records();
    app.imported(&records).await;
    let manager = app.staff("manager").await;

    let yearly = json_body(
        app.get(
            &format!("/api/v1/stats/trend?interval=year&from={FROM}&to={TO}"),
            Some(&manager.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(yearly["interval"], "year");
    assert_eq!(yearly["product_types"], json!(PRODUCTS));
    let items = yearly["items"].as_array().unwrap();
    let periods: Vec<&str> = items
        .iter()
        .map(|i| i["period"].as_str().unwrap())
        .collect();
    assert_eq!(periods, ["2018", "2019", "2020", "2021", "2022"]);
    for item in items {
        let year: i32 = item["period"].as_str().unwrap().parse().unwrap();
        for (p, product) in PRODUCTS.iter().enumerate() {
            let expected = records
                .iter()
                .filter(|r| r.product == p && chrono::Datelike::year(&r.received_on) == year)
                .count();
            assert_eq!(item["cases"][product], expected, "{year} {product}");
        }
    }
    let sum: i64 = items.iter().map(|i| i["total"].as_i64().unwrap()).sum();
    assert_eq!(sum, 1038);

    let monthly = json_body(
        app.get(
            "/api/v1/stats/trend?interval=month&from=2018-01-01&to=2018-03-31",
            Some(&manager.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let items = monthly["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["period"], "2018-01");
    assert_eq!(items[0]["total"], 0, "empty months are present with zeros");
    let february = records
        .iter()
        .filter(|r| r.received_on.to_string().starts_with("2018-02"))
        .count();
    assert_eq!(items[1]["total"], february);

    let bad = app
        .get("/api/v1/stats/trend?interval=week", Some(&manager.token))
        .await;
    assert_eq!(
        error_fields(&problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["interval"]
    );
}

/// Submits a case as a new applicant with this product type and categories.
async fn submit(app: &TestApp, product_type: &str, categories: &[&str]) -> (User, Value) {
    let applicant = app.applicant(&format!("Venture {}", random_suffix())).await;
    let mut body = crate::helpers::intake();
    body["product_type"] = json!(product_type);
    body["categories"] = json!(categories);
    let case = app.new_case_with(&applicant.token, &body).await;
    (applicant, case)
}

/// Claims and triages as `supporter`, confirming these values.
async fn triage_as(
    app: &TestApp,
    supporter: &User,
    case: &Value,
    product_type: &str,
    categories: &[&str],
    route: &str,
) -> Value {
    app.claimed(&supporter.token, &case["id"]).await;
    json_body(
        app.triage(
            &supporter.token,
            &case["id"],
            &json!({
                "priority": "normal",
                "product_type": product_type,
                "categories": categories,
                "route": route,
                "note": "confirmed at triage",
            }),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await
}

fn row<'a>(table: &'a Value, product_type: &str) -> &'a Value {
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["product_type"] == product_type)
        .unwrap()
}

async fn counts_the_applicants_choice_until_triage_confirms(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let manager = app.staff("manager").await;
    let supporter = app.staff("supporter").await;
    let (_, case) = submit(&app, "medical_device", &["regulatory", "reimbursement"]).await;

    let before = app.category_table(&manager.token, "").await;
    assert_eq!(before["from"], today().to_string());
    let device = row(&before, "medical_device");
    assert_eq!(device["cases"], 1);
    assert_eq!(device["counts"]["regulatory"], 1);
    assert_eq!(device["counts"]["reimbursement"], 1);
    assert_eq!(device["percents"]["regulatory"], 100);
    assert_eq!(row(&before, "drug")["cases"], 0);

    // Claiming changes nothing; triage moves the case to the confirmed cells.
    app.claimed(&supporter.token, &case["id"]).await;
    assert_eq!(app.category_table(&manager.token, "").await, before);
    json_body(
        app.triage(
            &supporter.token,
            &case["id"],
            &json!({
                "priority": "high", "product_type": "drug",
                "categories": ["marketing", "fundraising"],
                "route": "direct", "note": "it is a drug",
            }),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let after = app.category_table(&manager.token, "").await;
    assert_eq!(row(&after, "medical_device")["cases"], 0);
    assert_eq!(row(&after, "medical_device")["counts"]["regulatory"], 0);
    let drug = row(&after, "drug");
    assert_eq!(drug["cases"], 1);
    assert_eq!(drug["counts"]["marketing"], 1);
    assert_eq!(drug["counts"]["fundraising"], 1);
    assert_eq!(drug["counts"]["regulatory"], 0);
    assert_eq!(after["total"]["cases"], 1);
    assert_eq!(app.rollup_check().await["consistent"], true);
}

async fn rollups_always_equal_a_recount(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let supporter = app.staff("supporter").await;
    let check = app.rollup_check().await;
    assert_eq!(
        check,
        json!({"consistent": true, "cells": 0, "differences": [], "pending": 0})
    );

    app.imported(&published_records()[..200]).await;
    let (_, a) = submit(&app, "regenerative", &["regulatory"]).await;
    let (_, b) = submit(&app, "other", &["other", "ip_strategy"]).await;
    let (_, c) = submit(&app, "drug", &["fundraising"]).await;
    // Same values confirmed, other product, other categories, both changed.
    triage_as(
        &app,
        &supporter,
        &a,
        "regenerative",
        &["regulatory"],
        "direct",
    )
    .await;
    triage_as(
        &app,
        &supporter,
        &b,
        "medical_device",
        &["other", "ip_strategy"],
        "expert",
    )
    .await;
    triage_as(
        &app,
        &supporter,
        &c,
        "drug",
        &["regulatory", "international"],
        "direct",
    )
    .await;
    let (_, d) = submit(&app, "drug", &["marketing"]).await;
    app.claimed(&supporter.token, &d["id"]).await;
    app.moved(
        &supporter.token,
        &c["id"],
        json!({"status": "closed", "outcome": "resolved"}),
    )
    .await;
    app.imported(&published_records()[200..260]).await;

    let check = app.rollup_check().await;
    assert_eq!(check["consistent"], true, "{check}");
    assert_eq!(check["differences"], json!([]));
    assert!(check["cells"].as_u64().unwrap() > 200);

    let manager = app.staff("manager").await;
    let table = app.category_table(&manager.token, "").await;
    assert_eq!(table["total"]["cases"], 264);
    assert!(
        row(&table, "medical_device")["counts"]["ip_strategy"]
            .as_i64()
            .unwrap()
            >= 1
    );
}

/// PostgreSQL queues a filed case for the statistics fold instead of
/// updating the day's rollup rows. While it is queued every statistic
/// counts it already and a triage leaves the rollups to the fold; once
/// folded, a triage moves the rollups itself. Exact throughout.
#[tokio::test]
async fn postgres_counts_queued_cases_exactly_before_and_after_the_fold() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn(Backend::Postgres).await;
    let supporter = app.staff("supporter").await;
    let manager = app.staff("manager").await;
    let (_, counted) = submit(&app, "drug", &["regulatory"]).await;
    let check = app.statistics_folded().await;
    assert_eq!(check["consistent"], true, "{check}");
    assert!(check["cells"].as_u64().unwrap() >= 4, "{check}");

    // The fold gives up on a rollup table someone else has locked, so the
    // next case stays queued while this transaction lasts.
    let mut side = app.postgres_connection();
    side.batch_execute("BEGIN; LOCK TABLE stats_daily_cases IN EXCLUSIVE MODE")
        .unwrap();
    let (_, queued) = submit(&app, "medical_device", &["reimbursement"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let check = app.rollup_check().await;
    assert_eq!(check["pending"], 1, "{check}");
    assert_eq!(check["consistent"], true, "{check}");
    let table = app.category_table(&manager.token, "").await;
    assert_eq!(table["total"]["cases"], 2);
    assert_eq!(row(&table, "medical_device")["counts"]["reimbursement"], 1);
    assert_eq!(row(&table, "drug")["counts"]["regulatory"], 1);

    // Triage of the queued case: the table follows at once, the rollups
    // are left alone (their table is still locked).
    triage_as(
        &app,
        &supporter,
        &queued,
        "regenerative",
        &["ip_strategy"],
        "direct",
    )
    .await;
    let table = app.category_table(&manager.token, "").await;
    assert_eq!(row(&table, "medical_device")["cases"], 0);
    assert_eq!(row(&table, "regenerative")["cases"], 1);
    assert_eq!(row(&table, "regenerative")["counts"]["ip_strategy"], 1);
    assert_eq!(row(&table, "regenerative")["counts"]["reimbursement"], 0);
    let trend = json_body(
        app.get("/api/v1/stats/trend?interval=year", Some(&manager.token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(trend["items"][0]["total"], 2, "{trend}");
    assert_eq!(trend["items"][0]["cases"]["regenerative"], 1, "{trend}");

    side.batch_execute("COMMIT").unwrap();
    let check = app.statistics_folded().await;
    assert_eq!(check["consistent"], true, "{check}");
    assert_eq!(
        app.category_table(&manager.token, "").await,
        table,
        "the fold moves a case from the queue to the rollups, not the figures"
    );

    // A case already folded moves its own cells at triage.
    triage_as(&app, &supporter, &counted, "other", &["other"], "direct").await;
    let check = app.rollup_check().await;
    assert_eq!(check["consistent"], true, "{check}");
    assert_eq!(check["pending"], 0, "{check}");
    let table = app.category_table(&manager.token, "").await;
    assert_eq!(row(&table, "drug")["cases"], 0);
    assert_eq!(row(&table, "other")["counts"]["other"], 1);
}

/// Filing and triage side by side with the fold: whatever the fold took
/// and whenever, the rollups end up equal to a recount.
async fn rollups_stay_exact_under_concurrent_filing_and_triage(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::spawn(backend).await);
    let supporter = std::sync::Arc::new(app.staff("supporter").await);
    let products = ["drug", "medical_device", "regenerative", "other"];
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (app, supporter) = (app.clone(), supporter.clone());
        tasks.push(tokio::spawn(async move {
            let (_, case) = submit(&app, products[i % 4], &["regulatory", "fundraising"]).await;
            if i % 3 != 0 {
                tokio::time::sleep(std::time::Duration::from_millis(40 * (i as u64 % 8))).await;
                triage_as(
                    &app,
                    &supporter,
                    &case,
                    products[(i + 1) % 4],
                    &["ip_strategy"],
                    "direct",
                )
                .await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let check = app.statistics_folded().await;
    assert_eq!(check["consistent"], true, "{check}");
    let manager = app.staff("manager").await;
    let table = app.category_table(&manager.token, "").await;
    assert_eq!(table["total"]["cases"], 24);
    assert_eq!(table["total"]["counts"]["ip_strategy"], 16);
    assert_eq!(table["total"]["counts"]["regulatory"], 8);
}

async fn import_reports_every_bad_line_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let body = "received_on,product_type,categories,organization,title,status,outcome\n\
                2018-02-05,drug,regulatory,Acme,fine,closed,resolved\n\
                2018-02-05,drug,astrology,Acme,unknown category,closed,resolved\n\
                2018-02-30,drug,regulatory,Acme,bad date,closed,resolved\n\
                2018-02-05,pharma,regulatory,Acme,unknown product,closed,resolved\n\
                2018-02-05,drug,regulatory,Acme,,closed,resolved\n\
                2018-02-05,医療機器,保険収載,株式会社メドテック,fine in Japanese,終了,解決\n\
                2018-02-05,drug,regulatory,Acme,still open,submitted,resolved\n";
    let response = app
        .import_cases_csv(&admin, "text/csv", body.as_bytes().to_vec())
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let errors: Vec<(u64, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(!e["message"].as_str().unwrap().is_empty());
            (
                e["line"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (3, "categories".to_owned()),
            (4, "received_on".to_owned()),
            (5, "product_type".to_owned()),
            (6, "title".to_owned()),
            (8, "status".to_owned()),
        ]
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("astrology")
    );
    assert!(
        body["detail"].as_str().unwrap().contains("3, 4, 5, 6, 8"),
        "{body}"
    );

    // A wrong header is reported on line 1.
    let response = app
        .import_cases_csv(
            &admin,
            "text/csv",
            b"date,product_type,categories,organization,title,status,outcome\n".to_vec(),
        )
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["line"] == 1)
    );
    assert!(error_fields(&body).iter().all(|f| f == "header"));

    // Nothing was stored: no cases, no rollup cells.
    let cases = json_body(app.list_cases(&admin, "").await, StatusCode::OK).await;
    assert_eq!(cases["items"], json!([]));
    assert_eq!(app.rollup_check().await["cells"], 0);
    let table = app
        .category_table(&admin, "from=2018-01-01&to=2018-12-31")
        .await;
    assert_eq!(table["total"]["cases"], 0);
}

/// Received over five years in no particular order. The server stores an
/// import in batches of 1,000 rows on SQLite and 5,000 on PostgreSQL.
fn many_records(count: usize) -> Vec<Record> {
    let start = date(FROM);
    let days = (date(TO) - start).num_days() + 1;
    (0..count)
        .map(|k| {
            let categories = match k % 4 {
                0 => vec![k % 9],
                1 => vec![(k + 1) % 9, (k + 5) % 9],
                2 => vec![0, 3, 8],
                _ => vec![k % 7 + 1],
            };
            let mut categories = categories;
            categories.sort_unstable();
            categories.dedup();
            Record {
                received_on: start + Duration::days((k as i64 * 7_919) % days),
                product: k % 4,
                categories,
            }
        })
        .collect()
}

/// Every case the admin can list, as `(number, received_at)`.
async fn listed_numbers(app: &TestApp, admin: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = json_body(
            app.list_cases(admin, &format!("limit=100{cursor}")).await,
            StatusCode::OK,
        )
        .await;
        for case in page["items"].as_array().unwrap() {
            found.push((
                case["number"].as_str().unwrap().to_owned(),
                case["received_at"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return found,
        }
    }
}

async fn a_large_import_is_stored_in_batches_in_received_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let records = many_records(12_000);
    let result = app.imported(&records).await;
    assert_eq!(result["imported"], 12_000);
    assert_eq!(result["organizations_created"], organizations_named(12_000));

    let manager = app.staff("manager").await;
    let query = format!("from={FROM}&to={TO}");
    let table = app.category_table(&manager.token, &query).await;
    assert_eq!(table, expected_table(&records, FROM, TO));
    assert_eq!(table["total"]["cases"], 12_000);
    let check = app.rollup_check().await;
    assert_eq!(check["consistent"], true, "{check}");

    // Numbered per received year in received order, across batches: in
    // number order the received times never go back, and each year's
    // numbers run from 1 without a gap.
    let admin = app.admin_token().await;
    let mut listed = listed_numbers(&app, &admin).await;
    assert_eq!(listed.len(), 12_000);
    listed.sort();
    let mut expected_sequence = std::collections::BTreeMap::new();
    for pair in listed.windows(2) {
        let ((a, a_received), (b, b_received)) = (&pair[0], &pair[1]);
        if a[..7] == b[..7] {
            assert!(
                a_received <= b_received,
                "{a} {a_received}, {b} {b_received}"
            );
        }
    }
    for (number, _) in &listed {
        let (year, sequence) = (&number[3..7], number[8..].parse::<u64>().unwrap());
        let next = expected_sequence.entry(year.to_owned()).or_insert(1);
        assert_eq!(sequence, *next, "{number}");
        *next += 1;
    }
}

async fn a_large_import_with_bad_lines_throughout_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let body = String::from_utf8(import_csv(&many_records(12_000))).unwrap();
    let mut lines: Vec<String> = body.split_terminator("\r\n").map(str::to_owned).collect();
    // Line 1 is the header, line n the case k = n − 2 (codes when k is
    // even, Japanese labels when odd). Spoil the first, two in the middle
    // and the last, in different ways.
    lines[2 - 1].push_str(",one field too many");
    lines[6_000 - 1] = format!("2018-02-30{}", &lines[6_000 - 1][10..]);
    lines[6_002 - 1] = lines[6_002 - 1].replace(",closed,resolved", ",submitted,resolved");
    lines[12_001 - 1] = lines[12_001 - 1].replace("解決", "");
    let body = lines.join("\r\n") + "\r\n";
    let response = app
        .import_cases_csv(&admin, "text/csv", body.into_bytes())
        .await;
    let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let found: Vec<Value> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!([e["line"], e["field"]]))
        .collect();
    let expected = json!([
        [2, "body"],
        [6_000, "received_on"],
        [6_002, "status"],
        [12_001, "outcome"]
    ]);
    assert_eq!(json!(found), expected, "{problem}");

    let cases = json_body(app.list_cases(&admin, "").await, StatusCode::OK).await;
    assert_eq!(cases["items"], json!([]));
    assert_eq!(app.rollup_check().await["cells"], 0);
    // Nothing else was left behind either: the same organisations are new
    // to a good import afterwards, whose numbers start at 1.
    let result = app.imported(&many_records(150)).await;
    assert_eq!(result["organizations_created"], organizations_named(150));
    let numbers = listed_numbers(&app, &admin).await;
    assert!(numbers.iter().any(|(n, _)| n.ends_with("-00001")));
}

async fn import_limits_size_and_content_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let too_big = vec![b'a'; 20 * 1024 * 1024 + 1];
    let response = app.import_cases_csv(&admin, "text/csv", too_big).await;
    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    let response = app
        .post("/api/v1/import/cases", Some(&admin), &json!({"rows": []}))
        .await;
    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    // Only admins import.
    for role in ["supporter", "manager"] {
        let user = app.staff(role).await;
        let response = app
            .import_cases_csv(
                &user.token,
                "text/csv",
                import_csv(&published_records()[..1]),
            )
            .await;
        problem(response, StatusCode::FORBIDDEN).await;
    }
    let response = app
        .post_raw(
            "/api/v1/import/cases",
            "text/csv",
            import_csv(&published_records()[..1]),
        )
        .await;
    problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(app.rollup_check().await["cells"], 0);
}

/// After an import PostgreSQL's planner knows the rollup tables' size at
/// once (it would otherwise take them for empty until autovacuum runs).
/// PostgreSQL only: SQLite keeps no planner statistics for them.
#[tokio::test]
async fn postgres_import_refreshes_the_planner_statistics_of_the_rollups() {
    let app = TestApp::spawn(Backend::Postgres).await;
    app.imported(&published_records()).await;
    let estimate = app.planner_row_estimate("stats_monthly_categories").await;
    assert!(estimate > 0.0, "reltuples {estimate} after the import");
}

async fn imported_cases_send_no_mail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Give the mail worker a moment to settle, then import and wait again.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let before = mail_files(&app);
    app.imported(&published_records()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(mail_files(&app), before, "an import must not send mail");
    assert!(before.is_empty());
}

async fn managers_get_aggregates_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let records = published_records();
    app.imported(&records[..50]).await;
    let (applicant, case) = submit(&app, "drug", &["regulatory"]).await;
    let manager = app.staff("manager").await;
    let supporter = app.staff("supporter").await;
    let expert = app.staff("expert").await;
    let admin = app.staff("admin").await;

    let endpoints = [
        "/api/v1/stats/categories",
        "/api/v1/stats/categories.csv",
        "/api/v1/stats/categories.csv?lang=ja",
        "/api/v1/stats/trend?interval=year",
        "/api/v1/stats/trend",
        "/api/v1/stats/pipeline",
        "/api/v1/stats/experts",
    ];
    for path in endpoints {
        for user in [&manager, &supporter, &admin] {
            let response = app.get(path, Some(&user.token)).await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{path} as {}",
                user.email
            );
            let text = response.text().await.unwrap();
            // Aggregates only: no case text, numbers or organisation names.
            for secret in [
                "Historical case",
                "医療機器の承認申請",
                "Venture",
                "株式会社",
                "MD-20",
            ] {
                assert!(!text.contains(secret), "{path} leaks {secret:?}: {text}");
            }
        }
        for user in [&applicant, &expert] {
            problem(
                app.get(path, Some(&user.token)).await,
                StatusCode::FORBIDDEN,
            )
            .await;
        }
        problem(app.get(path, None).await, StatusCode::UNAUTHORIZED).await;
    }
    // The rollup check is for admins.
    for user in [&manager, &supporter] {
        let response = app.get("/api/v1/stats/verify", Some(&user.token)).await;
        problem(response, StatusCode::FORBIDDEN).await;
    }
    // Managers never read cases.
    problem(
        app.get_case(&manager.token, &case["id"]).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.list_cases(&manager.token, "").await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn pipeline_and_expert_utilisation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.imported(&published_records()[..10]).await;
    let manager = app.staff("manager").await;
    let supporter = app.staff("supporter").await;
    let admin = app.admin_token().await;

    let empty = json_body(
        app.get("/api/v1/stats/pipeline", Some(&manager.token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        empty["open"],
        json!({"submitted": 0, "triage": 0, "awaiting_info": 0, "matching": 0, "in_consultation": 0})
    );
    assert_eq!(empty["open_total"], 0);
    // Imported records have neither a triage nor a close time.
    assert_eq!(
        empty["time_to_triage"],
        json!({"cases": 0, "median_seconds": null})
    );
    assert_eq!(
        empty["time_to_close"],
        json!({"cases": 0, "median_seconds": null})
    );
    assert_eq!(
        empty["overdue_triage"],
        json!({"cases": 0, "business_days": 3})
    );
    assert_eq!(empty["as_of"], today().to_string());

    let (_, waiting) = submit(&app, "drug", &["regulatory"]).await;
    let (_, matched) = submit(&app, "medical_device", &["regulatory"]).await;
    let (_, closed) = submit(&app, "other", &["other"]).await;
    app.claimed(&supporter.token, &waiting["id"]).await;
    triage_as(
        &app,
        &supporter,
        &matched,
        "medical_device",
        &["regulatory"],
        "expert",
    )
    .await;
    triage_as(&app, &supporter, &closed, "other", &["other"], "direct").await;
    app.moved(
        &supporter.token,
        &closed["id"],
        json!({"status": "closed", "outcome": "resolved"}),
    )
    .await;
    let pipeline = json_body(
        app.get("/api/v1/stats/pipeline", Some(&manager.token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pipeline["open"]["triage"], 1);
    assert_eq!(pipeline["open"]["matching"], 1);
    assert_eq!(pipeline["open_total"], 2);
    assert_eq!(pipeline["time_to_triage"]["cases"], 2);
    assert!(
        pipeline["time_to_triage"]["median_seconds"]
            .as_i64()
            .unwrap()
            >= 0
    );
    assert_eq!(pipeline["time_to_close"]["cases"], 1);
    assert_eq!(pipeline["overdue_triage"]["cases"], 0, "received today");

    // Two experts: one accepts, one declines, one never asked.
    let mut experts = Vec::new();
    for name in ["Accepting Expert", "Declining Expert", "Idle Expert"] {
        let email = format!("expert-{}@experts.example", random_suffix());
        let expert = json_body(
            app.post(
                "/api/v1/experts",
                Some(&admin),
                &json!({
                    "email": email, "password": PASSWORD, "name": name,
                    "affiliation": "Regulatory Partners",
                    "expertise": [{"category": "regulatory", "level": 2}],
                    "product_types": ["medical_device"], "languages": ["ja"],
                    "capacity": 3, "conflicts": [],
                }),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let token = app.tokens(&email, PASSWORD).await.0;
        experts.push((expert["id"].clone(), token));
    }
    let propose = |expert_id: Value| {
        let path = crate::helpers::case_path(&matched["id"], "/assignments");
        let token = supporter.token.clone();
        let app = &app;
        async move {
            json_body(
                app.post(
                    &path,
                    Some(&token),
                    &json!({"expert_id": expert_id, "role": "lead"}),
                )
                .await,
                StatusCode::CREATED,
            )
            .await
        }
    };
    let first = propose(experts[1].0.clone()).await;
    let path = format!("/api/v1/assignments/{}/decline", first["id"]);
    let response = app
        .post(&path, Some(&experts[1].1), &json!({"reason": "no time"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK, "decline");
    let second = propose(experts[0].0.clone()).await;
    let path = format!("/api/v1/assignments/{}/accept", second["id"]);
    let response = app.post(&path, Some(&experts[0].1), &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK, "accept");

    let list = json_body(
        app.get("/api/v1/stats/experts", Some(&manager.token)).await,
        StatusCode::OK,
    )
    .await;
    let items = list["items"].as_array().unwrap();
    let find = |id: &Value| {
        items
            .iter()
            .find(|i| &i["expert_id"] == id)
            .unwrap()
            .clone()
    };
    let accepting = find(&experts[0].0);
    assert_eq!(accepting["assignments"], 1);
    assert_eq!(accepting["accepted"], 1);
    assert_eq!(accepting["declined"], 0);
    assert_eq!(accepting["acceptance_rate"], 100);
    assert_eq!(accepting["active_load"], 1);
    assert_eq!(accepting["capacity"], 3);
    let declining = find(&experts[1].0);
    assert_eq!(declining["declined"], 1);
    assert_eq!(declining["acceptance_rate"], 0);
    assert_eq!(declining["active_load"], 0);
    let idle = find(&experts[2].0);
    assert_eq!(idle["assignments"], 0);
    assert_eq!(idle["acceptance_rate"], Value::Null);
}

on_both_backends!(
    reproduces_the_published_table_as_json_and_csv,
    date_ranges_are_inclusive_and_complete,
    trend_counts_cases_per_month_and_year,
    counts_the_applicants_choice_until_triage_confirms,
    rollups_always_equal_a_recount,
    rollups_stay_exact_under_concurrent_filing_and_triage,
    import_reports_every_bad_line_and_stores_nothing,
    a_large_import_is_stored_in_batches_in_received_order,
    a_large_import_with_bad_lines_throughout_stores_nothing,
    import_limits_size_and_content_type,
    imported_cases_send_no_mail,
    managers_get_aggregates_only,
    pipeline_and_expert_utilisation,
);
