//! The measured requests: one async function per kind, each returning the
//! request's outcome (a 2xx answer read in full, or a short description of
//! the failure).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::payloads::{STATS_RANGES, case_body};
use crate::runner::Worker;

/// The triage queue page supporters read (the endpoint's default).
pub const QUEUE_PAGE: usize = 100;
/// The first page of a case list, as the desk's list shows it.
pub const LIST_PAGE_PATH: &str = "/api/v1/cases?limit=20";
/// The `list` scenario's phases (the target is checked on each).
pub const LIST_PAGE_SUPPORTER: &str = "GET /api/v1/cases (desk)";
pub const LIST_PAGE_APPLICANT: &str = "GET /api/v1/cases (own)";

/// What one request came to: `Err` carries a short description of the failure.
pub type Outcome = Result<(), String>;

pub async fn get_health(worker: Worker) -> Outcome {
    expect_success(worker.http.get(worker.url("/health")).send().await).await
}

pub async fn post_login(worker: Worker) -> Outcome {
    let user = &worker.ctx.users[worker.id % worker.ctx.users.len()];
    let body = json!({"email": user.email, "password": user.password});
    let response = worker
        .http
        .post(worker.url("/api/v1/auth/login"))
        .json(&body)
        .send()
        .await;
    expect_success(response).await
}

/// Sends a new case as the client's applicant (client `id + offset`).
async fn send_case(worker: &Worker, offset: usize) -> reqwest::Result<reqwest::Response> {
    let applicant = worker.applicant(offset);
    worker
        .http
        .post(worker.url("/api/v1/cases"))
        .bearer_auth(&applicant.token)
        .json(&case_body(worker.next()))
        .send()
        .await
}

/// Files a case as the client's applicant (client `id + offset`).
pub async fn post_case(worker: Worker, offset: usize) -> Outcome {
    expect_success(send_case(&worker, offset).await).await
}

/// As [`post_case`], insisting on 201 Created: the mail scenarios expect
/// the mail of every case answered 201, and of no other.
pub async fn file_case(worker: Worker, offset: usize) -> Outcome {
    let response = send_case(&worker, offset).await;
    match response {
        Ok(response)
            if response.status() != reqwest::StatusCode::CREATED
                && response.status().is_success() =>
        {
            let status = response.status();
            let _ = response.bytes().await;
            Err(format!("HTTP {status}, not 201 Created"))
        }
        response => expect_success(response).await,
    }
}

pub async fn get_own_case(worker: Worker, offset: usize) -> Outcome {
    let applicant = worker.applicant(offset);
    let path = format!("/api/v1/cases/{}", applicant.case_id);
    let response = worker
        .http
        .get(worker.url(&path))
        .bearer_auth(&applicant.token)
        .send()
        .await;
    expect_success(response).await
}

/// The applicant's list (their organisation's cases, newest first).
pub async fn list_own_cases(worker: Worker, offset: usize) -> Outcome {
    let applicant = worker.applicant(offset);
    let response = worker
        .http
        .get(worker.url(LIST_PAGE_PATH))
        .bearer_auth(&applicant.token)
        .send()
        .await;
    expect_success(response).await
}

/// An applicant's message on their own case (applicant visibility).
pub async fn post_message(worker: Worker, offset: usize) -> Outcome {
    let applicant = worker.applicant(offset);
    let path = format!("/api/v1/cases/{}/messages", applicant.case_id);
    let body = json!({
        "body": format!(
            "追加の資料をお送りします。「非臨床試験の計画書（第{}版）」をご確認ください。<b>よろしくお願いします</b>",
            worker.next() % 100
        ),
    });
    let response = worker
        .http
        .post(worker.url(&path))
        .bearer_auth(&applicant.token)
        .json(&body)
        .send()
        .await;
    expect_success(response).await
}

pub async fn get_queue(worker: Worker) -> Outcome {
    let response = worker
        .http
        .get(worker.url("/api/v1/triage-queue"))
        .bearer_auth(worker.supporter())
        .send()
        .await;
    expect_success(response).await
}

/// The triage queue page, as a supporter's browser asks for it.
pub async fn get_queue_page(worker: Worker, sessions: Arc<Vec<String>>) -> Outcome {
    let cookie = &sessions[worker.id % sessions.len()];
    let response = worker
        .http
        .get(worker.url("/queue"))
        .header(reqwest::header::ACCEPT, "text/html")
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await;
    expect_success(response).await
}

/// One of the applicants' cases, as a supporter's browser shows it (the
/// case, its messages and timeline: a logged read).
pub async fn get_case_page(worker: Worker, sessions: Arc<Vec<String>>) -> Outcome {
    let cookie = &sessions[worker.id % sessions.len()];
    let applicants = &worker.ctx.applicants;
    let case_id = applicants[worker.next() as usize % applicants.len()].case_id;
    let response = worker
        .http
        .get(worker.url(&format!("/cases/{case_id}")))
        .header(reqwest::header::ACCEPT, "text/html")
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await;
    expect_success(response).await
}

