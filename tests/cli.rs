//! The `medesk` binary as an operator uses it: configuration errors,
//! `migrate`, `user add` (password from standard input), graceful stop.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn medesk(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    medesk_in(None, args, env, stdin)
}

/// `medesk` run in the working directory `dir` (the test's own when None).
fn medesk_in(
    dir: Option<&std::path::Path>,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_medesk"));
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("medesk runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("medesk finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn configuration_errors_name_the_variable() {
    let output = medesk(&["serve"], &[("MEDESK_BIND", "not-an-address")], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("MEDESK_BIND"),
        "{}",
        text(&output.stderr)
    );

    let output = medesk(&["serve"], &[("MEDESK_ENV", "production")], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("MEDESK_JWT_SECRET"));

    let output = medesk(
        &["serve"],
        &[
            ("MEDESK_ENV", "production"),
            (
                "MEDESK_JWT_SECRET",
                "medesk-development-secret-do-not-use-in-production",
            ),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("development secret"));
}

#[test]
fn migrate_and_user_add_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("desk.db").display());
    let env = [("DATABASE_URL", url.as_str())];

    let output = medesk(&["migrate"], &env, None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("migrations applied (sqlite)"));

    let add = [
        "user",
        "add",
        "--email",
        "Supporter@Desk.example",
        "--name",
        "Sato",
        "--role",
        "supporter",
        "--locale",
        "en",
    ];
    let output = medesk(&add, &env, Some("a long enough password\n"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("created supporter supporter@desk.example"),
        "{stdout}"
    );
    // The password never appears in what the command prints.
    assert!(!stdout.contains("long enough") && !text(&output.stderr).contains("long enough"));

    let output = medesk(&add, &env, Some("another long password\n"));
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("exists"));

    let weak = [
        "user",
        "add",
        "--email",
        "b@desk.example",
        "--name",
        "B",
        "--role",
        "admin",
    ];
    let output = medesk(&weak, &env, Some("short\n"));
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("at least 12"));

    let applicant = [
        "user",
        "add",
        "--email",
        "c@startup.example",
        "--name",
        "C",
        "--role",
        "applicant",
    ];
    let output = medesk(&applicant, &env, Some("a long enough password\n"));
    assert!(!output.status.success(), "applicants need an organisation");

    let bad_role = [
        "user",
        "add",
        "--email",
        "d@desk.example",
        "--name",
        "D",
        "--role",
        "root",
    ];
    let output = medesk(&bad_role, &env, Some("a long enough password\n"));
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("unknown role"));
}

#[test]
fn commands_other_than_serve_and_migrate_refuse_to_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let add = [
        "user",
        "add",
        "--email",
        "admin@desk.example",
        "--name",
        "Admin",
        "--role",
        "admin",
    ];
    let password = Some("a long enough password\n");

    // No DATABASE_URL: medesk.db in the working directory, which has none.
    let output = medesk_in(Some(dir.path()), &add, &[], password);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    let expected = dir.path().canonicalize().unwrap().join("medesk.db");
    assert!(
        stderr.contains(&expected.display().to_string()) || {
            // The temp dir may sit behind a symbolic link: the path as given.
            stderr.contains(&dir.path().join("medesk.db").display().to_string())
        },
        "names the absolute path: {stderr}"
    );
    assert!(
        stderr.contains("DATABASE_URL"),
        "says how to point at the right one: {stderr}"
    );
    assert!(
        !dir.path().join("medesk.db").exists(),
        "nothing was created"
    );
    assert!(!text(&output.stdout).contains("created"));

    // A relative DATABASE_URL is shown resolved against the working directory.
    let output = medesk_in(
        Some(dir.path()),
        &add,
        &[("DATABASE_URL", "sqlite://data/desk.db")],
        password,
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("/data/desk.db") && !stderr.contains(" data/desk.db"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists());

    // `migrate` creates it; then the same command works there.
    let output = medesk_in(Some(dir.path()), &["migrate"], &[], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = medesk_in(Some(dir.path()), &add, &[], password);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("created admin admin@desk.example"));
}

#[test]
fn migrate_on_postgres() {
    let base = std::env::var("MEDESK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let name = format!("medesk_cli_{}", std::process::id());
    let admin = |sql: &str| {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let mut conn = diesel::PgConnection::establish(&format!("{base}/postgres"))
            .expect("PostgreSQL runs for the test suite");
        conn.batch_execute(sql).unwrap();
    };
    admin(&format!("CREATE DATABASE {name}"));
    let url = format!("{base}/{name}");
    let output = medesk(&["migrate"], &[("DATABASE_URL", &url)], None);
    let again = medesk(&["migrate"], &[("DATABASE_URL", &url)], None);
    admin(&format!("DROP DATABASE {name} WITH (FORCE)"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("migrations applied (postgres)"));
    assert!(again.status.success(), "migrating twice is harmless");
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let bind = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_medesk"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("MEDESK_BIND", &bind)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut healthy = false;
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(mut stream) = std::net::TcpStream::connect(&bind) {
            use std::io::Read;
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.contains("\"database\":\"sqlite\"") {
                healthy = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(healthy, "serve answered /health on the embedded default");
    assert!(
        dir.path().join("medesk.db").exists(),
        "medesk.db created in the working directory"
    );
    // SAFETY: sending SIGTERM to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "medesk did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
}
