//! How JSON bodies are read: objects only, whole numbers as integers.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp, error_fields, intake, json_body, problem};

on_both_backends!(
    a_body_must_be_an_object,
    a_nested_object_must_be_an_object,
    whole_floats_are_integers,
    an_empty_refresh_token_is_invalid,
);

async fn a_body_must_be_an_object(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // serde would read `["…"]` as the struct's one field.
    let refused = problem(
        app.post("/api/v1/auth/logout", None, &json!(["some token"]))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["body"]);
}

async fn a_nested_object_must_be_an_object(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Array Startup").await;
    let mut body = intake();
    body["organization"] = json!([null, null]);
    let refused = problem(
        app.submit_case(&applicant.token, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["organization"]);
}

async fn whole_floats_are_integers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let mut profile = crate::expert_helpers::expert_profile("Float Expert");
    profile["capacity"] = json!(4.0);
    profile["expertise"] = json!([{"category": "regulatory", "level": 2.0}]);
    let expert = json_body(
        app.create_expert(&admin, &profile).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(expert["capacity"], 4);
    assert_eq!(expert["expertise"][0]["level"], 2);

    let mut fractional = crate::expert_helpers::expert_profile("Fraction Expert");
    fractional["capacity"] = json!(2.5);
    let refused = problem(
        app.create_expert(&admin, &fractional).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["capacity"]);
}

async fn an_empty_refresh_token_is_invalid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for response in [app.logout("").await, app.refresh("").await] {
        let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_fields(&refused), vec!["refresh_token"]);
    }
}