/// A supporter opens one of the applicants' own cases (a logged read).
pub async fn supporter_get_case(worker: Worker) -> Outcome {
    let applicants = &worker.ctx.applicants;
    let case_id = applicants[worker.next() as usize % applicants.len()].case_id;
    let response = worker
        .http
        .get(worker.url(&format!("/api/v1/cases/{case_id}")))
        .bearer_auth(worker.supporter())
        .send()
        .await;
    expect_success(response).await
}

/// The desk's list: newest cases first, 20 per page (a logged read).
pub async fn supporter_list_cases(worker: Worker) -> Outcome {
    let response = worker
        .http
        .get(worker.url(LIST_PAGE_PATH))
        .bearer_auth(worker.supporter())
        .send()
        .await;
    expect_success(response).await
}

/// A supporter's triage round: read the queue, claim the oldest submitted
/// case of this client's residue class (`id % partitions == client`) with
/// `If-Match`, triage it with the version the claim returned.
pub async fn claim_and_triage(worker: Worker, partitions: usize) -> Outcome {
    let token = worker.supporter();
    let mine = |item: &Value| -> Option<(i64, i64)> {
        let id = item["id"].as_i64()?;
        let ours = item["status"] == "submitted"
            && id.rem_euclid(partitions as i64) == (worker.id % partitions) as i64
            && !worker.ctx.reserved.contains(&id);
        if !ours {
            return None;
        }
        Some((id, item["version"].as_i64()?))
    };
    let mut pick = None;
    for limit in [QUEUE_PAGE, 500] {
        let path = format!("/api/v1/triage-queue?limit={limit}");
        let request = worker.http.get(worker.url(&path)).bearer_auth(token);
        let queue = worker
            .step("GET triage-queue", async {
                expect_json(request.send().await).await
            })
            .await?;
        let items = queue["items"].as_array().ok_or("queue: no items")?;
        pick = items.iter().find_map(mine);
        if pick.is_some() {
            break;
        }
    }
    let (id, version) = pick.ok_or_else(|| {
        format!(
            "no submitted case left for triage client {} (seed more with --untriaged)",
            worker.id
        )
    })?;
    let request = worker
        .http
        .post(worker.url(&format!("/api/v1/cases/{id}/claim")))
        .bearer_auth(token)
        .header("If-Match", format!("\"{version}\""));
    let claimed = worker
        .step("POST claim", async {
            expect_json(request.send().await).await
        })
        .await?;
    let version = claimed["version"].as_i64().ok_or("claim: no version")?;
    let route = if id % 2 == 0 { "direct" } else { "expert" };
    let body = json!({
        "priority": "normal",
        "product_type": claimed["product_type"],
        "categories": claimed["categories"],
        "route": route,
        "note": "初回面談で詳細を確認する。",
    });
    let request = worker
        .http
        .post(worker.url(&format!("/api/v1/cases/{id}/triage")))
        .bearer_auth(token)
        .header("If-Match", format!("\"{version}\""))
        .json(&body);
    worker
        .step("POST triage", async {
            expect_success(request.send().await).await
        })
        .await
}

pub async fn get_stats(worker: Worker) -> Outcome {
    let (from, to) = STATS_RANGES[worker.next() as usize % STATS_RANGES.len()];
    let path = format!("/api/v1/stats/categories?from={from}&to={to}");
    let token = worker.ctx.manager.as_deref().ok_or("no manager seeded")?;
    let response = worker
        .http
        .get(worker.url(&path))
        .bearer_auth(token)
        .send()
        .await;
    expect_success(response).await
}

/// A success is a 2xx answer whose body arrived in full (reading it keeps the
/// connection reusable).
async fn expect_success(response: reqwest::Result<reqwest::Response>) -> Outcome {
    let response = response.map_err(|e| format!("transport: {}", error_chain(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading body: {}", error_chain(&e)))?;
    if status.is_success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&body);
        Err(format!(
            "HTTP {status}: {}",
            text.chars().take(160).collect::<String>()
        ))
    }
}

/// As [`expect_success`], and the body parsed as JSON.
async fn expect_json(response: reqwest::Result<reqwest::Response>) -> Result<Value, String> {
    let response = response.map_err(|e| format!("transport: {}", error_chain(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading body: {}", error_chain(&e)))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(format!(
            "HTTP {status}: {}",
            text.chars().take(160).collect::<String>()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("HTTP {status}: not JSON: {e}"))
}

pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
