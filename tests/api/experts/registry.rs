//! The expert registry: admins register and edit experts (with or
//! without a password), desk staff read it, nobody else does.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{FAR_FUTURE, desk, desk_with_applicant, profile, reason_of, suggested, with};
use crate::expert_helpers::expert_profile;
use crate::helpers::{Backend, PASSWORD, TestApp, error_fields, json_body, problem};
use crate::mailbox::{token_in, wait_for_mail};

on_both_backends!(
    admin_registers_an_expert_who_signs_in_as_an_expert,
    an_expert_without_a_password_sets_one_with_the_mailed_token,
    registering_a_taken_address_is_a_conflict,
    registry_validation_names_the_bad_field_and_stores_nothing,
    desk_staff_read_the_registry_and_only_admins_write_it,
    patching_changes_only_the_given_fields_and_null_resumes,
);

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
    let listed = app.listed_expert_ids(&admin).await;
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
        m.text.contains("/password/reset?token=")
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

    let mut listed = app.listed_expert_ids(&admin).await;
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
    let expert = app.expert_named(&admin, "Registered").await;

    let listed = app.listed_expert_ids(&supporter.token).await;
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
    let listed = app.listed_expert_ids(&admin).await;
    assert_eq!(listed, vec![expert.id.clone()]);
}

async fn patching_changes_only_the_given_fields_and_null_resumes(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
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
