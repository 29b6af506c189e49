//! Seeding the desk a scenario needs, just before it runs: applicant
//! accounts, the imported history, supporters, a manager, untriaged cases;
//! signing the seeded accounts in again before their tokens expire; waiting
//! for the mail all that queued. [`Api`] makes these unmeasured requests.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, ensure};
use futures_util::{StreamExt as _, TryStreamExt as _};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::payloads::{STATS_RANGES, case_body, history_csv};
use crate::runner::{Applicant, Bench, Credentials, Ctx, http_client};

/// The most historical rows one import request carries (`--cases`).
const HISTORY_ROWS_PER_IMPORT: usize = 100_000;
use crate::scenarios::Needs;
use crate::server::{ADMIN_EMAIL, ADMIN_PASSWORD};

/// Password of the seeded supporters and manager.
const STAFF_PASSWORD: &str = "bench staff password, long enough";
/// Access tokens live 15 minutes: the seeded accounts sign in again when
/// theirs are older than this before a scenario starts.
const TOKEN_REFRESH_AFTER: Duration = Duration::from_secs(10 * 60);
/// How long the mail worker may take to send what a scenario (or seeding)
/// queued before the next scenario starts anyway.
pub const MAIL_DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// Concurrent requests while seeding cases.
const SEED_CONCURRENCY: usize = 8;

/// What has been seeded so far (cumulative over the scenarios).
#[derive(Default)]
pub struct Seeded {
    /// Registered applicants, in order.
    users: Vec<Credentials>,
    /// The first `applicants.len()` of `users`, signed in, with a case each.
    applicants: Vec<Applicant>,
    supporter_accounts: Vec<Credentials>,
    /// Access tokens, in the order of `supporter_accounts`.
    supporters: Vec<String>,
    manager_account: Option<Credentials>,
    manager: Option<String>,
    /// The start-up admin's access token (seeding, outbox polling).
    admin: String,
    /// Whether the historical cases have been imported.
    history: bool,
    /// When every token above was obtained.
    signed_in_at: Option<Instant>,
}

impl Seeded {
    pub fn ctx(&self, base_url: &str) -> Ctx {
        Ctx {
            base_url: base_url.to_owned(),
            users: self.users.clone(),
            applicants: self.applicants.clone(),
            supporters: self.supporters.clone(),
            manager: self.manager.clone(),
            reserved: self.applicants.iter().map(|a| a.case_id).collect(),
            sequence: AtomicU64::new(0),
        }
    }
}

fn admin_account() -> Credentials {
    Credentials {
        email: ADMIN_EMAIL.to_owned(),
        password: ADMIN_PASSWORD.to_owned(),
    }
}

impl Bench {
    /// The start-up admin's access token.
    pub fn admin_token(&self) -> &str {
        &self.seeded.admin
    }

    pub fn manager_token(&self) -> anyhow::Result<&str> {
        self.ctx
            .manager
            .as_deref()
            .ok_or_else(|| anyhow!("no manager seeded"))
    }

