//! What the requests send: intake forms (Japanese text with quotes and
//! markup), the historical cases' CSV the desk is seeded with, and the
//! statistics ranges; all derived from a number, so runs are repeatable.

use std::fmt::Write as _;

use serde_json::{Value, json};

/// Multi-year ranges over the imported history (fiscal and calendar years).
pub const STATS_RANGES: [(&str, &str); 4] = [
    ("2019-04-01", "2026-03-31"),
    ("2019-01-01", "2021-12-31"),
    ("2022-01-01", "2024-12-31"),
    ("2020-04-01", "2025-03-31"),
];

const PRODUCT_TYPES: [(&str, &str); 4] = [
    ("drug", "医薬品"),
    ("medical_device", "医療機器"),
    ("regenerative", "再生医療等製品"),
    ("other", "その他"),
];
const CATEGORIES: [(&str, &str); 9] = [
    ("regulatory", "法規制対応"),
    ("marketing", "マーケティング"),
    ("business_plan", "事業計画"),
    ("fundraising", "資金調達"),
    ("management_strategy", "経営戦略"),
    ("ip_strategy", "知財戦略"),
    ("international", "国際展開"),
    ("reimbursement", "保険収載"),
    ("other", "その他"),
];
const STAGES: [&str; 6] = [
    "idea",
    "basic_research",
    "non_clinical",
    "clinical",
    "regulatory_submission",
    "marketed",
];
const OUTCOMES: [&str; 5] = [
    "resolved",
    "referred",
    "out_of_scope",
    "withdrawn",
    "no_response",
];

/// `count` distinct category indexes for case `n` (a stride of 2 is coprime
/// to 9, so up to 9 never repeat).
fn category_indexes(n: u64, count: usize) -> impl Iterator<Item = usize> {
    let start = (n % CATEGORIES.len() as u64) as usize;
    (0..count).map(move |k| (start + 2 * k) % CATEGORIES.len())
}

/// An intake form: 2 or 3 categories, Japanese title and description (with
/// quotes and markup, which are stored verbatim).
pub fn case_body(n: u64) -> Value {
    let (product, product_ja) = PRODUCT_TYPES[(n % 4) as usize];
    let indexes: Vec<usize> = category_indexes(n / 4, 2 + (n % 2) as usize).collect();
    let categories: Vec<&str> = indexes.iter().map(|&i| CATEGORIES[i].0).collect();
    let topic = CATEGORIES[indexes[0]].1;
    json!({
        "title": format!("{product_ja}の{topic}についての相談（{n}）"),
        "description": format!(
            "当社は{product_ja}の開発を進めている大学発スタートアップです。\
             {topic}について、今後の進め方をご相談させてください。\
             現在、「非臨床試験」の結果を取りまとめており、来年度には臨床試験の開始を計画しています。\
             規制当局との事前相談の時期、必要な資料、費用の目安を教えていただけますか。\
             また、海外展開（米国・欧州）を見据えた体制づくりについても助言をいただきたいです。\
             参考資料: <a href=\"https://example.jp/plan\">事業計画書</a> & 開発ロードマップ（案 {n}）"
        ),
        "product_type": product,
        "categories": categories,
        "stage": STAGES[(n % STAGES.len() as u64) as usize],
        "organization": {"kind": "startup"},
        "language": "ja",
    })
}

/// The historical cases (`--cases`): closed, received from April 2019 to
/// March 2026, 1-3 categories, a few hundred organisations, as the import's CSV.
pub fn history_csv(count: usize, rows: std::ops::Range<usize>) -> String {
    let first = chrono::NaiveDate::from_ymd_opt(2019, 4, 1).expect("valid date");
    let last = chrono::NaiveDate::from_ymd_opt(2026, 3, 31).expect("valid date");
    let span = (last - first).num_days() as usize + 1;
    let organizations = (count / 8).max(1);
    let mut csv =
        String::from("received_on,product_type,categories,organization,title,status,outcome\n");
    for i in rows {
        let n = i as u64;
        let day = first + chrono::Days::new((i * span / count.max(1)) as u64);
        // Roughly the real desk's spread: half devices, a quarter drugs.
        let product = match (n * 37) % 100 {
            0..=44 => "medical_device",
            45..=69 => "drug",
            70..=79 => "regenerative",
            _ => "other",
        };
        let categories: Vec<&str> = category_indexes(n * 5 + n / 9, 1 + (n % 3) as usize)
            .map(|k| CATEGORIES[k].0)
            .collect();
        let topic = CATEGORIES[(n * 5 + n / 9) as usize % CATEGORIES.len()].1;
        let _ = writeln!(
            csv,
            "{day},{product},{},ベンチ医療技術{:03}株式会社,{topic}に関する過去の相談 {i},closed,{}",
            categories.join(";"),
            i % organizations,
            OUTCOMES[i % OUTCOMES.len()],
        );
    }
    csv
}
