//! Faults of the infrastructure are not bugs of the request: the database
//! going away answers 503 with `Retry-After`, changes nothing, and medesk
//! recovers by itself when the database is back.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{Backend, TestApp, intake, problem};

#[tokio::test]
async fn a_postgres_outage_answers_503_loses_nothing_and_passes() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let filed = app.new_case(&applicant.token).await;

    app.postgres_accepts_connections(false).await;
    let response = app.submit_case(&applicant.token, &intake()).await;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|s| s > 0), "{retry_after:?}");
    let refused = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(refused["type"], "/problems/unavailable");
    let read = app.get_case(&applicant.token, &filed["id"]).await;
    assert_eq!(read.status(), StatusCode::SERVICE_UNAVAILABLE);

    app.postgres_accepts_connections(true).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = app.list_cases(&applicant.token, "").await;
        if listed.status() == StatusCode::OK {
            let ids = app.listed_ids(&applicant.token, "").await;
            assert_eq!(
                ids,
                vec![filed["id"].clone()],
                "the refused case was not stored"
            );
            break;
        }
        assert!(Instant::now() < deadline, "medesk did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A case reads again (on PostgreSQL through the gathering thread,
    // which answered the outage with 503 and carries on), and writes work.
    let read = app.case(&applicant.token, &filed["id"]).await;
    assert_eq!(read["number"], filed["number"]);
    app.new_case(&applicant.token).await;
    // The statistics fold, which could not reach the database either,
    // works again: both cases end up in the rollups, equal to a recount.
    let check = app.statistics_folded().await;
    assert!(check["cells"].as_u64().unwrap() >= 4, "{check}");
}
