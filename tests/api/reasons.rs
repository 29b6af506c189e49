//! Suggestion reasons and exclusions in the caller's language (issue 16):
//! each carries a code, its parameters and a label in the user's `locale`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::expert_helpers::expert_profile;
use crate::helpers::{Backend, PASSWORD, TestApp, User, json_body, random_suffix};

on_both_backends!(suggestions_are_labelled_in_the_callers_language);

/// A supporter whose `locale` is `locale`.
async fn supporter_in(app: &TestApp, admin: &str, locale: &str) -> User {
    let email = format!("supporter-{locale}-{}@desk.example", random_suffix());
    let user = json_body(
        app.create_user(
            admin,
            &json!({"email": email, "password": PASSWORD, "name": "Supporter",
                    "role": "supporter", "locale": locale}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    User {
        token: app.tokens(&email, PASSWORD).await.0,
        email,
        id: user["id"].clone(),
        organization_id: Value::Null,
    }
}

async fn suggestions_are_labelled_in_the_callers_language(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let ja = supporter_in(&app, &admin, "ja").await;
    let en = supporter_in(&app, &admin, "en").await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app.regulatory_case(&ja, &applicant).await;
    // Regulatory at level 2, medical devices, Japanese, capacity 3.
    let fits = app.expert_named(&admin, "Fits").await;
    let mut paused = expert_profile("Paused");
    paused["paused_until"] = json!("2999-12-31");
    let paused = json_body(
        app.create_expert(&admin, &paused).await,
        StatusCode::CREATED,
    )
    .await;

    let in_ja = json_body(
        app.suggestions(&ja.token, &case["id"]).await,
        StatusCode::OK,
    )
    .await;
    let in_en = json_body(
        app.suggestions(&en.token, &case["id"]).await,
        StatusCode::OK,
    )
    .await;

    let item = |ranking: &Value| ranking["items"][0].clone();
    assert_eq!(item(&in_ja)["expert_id"], fits.id);
    assert_eq!(
        item(&in_ja)["reasons"],
        json!([
            "法規制対応（レベル2）",
            "製品種別が一致（医療機器）",
            "日本語で対応可",
            "担当中 0 件（上限 3 件）"
        ])
    );
    assert_eq!(
        item(&in_en)["reasons"],
        json!([
            "covers regulatory at level 2",
            "product type medical_device",
            "speaks ja",
            "load 0 of 3"
        ])
    );
    // Codes and parameters do not depend on the language; labels do.
    let details = |ranking: &Value| {
        item(ranking)["reason_details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["code"].clone(), d["params"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(details(&in_ja), details(&in_en));
    assert_eq!(
        details(&in_en),
        vec![
            (
                json!("covers_category"),
                json!({"category": "regulatory", "level": 2})
            ),
            (
                json!("product_type"),
                json!({"product_type": "medical_device"})
            ),
            (json!("speaks"), json!({"language": "ja"})),
            (json!("load"), json!({"load": 0, "capacity": 3})),
        ]
    );
    let labels: Vec<Value> = item(&in_ja)["reason_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["label"].clone())
        .collect();
    assert_eq!(json!(labels), item(&in_ja)["reasons"]);

    let excluded = |ranking: &Value| ranking["excluded"][0].clone();
    for ranking in [&in_ja, &in_en] {
        assert_eq!(excluded(ranking)["expert_id"], paused["id"]);
        assert_eq!(excluded(ranking)["reason"], "paused");
        assert_eq!(excluded(ranking)["reason_code"], "paused");
        assert_eq!(excluded(ranking)["params"], json!({"until": "2999-12-31"}));
    }
    assert_eq!(excluded(&in_ja)["label"], "2999-12-31 まで休止中");
    assert_eq!(excluded(&in_en)["label"], "paused until 2999-12-31");
    assert_eq!(excluded(&in_ja)["detail"], excluded(&in_ja)["label"]);
}
