//! Experts, as API.md's "Experts and matching", PRODUCT.md's "Expert registry
//! and matching" and docs/matching.md pin them: the registry, explained
//! suggestions, assignments, what an expert sees of a case, meetings and
//! support plans.

use chrono::DateTime;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::expert_helpers::{Expert, expert_profile, meeting_body};
use crate::helpers::{
    Backend, PASSWORD, TestApp, User, case_path, error_fields, intake, items, json_body, kinds,
    problem, triage_body,
};
use crate::mailbox::{token_in, wait_for_mail};

on_both_backends!(
    // registry
    admin_registers_an_expert_who_signs_in_as_an_expert,
    an_expert_without_a_password_sets_one_with_the_mailed_token,
    registering_a_taken_address_is_a_conflict,
    registry_validation_names_the_bad_field_and_stores_nothing,
    desk_staff_read_the_registry_and_only_admins_write_it,
    patching_changes_only_the_given_fields_and_null_resumes,
    // suggestions
    suggestions_rank_by_score_with_the_reasons_of_the_rules,
    the_worked_example_of_the_matching_rules_scores_71,
    suggestions_follow_the_confirmed_triage,
    ties_go_to_the_expert_assigned_least_recently,
    every_excluded_expert_is_listed_with_the_first_reason_that_applies,
    conflicts_match_across_width_case_and_legal_forms,
    // assignments
    conflicted_paused_or_full_experts_cannot_be_assigned,
    experts_are_assigned_only_while_matching_or_in_consultation,
    a_case_has_at_most_one_active_lead,
    accepting_starts_the_consultation_and_records_the_terms,
    only_the_proposed_expert_accepts_and_only_once,
    declining_needs_a_reason_and_the_case_stays_matching,
    answering_an_assignment_no_longer_proposed_is_a_conflict,
    a_decline_returns_a_case_without_accepted_experts_to_matching,
    capacity_counts_proposed_and_accepted_assignments_only,
    // what experts see
    an_unassigned_expert_sees_nothing_of_the_case,
    a_proposed_expert_sees_a_logged_summary_without_the_text,
    accepting_opens_the_description_and_every_message,
    access_ends_when_the_assignment_ends,
    the_queue_lists_only_the_experts_own_assignments,
    // meetings
    an_accepted_expert_records_a_meeting_and_its_advice,
    only_accepted_experts_record_their_own_meetings,
    meeting_validation_names_each_bad_field,
    // support plans
    supporters_write_plan_revisions_read_newest_first,
    applicants_and_experts_do_not_write_the_plan,
    // listing
    the_desk_lists_the_cases_of_one_expert,
);

/// Far enough ahead that "today" never reaches it.
const FAR_FUTURE: &str = "2999-12-31";

// ---------------------------------------------------------------- helpers

/// A fresh app, an admin token and a signed-in supporter.
async fn desk(backend: Backend) -> (TestApp, String, User) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    (app, admin, supporter)
}

/// `base` with the top-level fields of `change` replaced.
fn with(mut base: Value, change: Value) -> Value {
    let base_fields = base.as_object_mut().expect("an object");
    for (key, value) in change.as_object().expect("an object") {
        base_fields.insert(key.clone(), value.clone());
    }
    base
}

/// The default profile named `name`, with `change` applied.
fn profile(name: &str, change: Value) -> Value {
    with(expert_profile(name), change)
}

/// An expert's registry entry with its list fields in a fixed order, so
/// two readings compare equal whatever order the server lists them in.
fn sorted_entry(expert: &Value) -> Value {
    let mut entry = expert.clone();
    for key in ["product_types", "languages", "conflicts"] {
        let list = entry[key].as_array_mut().expect(key);
        list.sort_by_key(|v| v.as_str().expect("a string").to_owned());
    }
    let expertise = entry["expertise"].as_array_mut().expect("expertise");
    expertise.sort_by_key(|e| e["category"].as_str().expect("category").to_owned());
    entry
}

/// The suggested expert ids, best first.
fn suggested(ranking: &Value) -> Vec<Value> {
    ranking["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["expert_id"].clone())
        .collect()
}

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

/// The `excluded` entry of `expert`, if any.
fn exclusion<'a>(ranking: &'a Value, expert: &Expert) -> Option<&'a Value> {
    ranking["excluded"]
        .as_array()
        .expect("excluded")
        .iter()
        .find(|e| e["expert_id"] == expert.id)
}

/// The exclusion reason code of `expert`, if excluded.
fn reason_of(ranking: &Value, expert: &Expert) -> Option<String> {
    exclusion(ranking, expert).map(|e| e["reason"].as_str().expect("reason").to_owned())
}

/// The ids of the items of a list document (assignments, meetings …).
fn item_ids(list: Value) -> Vec<Value> {
    items(list)
        .into_iter()
        .map(|item| item["id"].clone())
        .collect()
}

fn instant(text: &Value) -> DateTime<chrono::FixedOffset> {
    let text = text.as_str().expect("a time");
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text} is not RFC 3339: {e}"))
}

async fn case_status(app: &TestApp, supporter: &User, id: &Value) -> String {
    app.case(&supporter.token, id).await["status"]
        .as_str()
        .expect("status")
        .to_owned()
}

