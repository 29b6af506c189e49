//! What a case does when its experts leave (domain::assignment's rule):
//! the last accepted expert withdrawn sends it back to `matching`; a
//! withdrawn proposal or a completed assignment leaves it where it is.

use reqwest::StatusCode;
use serde_json::Value;

use crate::expert_helpers::{Expert, expert_profile};
use crate::helpers::{Backend, TestApp, User, json_body, kinds};

on_both_backends!(
    withdrawing_the_last_accepted_expert_returns_the_case_to_matching,
    a_withdrawn_proposal_or_a_completion_leaves_the_consultation_going,
);

async fn status_of(app: &TestApp, supporter: &User, id: &Value) -> String {
    app.case(&supporter.token, id).await["status"]
        .as_str()
        .expect("status")
        .to_owned()
}

async fn ended(app: &TestApp, token: &str, assignment: &Value, withdraw: bool) -> Value {
    let response = if withdraw {
        app.withdraw_assignment(token, &assignment["id"]).await
    } else {
        app.complete_assignment(token, &assignment["id"]).await
    };
    json_body(response, StatusCode::OK).await
}

async fn setup(backend: Backend) -> (TestApp, User, Value, Vec<Expert>) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let mut experts = Vec::new();
    for name in ["First", "Second"] {
        experts.push(app.registered_expert(&admin, expert_profile(name)).await);
    }
    (app, supporter, case["id"].clone(), experts)
}

async fn withdrawing_the_last_accepted_expert_returns_the_case_to_matching(backend: Backend) {
    let (app, supporter, id, experts) = setup(backend).await;
    let first = app.engaged(&supporter, &id, &experts[0]).await;
    let second = app.engaged(&supporter, &id, &experts[1]).await;
    assert_eq!(status_of(&app, &supporter, &id).await, "in_consultation");

    let left = ended(&app, &supporter.token, &first, true).await;
    assert_eq!(left["status"], "withdrawn");
    assert_eq!(
        status_of(&app, &supporter, &id).await,
        "in_consultation",
        "the second expert goes on"
    );
    ended(&app, &supporter.token, &second, true).await;
    assert_eq!(status_of(&app, &supporter, &id).await, "matching");
    let events = app.event_items(&supporter.token, &id).await;
    assert!(
        kinds(&events).contains(&"expert_declined".to_owned()),
        "{events:?}"
    );
}

async fn a_withdrawn_proposal_or_a_completion_leaves_the_consultation_going(backend: Backend) {
    let (app, supporter, id, experts) = setup(backend).await;
    let accepted = app.engaged(&supporter, &id, &experts[0]).await;
    let proposal = app.proposed(&supporter, &id, &experts[1]).await;
    ended(&app, &supporter.token, &proposal, true).await;
    assert_eq!(status_of(&app, &supporter, &id).await, "in_consultation");

    let done = ended(&app, &experts[0].user.token, &accepted, false).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(status_of(&app, &supporter, &id).await, "in_consultation");
    // An ended assignment changes no more: 409, and it stays completed.
    let again = app
        .withdraw_assignment(&supporter.token, &accepted["id"])
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}