    /// Seeds what `needs` asks for and is not there yet, then waits until the
    /// mail that caused has been sent (so that it does not disturb the
    /// scenario).
    pub async fn prepare(&mut self, needs: Needs) -> anyhow::Result<()> {
        self.refresh_tokens().await?;
        let (api, seeded, settings) = (&self.api, &mut self.seeded, &self.settings);
        for i in seeded.users.len()..needs.accounts.max(needs.desk) {
            seeded.users.push(api.register(i).await?);
        }
        if needs.desk > 0 {
            if !seeded.history && settings.cases > 0 {
                let started = Instant::now();
                let mut imported = 0;
                // In requests of at most 100,000 rows, as an operator would
                // (and the server's body limit asks).
                for start in (0..settings.cases).step_by(HISTORY_ROWS_PER_IMPORT) {
                    let rows = start..(start + HISTORY_ROWS_PER_IMPORT).min(settings.cases);
                    imported += api
                        .import_history(&seeded.admin, history_csv(settings.cases, rows))
                        .await?;
                }
                eprintln!(
                    "load: imported {imported} historical cases in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            seeded.history = true;
            for i in seeded.supporters.len()..settings.supporters {
                let account = Credentials {
                    email: format!("bench-supporter-{i}@medesk.example"),
                    password: STAFF_PASSWORD.to_owned(),
                };
                let name = format!("Bench Supporter {i}");
                api.create_staff(&seeded.admin, &account, "supporter", &name)
                    .await?;
                seeded.supporters.push(api.login(&account).await?);
                seeded.supporter_accounts.push(account);
            }
            for i in seeded.applicants.len()..needs.desk {
                let token = api.login(&seeded.users[i]).await?;
                let case_id = api.file_case(&token, i as u64).await?;
                seeded.applicants.push(Applicant { token, case_id });
            }
        }
        if needs.manager && seeded.manager.is_none() {
            let account = Credentials {
                email: "bench-manager@medesk.example".to_owned(),
                password: STAFF_PASSWORD.to_owned(),
            };
            api.create_staff(&seeded.admin, &account, "manager", "Bench Manager")
                .await?;
            seeded.manager = Some(api.login(&account).await?);
            seeded.manager_account = Some(account);
        }
        if needs.untriaged > 0 {
            ensure!(
                !seeded.applicants.is_empty() && !seeded.supporters.is_empty(),
                "untriaged cases need the desk seeded"
            );
            let reserved: HashSet<i64> = seeded.applicants.iter().map(|a| a.case_id).collect();
            let have = api.untriaged(&seeded.supporters[0], &reserved).await?;
            let missing = needs.untriaged.saturating_sub(have);
            let applicants = &seeded.applicants;
            futures_util::stream::iter(0..missing)
                .map(|k| api.file_case(&applicants[k % applicants.len()].token, k as u64))
                .buffer_unordered(SEED_CONCURRENCY)
                .try_collect::<Vec<_>>()
                .await?;
        }
        self.ctx = Arc::new(self.seeded.ctx(&self.ctx.base_url));
        if self.drain_mail().await?.is_none() {
            eprintln!("load: the seeding's mail was still not sent after {MAIL_DRAIN_TIMEOUT:?}");
        }
        Ok(())
    }

    /// A browser session for each seeded supporter (the pages scenario).
    pub async fn supporter_page_sessions(&self) -> anyhow::Result<Vec<String>> {
        let mut cookies = Vec::new();
        for account in &self.seeded.supporter_accounts {
            cookies.push(self.api.page_login(account).await?);
        }
        Ok(cookies)
    }

    /// Signs every seeded account in again when the tokens near expiry.
    async fn refresh_tokens(&mut self) -> anyhow::Result<()> {
        let fresh = self
            .seeded
            .signed_in_at
            .is_some_and(|at| at.elapsed() < TOKEN_REFRESH_AFTER);
        if fresh {
            return Ok(());
        }
        let (api, seeded) = (&self.api, &mut self.seeded);
        seeded.admin = api.login(&admin_account()).await?;
        for (token, account) in seeded.supporters.iter_mut().zip(&seeded.supporter_accounts) {
            *token = api.login(account).await?;
        }
        if let (Some(token), Some(account)) = (&mut seeded.manager, &seeded.manager_account) {
            *token = api.login(account).await?;
        }
        for (applicant, account) in seeded.applicants.iter_mut().zip(&seeded.users) {
            applicant.token = api.login(account).await?;
        }
        seeded.signed_in_at = Some(Instant::now());
        self.ctx = Arc::new(self.seeded.ctx(&self.ctx.base_url));
        Ok(())
    }

    /// Waits until the outbox has no pending mail; how long that took, or
    /// `None` after [`MAIL_DRAIN_TIMEOUT`].
    pub async fn drain_mail(&self) -> anyhow::Result<Option<Duration>> {
        let started = Instant::now();
        // Waits of 300 s in a row (mail due later, such as the message
        // notices the desk day queues for 15 minutes on) can outlast the
        // admin's 15-minute token: sign in again when it is old.
        let mut admin = self.seeded.admin.clone();
        let mut signed_in = self.seeded.signed_in_at.unwrap_or(started);
        loop {
            if signed_in.elapsed() > TOKEN_REFRESH_AFTER {
                admin = self.api.login(&admin_account()).await?;
                signed_in = Instant::now();
            }
            if !self.api.mail_pending(&admin).await? {
                return Ok(Some(started.elapsed()));
            }
            if started.elapsed() > MAIL_DRAIN_TIMEOUT {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The requests the driver makes outside the measured phases.
pub struct Api {
    http: reqwest::Client,
    base_url: String,
}

impl Api {
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: http_client()?,
            base_url: base_url.to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends `request`, insists on `expected` and returns the JSON body.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        expected: StatusCode,
        what: &str,
    ) -> anyhow::Result<Value> {
        let response = request.send().await.with_context(|| what.to_owned())?;
        let status = response.status();
        let text = response.text().await.with_context(|| what.to_owned())?;
        ensure!(
            status == expected,
            "{what}: HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        );
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{what}: the answer is not JSON"))
    }

    /// Registers applicant number `i` (with an organisation of its own).
    async fn register(&self, i: usize) -> anyhow::Result<Credentials> {
        let user = Credentials {
            email: format!("bench-user-{i}@medesk.example"),
            password: format!("bench password number {i}"),
        };
        let body = json!({
            "email": user.email,
            "password": user.password,
            "name": format!("Bench User {i}"),
            "organization": format!("Bench Venture {i}"),
            "locale": "ja",
        });
        let request = self
            .http
            .post(self.url("/api/v1/auth/register"))
            .json(&body);
        let what = format!("registering {}", user.email);
        self.call(request, StatusCode::CREATED, &what).await?;
        Ok(user)
    }

    /// Signs in through the sign-in page as a browser does (the visitor's
    /// CSRF cookie and the form's token); returns the `Cookie` header value
    /// that opens the browser session.
    pub async fn page_login(&self, account: &Credentials) -> anyhow::Result<String> {
        let what = format!("signing in on the page as {}", account.email);
        // The session cookie comes with the 303: not followed.
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let form = http
            .get(self.url("/login"))
            .header(reqwest::header::ACCEPT, "text/html")
            .send()
            .await
            .with_context(|| what.clone())?;
        let visitor = cookie_pair(&form, "medesk_csrf")
            .ok_or_else(|| anyhow!("{what}: no visitor CSRF cookie"))?;
        let html = form.text().await?;
        let token = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| anyhow!("{what}: no CSRF field in the sign-in page"))?
            .to_owned();
        let answer = http
            .post(self.url("/login"))
            .header(reqwest::header::COOKIE, visitor)
            .form(&[
                ("email", account.email.as_str()),
                ("password", account.password.as_str()),
                ("csrf", token.as_str()),
            ])
            .send()
            .await
            .with_context(|| what.clone())?;
        ensure!(
            answer.status() == StatusCode::SEE_OTHER,
            "{what}: HTTP {}",
            answer.status()
        );
        cookie_pair(&answer, "medesk_session").ok_or_else(|| anyhow!("{what}: no session cookie"))
    }

    /// Signs in; returns the access token.
    pub async fn login(&self, account: &Credentials) -> anyhow::Result<String> {
        let body = json!({"email": account.email, "password": account.password});
        let request = self.http.post(self.url("/api/v1/auth/login")).json(&body);
        let what = format!("signing in as {}", account.email);
        let answer = self.call(request, StatusCode::OK, &what).await?;
        answer["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("{what}: no access_token in {answer}"))
    }

    async fn create_staff(
        &self,
        admin: &str,
        account: &Credentials,
        role: &str,
        name: &str,
    ) -> anyhow::Result<()> {
        let body = json!({
            "email": account.email,
            "password": account.password,
            "name": name,
            "role": role,
            "locale": "ja",
        });
        let request = self
            .http
            .post(self.url("/api/v1/users"))
            .bearer_auth(admin)
            .json(&body);
        let what = format!("creating {role} {}", account.email);
        self.call(request, StatusCode::CREATED, &what).await?;
        Ok(())
    }

    /// Files case `n` (see [`case_body`]); returns its id.
    async fn file_case(&self, token: &str, n: u64) -> anyhow::Result<i64> {
        let request = self
            .http
            .post(self.url("/api/v1/cases"))
            .bearer_auth(token)
            .json(&case_body(n));
        let answer = self
            .call(request, StatusCode::CREATED, "filing a case")
            .await?;
        answer["id"]
            .as_i64()
            .ok_or_else(|| anyhow!("filing a case: no id in the answer"))
    }

    /// Imports the historical cases in one request; returns how many.
    async fn import_history(&self, admin: &str, csv: String) -> anyhow::Result<u64> {
        let request = self
            .http
            .post(self.url("/api/v1/import/cases"))
            .bearer_auth(admin)
            .header(reqwest::header::CONTENT_TYPE, "text/csv; charset=utf-8")
            .timeout(Duration::from_secs(600))
            .body(csv);
        let what = "importing the historical cases (--cases)";
        let answer = self.call(request, StatusCode::CREATED, what).await?;
        answer["imported"]
            .as_u64()
            .ok_or_else(|| anyhow!("{what}: no count in {answer}"))
    }

    /// Submitted cases in the first 500 of the triage queue, besides `reserved`.
    async fn untriaged(&self, supporter: &str, reserved: &HashSet<i64>) -> anyhow::Result<usize> {
        let request = self
            .http
            .get(self.url("/api/v1/triage-queue?limit=500"))
            .bearer_auth(supporter);
        let queue = self
            .call(request, StatusCode::OK, "reading the triage queue")
            .await?;
        let items = queue["items"].as_array().map_or(&[][..], Vec::as_slice);
        Ok(items
            .iter()
            .filter(|item| item["status"] == "submitted")
            .filter(|item| {
                item["id"]
                    .as_i64()
                    .is_some_and(|id| !reserved.contains(&id))
            })
            .count())
    }

    /// Whether the outbox holds mail not sent yet. The worker sends in id
    /// order, so the cheap check is the newest mail (a primary-key read);
    /// only when that one is out is the pending filter asked (which scans
    /// the pending mail: polled often, it would itself slow the draining).
    async fn mail_pending(&self, admin: &str) -> anyhow::Result<bool> {
        // Mail due later (the desk day's message notices, an Open Hours
        // reminder) is not a backlog: only what is due now counts, or the
        // driver would wait out its whole timeout for it.
        let now = chrono::Utc::now();
        let due_now = |item: &Value| {
            item["state"] == "pending"
                && item["next_attempt_at"]
                    .as_str()
                    .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                    .is_none_or(|at| at <= now)
        };
        let mut cursor: Option<i64> = None;
        loop {
            let mut url = String::from("/api/v1/admin/outbox?state=pending&limit=500");
            if let Some(cursor) = cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let request = self.http.get(self.url(&url)).bearer_auth(admin);
            let page = self
                .call(request, StatusCode::OK, "reading the outbox")
                .await?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if items.iter().any(due_now) {
                return Ok(true);
            }
            match page["next_cursor"].as_i64() {
                Some(next) => cursor = Some(next),
                None => return Ok(false),
            }
        }
    }

    /// The status of one category-table request (is the endpoint there?).
    pub async fn stats_status(&self, manager: &str) -> anyhow::Result<StatusCode> {
        let (from, to) = STATS_RANGES[0];
        let response = self
            .http
            .get(self.url(&format!("/api/v1/stats/categories?from={from}&to={to}")))
            .bearer_auth(manager)
            .send()
            .await
            .context("probing /api/v1/stats/categories")?;
        let status = response.status();
        let _ = response.bytes().await;
        Ok(status)
    }
}

/// `name=value` of the cookie `name` a response sets.
fn cookie_pair(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}
