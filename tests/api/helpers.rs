//! The test harness: `TestApp::spawn(backend)` starts medesk on port 0 with a
//! fresh database and offers one method per endpoint.

use std::collections::HashMap;

use medesk::app::Application;
use medesk::clock::Clock;
use medesk::config::Config;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `sqlite::NAME` and `postgres::NAME` tests from
/// `async fn NAME(backend: Backend)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Like [`on_both_backends`] for page tests: the `both` tests run on SQLite
/// and PostgreSQL, the `sqlite` ones on SQLite only. A page calls the same
/// use cases as the JSON API, whose tests run every use case on both
/// backends; what a page adds (HTML, forms, accessibility, keyboard) does
/// not depend on the database, so only the main stories run twice.
macro_rules! pages_on_backends {
    (both: $($both:ident),* $(,)?; sqlite: $($sqlite:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $both() {
                    super::$both($crate::helpers::Backend::Sqlite).await
                }
            )*
            $(
                #[tokio::test]
                async fn $sqlite() {
                    super::$sqlite($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $both() {
                    super::$both($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

pub const ADMIN_EMAIL: &str = "admin@medesk.example";
pub const ADMIN_PASSWORD: &str = "admin password for tests";
pub const PASSWORD: &str = "a sufficiently long password";

fn postgres_base_url() -> String {
    std::env::var("MEDESK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A database that exists for one test.
enum TestDatabase {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { name: String },
}

impl TestDatabase {
    async fn create(backend: Backend, dir: &std::path::Path) -> (Self, String) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir_in(dir).expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("medesk.db").display());
                (TestDatabase::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let name = format!("medesk_test_{}", random_suffix());
                let statement = format!("CREATE DATABASE {name}");
                tokio::task::spawn_blocking(move || admin_sql(&statement))
                    .await
                    .unwrap();
                let url = format!("{}/{name}", postgres_base_url());
                (TestDatabase::Postgres { name }, url)
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { name } = self {
            let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            // Drop runs inside the test's runtime: do the blocking call elsewhere.
            let _ = std::thread::spawn(move || admin_sql(&statement)).join();
        }
    }
}

/// PostgreSQL's planner estimate of `table`'s rows in database `name`
/// (`pg_class.reltuples`: -1 until the table was first analyzed).
fn planner_row_estimate(name: &str, table: &str) -> f32 {
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Estimate {
        #[diesel(sql_type = diesel::sql_types::Float)]
        reltuples: f32,
    }
    let url = format!("{}/{name}", postgres_base_url());
    let mut conn = diesel::PgConnection::establish(&url).expect("test database");
    let estimate: Estimate = diesel::sql_query("SELECT reltuples FROM pg_class WHERE relname = $1")
        .bind::<diesel::sql_types::Text, _>(table)
        .get_result(&mut conn)
        .expect("pg_class row");
    estimate.reltuples
}

fn admin_sql(statement: &str) {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let url = format!("{}/postgres", postgres_base_url());
    let mut conn = diesel::PgConnection::establish(&url).unwrap_or_else(|e| {
        panic!("PostgreSQL must run on {url} for the test suite (.ci/run starts it): {e}")
    });
    conn.batch_execute(statement)
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

pub fn random_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct TestApp {
    pub address: String,
    /// Where mails land as `.eml` files (no SMTP is configured in tests).
    pub mail_dir: std::path::PathBuf,
    pub client: reqwest::Client,
    /// The app's clock: `clock.advance(…)` lets time pass without waiting
    /// (kept across `restart`).
    pub clock: Clock,
    /// The configuration the app runs with (kept for `restart`).
    vars: HashMap<String, String>,
    running: Option<Running>,
    _database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// How many rows PostgreSQL's query planner believes `table` has.
    /// Panics on SQLite.
    pub async fn planner_row_estimate(&self, table: &'static str) -> f32 {
        let TestDatabase::Postgres { name } = &self._database else {
            panic!("planner_row_estimate is for PostgreSQL apps");
        };
        let name = name.clone();
        tokio::task::spawn_blocking(move || planner_row_estimate(&name, table))
            .await
            .unwrap()
    }
}

impl TestApp {
    /// `GET /api/v1/stats/verify` as the admin: the rollup check.
    pub async fn rollup_check(&self) -> Value {
        let admin = self.admin_token().await;
        json_body(
            self.get("/api/v1/stats/verify", Some(&admin)).await,
            StatusCode::OK,
        )
        .await
    }

    /// Waits until the statistics fold has counted every filed case into
    /// the rollups (at once on SQLite, which has no queue); returns the
    /// check, which must be consistent.
    pub async fn statistics_folded(&self) -> Value {
        for _ in 0..300 {
            let check = self.rollup_check().await;
            assert_eq!(check["consistent"], true, "{check}");
            if check["pending"] == 0 {
                return check;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "the fold left cases pending for 30 s: {}",
            self.rollup_check().await
        );
    }
}

impl TestApp {
    /// A connection of its own to this app's PostgreSQL database, for a
    /// test that holds a lock beside the app. Panics on SQLite.
    pub fn postgres_connection(&self) -> diesel::PgConnection {
        use diesel::Connection;
        let TestDatabase::Postgres { name } = &self._database else {
            panic!("postgres_connection is for PostgreSQL apps");
        };
        let url = format!("{}/{name}", postgres_base_url());
        diesel::PgConnection::establish(&url).expect("test database")
    }
}

impl TestApp {
    /// The app's `DATABASE_URL`.
    pub fn database_url(&self) -> String {
        self.vars["DATABASE_URL"].clone()
    }
}

impl TestApp {
    /// Simulates a PostgreSQL outage of this app's database: with `false`,
    /// every open connection is cut and new ones are refused; with `true`,
    /// connections are accepted again. Panics on SQLite.
    pub async fn postgres_accepts_connections(&self, accept: bool) {
        let TestDatabase::Postgres { name } = &self._database else {
            panic!("postgres_accepts_connections is for PostgreSQL apps");
        };
        let mut statement = format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {accept};");
        if !accept {
            statement.push_str(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
            ));
        }
        tokio::task::spawn_blocking(move || admin_sql(&statement))
            .await
            .unwrap();
    }
}

/// A started server and the task that serves it.
struct Running {
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Builds and starts the app going by `clock`; returns its address.
async fn start(vars: &HashMap<String, String>, clock: &Clock) -> (String, Running) {
    let config = Config::from_vars(vars).expect("test configuration is valid");
    let app = Application::build_with_clock(config, clock.clone())
        .await
        .expect("app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    (address, Running { handle, task })
}

/// A second instance of an app on the same database, as a second server
/// behind a load balancer would be, going by the same clock; stopped when
/// dropped.
pub struct OtherInstance {
    pub address: String,
    running: Option<Running>,
}

impl OtherInstance {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }
}

impl Drop for OtherInstance {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            drop(running.handle.stop(false));
        }
    }
}

impl TestApp {
    /// Starts another instance on this app's database and configuration.
    pub async fn another_instance(&self) -> OtherInstance {
        let (address, running) = start(&self.vars, &self.clock).await;
        OtherInstance {
            address,
            running: Some(running),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            // Sends the stop command now; the server winds down on its own.
            drop(running.handle.stop(false));
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts the app with extra environment variables (overriding defaults).
    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database, database_url) = TestDatabase::create(backend, dir.path()).await;
        let mail_dir = dir.path().join("mail");
        let mut vars: HashMap<String, String> = [
            ("DATABASE_URL", database_url.as_str()),
            ("MEDESK_BIND", "127.0.0.1:0"),
            ("MEDESK_ADMIN_EMAIL", ADMIN_EMAIL),
            ("MEDESK_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("MEDESK_WORKERS", "1"),
            ("MEDESK_DB_POOL_SIZE", "4"),
            ("MEDESK_PASSWORD_HASH_CONCURRENCY", "1"),
            ("MEDESK_MAIL_DIR", mail_dir.to_str().unwrap()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (key, value) in extra {
            vars.insert((*key).to_owned(), (*value).to_owned());
        }
        let clock = Clock::adjustable();
        let (address, running) = start(&vars, &clock).await;
        Self {
            address,
            mail_dir,
            clock,
            vars,
            running: Some(running),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // Below actix's 5 s keep-alive: a connection idle while a
                // browser step ran is not reused just as the server closes
                // it (seen once in CI as `IncompleteMessage` on GET /login).
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .unwrap(),
            _database: database,
            _dir: dir,
        }
    }

    /// Stops the server and its background tasks as SIGTERM would, and waits.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.handle.stop(true).await;
            running
                .task
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    /// Stops the app and starts it again on the same database (new port),
    /// optionally with changed variables.
    pub async fn restart_with(&mut self, changes: &[(&str, &str)]) {
        self.stop().await;
        for (key, value) in changes {
            self.vars.insert((*key).to_owned(), (*value).to_owned());
        }
        let (address, running) = start(&self.vars, &self.clock).await;
        self.address = address;
        self.running = Some(running);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    // --- one helper per endpoint -------------------------------------

    pub async fn register(&self, body: &Value) -> Response {
        self.post("/api/v1/auth/register", None, body).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            None,
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    pub async fn logout(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/v1/auth/logout",
            None,
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.get("/api/v1/me", Some(access_token)).await
    }

    pub async fn create_user(&self, access_token: &str, body: &Value) -> Response {
        self.post("/api/v1/users", Some(access_token), body).await
    }

    // --- scenario shortcuts ------------------------------------------

    /// Logs in and returns `(access_token, refresh_token)`.
    pub async fn tokens(&self, email: &str, password: &str) -> (String, String) {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login as {email}");
        let body: Value = response.json().await.unwrap();
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn admin_token(&self) -> String {
        self.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await.0
    }

    /// Registers an applicant; returns its e-mail address and user JSON.
    pub async fn new_applicant(&self, organization: &str) -> (String, Value) {
        let email = format!("founder-{}@startup.example", random_suffix());
        let response = self
            .register(&json!({
                "email": email, "password": PASSWORD, "name": "Founder",
                "organization": organization, "locale": "ja",
            }))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        (email, response.json().await.unwrap())
    }

    /// Creates a user of `role` through the admin API; returns its access token.
    pub async fn new_staff(&self, role: &str) -> (String, String) {
        let admin = self.admin_token().await;
        let email = format!("{role}-{}@desk.example", random_suffix());
        let response = self
            .create_user(
                &admin,
                &json!({"email": email, "password": PASSWORD, "name": role, "role": role, "locale": "en"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "create {role}");
        let token = self.tokens(&email, PASSWORD).await.0;
        (email, token)
    }

    // --- cases ---------------------------------------------------------

    /// A POST with an optional `If-Match` header.
    pub async fn post_if_match(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body);
        if let Some(version) = if_match {
            request = request.header("if-match", version);
        }
        request.send().await.expect("request sent")
    }

    pub async fn submit_case(&self, token: &str, body: &Value) -> Response {
        self.post("/api/v1/cases", Some(token), body).await
    }

    pub async fn get_case(&self, token: &str, id: &Value) -> Response {
        self.get(&case_path(id, ""), Some(token)).await
    }

    /// `query` is the raw query string without `?`, e.g. `status=submitted&limit=5`.
    pub async fn list_cases(&self, token: &str, query: &str) -> Response {
        self.get(&format!("/api/v1/cases?{query}"), Some(token))
            .await
    }

    pub async fn claim(&self, token: &str, id: &Value, if_match: Option<&str>) -> Response {
        self.post_if_match(&case_path(id, "/claim"), token, &json!({}), if_match)
            .await
    }

    pub async fn triage(
        &self,
        token: &str,
        id: &Value,
        body: &Value,
        if_match: Option<&str>,
    ) -> Response {
        self.post_if_match(&case_path(id, "/triage"), token, body, if_match)
            .await
    }

    pub async fn set_status(
        &self,
        token: &str,
        id: &Value,
        body: &Value,
        if_match: Option<&str>,
    ) -> Response {
        self.post_if_match(&case_path(id, "/status"), token, body, if_match)
            .await
    }

    pub async fn post_message(
        &self,
        token: &str,
        id: &Value,
        body: &Value,
        if_match: Option<&str>,
    ) -> Response {
        self.post_if_match(&case_path(id, "/messages"), token, body, if_match)
            .await
    }

    pub async fn messages(&self, token: &str, id: &Value) -> Response {
        self.get(&case_path(id, "/messages"), Some(token)).await
    }

    pub async fn events(&self, token: &str, id: &Value) -> Response {
        self.get(&case_path(id, "/events"), Some(token)).await
    }

    pub async fn triage_queue(&self, token: &str) -> Response {
        self.get("/api/v1/triage-queue", Some(token)).await
    }

    /// `query` is the raw query string without `?`, e.g. `case_id=3`.
    pub async fn access_log(&self, token: &str, query: &str) -> Response {
        self.get(&format!("/api/v1/admin/access-log?{query}"), Some(token))
            .await
    }

    // --- case scenario shortcuts ----------------------------------------

    /// A signed-in applicant of a new organisation named `organization`.
    pub async fn applicant(&self, organization: &str) -> User {
        let (email, user) = self.new_applicant(organization).await;
        let token = self.tokens(&email, PASSWORD).await.0;
        User {
            email,
            token,
            id: user["id"].clone(),
            organization_id: user["organization_id"].clone(),
        }
    }

    /// A signed-in user of a staff `role` (supporter, expert, manager, admin).
    pub async fn staff(&self, role: &str) -> User {
        let (email, token) = self.new_staff(role).await;
        let me = json_body(self.me(&token).await, StatusCode::OK).await;
        User {
            email,
            token,
            id: me["id"].clone(),
            organization_id: Value::Null,
        }
    }

    /// Files `body` as `token`, asserting 201; returns the case.
    pub async fn new_case_with(&self, token: &str, body: &Value) -> Value {
        json_body(self.submit_case(token, body).await, StatusCode::CREATED).await
    }

    /// Files the default intake as `token`; returns the case.
    pub async fn new_case(&self, token: &str) -> Value {
        self.new_case_with(token, &intake()).await
    }

    /// The case as `token` sees it now (asserting 200).
    pub async fn case(&self, token: &str, id: &Value) -> Value {
        json_body(self.get_case(token, id).await, StatusCode::OK).await
    }

    /// The timeline's items as `token` sees them (asserting 200).
    pub async fn event_items(&self, token: &str, id: &Value) -> Vec<Value> {
        items(json_body(self.events(token, id).await, StatusCode::OK).await)
    }

    /// The messages as `token` sees them (asserting 200).
    pub async fn message_items(&self, token: &str, id: &Value) -> Vec<Value> {
        items(json_body(self.messages(token, id).await, StatusCode::OK).await)
    }

    /// The ids of the cases listed for `token` with `query` (asserting 200).
    pub async fn listed_ids(&self, token: &str, query: &str) -> Vec<Value> {
        let page = json_body(self.list_cases(token, query).await, StatusCode::OK).await;
        ids(&page["items"])
    }

    /// Claims the case as `token`, asserting 200; returns the case.
    pub async fn claimed(&self, token: &str, id: &Value) -> Value {
        json_body(self.claim(token, id, None).await, StatusCode::OK).await
    }

    /// Claims and triages the case along `route`, asserting 200s; returns the case.
    pub async fn triaged(&self, token: &str, id: &Value, route: &str) -> Value {
        self.claimed(token, id).await;
        json_body(
            self.triage(token, id, &triage_body(route), None).await,
            StatusCode::OK,
        )
        .await
    }

    /// Asks for `{status, outcome?, reason?}` as `token`, asserting 200; returns the case.
    pub async fn moved(&self, token: &str, id: &Value, body: Value) -> Value {
        json_body(
            self.set_status(token, id, &body, None).await,
            StatusCode::OK,
        )
        .await
    }
}

/// A signed-in user as the case tests need it.
#[derive(Debug, Clone)]
pub struct User {
    pub email: String,
    pub token: String,
    pub id: Value,
    /// Null for staff.
    pub organization_id: Value,
}

/// `/api/v1/cases/{id}{suffix}`; ids are opaque JSON values (number or string).
pub fn case_path(id: &Value, suffix: &str) -> String {
    let id = match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("/api/v1/cases/{id}{suffix}")
}

/// A valid intake body; tests change the fields they are about.
pub fn intake() -> Value {
    json!({
        "title": "医療機器の承認申請について",
        "description": "クラスII医療機器の承認申請に必要な試験を相談したいです。",
        "product_type": "medical_device",
        "categories": ["regulatory", "reimbursement"],
        "stage": "non_clinical",
        "organization": {"name": "株式会社メドテック", "kind": "startup"},
        "language": "ja",
    })
}

/// A valid triage body for `route` (with `refer_to` when the route is `refer`).
pub fn triage_body(route: &str) -> Value {
    let mut body = json!({
        "priority": "normal",
        "product_type": "medical_device",
        "categories": ["regulatory"],
        "route": route,
        "note": "desk-side triage note",
    });
    if route == "refer" {
        body["refer_to"] = json!("PMDA 相談窓口");
    }
    body
}

/// Asserts `status` and returns the JSON body.
pub async fn json_body(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
}

/// The `items` array of a list document.
pub fn items(document: Value) -> Vec<Value> {
    match document {
        Value::Object(mut map) => match map.remove("items") {
            Some(Value::Array(items)) => items,
            other => panic!("items is not an array: {other:?}"),
        },
        other => panic!("not an object: {other}"),
    }
}

/// The `id`s of an array of objects.
pub fn ids(array: &Value) -> Vec<Value> {
    array
        .as_array()
        .expect("an array")
        .iter()
        .map(|item| item["id"].clone())
        .collect()
}

/// The `kind`s of timeline events.
pub fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

/// Asserts a problem+json response with `status`; returns the document.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status.as_u16(), "status field");
    assert!(body["type"].as_str().is_some_and(|t| !t.is_empty()), "type");
    assert!(body["title"].as_str().is_some(), "title");
    assert!(body["detail"].as_str().is_some(), "detail");
    body
}

/// The field names listed in a 422 problem.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("validation problem lists errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

impl TestApp {
    /// The number `query` (a `SELECT count(*)`-like statement) answers on
    /// the app's database, on either backend: for what no endpoint shows.
    pub async fn count_sql(&self, query: &str) -> i64 {
        use diesel::{Connection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let url = self.vars["DATABASE_URL"].clone();
        let query = format!("SELECT ({query}) AS n");
        tokio::task::spawn_blocking(move || {
            let count: Count = match url.strip_prefix("sqlite://") {
                Some(path) => {
                    let mut conn =
                        diesel::SqliteConnection::establish(path).expect("test database");
                    diesel::sql_query(&query).get_result(&mut conn)
                }
                None => {
                    let mut conn = diesel::PgConnection::establish(&url).expect("test database");
                    diesel::sql_query(&query).get_result(&mut conn)
                }
            }
            .unwrap_or_else(|e| panic!("{query}: {e}"));
            count.n
        })
        .await
        .unwrap()
    }

    /// Runs SQL on the app's database behind the app's back, on either
    /// backend: for what no endpoint may do, such as moving a stored expiry
    /// into the past instead of waiting for it.
    pub async fn execute_sql(&self, statement: &str) {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let url = self.vars["DATABASE_URL"].clone();
        let statement = statement.to_owned();
        tokio::task::spawn_blocking(move || match url.strip_prefix("sqlite://") {
            Some(path) => {
                let mut conn = diesel::SqliteConnection::establish(path).expect("test database");
                conn.batch_execute(&format!("PRAGMA busy_timeout = 10000; {statement}"))
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
            }
            None => {
                let mut conn = diesel::PgConnection::establish(&url).expect("test database");
                conn.batch_execute(&statement)
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
            }
        })
        .await
        .unwrap();
    }
}

/// Percent-encodes a query-string value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Follows `next_cursor` from the first page; returns every page's ids.
pub async fn walk_pages(app: &TestApp, token: &str, query: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut full = query.to_owned();
        if let Some(cursor) = &cursor {
            full.push_str(&format!("&cursor={}", encode(cursor)));
        }
        let page = json_body(app.list_cases(token, &full).await, StatusCode::OK).await;
        pages.push(ids(&page["items"]));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() <= 10, "the cursor never ends: {pages:?}");
    }
}
