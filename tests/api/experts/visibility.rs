//! What an expert sees of a case: nothing unassigned, a logged summary
//! while proposed, everything once accepted, nothing after; and the
//! expert's own queue.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::desk_with_applicant;
use crate::expert_helpers::Expert;
use crate::helpers::{Backend, TestApp, error_fields, intake, items, json_body, problem};

on_both_backends!(
    an_unassigned_expert_sees_nothing_of_the_case,
    a_proposed_expert_sees_a_logged_summary_without_the_text,
    accepting_opens_the_description_and_every_message,
    access_ends_when_the_assignment_ends,
    the_queue_lists_only_the_experts_own_assignments,
);

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

async fn an_unassigned_expert_sees_nothing_of_the_case(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let [outsider, assigned] = app.experts_named(&admin, ["Outsider", "Assigned"]).await;
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
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let note = json!({"body": "内部メモ: 競合他社の特許出願あり", "visibility": "internal"});
    posted(&app, &supporter.token, id, &note).await;
    let expert = app.expert_named(&admin, "Proposed").await;
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
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let internal = "内部メモ: 競合他社の特許出願あり";
    let public = "追加資料を送付します";
    let note = json!({"body": internal, "visibility": "internal"});
    posted(&app, &supporter.token, id, &note).await;
    posted(&app, &applicant.token, id, &json!({ "body": public })).await;
    let expert = app.expert_named(&admin, "Accepting").await;
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
        app.post_message(
            token,
            id,
            &json!({"body": "専門家メモ", "visibility": "internal"}),
            None,
        )
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
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let [decliner, withdrawn, finisher] = app
        .experts_named(&admin, ["Decliner", "Withdrawn", "Finisher"])
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
    app.withdrawn(&supporter, &pulled).await;
    assert_no_access(&app, &withdrawn, id).await;

    let done = app.engaged(&supporter, id, &finisher).await;
    assert!(app.case(&finisher.user.token, id).await["description"].is_string());
    app.completed(&finisher, &done).await;
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
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let first_case = app.regulatory_case(&supporter, &applicant).await;
    let second_case = app.regulatory_case(&supporter, &applicant).await;
    let [alpha, bravo] = app.experts_named(&admin, ["Alpha", "Bravo"]).await;
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
