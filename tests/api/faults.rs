//! Faults of the infrastructure are not bugs of the request: the database
//! going away answers 503 with `Retry-After`, a full disk 507; neither
//! changes anything, and medesk recovers by itself when the fault ends.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, intake, problem, walk_pages};

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

/// A tmpfs of its own, as a disk that can fill up; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB, or None where this user may not mount
    /// (only root can; CI runs as root).
    fn mount(mib: u32) -> Option<Self> {
        // SAFETY: reads the process's effective user id only.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "medesk-test"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount a tmpfs: {status}");
        Some(Self { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills what is left of the disk with one file; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let ballast = self.path().join("ballast");
        let mut file = std::fs::File::create(&ballast).expect("ballast");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::StorageFull => break,
                Err(error) => panic!("filling the disk: {error}"),
            }
        }
        ballast
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the app may still hold its files open while it stops.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// SQLite on a disk that fills up: the intake that finds no space answers
/// 507 with `Retry-After` and stores nothing, what was acknowledged before
/// stays, and once space is freed intake works again without a restart.
#[tokio::test]
async fn a_full_disk_answers_507_loses_nothing_and_passes_when_space_is_freed() {
    let Some(disk) = SmallDisk::mount(16) else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let url = format!("sqlite://{}", disk.path().join("medesk.db").display());
    let mut app = TestApp::spawn_with(Backend::Sqlite, &[("DATABASE_URL", url.as_str())]).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let mut accepted = vec![app.new_case(&applicant.token).await];
    let ballast = disk.fill();

    // The WAL reuses what it already has for a while; a long description
    // makes each case need fresh pages sooner.
    let mut body = intake();
    body["description"] = "臨床試験の計画について相談したいです。".repeat(500).into();
    let refused = loop {
        assert!(accepted.len() < 2_000, "the disk never filled up");
        let response = app.submit_case(&applicant.token, &body).await;
        if response.status() == StatusCode::CREATED {
            accepted.push(response.json().await.unwrap());
            continue;
        }
        break response;
    };
    let retry_after = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(retry_after.as_deref(), Some("60"));
    let refused = problem(refused, StatusCode::INSUFFICIENT_STORAGE).await;
    assert_eq!(refused["type"], "/problems/storage-full");

    // Reads go on while the disk is full.
    let first = app.case(&applicant.token, &accepted[0]["id"]).await;
    assert_eq!(first["number"], accepted[0]["number"]);

    std::fs::remove_file(ballast).expect("free the space");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = app.submit_case(&applicant.token, &intake()).await;
        let status = response.status();
        if status == StatusCode::CREATED {
            accepted.push(response.json().await.unwrap());
            break;
        }
        // Until the writer's next commit finds the space: a fault, never a
        // refusal or a bug.
        assert!(
            [
                StatusCode::INSUFFICIENT_STORAGE,
                StatusCode::SERVICE_UNAVAILABLE
            ]
            .contains(&status),
            "{status}: {}",
            response.text().await.unwrap_or_default()
        );
        assert!(
            Instant::now() < deadline,
            "intake did not recover: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every acknowledged case survives a restart, and no refused one was
    // stored: the applicant's list holds exactly the acknowledged cases.
    app.restart_with(&[]).await;
    // At most ≈ 500 such cases fit in 16 MiB: a few pages of 100.
    let listed = walk_pages(&app, &applicant.token, "limit=100")
        .await
        .concat();
    let mut expected: Vec<Value> = accepted.iter().map(|case| case["id"].clone()).collect();
    expected.reverse();
    assert_eq!(
        listed, expected,
        "newest first, exactly the acknowledged cases"
    );
    let check = app.statistics_folded().await;
    assert_eq!(check["consistent"], true, "{check}");
}
