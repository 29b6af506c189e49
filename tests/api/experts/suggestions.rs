//! Explained suggestions: the score and reasons of docs/matching.md, ties,
//! exclusions and conflicts of interest.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    FAR_FUTURE, desk, desk_with_applicant, exclusion, instant, profile, reason_of, suggested, with,
};
use crate::expert_helpers::Expert;
use crate::helpers::{Backend, case_path, error_fields, intake, json_body, problem, triage_body};

on_both_backends!(
    suggestions_rank_by_score_with_the_reasons_of_the_rules,
    the_worked_example_of_the_matching_rules_scores_71,
    suggestions_follow_the_confirmed_triage,
    ties_go_to_the_expert_assigned_least_recently,
    every_excluded_expert_is_listed_with_the_first_reason_that_applies,
    conflicts_match_across_width_case_and_legal_forms,
);

/// The suggestions without the display names: `{expert_id, score, reasons}`.
fn scored(ranking: &Value) -> Value {
    ranking["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            json!({"expert_id": item["expert_id"], "score": item["score"], "reasons": item["reasons"]})
        })
        .collect()
}

async fn suggestions_rank_by_score_with_the_reasons_of_the_rules(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory", "reimbursement"])
        .await;
    let id = &case["id"];

    let level = |n: i32| json!([{"category": "regulatory", "level": n}]);
    let senior = app
        .registered_expert(&admin, profile("Senior", json!({ "expertise": level(3) })))
        .await;
    let junior = app
        .registered_expert(&admin, profile("Junior", json!({ "expertise": level(1) })))
        .await;
    let drugs_only = app
        .registered_expert(
            &admin,
            profile(
                "Drugs Only",
                json!({"expertise": level(3), "product_types": ["drug"]}),
            ),
        )
        .await;
    let english_only = app
        .registered_expert(
            &admin,
            profile(
                "English Only",
                json!({"expertise": level(3), "languages": ["en"]}),
            ),
        )
        .await;
    let broad = app
        .registered_expert(
            &admin,
            profile(
                "Broad",
                json!({
                    "expertise": [
                        {"category": "ip_strategy", "level": 3},
                        {"category": "reimbursement", "level": 2},
                        {"category": "regulatory", "level": 2},
                    ],
                    "product_types": ["drug", "medical_device"],
                    "languages": ["en", "ja"],
                    "capacity": 4,
                }),
            ),
        )
        .await;
    // Covers none of the case's categories: neither suggested nor excluded.
    let off_topic = app
        .registered_expert(
            &admin,
            profile(
                "Off Topic",
                json!({"expertise": [{"category": "ip_strategy", "level": 3}]}),
            ),
        )
        .await;

    let ranking = app.ranking(&supporter, id).await;
    // Level × 10 per covered category, +15 product type, +10 language,
    // +⌊10 × spare / capacity⌋.
    assert_eq!(
        scored(&ranking),
        json!([
            {"expert_id": broad.id, "score": 75, "reasons": [
                "covers regulatory at level 2", "covers reimbursement at level 2",
                "product type medical_device", "speaks ja", "load 0 of 4"]},
            {"expert_id": senior.id, "score": 65, "reasons": [
                "covers regulatory at level 3", "product type medical_device", "speaks ja",
                "load 0 of 3"]},
            {"expert_id": english_only.id, "score": 55, "reasons": [
                "covers regulatory at level 3", "product type medical_device", "does not speak ja",
                "load 0 of 3"]},
            {"expert_id": drugs_only.id, "score": 50, "reasons": [
                "covers regulatory at level 3", "speaks ja", "load 0 of 3"]},
            {"expert_id": junior.id, "score": 45, "reasons": [
                "covers regulatory at level 1", "product type medical_device", "speaks ja",
                "load 0 of 3"]},
        ])
    );
    assert_eq!(ranking["items"][1]["name"], "Senior");
    assert!(!suggested(&ranking).contains(&off_topic.id));
    assert_eq!(ranking["excluded"], json!([]));

    // Deterministic: the same question gets the same answer.
    assert_eq!(app.ranking(&supporter, id).await, ranking);

    // `limit` keeps the best.
    let top = json_body(
        app.get(
            &format!("{}?limit=2", case_path(id, "/suggestions")),
            Some(&supporter.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(suggested(&top), vec![broad.id.clone(), senior.id.clone()]);
    let refused = problem(
        app.get(
            &format!("{}?limit=0", case_path(id, "/suggestions")),
            Some(&supporter.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["limit"]);

    // Suggestions are for the desk.
    problem(
        app.suggestions(&applicant.token, id).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.suggestions(&senior.user.token, id).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.suggestions(&supporter.token, &json!(999_999)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn the_worked_example_of_the_matching_rules_scores_71(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let categories = ["regulatory", "reimbursement"];
    let case = app.matching_case(&supporter, &applicant, &categories).await;
    let elsewhere = app.matching_case(&supporter, &applicant, &categories).await;
    let further = app.matching_case(&supporter, &applicant, &categories).await;
    let expert = app
        .registered_expert(
            &admin,
            profile(
                "Worked Example",
                json!({"expertise": [
                    {"category": "regulatory", "level": 3},
                    {"category": "reimbursement", "level": 1},
                ]}),
            ),
        )
        .await;

    // docs/matching.md: 1 active case of 3 → 30 + 10 + 15 + 10 + ⌊10 × 2 / 3⌋ = 71.
    app.proposed(&supporter, &elsewhere["id"], &expert).await;
    let ranking = app.ranking(&supporter, &case["id"]).await;
    assert_eq!(
        scored(&ranking),
        json!([{"expert_id": expert.id, "score": 71, "reasons": [
            "covers regulatory at level 3", "covers reimbursement at level 1",
            "product type medical_device", "speaks ja", "load 1 of 3"]}])
    );

    // An accepted assignment is load too: 2 of 3 → ⌊10 × 1 / 3⌋ = 3.
    app.engaged(&supporter, &further["id"], &expert).await;
    let ranking = app.ranking(&supporter, &case["id"]).await;
    assert_eq!(ranking["items"][0]["score"], 68);
    assert_eq!(ranking["items"][0]["reasons"][4], "load 2 of 3");
}

async fn suggestions_follow_the_confirmed_triage(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    // The applicant asked about funding a drug; triage confirms a regulatory
    // question about a medical device.
    let filed = app
        .new_case_with(
            &applicant.token,
            &with(
                intake(),
                json!({"product_type": "drug", "categories": ["fundraising"]}),
            ),
        )
        .await;
    let id = &filed["id"];
    app.claimed(&supporter.token, id).await;
    let triage = with(
        triage_body("expert"),
        json!({"product_type": "medical_device", "categories": ["regulatory"]}),
    );
    let triaged = json_body(
        app.triage(&supporter.token, id, &triage, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(triaged["status"], "matching");
    let regulatory = app.expert_named(&admin, "Regulatory").await;
    let investor = app
        .registered_expert(
            &admin,
            profile(
                "Investor",
                json!({"expertise": [{"category": "fundraising", "level": 3}], "product_types": ["drug"]}),
            ),
        )
        .await;

    let ranking = app.ranking(&supporter, id).await;
    assert_eq!(
        scored(&ranking),
        json!([{"expert_id": regulatory.id, "score": 55, "reasons": [
            "covers regulatory at level 2", "product type medical_device", "speaks ja",
            "load 0 of 3"]}])
    );
    assert!(exclusion(&ranking, &investor).is_none());
}

async fn ties_go_to_the_expert_assigned_least_recently(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let other = app.regulatory_case(&supporter, &applicant).await;
    let pool = app
        .experts_named(&admin, ["Alpha", "Bravo", "Charlie"])
        .await;

    // Three identical experts score the same; none was ever assigned.
    let ranking = app.ranking(&supporter, &case["id"]).await;
    let initial = suggested(&ranking);
    assert_eq!(initial.len(), 3);
    for item in ranking["items"].as_array().unwrap() {
        assert_eq!(item["score"], 55);
    }
    let by_id = |id: &Value| pool.iter().find(|e| e.id == *id).unwrap().clone();
    let (first, second, third) = (by_id(&initial[0]), by_id(&initial[1]), by_id(&initial[2]));

    // The first two take (and leave) another case, first before second:
    // their load is back to 0, so only the assignment history differs.
    for expert in [&first, &second] {
        let assignment = app.proposed(&supporter, &other["id"], expert).await;
        app.withdrawn(&supporter, &assignment).await;
    }
    let ranking = app.ranking(&supporter, &case["id"]).await;
    assert_eq!(
        suggested(&ranking),
        vec![third.id.clone(), first.id.clone(), second.id.clone()]
    );
    for item in ranking["items"].as_array().unwrap() {
        assert_eq!(item["score"], 55);
        assert_eq!(item["reasons"][3], "load 0 of 3");
    }
    assert!(app.expert_record(&admin, &third).await["last_assigned_at"].is_null());
    let first_at = instant(&app.expert_record(&admin, &first).await["last_assigned_at"]);
    let second_at = instant(&app.expert_record(&admin, &second).await["last_assigned_at"]);
    assert!(first_at < second_at);
}

async fn every_excluded_expert_is_listed_with_the_first_reason_that_applies(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let elsewhere = app.regulatory_case(&supporter, &applicant).await;

    let register = |name: &'static str, change: Value| {
        let app = &app;
        let admin = &admin;
        async move { app.registered_expert(admin, profile(name, change)).await }
    };
    let conflicted = register("Conflicted", json!({"conflicts": ["ﾒﾄﾞﾃｯｸ(株)"]})).await;
    let conflicted_and_paused = register(
        "Conflicted And Paused",
        json!({"conflicts": ["メドテック 株式会社"], "paused_until": FAR_FUTURE}),
    )
    .await;
    let paused = register("Paused", json!({ "paused_until": FAR_FUTURE })).await;
    let paused_off_topic = register(
        "Paused Off Topic",
        json!({"paused_until": FAR_FUTURE, "expertise": [{"category": "ip_strategy", "level": 3}]}),
    )
    .await;
    let back_from_pause = register("Back From Pause", json!({"paused_until": "2000-01-01"})).await;
    let full = register("Full", json!({"capacity": 1})).await;
    let decliner = register("Decliner", json!({})).await;
    let proposed = register("Proposed", json!({})).await;
    let engaged = register("Engaged", json!({})).await;
    // A romanised name is not the same organisation as the Japanese one.
    let romanised = register("Romanised", json!({"conflicts": ["MedTech"]})).await;

    app.proposed(&supporter, &elsewhere["id"], &full).await;
    let declined = app.proposed(&supporter, id, &decliner).await;
    app.declined(&decliner, &declined, "no time this month")
        .await;
    app.proposed(&supporter, id, &proposed).await;
    app.engaged(&supporter, id, &engaged).await;

    let ranking = app.ranking(&supporter, id).await;
    let expected = [
        (&conflicted, "conflict_of_interest"),
        (&conflicted_and_paused, "conflict_of_interest"),
        (&paused, "paused"),
        (&paused_off_topic, "paused"),
        (&full, "at_capacity"),
        (&decliner, "declined_before"),
        (&proposed, "already_assigned"),
        (&engaged, "already_assigned"),
    ];
    for (expert, reason) in expected {
        assert_eq!(
            reason_of(&ranking, expert).as_deref(),
            Some(reason),
            "{}",
            expert.user.email
        );
        assert!(!suggested(&ranking).contains(&expert.id));
    }
    assert_eq!(
        ranking["excluded"].as_array().unwrap().len(),
        expected.len()
    );
    let mut suggested_now = suggested(&ranking);
    suggested_now.sort_by_key(Value::to_string);
    let mut available = vec![back_from_pause.id.clone(), romanised.id.clone()];
    available.sort_by_key(Value::to_string);
    assert_eq!(suggested_now, available);

    // Each exclusion says why in words, with the expert's name.
    let detail = |expert: &Expert| {
        exclusion(&ranking, expert).unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(detail(&conflicted).contains("メドテック"));
    assert!(detail(&paused).contains(FAR_FUTURE));
    assert!(detail(&full).contains("load 1 of 1"));
    assert!(detail(&decliner).contains("declined"));
    assert_eq!(exclusion(&ranking, &full).unwrap()["name"], "Full");

    // docs/matching.md: `excluded` is sorted by expert id.
    let excluded_ids: Vec<i64> = ranking["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["expert_id"].as_i64().expect("numeric ids"))
        .collect();
    let mut sorted_ids = excluded_ids.clone();
    sorted_ids.sort_unstable();
    assert_eq!(excluded_ids, sorted_ids);
}

async fn conflicts_match_across_width_case_and_legal_forms(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let japanese = app.applicant("株式会社メドテック").await;
    let english = app.applicant("MedTech Inc.").await;
    let japanese_case = app.regulatory_case(&supporter, &japanese).await;
    let english_case = app.regulatory_case(&supporter, &english).await;

    let mut experts = Vec::new();
    for (name, conflict) in [
        ("Half Width", "ﾒﾄﾞﾃｯｸ(株)"),
        ("Spaced", "メドテック 株式会社"),
        ("Enclosed", "㈱メドテック"),
        ("Full Width", "ＭＥＤＴＥＣＨ, Co., Ltd."),
        ("Spelled Out", "Med Tech Corporation"),
        ("Labs", "MedTech Labs"),
    ] {
        let expert = app
            .registered_expert(&admin, profile(name, json!({ "conflicts": [conflict] })))
            .await;
        experts.push((name, expert));
    }
    let conflicted_on = |ranking: &Value| -> Vec<&str> {
        experts
            .iter()
            .filter(|(_, e)| reason_of(ranking, e).as_deref() == Some("conflict_of_interest"))
            .map(|(name, _)| *name)
            .collect()
    };

    let ranking = app.ranking(&supporter, &japanese_case["id"]).await;
    assert_eq!(
        conflicted_on(&ranking),
        vec!["Half Width", "Spaced", "Enclosed"]
    );
    assert!(
        ranking["excluded"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("メドテック")
    );

    let ranking = app.ranking(&supporter, &english_case["id"]).await;
    assert_eq!(conflicted_on(&ranking), vec!["Full Width", "Spelled Out"]);
    assert!(
        ranking["excluded"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("medtech")
    );
    // "MedTech Labs" is another organisation: suggested for both.
    let (_, labs) = &experts[5];
    assert!(suggested(&ranking).contains(&labs.id));
}
