//! Case actions by name (`POST /api/v1/cases/{id}/actions/{action}`): every
//! action a case lists in `allowed_actions` is accepted there as is, the
//! 409s' lists too; and corrections of a submitted case (`PATCH
//! /api/v1/cases/{id}`).

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::expert_helpers::expert_profile;
use crate::helpers::{
    Backend, TestApp, User, case_path, error_fields, intake, json_body, kinds, problem, triage_body,
};

on_both_backends!(
    every_action_walks_a_case_through_its_lifecycle,
    every_listed_action_is_accepted_for_the_desk,
    applicants_are_offered_only_what_they_may_do,
    experts_are_offered_no_case_actions,
    conflicts_list_actions_that_are_accepted_as_is,
    unknown_actions_are_not_found_and_name_the_actions,
    refused_actions_change_nothing,
    applicants_correct_a_submitted_case,
    corrections_end_when_the_desk_takes_the_case_up,
    refused_corrections_change_nothing,
    corrections_move_the_statistics,
);

/// The states a case can be walked into through actions.
const STATES: [&str; 6] = [
    "submitted",
    "triage",
    "awaiting_info",
    "matching",
    "in_consultation",
    "closed",
];

// ---------------------------------------------------------------- helpers

/// `POST …/actions/{action}` with `body` (none when `None`) and `If-Match`.
async fn act(
    app: &TestApp,
    token: &str,
    id: &Value,
    action: &str,
    body: Option<&Value>,
    if_match: Option<&str>,
) -> Response {
    let mut request = app
        .client
        .post(app.url(&case_path(id, &format!("/actions/{action}"))))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(version) = if_match {
        request = request.header("if-match", version);
    }
    request.send().await.expect("request sent")
}

/// A valid body for `action` (None: the action takes none).
fn body_for(action: &str) -> Option<Value> {
    match action {
        "claim" => None,
        "triage" => Some(triage_body("direct")),
        "request_info" => Some(json!({"question": "売上計画を教えてください"})),
        "close" => Some(json!({"outcome": "resolved", "reason": "answered"})),
        "withdraw" | "reopen" | "applicant_reply" | "start_matching" | "start_consultation" => {
            Some(json!({"reason": format!("{action} for the test")}))
        }
        other => panic!("no body for {other}"),
    }
}

/// Takes `action` with its usual body, asserting 200; returns the case.
async fn acted(app: &TestApp, token: &str, id: &Value, action: &str) -> Value {
    json_body(
        act(app, token, id, action, body_for(action).as_ref(), None).await,
        StatusCode::OK,
    )
    .await
}

/// Takes `action` with `body`, asserting 200; returns the case.
async fn acted_with(app: &TestApp, token: &str, id: &Value, action: &str, body: &Value) -> Value {
    json_body(
        act(app, token, id, action, Some(body), None).await,
        StatusCode::OK,
    )
    .await
}

