//! `Idempotency-Key` on POSTs that create something: a double click or a
//! retried request files one case, posts one message.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, case_path, error_fields, intake, items, problem};

on_both_backends!(
    the_same_key_twice_files_one_case_and_answers_the_same,
    simultaneous_requests_with_one_key_file_one_case,
    a_key_reused_for_another_body_is_refused_and_changes_nothing,
    keys_belong_to_their_user,
    a_retried_message_is_posted_once,
    malformed_keys_are_refused_and_requests_without_keys_are_not_deduplicated,
);

impl TestApp {
    async fn post_with_key(&self, path: &str, token: &str, key: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }
}

/// Status, replay marker and body of an answer.
async fn answer(response: Response) -> (StatusCode, bool, Value) {
    let status = response.status();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let body = response.json().await.expect("a JSON body");
    (status, replayed, body)
}

async fn case_count(app: &TestApp, token: &str) -> usize {
    app.listed_ids(token, "").await.len()
}

async fn the_same_key_twice_files_one_case_and_answers_the_same(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let key = "3f2a9c1e-7b7d-4c55-9a4e-0b7e2f1d6c11";

    let (status, replayed, first) = answer(
        app.post_with_key("/api/v1/cases", &applicant.token, key, &intake())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(!replayed);
    let (status, replayed, second) = answer(
        app.post_with_key("/api/v1/cases", &applicant.token, key, &intake())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(replayed, "the second answer says it is a replay");
    assert_eq!(second, first);
    assert_eq!(case_count(&app, &applicant.token).await, 1);
}

async fn simultaneous_requests_with_one_key_file_one_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let key = "double-click-1";
    let sent = (0..8).map(|_| async {
        answer(
            app.post_with_key("/api/v1/cases", &applicant.token, key, &intake())
                .await,
        )
        .await
    });
    let answers = futures_util::future::join_all(sent).await;
    let (_, _, first) = &answers[0];
    for (status, _, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        assert_eq!(body["id"], first["id"]);
        assert_eq!(body["number"], first["number"]);
    }
    assert_eq!(
        answers.iter().filter(|(_, replayed, _)| !replayed).count(),
        1
    );
    assert_eq!(case_count(&app, &applicant.token).await, 1);
}

async fn a_key_reused_for_another_body_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let key = "form-42";
    let (status, _, _) = answer(
        app.post_with_key("/api/v1/cases", &applicant.token, key, &intake())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let mut other = intake();
    other["title"] = json!("別の相談");
    let refused = problem(
        app.post_with_key("/api/v1/cases", &applicant.token, key, &other)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["Idempotency-Key"]);
    assert_eq!(case_count(&app, &applicant.token).await, 1);
}

async fn keys_belong_to_their_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.applicant("株式会社メドテック").await;
    let second = app.applicant("バイオ研究所").await;
    let key = "same-key-different-people";
    let (status, _, mine) = answer(
        app.post_with_key("/api/v1/cases", &first.token, key, &intake())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, replayed, theirs) = answer(
        app.post_with_key("/api/v1/cases", &second.token, key, &intake())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(!replayed);
    assert_ne!(theirs["id"], mine["id"]);
    assert_eq!(theirs["organization"]["name"], "バイオ研究所");
}

async fn a_retried_message_is_posted_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app.new_case(&applicant.token).await;
    let path = case_path(&case["id"], "/messages");
    let body = json!({"body": "追加資料を送付します"});
    let sent = (0..4).map(|_| async {
        answer(
            app.post_with_key(&path, &applicant.token, "message-1", &body)
                .await,
        )
        .await
    });
    let answers = futures_util::future::join_all(sent).await;
    for (status, _, message) in &answers {
        assert_eq!(*status, StatusCode::CREATED);
        assert_eq!(message["id"], answers[0].2["id"]);
    }
    let messages = app.message_items(&applicant.token, &case["id"]).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
}

async fn malformed_keys_are_refused_and_requests_without_keys_are_not_deduplicated(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let too_long = "k".repeat(256);
    for key in ["", too_long.as_str()] {
        let refused = problem(
            app.post_with_key("/api/v1/cases", &applicant.token, key, &intake())
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec!["Idempotency-Key"], "{key:?}");
    }
    assert_eq!(case_count(&app, &applicant.token).await, 0);

    // Without a key, two requests are two cases, as before.
    for _ in 0..2 {
        app.new_case(&applicant.token).await;
    }
    let listed = items(
        app.list_cases(&applicant.token, "")
            .await
            .json()
            .await
            .expect("JSON"),
    );
    assert_eq!(listed.len(), 2);
}
