//! The test harness: `TestApp::spawn(backend)` starts medesk on port 0 with a
//! fresh database and offers one method per endpoint.

use std::collections::HashMap;

use medesk::app::Application;
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
    pub client: reqwest::Client,
    _database: TestDatabase,
    _dir: tempfile::TempDir,
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
        let config = Config::from_vars(&vars).expect("test configuration is valid");
        let app = Application::build(config).await.expect("app starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            address,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            _database: database,
            _dir: dir,
        }
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