/// `PATCH /api/v1/cases/{id}` with `If-Match`.
async fn patch(
    app: &TestApp,
    token: &str,
    id: &Value,
    body: &Value,
    if_match: Option<&str>,
) -> Response {
    let mut request = app
        .client
        .patch(app.url(&case_path(id, "")))
        .bearer_auth(token)
        .json(body);
    if let Some(version) = if_match {
        request = request.header("if-match", version);
    }
    request.send().await.expect("request sent")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

fn allowed(case: &Value) -> Vec<String> {
    strings(&case["allowed_actions"])
}

/// A new case of `applicant`, taken by `supporter` into `state` through
/// actions alone; returns the case as the supporter sees it.
async fn case_in(app: &TestApp, supporter: &User, applicant: &User, state: &str) -> Value {
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"].clone();
    let path: &[(&str, Value)] = match state {
        "submitted" => &[],
        "triage" => &[("claim", Value::Null)],
        "awaiting_info" => &[
            ("claim", Value::Null),
            ("request_info", json!({"question": "どの国で販売しますか"})),
        ],
        "matching" => &[("claim", Value::Null), ("triage", triage_body("expert"))],
        "in_consultation" => &[("claim", Value::Null), ("triage", triage_body("direct"))],
        "closed" => &[("close", json!({"outcome": "out_of_scope"}))],
        other => panic!("no path to {other}"),
    };
    let mut now = case;
    for (action, body) in path {
        let body = (!body.is_null()).then_some(body);
        now = json_body(
            act(app, &supporter.token, id, action, body, None).await,
            StatusCode::OK,
        )
        .await;
    }
    assert_eq!(now["status"], state);
    app.case(&supporter.token, id).await
}

/// What must not move when a write is refused: the case as the desk sees it
/// and the length of its timeline.
async fn unchanged_state(app: &TestApp, token: &str, id: &Value) -> (Value, usize) {
    (
        app.case(token, id).await,
        app.event_items(token, id).await.len(),
    )
}

async fn category_table(app: &TestApp, token: &str) -> Value {
    json_body(
        app.get("/api/v1/stats/categories", Some(token)).await,
        StatusCode::OK,
    )
    .await
}

fn etag(response: &Response) -> String {
    response
        .headers()
        .get("etag")
        .expect("ETag")
        .to_str()
        .unwrap()
        .to_owned()
}

// ---------------------------------------------------------------- actions

async fn every_action_walks_a_case_through_its_lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];

    // Each step with If-Match of the version just read; the answer is the
    // case with its new version in ETag.
    let steps: [(&User, &str, &str); 9] = [
        (&supporter, "claim", "triage"),
        (&supporter, "triage", "in_consultation"),
        (&supporter, "request_info", "awaiting_info"),
        (&applicant, "applicant_reply", "in_consultation"),
        (&supporter, "start_matching", "matching"),
        (&supporter, "start_consultation", "in_consultation"),
        (&supporter, "close", "closed"),
        (&supporter, "reopen", "in_consultation"),
        (&applicant, "withdraw", "closed"),
    ];
    let mut version = case["version"].as_i64().unwrap();
    for (user, action, status) in steps {
        let response = act(
            &app,
            &user.token,
            id,
            action,
            body_for(action).as_ref(),
            Some(&format!("\"{version}\"")),
        )
        .await;
        let tag = etag(&response);
        let now = json_body(response, StatusCode::OK).await;
        assert_eq!(now["status"], status, "{action}");
        assert_eq!(now["version"], version + 1, "{action}");
        assert_eq!(tag, format!("\"{}\"", version + 1), "{action}");
        version = now["version"].as_i64().unwrap();
    }
    let now = app.case(&supporter.token, id).await;
    assert_eq!(now["outcome"], "withdrawn");

    // The same events as the older endpoints write, reasons included.
    let events = app.event_items(&supporter.token, id).await;
    let lifecycle: Vec<String> = kinds(&events).into_iter().filter(|k| k != "note").collect();
    assert_eq!(
        lifecycle,
        [
            "submitted",
            "claimed",
            "triaged",
            "info_requested",
            "applicant_replied",
            "matching_started",
            "consultation_started",
            "closed",
            "reopened",
            "withdrawn",
        ]
    );
    let asked = events
        .iter()
        .find(|e| e["kind"] == "info_requested")
        .unwrap();
    assert_eq!(asked["detail"]["reason"], "売上計画を教えてください");
    let closed = events.iter().find(|e| e["kind"] == "closed").unwrap();
    assert_eq!(closed["detail"]["outcome"], "resolved");
    assert_eq!(closed["detail"]["reason"], "answered");
    let withdrawn = events.iter().find(|e| e["kind"] == "withdrawn").unwrap();
    assert_eq!(withdrawn["detail"]["reason"], "withdraw for the test");
    // The applicant reads the question in the timeline too.
    let seen = app.event_items(&applicant.token, id).await;
    assert!(
        seen.iter().any(|e| e["kind"] == "info_requested"
            && e["detail"]["reason"] == "売上計画を教えてください")
    );
}