/// The expert ids of a case's assignments, with their status, as the desk sees them.
async fn assignments_on(app: &TestApp, supporter: &User, id: &Value) -> Vec<(Value, String)> {
    let list = json_body(
        app.case_assignments(&supporter.token, id).await,
        StatusCode::OK,
    )
    .await;
    items(list)
        .into_iter()
        .map(|item| {
            let assignment = &item["assignment"];
            (
                assignment["expert_id"].clone(),
                assignment["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

/// Posts a message as `token`, asserting 201.
async fn posted(app: &TestApp, token: &str, id: &Value, body: &Value) {
    json_body(
        app.post_message(token, id, body, None).await,
        StatusCode::CREATED,
    )
    .await;
}

/// Asserts that `expert` sees nothing of the case any more.
async fn assert_no_access(app: &TestApp, expert: &Expert, id: &Value) {
    let token = &expert.user.token;
    problem(app.get_case(token, id).await, StatusCode::NOT_FOUND).await;
    problem(app.messages(token, id).await, StatusCode::NOT_FOUND).await;
    problem(app.events(token, id).await, StatusCode::NOT_FOUND).await;
    assert!(app.listed_ids(token, "").await.is_empty());
    let queue = json_body(app.my_assignments(token, "").await, StatusCode::OK).await;
    assert_eq!(queue["items"], json!([]));
}

// ---------------------------------------------------------------- registry

async fn admin_registers_an_expert_who_signs_in_as_an_expert(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let body = profile(
        "佐藤 一郎",
        json!({
            "email": "ichiro.sato@experts.example",
            "affiliation": "佐藤特許事務所",
            "expertise": [{"category": "ip_strategy", "level": 3}, {"category": "regulatory", "level": 1}],
            "product_types": ["drug", "medical_device"],
            "languages": ["ja", "en"],
            "capacity": 5,
            "conflicts": ["株式会社メドテック", "Bio Ventures Inc."],
        }),
    );
    let created = json_body(app.create_expert(&admin, &body).await, StatusCode::CREATED).await;
    assert!(!created["id"].is_null());
    assert!(!created["user_id"].is_null());
    let entry = sorted_entry(&created);
    assert_eq!(entry["name"], "佐藤 一郎");
    assert_eq!(entry["affiliation"], "佐藤特許事務所");
    assert_eq!(
        entry["expertise"],
        json!([{"category": "ip_strategy", "level": 3}, {"category": "regulatory", "level": 1}])
    );
    assert_eq!(entry["product_types"], json!(["drug", "medical_device"]));
    assert_eq!(entry["languages"], json!(["en", "ja"]));
    assert_eq!(entry["capacity"], 5);
    assert_eq!(entry["active_load"], 0);
    assert!(entry["paused_until"].is_null());
    assert_eq!(
        entry["conflicts"],
        json!(["Bio Ventures Inc.", "株式会社メドテック"])
    );
    assert!(entry["last_assigned_at"].is_null());
    assert!(created.get("password").is_none() && created.get("password_hash").is_none());

    // The registry reads it back, and the expert signs in as an expert.
    let read = json_body(app.get_expert(&admin, &created["id"]).await, StatusCode::OK).await;
    assert_eq!(sorted_entry(&read), entry);
    let listed = item_ids(json_body(app.list_experts(&admin).await, StatusCode::OK).await);
    assert_eq!(listed, vec![created["id"].clone()]);
    let token = app.tokens("ichiro.sato@experts.example", PASSWORD).await.0;
    let me = json_body(app.me(&token).await, StatusCode::OK).await;
    assert_eq!(me["role"], "expert");
    assert_eq!(me["id"], created["user_id"]);
    assert_eq!(me["name"], "佐藤 一郎");
}

async fn an_expert_without_a_password_sets_one_with_the_mailed_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let email = "invited@experts.example";
    let mut body = profile("Invited Expert", json!({ "email": email }));
    body.as_object_mut().unwrap().remove("password");
    let created = json_body(app.create_expert(&admin, &body).await, StatusCode::CREATED).await;

    // Until the expert sets a password, no password signs in.
    problem(app.login(email, PASSWORD).await, StatusCode::UNAUTHORIZED).await;

    let mail = wait_for_mail(&app.mail_dir, email, |m| {
        m.text.contains("/api/v1/auth/password")
    })
    .await;
    let token = token_in(&mail.text);

    // A weak password is refused and does not use the token up.
    let weak = problem(
        app.set_password(&token, "short").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&weak), vec!["password"]);

    let set = app.set_password(&token, PASSWORD).await;
    assert_eq!(set.status(), StatusCode::NO_CONTENT);

    // Single use: the same token cannot set another password.
    let again = problem(
        app.set_password(&token, "another long password").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&again), vec!["token"]);
    let unknown = problem(
        app.set_password(&"0".repeat(64), PASSWORD).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&unknown), vec!["token"]);

    problem(
        app.login(email, "another long password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let access = app.tokens(email, PASSWORD).await.0;
    let me = json_body(app.me(&access).await, StatusCode::OK).await;
    assert_eq!(me["role"], "expert");
    assert_eq!(me["id"], created["user_id"]);
}

async fn registering_a_taken_address_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;

    // An applicant's address does not become an expert.
    let (applicant_email, _) = app.new_applicant("株式会社メドテック").await;
    let taken = problem(
        app.create_expert(
            &admin,
            &profile("Applicant", json!({ "email": applicant_email })),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(taken["detail"].as_str().unwrap().contains("not an expert"));
    let applicant = app.tokens(&applicant_email, PASSWORD).await.0;
    assert_eq!(
        json_body(app.me(&applicant).await, StatusCode::OK).await["role"],
        "applicant"
    );

    // The same expert twice, even with the address in capitals.
    let twice = profile("Twice", json!({}));
    let first = json_body(app.create_expert(&admin, &twice).await, StatusCode::CREATED).await;
    let shouting = with(
        twice.clone(),
        json!({"email": twice["email"].as_str().unwrap().to_uppercase()}),
    );
    let duplicate = problem(
        app.create_expert(&admin, &shouting).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(duplicate["detail"].as_str().unwrap().contains("already"));

    // An expert account without a registry entry is linked, once.
    let account = app.staff("expert").await;
    let linking = profile("Linked", json!({ "email": account.email }));
    let linked = json_body(
        app.create_expert(&admin, &linking).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(linked["user_id"], account.id);
    problem(
        app.create_expert(&admin, &linking).await,
        StatusCode::CONFLICT,
    )
    .await;

    let mut listed = item_ids(json_body(app.list_experts(&admin).await, StatusCode::OK).await);
    listed.sort_by_key(Value::to_string);
    let mut expected = vec![first["id"].clone(), linked["id"].clone()];
    expected.sort_by_key(Value::to_string);
    assert_eq!(listed, expected);
}

async fn registry_validation_names_the_bad_field_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let invalid = [
        (
            json!({"expertise": [{"category": "astrology", "level": 2}]}),
            "expertise",
        ),
        (
            json!({"expertise": [{"category": "regulatory", "level": 0}]}),
            "expertise",
        ),
        (
            json!({"expertise": [{"category": "regulatory", "level": 4}]}),
            "expertise",
        ),
        (
            json!({"expertise": [{"category": "regulatory", "level": 1}, {"category": "regulatory", "level": 3}]}),
            "expertise",
        ),
        (json!({"expertise": []}), "expertise"),
        (json!({"capacity": 0}), "capacity"),
        (json!({"capacity": 51}), "capacity"),
        (json!({"languages": ["fr"]}), "languages"),
        (json!({"languages": []}), "languages"),
        (json!({"languages": ["ja", "ja"]}), "languages"),
        (json!({"product_types": ["food"]}), "product_types"),
        (json!({"conflicts": ["株式会社"]}), "conflicts"),
        (json!({"conflicts": ["Inc."]}), "conflicts"),
        (json!({"paused_until": "next week"}), "paused_until"),
        (json!({"email": "not an address"}), "email"),
        (json!({"password": "short"}), "password"),
    ];
    for (change, field) in invalid {
        let body = profile("Invalid", change.clone());
        let refused = problem(
            app.create_expert(&admin, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec![field], "{change}");
    }

    // Every bad field at once is named.
    let body = profile(
        "Invalid",
        json!({"capacity": 0, "languages": [], "expertise": [{"category": "regulatory", "level": 4}]}),
    );
    let refused = problem(
        app.create_expert(&admin, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields = error_fields(&refused);
    for field in ["capacity", "languages", "expertise"] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }

    let listed = json_body(app.list_experts(&admin).await, StatusCode::OK).await;
    assert_eq!(listed["items"], json!([]));
}

async fn desk_staff_read_the_registry_and_only_admins_write_it(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let expert = app
        .registered_expert(&admin, expert_profile("Registered"))
        .await;

    let listed =
        item_ids(json_body(app.list_experts(&supporter.token).await, StatusCode::OK).await);
    assert_eq!(listed, vec![expert.id.clone()]);
    let read = json_body(
        app.get_expert(&supporter.token, &expert.id).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(read["name"], "Registered");
    problem(
        app.create_expert(&supporter.token, &expert_profile("Nope"))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.update_expert(&supporter.token, &expert.id, &json!({"capacity": 9}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let applicant = app.applicant("株式会社メドテック").await;
    let manager = app.staff("manager").await;
    for (who, token) in [
        ("applicant", &applicant.token),
        ("manager", &manager.token),
        ("expert", &expert.user.token),
    ] {
        let calls = [
            ("list", app.list_experts(token).await),
            ("get", app.get_expert(token, &expert.id).await),
            (
                "create",
                app.create_expert(token, &expert_profile("Nope")).await,
            ),
            (
                "patch",
                app.update_expert(token, &expert.id, &json!({"capacity": 9}))
                    .await,
            ),
        ];
        for (what, response) in calls {
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{who} {what}");
            problem(response, StatusCode::FORBIDDEN).await;
        }
    }
    problem(
        app.get("/api/v1/experts", None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // Nothing was written by anyone refused.
    let after = app.expert_record(&admin, &expert).await;
    assert_eq!(after["capacity"], 3);
    let listed = item_ids(json_body(app.list_experts(&admin).await, StatusCode::OK).await);
    assert_eq!(listed, vec![expert.id.clone()]);
}

async fn patching_changes_only_the_given_fields_and_null_resumes(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let expert = app
        .registered_expert(
            &admin,
            profile(
                "Patched",
                json!({"languages": ["ja", "en"], "conflicts": ["Bio Ventures Inc."]}),
            ),
        )
        .await;
    let before = sorted_entry(&app.expert_record(&admin, &expert).await);

    let patched = json_body(
        app.update_expert(&admin, &expert.id, &json!({"capacity": 7}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        sorted_entry(&patched),
        with(before.clone(), json!({"capacity": 7}))
    );

    // Paused until a future date: excluded as paused, the rest untouched.
    let paused = json_body(
        app.update_expert(&admin, &expert.id, &json!({ "paused_until": FAR_FUTURE }))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(paused["paused_until"], FAR_FUTURE);
    assert_eq!(paused["capacity"], 7);
    assert_eq!(
        reason_of(&app.ranking(&supporter, id).await, &expert).as_deref(),
        Some("paused")
    );

    // New conflicts replace the old ones; the pause stays.
    let conflicted = json_body(
        app.update_expert(&admin, &expert.id, &json!({"conflicts": ["ﾒﾄﾞﾃｯｸ(株)"]}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(conflicted["conflicts"], json!(["ﾒﾄﾞﾃｯｸ(株)"]));
    assert_eq!(conflicted["paused_until"], FAR_FUTURE);
    assert_eq!(
        reason_of(&app.ranking(&supporter, id).await, &expert).as_deref(),
        Some("conflict_of_interest")
    );

    // An invalid patch changes nothing.
    for (change, field) in [
        (json!({"capacity": 0, "paused_until": null}), "capacity"),
        (json!({"conflicts": ["株式会社"]}), "conflicts"),
        (json!({"languages": []}), "languages"),
    ] {
        let refused = problem(
            app.update_expert(&admin, &expert.id, &change).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec![field], "{change}");
    }
    assert_eq!(
        sorted_entry(&app.expert_record(&admin, &expert).await),
        sorted_entry(&conflicted)
    );

    // Null resumes; an empty list clears the conflicts.
    let resumed = json_body(
        app.update_expert(
            &admin,
            &expert.id,
            &json!({"paused_until": null, "conflicts": []}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(resumed["paused_until"].is_null());
    assert_eq!(resumed["conflicts"], json!([]));
    assert_eq!(
        sorted_entry(&resumed),
        with(before, json!({"capacity": 7, "conflicts": []}))
    );
    let ranking = app.ranking(&supporter, id).await;
    assert_eq!(suggested(&ranking), vec![expert.id.clone()]);
    assert_eq!(ranking["excluded"], json!([]));

    problem(
        app.update_expert(&admin, &json!(999_999), &json!({"capacity": 2}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

// ---------------------------------------------------------------- suggestions

async fn suggestions_rank_by_score_with_the_reasons_of_the_rules(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
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
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
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
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
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
    let regulatory = app
        .registered_expert(&admin, expert_profile("Regulatory"))
        .await;
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
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let other = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let mut pool = Vec::new();
    for name in ["Alpha", "Bravo", "Charlie"] {
        pool.push(app.registered_expert(&admin, expert_profile(name)).await);
    }

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
        json_body(
            app.withdraw_assignment(&supporter.token, &assignment["id"])
                .await,
            StatusCode::OK,
        )
        .await;
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
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let elsewhere = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;

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
    let japanese_case = app
        .matching_case(&supporter, &japanese, &["regulatory"])
        .await;
    let english_case = app
        .matching_case(&supporter, &english, &["regulatory"])
        .await;

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

// ---------------------------------------------------------------- assignments

async fn conflicted_paused_or_full_experts_cannot_be_assigned(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let elsewhere = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let conflicted = app
        .registered_expert(
            &admin,
            profile("Conflicted", json!({"conflicts": ["ﾒﾄﾞﾃｯｸ(株)"]})),
        )
        .await;
    let paused = app
        .registered_expert(
            &admin,
            profile("Paused", json!({ "paused_until": FAR_FUTURE })),
        )
        .await;
    let full = app
        .registered_expert(&admin, profile("Full", json!({"capacity": 1})))
        .await;
    let decliner = app
        .registered_expert(&admin, expert_profile("Decliner"))
        .await;
    let proposed = app
        .registered_expert(&admin, expert_profile("Proposed"))
        .await;
    app.proposed(&supporter, &elsewhere["id"], &full).await;
    let declined = app.proposed(&supporter, id, &decliner).await;
    app.declined(&decliner, &declined, "conflict with a client")
        .await;
    app.proposed(&supporter, id, &proposed).await;

    for (expert, reason) in [
        (&conflicted, "conflict_of_interest"),
        (&paused, "paused"),
        (&full, "at_capacity"),
        (&decliner, "declined_before"),
        (&proposed, "already_assigned"),
    ] {
        for role in ["member", "lead"] {
            let refused = problem(
                app.assign(&supporter.token, id, &expert.id, role).await,
                StatusCode::CONFLICT,
            )
            .await;
            assert_eq!(refused["reason"], reason, "{}", expert.user.email);
        }
    }

    // Nothing was assigned beyond the two assignments made above.
    let mut on_case = assignments_on(&app, &supporter, id).await;
    on_case.sort_by_key(|(expert, _)| expert.to_string());
    let mut expected = vec![
        (decliner.id.clone(), "declined".to_owned()),
        (proposed.id.clone(), "proposed".to_owned()),
    ];
    expected.sort_by_key(|(expert, _)| expert.to_string());
    assert_eq!(on_case, expected);

    // Malformed requests name the field.
    let unknown = problem(
        app.assign(&supporter.token, id, &json!(999_999), "member")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&unknown), vec!["expert_id"]);
    let bad_role = problem(
        app.assign(&supporter.token, id, &paused.id, "boss").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&bad_role), vec!["role"]);
    // Only the desk assigns.
    problem(
        app.assign(&applicant.token, id, &paused.id, "member").await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn experts_are_assigned_only_while_matching_or_in_consultation(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let expert = app
        .registered_expert(&admin, expert_profile("Available"))
        .await;

    let submitted = app.new_case(&applicant.token).await;
    let claimed = app.new_case(&applicant.token).await;
    app.claimed(&supporter.token, &claimed["id"]).await;
    let closed = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    app.moved(
        &supporter.token,
        &closed["id"],
        json!({"status": "closed", "outcome": "resolved"}),
    )
    .await;
    for (case, status) in [
        (&submitted, "submitted"),
        (&claimed, "triage"),
        (&closed, "closed"),
    ] {
        let refused = problem(
            app.assign(&supporter.token, &case["id"], &expert.id, "member")
                .await,
            StatusCode::CONFLICT,
        )
        .await;
        let detail = refused["detail"].as_str().unwrap();
        assert!(
            detail.contains("matching") && detail.contains(status),
            "{detail}"
        );
        assert!(
            assignments_on(&app, &supporter, &case["id"])
                .await
                .is_empty()
        );
    }

    // Handled directly (in consultation), an expert may still be brought in.
    let direct = app.new_case(&applicant.token).await;
    let direct = app.triaged(&supporter.token, &direct["id"], "direct").await;
    assert_eq!(direct["status"], "in_consultation");
    let assignment = app.proposed(&supporter, &direct["id"], &expert).await;
    assert_eq!(assignment["status"], "proposed");
}

async fn a_case_has_at_most_one_active_lead(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let mut pool = Vec::new();
    for name in ["Lead", "Second", "Third"] {
        pool.push(app.registered_expert(&admin, expert_profile(name)).await);
    }
    let [lead, second, third] = &pool[..] else {
        unreachable!()
    };

    let first_lead = json_body(
        app.assign(&supporter.token, id, &lead.id, "lead").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(first_lead["role"], "lead");
    let refused = problem(
        app.assign(&supporter.token, id, &second.id, "lead").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("lead"));
    let member = json_body(
        app.assign(&supporter.token, id, &second.id, "member").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(member["role"], "member");

    // Once the lead declines, another expert may lead.
    app.declined(lead, &first_lead, "travelling").await;
    let new_lead = json_body(
        app.assign(&supporter.token, id, &third.id, "lead").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(new_lead["role"], "lead");
}

async fn accepting_starts_the_consultation_and_records_the_terms(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let expert = app
        .registered_expert(&admin, expert_profile("Accepting"))
        .await;

    let proposal = json_body(
        app.assign(&supporter.token, id, &expert.id, "lead").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(proposal["status"], "proposed");
    assert_eq!(proposal["expert_id"], expert.id);
    assert_eq!(proposal["case_id"], *id);
    assert!(proposal["terms_version"].is_null());
    assert!(proposal["acknowledged_at"].is_null());
    assert_eq!(case_status(&app, &supporter, id).await, "matching");

    let accepted = app.accepted(&expert, &proposal).await;
    assert_eq!(accepted["id"], proposal["id"]);
    assert_eq!(accepted["status"], "accepted");
    assert!(
        accepted["terms_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    let acknowledged = instant(&accepted["acknowledged_at"]);
    assert!(instant(&accepted["created_at"]) <= acknowledged);

    assert_eq!(case_status(&app, &supporter, id).await, "in_consultation");
    let events = app.event_items(&supporter.token, id).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "expert_accepted");
    assert_eq!(last["from"], "matching");
    assert_eq!(last["to"], "in_consultation");
    assert!(kinds(&events).contains(&"expert_assigned".to_owned()));

    // The desk sees the acknowledgement on the case's assignments.
    let listed = items(
        json_body(
            app.case_assignments(&supporter.token, id).await,
            StatusCode::OK,
        )
        .await,
    );
    assert_eq!(
        listed[0]["assignment"]["terms_version"],
        accepted["terms_version"]
    );
    assert_eq!(
        listed[0]["assignment"]["acknowledged_at"],
        accepted["acknowledged_at"]
    );
}

async fn only_the_proposed_expert_accepts_and_only_once(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let expert = app
        .registered_expert(&admin, expert_profile("Proposed"))
        .await;
    let colleague = app
        .registered_expert(&admin, expert_profile("Colleague"))
        .await;
    let assignment = app.proposed(&supporter, id, &expert).await;
    let assignment_id = &assignment["id"];

    // Someone else's assignment is not found; staff do not accept.
    problem(
        app.accept_assignment(&colleague.user.token, assignment_id)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.decline_assignment(
            &colleague.user.token,
            assignment_id,
            &json!({"reason": "not mine"}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.accept_assignment(&supporter.token, assignment_id).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.accept_assignment(&expert.user.token, &json!(999_999))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Other confidentiality terms than the current ones are not accepted.
    problem(
        app.post(
            &format!("/api/v1/assignments/{assignment_id}/accept"),
            Some(&expert.user.token),
            &json!({"terms_version": "1999-01"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        assignments_on(&app, &supporter, id).await,
        vec![(expert.id.clone(), "proposed".to_owned())]
    );
    assert_eq!(case_status(&app, &supporter, id).await, "matching");

    app.accepted(&expert, &assignment).await;
    problem(
        app.accept_assignment(&expert.user.token, assignment_id)
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    problem(
        app.decline_assignment(
            &expert.user.token,
            assignment_id,
            &json!({"reason": "changed my mind"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        assignments_on(&app, &supporter, id).await,
        vec![(expert.id.clone(), "accepted".to_owned())]
    );
}

async fn declining_needs_a_reason_and_the_case_stays_matching(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let expert = app
        .registered_expert(&admin, expert_profile("Decliner"))
        .await;
    let assignment = app.proposed(&supporter, id, &expert).await;

    for body in [json!({}), json!({"reason": "   "})] {
        let refused = problem(
            app.decline_assignment(&expert.user.token, &assignment["id"], &body)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec!["reason"], "{body}");
    }
    assert_eq!(
        assignments_on(&app, &supporter, id).await,
        vec![(expert.id.clone(), "proposed".to_owned())]
    );

    let declined = app
        .declined(&expert, &assignment, "顧問先と競合します")
        .await;
    assert_eq!(declined["status"], "declined");
    assert_eq!(declined["decline_reason"], "顧問先と競合します");
    assert_eq!(case_status(&app, &supporter, id).await, "matching");
    let events = app.event_items(&supporter.token, id).await;
    assert_eq!(events.last().unwrap()["kind"], "expert_declined");

    // Declined before: excluded from the suggestions for this case.
    let ranking = app.ranking(&supporter, id).await;
    assert_eq!(
        reason_of(&ranking, &expert).as_deref(),
        Some("declined_before")
    );
    assert!(suggested(&ranking).is_empty());
}

/// The decline endpoint documents 409 for an assignment that is no longer
/// proposed, as accept answers; it must not depend on whether the case is
/// still visible to the expert.
async fn answering_an_assignment_no_longer_proposed_is_a_conflict(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let decliner = app
        .registered_expert(&admin, expert_profile("Decliner"))
        .await;
    let pulled = app
        .registered_expert(&admin, expert_profile("Pulled"))
        .await;
    let declined = app.proposed(&supporter, id, &decliner).await;
    app.declined(&decliner, &declined, "no time").await;
    let withdrawn = app.proposed(&supporter, id, &pulled).await;
    json_body(
        app.withdraw_assignment(&supporter.token, &withdrawn["id"])
            .await,
        StatusCode::OK,
    )
    .await;

    for (expert, assignment, status) in [
        (&decliner, &declined, "declined"),
        (&pulled, &withdrawn, "withdrawn"),
    ] {
        let token = &expert.user.token;
        let accept = problem(
            app.accept_assignment(token, &assignment["id"]).await,
            StatusCode::CONFLICT,
        )
        .await;
        assert!(accept["detail"].as_str().unwrap().contains(status));
        let decline = problem(
            app.decline_assignment(token, &assignment["id"], &json!({"reason": "again"}))
                .await,
            StatusCode::CONFLICT,
        )
        .await;
        assert!(decline["detail"].as_str().unwrap().contains(status));
    }
    let mut on_case = assignments_on(&app, &supporter, id).await;
    on_case.sort_by_key(|(expert, _)| expert.to_string());
    let mut expected = vec![
        (decliner.id.clone(), "declined".to_owned()),
        (pulled.id.clone(), "withdrawn".to_owned()),
    ];
    expected.sort_by_key(|(expert, _)| expert.to_string());
    assert_eq!(on_case, expected);
}

async fn a_decline_returns_a_case_without_accepted_experts_to_matching(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let expert = app
        .registered_expert(&admin, expert_profile("Decliner"))
        .await;
    let engaged = app
        .registered_expert(&admin, expert_profile("Engaged"))
        .await;

    // In consultation with the desk alone: a decline sends it to matching.
    let direct = app.new_case(&applicant.token).await;
    let direct_id = &direct["id"];
    app.triaged(&supporter.token, direct_id, "direct").await;
    let assignment = app.proposed(&supporter, direct_id, &expert).await;
    app.declined(&expert, &assignment, "outside my field").await;
    assert_eq!(case_status(&app, &supporter, direct_id).await, "matching");
    let events = app.event_items(&supporter.token, direct_id).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "expert_declined");
    assert_eq!(last["from"], "in_consultation");
    assert_eq!(last["to"], "matching");

    // With an accepted expert on it, the case stays in consultation.
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    app.engaged(&supporter, id, &engaged).await;
    let assignment = app.proposed(&supporter, id, &expert).await;
    app.declined(&expert, &assignment, "one expert is enough")
        .await;
    assert_eq!(case_status(&app, &supporter, id).await, "in_consultation");
}

async fn capacity_counts_proposed_and_accepted_assignments_only(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let mut cases = Vec::new();
    for _ in 0..3 {
        cases.push(
            app.matching_case(&supporter, &applicant, &["regulatory"])
                .await["id"]
                .clone(),
        );
    }
    let expert = app
        .registered_expert(&admin, profile("Single Seat", json!({"capacity": 1})))
        .await;
    let load = || async { app.expert_record(&admin, &expert).await["active_load"].clone() };
    let refuse = |case: Value| {
        let (app, supporter, expert) = (&app, &supporter, &expert);
        async move {
            let refused = problem(
                app.assign(&supporter.token, &case, &expert.id, "member")
                    .await,
                StatusCode::CONFLICT,
            )
            .await;
            assert_eq!(refused["reason"], "at_capacity");
        }
    };

    // Proposed counts.
    let first = app.proposed(&supporter, &cases[0], &expert).await;
    assert_eq!(load().await, 1);
    refuse(cases[1].clone()).await;

    // Withdrawn does not.
    let withdrawn = json_body(
        app.withdraw_assignment(&supporter.token, &first["id"])
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(withdrawn["status"], "withdrawn");
    assert!(withdrawn["ended_at"].is_string());
    assert_eq!(load().await, 0);

    // Accepted counts; completed does not.
    let second = app.engaged(&supporter, &cases[1], &expert).await;
    assert_eq!(load().await, 1);
    refuse(cases[2].clone()).await;
    let completed = json_body(
        app.complete_assignment(&expert.user.token, &second["id"])
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(completed["status"], "completed");
    assert_eq!(load().await, 0);
    app.proposed(&supporter, &cases[2], &expert).await;
    assert_eq!(load().await, 1);
}

// ---------------------------------------------------------------- what experts see

async fn an_unassigned_expert_sees_nothing_of_the_case(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let outsider = app
        .registered_expert(&admin, expert_profile("Outsider"))
        .await;
    let assigned = app
        .registered_expert(&admin, expert_profile("Assigned"))
        .await;
    app.engaged(&supporter, id, &assigned).await;

    assert_no_access(&app, &outsider, id).await;
    let token = &outsider.user.token;
    for (what, response) in [
        ("assignments", app.case_assignments(token, id).await),
        ("meetings", app.meetings(token, id).await),
        ("support plan", app.support_plan(token, id).await),
        (
            "message",
            app.post_message(token, id, &json!({"body": "hello"}), None)
                .await,
        ),
    ] {
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{what}");
        let body = problem(response, StatusCode::NOT_FOUND).await;
        assert!(!body.to_string().contains("医療機器"), "{what} leaked");
    }
}

async fn a_proposed_expert_sees_a_logged_summary_without_the_text(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let note = json!({"body": "内部メモ: 競合他社の特許出願あり", "visibility": "internal"});
    posted(&app, &supporter.token, id, &note).await;
    let expert = app
        .registered_expert(&admin, expert_profile("Proposed"))
        .await;
    app.proposed(&supporter, id, &expert).await;
    let token = &expert.user.token;

    let summary = app.case(token, id).await;
    assert_eq!(summary["title"], intake()["title"]);
    assert_eq!(summary["status"], "matching");
    assert!(summary.get("description").is_none(), "{summary}");
    let page = json_body(app.list_cases(token, "").await, StatusCode::OK).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], *id);
    assert!(page["items"][0].get("description").is_none());
    assert!(!page.to_string().contains("クラスII"));

    // Messages wait until the expert accepts.
    let refused = problem(app.messages(token, id).await, StatusCode::FORBIDDEN).await;
    assert!(!refused.to_string().contains("内部メモ"));
    problem(
        app.post_message(token, id, &json!({"body": "question"}), None)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(app.meetings(token, id).await, StatusCode::FORBIDDEN).await;
    problem(app.support_plan(token, id).await, StatusCode::FORBIDDEN).await;

    // The read is in the access log.
    let log = items(
        json_body(
            app.access_log(&admin, &format!("case_id={id}&user_id={}", expert.user.id))
                .await,
            StatusCode::OK,
        )
        .await,
    );
    assert!(
        log.iter()
            .any(|entry| entry["what"] == "case" && entry["user_role"] == "expert"),
        "{log:?}"
    );
    assert!(log.iter().all(|entry| entry["user_id"] == expert.user.id));
}

async fn accepting_opens_the_description_and_every_message(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let internal = "内部メモ: 競合他社の特許出願あり";
    let public = "追加資料を送付します";
    let note = json!({"body": internal, "visibility": "internal"});
    posted(&app, &supporter.token, id, &note).await;
    posted(&app, &applicant.token, id, &json!({ "body": public })).await;
    let expert = app
        .registered_expert(&admin, expert_profile("Accepting"))
        .await;
    app.engaged(&supporter, id, &expert).await;
    let token = &expert.user.token;

    let full = app.case(token, id).await;
    assert_eq!(full["description"], intake()["description"]);
    assert_eq!(full["status"], "in_consultation");
    let page = json_body(app.list_cases(token, "").await, StatusCode::OK).await;
    assert_eq!(page["items"][0]["description"], intake()["description"]);

    let bodies: Vec<Value> = app
        .message_items(token, id)
        .await
        .into_iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!(internal), json!(public)]);

    // The expert writes on the desk side; the applicant does not see it.
    let written = json_body(
        app.post_message(token, id, &json!({"body": "専門家メモ"}), None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(written["visibility"], "internal");
    assert_eq!(written["author"]["role"], "expert");
    let seen_by_applicant = app.message_items(&applicant.token, id).await;
    assert!(
        seen_by_applicant
            .iter()
            .all(|m| m["body"] != "専門家メモ" && m["body"] != internal)
    );
}

async fn access_ends_when_the_assignment_ends(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let decliner = app
        .registered_expert(&admin, expert_profile("Decliner"))
        .await;
    let withdrawn = app
        .registered_expert(&admin, expert_profile("Withdrawn"))
        .await;
    let finisher = app
        .registered_expert(&admin, expert_profile("Finisher"))
        .await;

    let declined = app.proposed(&supporter, id, &decliner).await;
    assert_eq!(app.case(&decliner.user.token, id).await["id"], *id);
    app.declined(&decliner, &declined, "no time").await;
    assert_no_access(&app, &decliner, id).await;

    let pulled = app.engaged(&supporter, id, &withdrawn).await;
    assert!(app.case(&withdrawn.user.token, id).await["description"].is_string());
    // Experts cannot withdraw themselves; the desk does.
    problem(
        app.withdraw_assignment(&withdrawn.user.token, &pulled["id"])
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    json_body(
        app.withdraw_assignment(&supporter.token, &pulled["id"])
            .await,
        StatusCode::OK,
    )
    .await;
    assert_no_access(&app, &withdrawn, id).await;

    let done = app.engaged(&supporter, id, &finisher).await;
    assert!(app.case(&finisher.user.token, id).await["description"].is_string());
    json_body(
        app.complete_assignment(&finisher.user.token, &done["id"])
            .await,
        StatusCode::OK,
    )
    .await;
    assert_no_access(&app, &finisher, id).await;

    // The ended assignments remain in each expert's full history.
    for (expert, status) in [
        (&decliner, "declined"),
        (&withdrawn, "withdrawn"),
        (&finisher, "completed"),
    ] {
        let history = items(
            json_body(
                app.my_assignments(&expert.user.token, "status=all").await,
                StatusCode::OK,
            )
            .await,
        );
        assert_eq!(history.len(), 1);
        assert_eq!(history[0]["status"], status);
    }
}

async fn the_queue_lists_only_the_experts_own_assignments(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let first_case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let second_case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let alpha = app.registered_expert(&admin, expert_profile("Alpha")).await;
    let bravo = app.registered_expert(&admin, expert_profile("Bravo")).await;
    let alpha_first = app.proposed(&supporter, &first_case["id"], &alpha).await;
    let bravo_second = app.proposed(&supporter, &second_case["id"], &bravo).await;
    let bravo_first = app.proposed(&supporter, &first_case["id"], &bravo).await;

    let queue = |expert: &Expert| {
        let token = expert.user.token.clone();
        let app = &app;
        async move { items(json_body(app.my_assignments(&token, "").await, StatusCode::OK).await) }
    };
    let alpha_queue = queue(&alpha).await;
    assert_eq!(alpha_queue.len(), 1);
    assert_eq!(alpha_queue[0]["id"], alpha_first["id"]);
    assert_eq!(alpha_queue[0]["status"], "proposed");
    assert_eq!(alpha_queue[0]["case_id"], first_case["id"]);
    assert_eq!(alpha_queue[0]["case_number"], first_case["number"]);
    assert_eq!(alpha_queue[0]["case_title"], first_case["title"]);

    // Newest first.
    let bravo_ids: Vec<Value> = queue(&bravo)
        .await
        .into_iter()
        .map(|a| a["id"].clone())
        .collect();
    assert_eq!(
        bravo_ids,
        vec![bravo_first["id"].clone(), bravo_second["id"].clone()]
    );

    // The queue is the expert's own; nobody else has one.
    problem(
        app.my_assignments(&supporter.token, "").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.my_assignments(&applicant.token, "").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let refused = problem(
        app.my_assignments(&alpha.user.token, "status=everything")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["status"]);
}

// ---------------------------------------------------------------- meetings

async fn an_accepted_expert_records_a_meeting_and_its_advice(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let expert = app
        .registered_expert(&admin, expert_profile("Meeting Expert"))
        .await;
    app.engaged(&supporter, id, &expert).await;

    let meeting = json_body(
        app.create_meeting(&expert.user.token, id, &meeting_body(&expert.id))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(meeting["expert_id"], expert.id);
    assert_eq!(meeting["case_id"], *id);
    assert_eq!(meeting["expert_name"], "Meeting Expert");
    assert_eq!(
        instant(&meeting["starts_at"]),
        instant(&json!("2026-12-03T10:00:00+09:00"))
    );
    assert_eq!(meeting["duration_minutes"], 60);
    assert_eq!(meeting["mode"], "online");
    assert!(meeting["advice_summary"].is_null());

    // The desk records an earlier onsite meeting for the expert.
    let earlier = json_body(
        app.create_meeting(
            &supporter.token,
            id,
            &with(
                meeting_body(&expert.id),
                json!({"starts_at": "2026-12-01T14:30:00+09:00", "duration_minutes": 90, "mode": "onsite"}),
            ),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(earlier["mode"], "onsite");

    // Listed in time order, and in the timeline.
    let listed =
        item_ids(json_body(app.meetings(&supporter.token, id).await, StatusCode::OK).await);
    assert_eq!(listed, vec![earlier["id"].clone(), meeting["id"].clone()]);
    let events = app.event_items(&supporter.token, id).await;
    let scheduled: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "meeting_scheduled")
        .collect();
    assert_eq!(scheduled.len(), 2);
    assert_eq!(scheduled[0]["detail"]["meeting_id"], meeting["id"]);
    assert_eq!(scheduled[0]["detail"]["mode"], "online");
    assert_eq!(scheduled[0]["detail"]["duration_minutes"], 60);
    assert_eq!(scheduled[0]["actor"]["id"], expert.user.id);

    // The advice is recorded afterwards.
    let advised = json_body(
        app.record_advice(&expert.user.token, &meeting["id"], "クラス分類の確認を推奨")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(advised["advice_summary"], "クラス分類の確認を推奨");
    let listed = items(json_body(app.meetings(&expert.user.token, id).await, StatusCode::OK).await);
    let stored = listed
        .iter()
        .find(|m| m["id"] == meeting["id"])
        .expect("the meeting");
    assert_eq!(stored["advice_summary"], "クラス分類の確認を推奨");
    assert!(
        kinds(&app.event_items(&supporter.token, id).await).contains(&"advice_recorded".to_owned())
    );
}

async fn only_accepted_experts_record_their_own_meetings(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let mut pool = Vec::new();
    for name in ["Accepted", "Colleague", "Proposed", "Outsider"] {
        pool.push(app.registered_expert(&admin, expert_profile(name)).await);
    }
    let [accepted, colleague, proposed, outsider] = &pool[..] else {
        unreachable!()
    };
    app.engaged(&supporter, id, accepted).await;
    app.engaged(&supporter, id, colleague).await;
    app.proposed(&supporter, id, proposed).await;

    // Not yet accepted: refused, as is another expert's meeting or an outsider.
    let body = meeting_body(&proposed.id);
    problem(
        app.create_meeting(&proposed.user.token, id, &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.create_meeting(&outsider.user.token, id, &meeting_body(&outsider.id))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.create_meeting(&colleague.user.token, id, &meeting_body(&accepted.id))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // The desk cannot record one for an expert who has not accepted.
    problem(
        app.create_meeting(&supporter.token, id, &body).await,
        StatusCode::CONFLICT,
    )
    .await;
    problem(
        app.create_meeting(&applicant.token, id, &meeting_body(&accepted.id))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let meeting = json_body(
        app.create_meeting(&accepted.user.token, id, &meeting_body(&accepted.id))
            .await,
        StatusCode::CREATED,
    )
    .await;
    // Only that meeting's expert (or the desk) records its advice.
    problem(
        app.record_advice(&colleague.user.token, &meeting["id"], "not mine")
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.record_advice(&outsider.user.token, &meeting["id"], "not mine")
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.record_advice(&applicant.token, &meeting["id"], "not mine")
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    json_body(
        app.record_advice(&supporter.token, &meeting["id"], "desk note")
            .await,
        StatusCode::OK,
    )
    .await;

    // A closed case takes no more meetings, and closing ended the experts'
    // assignments: their access to the case ends with it.
    app.moved(
        &supporter.token,
        id,
        json!({"status": "closed", "outcome": "resolved"}),
    )
    .await;
    problem(
        app.create_meeting(&supporter.token, id, &meeting_body(&accepted.id))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    problem(
        app.create_meeting(&accepted.user.token, id, &meeting_body(&accepted.id))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get_case(&accepted.user.token, id).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let listed = items(json_body(app.meetings(&supporter.token, id).await, StatusCode::OK).await);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["advice_summary"], "desk note");
}

async fn meeting_validation_names_each_bad_field(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let expert = app
        .registered_expert(&admin, expert_profile("Validated"))
        .await;
    app.engaged(&supporter, id, &expert).await;
    let token = &expert.user.token;

    for (change, field) in [
        (json!({"starts_at": "next tuesday"}), "starts_at"),
        (json!({"starts_at": "2026-12-03T10:00:00"}), "starts_at"),
        (json!({"starts_at": null}), "starts_at"),
        (json!({"duration_minutes": 0}), "duration_minutes"),
        (json!({"duration_minutes": 481}), "duration_minutes"),
        (json!({"mode": "phone"}), "mode"),
        (json!({"mode": null}), "mode"),
        (json!({"expert_id": null}), "expert_id"),
    ] {
        let body = with(meeting_body(&expert.id), change.clone());
        let refused = problem(
            app.create_meeting(token, id, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec![field], "{change}");
    }
    let everything = with(
        meeting_body(&expert.id),
        json!({"starts_at": "soon", "duration_minutes": 0, "mode": "phone"}),
    );
    let refused = problem(
        app.create_meeting(token, id, &everything).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mut fields = error_fields(&refused);
    fields.sort();
    assert_eq!(fields, vec!["duration_minutes", "mode", "starts_at"]);
    let listed = json_body(app.meetings(token, id).await, StatusCode::OK).await;
    assert_eq!(listed["items"], json!([]));

    // Advice must say something.
    let meeting = json_body(
        app.create_meeting(token, id, &meeting_body(&expert.id))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let refused = problem(
        app.record_advice(token, &meeting["id"], "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["advice_summary"]);
}

// ---------------------------------------------------------------- support plans

async fn supporters_write_plan_revisions_read_newest_first(backend: Backend) {
    let (app, _admin, supporter) = desk(backend).await;
    let colleague = app.staff("supporter").await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];
    app.triaged(&supporter.token, id, "direct").await;

    let empty = json_body(app.support_plan(&supporter.token, id).await, StatusCode::OK).await;
    assert!(empty["current"].is_null());
    assert_eq!(empty["revisions"], json!([]));

    let first = json_body(
        app.write_plan(&supporter.token, id, "1. 薬事戦略の整理")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["current"]["revision"], 1);
    assert_eq!(first["current"]["body"], "1. 薬事戦略の整理");
    json_body(
        app.write_plan(&colleague.token, id, "1. 薬事戦略の整理\n2. 保険収載の検討")
            .await,
        StatusCode::OK,
    )
    .await;

    let plan = json_body(app.support_plan(&supporter.token, id).await, StatusCode::OK).await;
    assert_eq!(plan["current"]["revision"], 2);
    assert_eq!(
        plan["current"]["body"],
        "1. 薬事戦略の整理\n2. 保険収載の検討"
    );
    assert_eq!(plan["current"]["author_id"], colleague.id);
    let revisions = plan["revisions"].as_array().unwrap();
    let numbers: Vec<&Value> = revisions.iter().map(|r| &r["revision"]).collect();
    assert_eq!(numbers, vec![&json!(2), &json!(1)]);
    assert_eq!(revisions[1]["body"], "1. 薬事戦略の整理");
    assert_eq!(revisions[1]["author_id"], supporter.id);
    assert!(instant(&revisions[1]["at"]) <= instant(&revisions[0]["at"]));

    // Revisions are desk-side events: the applicant's timeline does not show them.
    let desk_kinds = kinds(&app.event_items(&supporter.token, id).await);
    assert_eq!(
        desk_kinds
            .iter()
            .filter(|k| *k == "support_plan_revised")
            .count(),
        2
    );
    assert!(
        !kinds(&app.event_items(&applicant.token, id).await)
            .contains(&"support_plan_revised".to_owned())
    );

    let refused = problem(
        app.write_plan(&supporter.token, id, "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["body"]);
}

async fn applicants_and_experts_do_not_write_the_plan(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let id = &case["id"];
    let accepted = app
        .registered_expert(&admin, expert_profile("Accepted"))
        .await;
    let proposed = app
        .registered_expert(&admin, expert_profile("Proposed"))
        .await;
    let outsider = app
        .registered_expert(&admin, expert_profile("Outsider"))
        .await;
    app.engaged(&supporter, id, &accepted).await;
    app.proposed(&supporter, id, &proposed).await;
    json_body(
        app.write_plan(&supporter.token, id, "desk plan").await,
        StatusCode::OK,
    )
    .await;

    // The applicant neither reads nor writes the desk's plan.
    problem(
        app.support_plan(&applicant.token, id).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.write_plan(&applicant.token, id, "our plan").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // An accepted expert reads it but does not write it.
    let read = json_body(
        app.support_plan(&accepted.user.token, id).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(read["current"]["body"], "desk plan");
    problem(
        app.write_plan(&accepted.user.token, id, "expert plan")
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.support_plan(&proposed.user.token, id).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.support_plan(&outsider.user.token, id).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let plan = json_body(app.support_plan(&supporter.token, id).await, StatusCode::OK).await;
    assert_eq!(plan["revisions"].as_array().unwrap().len(), 1);
    assert_eq!(plan["current"]["body"], "desk plan");
}

async fn the_desk_lists_the_cases_of_one_expert(backend: Backend) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let first = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let second = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let expert = app
        .registered_expert(&admin, expert_profile("Listed"))
        .await;
    app.proposed(&supporter, &first["id"], &expert).await;

    let listed = app
        .listed_ids(&supporter.token, &format!("expert_id={}", expert.id))
        .await;
    assert_eq!(listed, vec![first["id"].clone()]);
    assert!(!listed.contains(&second["id"]));
    let nobody = app.listed_ids(&supporter.token, "expert_id=987654").await;
    assert!(nobody.is_empty());

    let refused = problem(
        app.list_cases(&applicant.token, &format!("expert_id={}", expert.id))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["expert_id"]);
}
