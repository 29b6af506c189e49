//! Service endpoints and the problem+json safety net.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, problem};

on_both_backends!(
    health_names_the_backend,
    the_vocabulary_lists_every_code_with_its_labels_without_sign_in,
    openapi_document_lists_every_endpoint,
    docs_page_is_served_offline,
    unknown_route_is_a_problem_404,
    wrong_method_is_a_problem_405_with_allow,
    malformed_and_oversized_bodies_are_problems,
    every_response_carries_a_request_id,
);

async fn health_names_the_backend(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/health", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body, json!({"status": "ok", "database": expected}));
}

/// A newcomer reads the allowed codes before filing (issue 16); each code
/// listed is one the intake takes.
async fn the_vocabulary_lists_every_code_with_its_labels_without_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/api/v1/vocabulary", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let codes = |list: &str| -> Vec<String> {
        body[list]
            .as_array()
            .unwrap_or_else(|| panic!("{list} is a list"))
            .iter()
            .map(|term| term["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        codes("product_types"),
        ["drug", "medical_device", "regenerative", "other"]
    );
    // The order of the published table (API.md, statistics).
    assert_eq!(
        codes("categories"),
        [
            "regulatory",
            "marketing",
            "business_plan",
            "fundraising",
            "management_strategy",
            "ip_strategy",
            "international",
            "reimbursement",
            "other"
        ]
    );
    assert_eq!(codes("languages"), ["ja", "en"]);
    assert_eq!(codes("routes"), ["direct", "expert", "open_hours", "refer"]);
    for list in [
        "product_types",
        "categories",
        "stages",
        "languages",
        "organization_kinds",
        "case_statuses",
        "outcomes",
        "priorities",
        "routes",
        "message_visibilities",
    ] {
        for term in body[list].as_array().unwrap() {
            for label in ["ja", "en"] {
                assert!(
                    term[label].as_str().is_some_and(|l| !l.trim().is_empty()),
                    "{list}: {term}"
                );
            }
        }
    }
    assert_eq!(body["categories"][0]["ja"], "法規制対応");

    // Every listed product type, category and stage is taken by the intake.
    let applicant = app.applicant("Org").await;
    let stages = codes("stages");
    for (k, product_type) in codes("product_types").into_iter().enumerate() {
        let response = app
            .submit_case(
                &applicant.token,
                &json!({
                    "title": "Which pathway?",
                    "description": "Details",
                    "product_type": product_type,
                    "categories": codes("categories"),
                    "stage": stages[k % stages.len()],
                }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{product_type}");
    }
}

async fn openapi_document_lists_every_endpoint(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/api/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/health", "get"),
        ("/api/v1/vocabulary", "get"),
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/users", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

async fn docs_page_is_served_offline(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let redirect = app.get("/docs", None).await;
    assert!(redirect.status().is_redirection());
    assert_eq!(redirect.headers()["location"], "/docs/");

    let page = app.get("/docs/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "the page is Swagger UI");
    // Every asset the page loads is served by medesk itself.
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        assert!(html.contains(asset), "{asset} referenced");
        let response = app.get(&format!("/docs/{asset}"), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset} served");
        assert!(!response.bytes().await.unwrap().is_empty());
    }
    let initializer = app.get("/docs/swagger-initializer.js", None).await;
    assert!(
        initializer
            .text()
            .await
            .unwrap()
            .contains("/api/openapi.json")
    );
}

async fn unknown_route_is_a_problem_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = problem(
        app.get("/api/v1/nothing-here", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body["type"], "/problems/not-found");
}

async fn wrong_method_is_a_problem_405_with_allow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET");
    problem(response, StatusCode::METHOD_NOT_ALLOWED).await;

    let response = app.get("/api/v1/auth/login", None).await;
    assert_eq!(response.headers()["allow"], "POST");
    let body = problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(body["type"], "/problems/method-not-allowed");
}

async fn malformed_and_oversized_bodies_are_problems(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let truncated = app
        .post_raw(
            "/api/v1/auth/login",
            "application/json",
            b"{\"email\": ".to_vec(),
        )
        .await;
    let body = problem(truncated, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["type"], "/problems/malformed-request");

    let wrong_shape = app
        .post_raw("/api/v1/auth/login", "application/json", b"[1, 2]".to_vec())
        .await;
    problem(wrong_shape, StatusCode::UNPROCESSABLE_ENTITY).await;

    let not_json = app
        .post_raw("/api/v1/auth/login", "text/plain", b"email=a".to_vec())
        .await;
    problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    let huge = format!("{{\"email\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let oversized = app
        .post_raw(
            "/api/v1/auth/register",
            "application/json",
            huge.into_bytes(),
        )
        .await;
    problem(oversized, StatusCode::PAYLOAD_TOO_LARGE).await;
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.get("/health", None).await;
    let second = app.get("/nowhere", None).await;
    let a = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    let b = second.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(a.len(), 36);
    assert_ne!(a, b);
}