async fn every_listed_action_is_accepted_for_the_desk(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let admin = app.staff("admin").await;
    for state in STATES {
        let listed = allowed(&case_in(&app, &supporter, &applicant, state).await);
        assert!(!listed.is_empty(), "{state}");
        assert!(
            !listed.iter().any(|a| a.starts_with("expert_")),
            "{state}: {listed:?}"
        );
        // Admins are offered the same as supporters.
        let fresh = case_in(&app, &supporter, &applicant, state).await;
        assert_eq!(allowed(&app.case(&admin.token, &fresh["id"]).await), listed);
        for action in &listed {
            let copy = case_in(&app, &supporter, &applicant, state).await;
            let response = act(
                &app,
                &supporter.token,
                &copy["id"],
                action,
                body_for(action).as_ref(),
                None,
            )
            .await;
            let text = response.status();
            assert_eq!(text, StatusCode::OK, "{state}: {action}");
        }
    }
}

async fn applicants_are_offered_only_what_they_may_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let expected: [(&str, &[&str]); 6] = [
        ("submitted", &["withdraw"]),
        ("triage", &["withdraw"]),
        ("awaiting_info", &["applicant_reply", "withdraw"]),
        ("matching", &["withdraw"]),
        ("in_consultation", &["withdraw"]),
        ("closed", &[]),
    ];
    for (state, offered) in expected {
        let case = case_in(&app, &supporter, &applicant, state).await;
        let listed = allowed(&app.case(&applicant.token, &case["id"]).await);
        assert_eq!(listed, offered, "{state}");
        for action in listed {
            let copy = case_in(&app, &supporter, &applicant, state).await;
            let now = acted(&app, &applicant.token, &copy["id"], &action).await;
            assert_ne!(now["status"], state, "{state}: {action}");
            // The answer lists what the applicant may do next.
            assert_eq!(
                allowed(&now),
                allowed(&app.case(&applicant.token, &copy["id"]).await)
            );
        }
    }
    // The applicant's reply without a body at all.
    let waiting = case_in(&app, &supporter, &applicant, "awaiting_info").await;
    let replied = json_body(
        act(
            &app,
            &applicant.token,
            &waiting["id"],
            "applicant_reply",
            None,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(replied["status"], "triage");
    // ... or with the body `null`.
    let waiting = case_in(&app, &supporter, &applicant, "awaiting_info").await;
    let withdrawn = acted_with(
        &app,
        &applicant.token,
        &waiting["id"],
        "withdraw",
        &Value::Null,
    )
    .await;
    assert_eq!(withdrawn["outcome"], "withdrawn");
}

async fn experts_are_offered_no_case_actions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let expert = app
        .registered_expert(&admin, expert_profile("Dr. Sato"))
        .await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let assignment = app.proposed(&supporter, id, &expert).await;
    // Proposed: the summary, nothing to do on the case.
    assert_eq!(
        allowed(&app.case(&expert.user.token, id).await),
        Vec::<String>::new()
    );
    app.accepted(&expert, &assignment).await;
    let seen = app.case(&expert.user.token, id).await;
    assert_eq!(seen["status"], "in_consultation");
    assert_eq!(allowed(&seen), Vec::<String>::new());
    // The desk is not offered the expert's answers either.
    let desk = allowed(&app.case(&supporter.token, id).await);
    assert_eq!(
        desk,
        ["request_info", "start_matching", "close", "withdraw"]
    );

    // Every action is refused to the expert before anything is read.
    let before = unchanged_state(&app, &supporter.token, id).await;
    for action in [
        "claim",
        "triage",
        "request_info",
        "applicant_reply",
        "start_matching",
        "start_consultation",
        "close",
        "withdraw",
        "reopen",
    ] {
        let response = act(
            &app,
            &expert.user.token,
            id,
            action,
            body_for(action).as_ref(),
            None,
        )
        .await;
        problem(response, StatusCode::FORBIDDEN).await;
    }
    // A /status move by the expert lists nothing it could take instead.
    let refused = problem(
        app.set_status(
            &expert.user.token,
            id,
            &json!({"status": "submitted"}),
            None,
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["allowed_actions"], json!([]));
    assert_eq!(unchanged_state(&app, &supporter.token, id).await, before);
}

async fn conflicts_list_actions_that_are_accepted_as_is(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;

    // From /actions and from /status, for the desk and for the applicant.
    for state in ["submitted", "matching", "closed"] {
        let case = case_in(&app, &supporter, &applicant, state).await;
        let id = &case["id"];
        let impossible = if state == "closed" { "claim" } else { "reopen" };
        let refused = problem(
            act(
                &app,
                &supporter.token,
                id,
                impossible,
                body_for(impossible).as_ref(),
                None,
            )
            .await,
            StatusCode::CONFLICT,
        )
        .await;
        assert_eq!(refused["case_status"], state);
        let listed = strings(&refused["allowed_actions"]);
        assert_eq!(listed, allowed(&case), "{state}");
        let by_status = problem(
            app.set_status(&supporter.token, id, &json!({"status": "submitted"}), None)
                .await,
            StatusCode::CONFLICT,
        )
        .await;
        assert_eq!(strings(&by_status["allowed_actions"]), listed, "{state}");
        for action in &listed {
            let copy = case_in(&app, &supporter, &applicant, state).await;
            acted(&app, &supporter.token, &copy["id"], action).await;
        }

        let applicant_refused = problem(
            app.set_status(&applicant.token, id, &json!({"status": "submitted"}), None)
                .await,
            StatusCode::CONFLICT,
        )
        .await;
        let applicant_listed = strings(&applicant_refused["allowed_actions"]);
        assert_eq!(
            applicant_listed,
            allowed(&app.case(&applicant.token, id).await),
            "{state}"
        );
        for action in &applicant_listed {
            let copy = case_in(&app, &supporter, &applicant, state).await;
            acted(&app, &applicant.token, &copy["id"], action).await;
        }
    }

    // Closing as withdrawn is the withdraw action's: 409 pointing there.
    let case = case_in(&app, &supporter, &applicant, "triage").await;
    let refused = problem(
        act(
            &app,
            &supporter.token,
            &case["id"],
            "close",
            Some(&json!({"outcome": "withdrawn"})),
            None,
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(strings(&refused["allowed_actions"]).contains(&"withdraw".to_owned()));
    assert_eq!(
        app.case(&supporter.token, &case["id"]).await["status"],
        "triage"
    );
}

async fn unknown_actions_are_not_found_and_name_the_actions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = case_in(&app, &supporter, &applicant, "matching").await;
    let id = &case["id"];
    let before = unchanged_state(&app, &supporter.token, id).await;
    let mut details = Vec::new();
    for (target, action) in [
        (id.clone(), "expert_accepted"),
        (id.clone(), "expert_declined"),
        (id.clone(), "awaiting_info"),
        (json!(987_654), "expert_accepted"),
    ] {
        let refused = problem(
            act(&app, &supporter.token, &target, action, None, None).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(refused["type"], "/problems/not-found");
        let detail = refused["detail"].as_str().unwrap().to_owned();
        for name in [
            "claim",
            "triage",
            "request_info",
            "applicant_reply",
            "start_matching",
            "start_consultation",
            "close",
            "withdraw",
            "reopen",
        ] {
            assert!(detail.contains(name), "{detail}");
        }
        details.push((action, detail));
    }
    // An existing case and a missing one get the same answer.
    assert_eq!(details[0].1, details[3].1);
    assert_eq!(unchanged_state(&app, &supporter.token, id).await, before);
}

async fn refused_actions_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let stranger = app.applicant("Other Org").await;
    let supporter = app.staff("supporter").await;
    let manager = app.staff("manager").await;
    let case = case_in(&app, &supporter, &applicant, "triage").await;
    let id = &case["id"];
    let before = unchanged_state(&app, &supporter.token, id).await;

    // Roles that never take the action: 403, before the fields are read.
    for (user, action) in [
        (&applicant, "claim"),
        (&applicant, "close"),
        (&applicant, "reopen"),
        (&applicant, "request_info"),
        (&manager, "withdraw"),
        (&manager, "claim"),
    ] {
        let body = json!({"question": " ", "outcome": "solved", "reason": "x".repeat(5001)});
        let response = act(&app, &user.token, id, action, Some(&body), None).await;
        problem(response, StatusCode::FORBIDDEN).await;
    }
    // Another organisation's case does not exist for them.
    for action in ["withdraw", "applicant_reply"] {
        let refused = problem(
            act(&app, &stranger.token, id, action, None, None).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(refused["type"], "/problems/not-found");
        assert!(refused.get("allowed_actions").is_none());
        assert!(refused.get("case_status").is_none());
    }
    // Stale If-Match.
    let stale = act(
        &app,
        &supporter.token,
        id,
        "request_info",
        body_for("request_info").as_ref(),
        Some("\"1\""),
    )
    .await;
    problem(stale, StatusCode::PRECONDITION_FAILED).await;
    // Invalid bodies: 422 naming the field.
    let invalid: [(&str, Value, &str); 6] = [
        ("request_info", json!({}), "question"),
        ("request_info", json!({"question": "  "}), "question"),
        ("withdraw", json!({"reason": "x".repeat(5001)}), "reason"),
        ("close", json!({"reason": "done"}), "outcome"),
        ("close", json!({"outcome": "solved"}), "outcome"),
        ("triage", json!({"priority": "normal"}), "product_type"),
    ];
    for (action, body, field) in invalid {
        let refused = problem(
            act(&app, &supporter.token, id, action, Some(&body), None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            error_fields(&refused).contains(&field.to_owned()),
            "{action}: {refused}"
        );
    }
    // A body that is not an object is refused, not ignored.
    let refused = problem(
        act(
            &app,
            &supporter.token,
            id,
            "start_matching",
            Some(&json!(["why"])),
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["body"]);
    // A closed case offers only reopen; withdrawing it again is a 409.
    let closed = case_in(&app, &supporter, &applicant, "closed").await;
    let refused = problem(
        act(
            &app,
            &applicant.token,
            &closed["id"],
            "withdraw",
            None,
            None,
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["allowed_actions"], json!([]));
    assert_eq!(unchanged_state(&app, &supporter.token, id).await, before);
}

// ---------------------------------------------------------------- corrections

async fn applicants_correct_a_submitted_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];

    let response = patch(
        &app,
        &applicant.token,
        id,
        &json!({
            "title": "医療機器の承認申請について(訂正)",
            "categories": ["ip_strategy", "regulatory"],
            "stage": "clinical",
            "description": case["description"],
        }),
        Some("\"1\""),
    )
    .await;
    assert_eq!(etag(&response), "\"2\"");
    let edited = json_body(response, StatusCode::OK).await;
    assert_eq!(edited["title"], "医療機器の承認申請について(訂正)");
    assert_eq!(edited["categories"], json!(["regulatory", "ip_strategy"]));
    assert_eq!(edited["stage"], "clinical");
    assert_eq!(edited["product_type"], "medical_device");
    assert_eq!(edited["description"], case["description"]);
    assert_eq!(edited["status"], "submitted");
    assert_eq!(edited["version"], 2);
    assert_eq!(
        app.case(&supporter.token, id).await["title"],
        edited["title"]
    );

    // The timeline names what changed, for the applicant and the desk.
    for token in [&applicant.token, &supporter.token] {
        let events = app.event_items(token, id).await;
        let last = events.last().unwrap();
        assert_eq!(last["kind"], "edited");
        assert_eq!(
            last["detail"]["fields"],
            json!(["title", "categories", "stage"])
        );
        assert_eq!(last["actor"]["id"], applicant.id);
    }

    // Nothing to change: nothing written.
    let same = json_body(
        patch(
            &app,
            &applicant.token,
            id,
            &json!({"stage": "clinical"}),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(same["version"], 2);
    let empty = json_body(
        patch(&app, &applicant.token, id, &json!({}), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(empty["version"], 2);
    assert_eq!(app.event_items(&applicant.token, id).await.len(), 2);

    // Desk staff may correct it too; and it is the desk's to claim as usual.
    let fixed = json_body(
        patch(
            &app,
            &supporter.token,
            id,
            &json!({"product_type": "drug"}),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fixed["product_type"], "drug");
    assert_eq!(allowed(&fixed), ["claim", "close", "withdraw"]);
    acted(&app, &supporter.token, id, "claim").await;
}

async fn corrections_end_when_the_desk_takes_the_case_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    for state in ["triage", "closed"] {
        let case = case_in(&app, &supporter, &applicant, state).await;
        let id = &case["id"];
        let before = unchanged_state(&app, &supporter.token, id).await;
        for user in [&applicant, &supporter] {
            let refused = problem(
                patch(&app, &user.token, id, &json!({"title": "new"}), None).await,
                StatusCode::CONFLICT,
            )
            .await;
            assert_eq!(refused["case_status"], state);
            let detail = refused["detail"].as_str().unwrap();
            assert!(detail.contains("submitted"), "{detail}");
            assert!(detail.contains("message"), "{detail}");
            assert_eq!(
                strings(&refused["allowed_actions"]),
                allowed(&app.case(&user.token, id).await)
            );
        }
        assert_eq!(unchanged_state(&app, &supporter.token, id).await, before);
    }
}

async fn refused_corrections_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let applicant = app.applicant("Org").await;
    let stranger = app.applicant("Other Org").await;
    let supporter = app.staff("supporter").await;
    let manager = app.staff("manager").await;
    let expert = app
        .registered_expert(&admin, expert_profile("Dr. Ito"))
        .await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];
    let before = unchanged_state(&app, &supporter.token, id).await;
    let fix = json!({"title": "訂正"});

    // Stale If-Match.
    problem(
        patch(&app, &applicant.token, id, &fix, Some("\"7\"")).await,
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    // Another organisation: no such case (nor is a missing one).
    for target in [id.clone(), json!(987_654)] {
        let refused = problem(
            patch(&app, &stranger.token, &target, &fix, None).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert!(refused.get("case_status").is_none());
    }
    // Experts and managers never correct a case.
    for token in [&expert.user.token, &manager.token] {
        problem(
            patch(&app, token, id, &fix, None).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    // Invalid fields: every one named, as at filing.
    let refused = problem(
        patch(
            &app,
            &applicant.token,
            id,
            &json!({
                "title": " ",
                "description": "x".repeat(20_001),
                "product_type": "samd",
                "categories": ["regulatory", "regulatory"],
                "stage": "phase3",
            }),
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        error_fields(&refused),
        [
            "title",
            "description",
            "product_type",
            "categories",
            "stage"
        ]
    );
    let refused = problem(
        patch(&app, &applicant.token, id, &json!({"categories": []}), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["categories"]);
    // A field that cannot be corrected is named, not ignored.
    let refused = problem(
        patch(
            &app,
            &applicant.token,
            id,
            &json!({"status": "closed"}),
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("status")
    );
    assert_eq!(unchanged_state(&app, &supporter.token, id).await, before);
    assert_eq!(before.0["title"], intake()["title"]);
}

async fn corrections_move_the_statistics(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let manager = app.staff("manager").await;
    let admin = app.admin_token().await;
    let kept = app.new_case(&applicant.token).await;
    let corrected = app.new_case(&applicant.token).await;
    let row = |table: &Value, product_type: &str| -> Value {
        table["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["product_type"] == product_type)
            .unwrap()
            .clone()
    };
    let before = category_table(&app, &manager.token).await;
    assert_eq!(row(&before, "medical_device")["cases"], 2);
    assert_eq!(row(&before, "medical_device")["counts"]["regulatory"], 2);
    assert_eq!(row(&before, "medical_device")["counts"]["reimbursement"], 2);
    assert_eq!(row(&before, "drug")["cases"], 0);

    json_body(
        patch(
            &app,
            &applicant.token,
            &corrected["id"],
            &json!({"product_type": "drug", "categories": ["ip_strategy", "regulatory"]}),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let after = category_table(&app, &manager.token).await;
    let device = row(&after, "medical_device");
    assert_eq!(device["cases"], 1);
    assert_eq!(device["counts"]["regulatory"], 1);
    assert_eq!(device["counts"]["reimbursement"], 1);
    let drug = row(&after, "drug");
    assert_eq!(drug["cases"], 1);
    assert_eq!(drug["counts"]["regulatory"], 1);
    assert_eq!(drug["counts"]["ip_strategy"], 1);
    assert_eq!(drug["counts"]["reimbursement"], 0);
    assert_eq!(after["total"]["cases"], 2);
    assert_eq!(after["total"]["counts"]["regulatory"], 2);
    assert_eq!(after["total"]["counts"]["reimbursement"], 1);

    // Categories alone move the category cells.
    json_body(
        patch(
            &app,
            &applicant.token,
            &kept["id"],
            &json!({"categories": ["marketing"]}),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let last = category_table(&app, &manager.token).await;
    let device = row(&last, "medical_device");
    assert_eq!(device["cases"], 1);
    assert_eq!(device["counts"]["marketing"], 1);
    assert_eq!(device["counts"]["regulatory"], 0);
    // The filters follow too.
    let listed = json_body(
        app.list_cases(&applicant.token, "product_type=drug").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["id"], corrected["id"]);

    let check = json_body(
        app.get("/api/v1/stats/verify", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(check["consistent"], true, "{check}");
}

// ---------------------------------------------------------------- the document

fn document() -> Value {
    use utoipa::OpenApi;
    serde_json::to_value(medesk::http::openapi::ApiDoc::openapi()).unwrap()
}

#[test]
fn operation_ids_are_unique() {
    let doc = document();
    let mut ids = Vec::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
                ids.push(id.to_owned());
            }
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "{ids:?}");
}

#[test]
fn each_action_is_its_own_operation_with_its_own_body() {
    let doc = document();
    let body_of = |action: &str| -> Option<String> {
        let operation = &doc["paths"][format!("/api/v1/cases/{{id}}/actions/{action}")]["post"];
        assert_eq!(operation["operationId"], format!("action_{action}"));
        for status in ["200", "403", "404", "409", "412"] {
            assert!(
                operation["responses"].get(status).is_some(),
                "{action} {status}"
            );
        }
        assert!(
            operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "If-Match"),
            "{action}"
        );
        let body = operation.get("requestBody")?;
        let schema = &body["content"]["application/json"]["schema"];
        Some(
            schema["$ref"]
                .as_str()
                .or_else(|| {
                    // An optional body: `null`, or the object.
                    let one_of = schema["oneOf"].as_array()?;
                    assert!(one_of.iter().any(|s| s["type"] == "null"), "{action}");
                    one_of.iter().find_map(|s| s["$ref"].as_str())
                })
                .unwrap_or_else(|| panic!("{action}: {schema}"))
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned(),
        )
    };
    assert_eq!(body_of("claim"), None);
    assert_eq!(body_of("triage").as_deref(), Some("TriageRequest"));
    assert_eq!(
        body_of("request_info").as_deref(),
        Some("RequestInfoRequest")
    );
    assert_eq!(body_of("close").as_deref(), Some("CloseRequest"));
    for action in [
        "applicant_reply",
        "start_matching",
        "start_consultation",
        "withdraw",
        "reopen",
    ] {
        assert_eq!(
            body_of(action).as_deref(),
            Some("ReasonRequest"),
            "{action}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["RequestInfoRequest"]["required"],
        json!(["question"])
    );
    assert_eq!(schemas["CloseRequest"]["required"], json!(["outcome"]));
    // What `allowed_actions` may hold is exactly the nine paths.
    let listed: Vec<String> = strings(&schemas["ActionKind"]["enum"]);
    assert_eq!(listed.len(), 9);
    for action in &listed {
        body_of(action);
    }
    let edit = &doc["paths"]["/api/v1/cases/{id}"]["patch"];
    assert_eq!(edit["operationId"], "edit_case");
    for status in ["200", "403", "404", "409", "412", "422"] {
        assert!(edit["responses"].get(status).is_some(), "PATCH {status}");
    }
    assert_eq!(
        schemas["EditCaseRequest"]["additionalProperties"],
        json!(false)
    );
}
