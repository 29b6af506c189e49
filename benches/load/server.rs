//! The server under test: `medesk serve` started as a child process on a
//! free port of 127.0.0.1 with the benchmark's environment, its log, and the
//! directory it drops its mail into.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use crate::common::Backend;
use crate::requests::error_chain;
use crate::settings::Settings;

/// The start-up admin (`MEDESK_ADMIN_*`), for scenarios that need staff users.
pub const ADMIN_EMAIL: &str = "bench-admin@medesk.example";
pub const ADMIN_PASSWORD: &str = "bench admin password, long enough";
/// A fixed, non-development secret keeps the start-up warning out of the log.
const JWT_SECRET: &str = "medesk-load-benchmark-secret-0123456789abcdef";

/// How long the server may take to answer `/health` after start (migrations included).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The `medesk serve` child process, killed on drop (also when panicking).
pub struct Server {
    child: Child,
    pub base_url: String,
    log_path: PathBuf,
}

impl Server {
    pub fn start(
        dir: &Path,
        mail_dir: &Path,
        database_url: &str,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("finding a free port")?
            .port();
        let log_path = dir.join("server.log");
        let log = File::create(&log_path).context("creating the server log")?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_medesk"));
        command.arg("serve");
        // Only the settings below count, not the caller's own MEDESK_* variables.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MEDESK_") {
                command.env_remove(key);
            }
        }
        command
            .env("MEDESK_BIND", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("MEDESK_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("MEDESK_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("MEDESK_JWT_SECRET", JWT_SECRET)
            .env("MEDESK_LOGIN_PER_ACCOUNT_PER_MINUTE", "1000000")
            .env("MEDESK_LOGIN_PER_ADDRESS_PER_MINUTE", "1000000")
            .env("MEDESK_MAIL_DIR", mail_dir)
            .env("RUST_LOG", "warn")
            .envs(
                settings
                    .db_pool_size
                    .map(|n| ("MEDESK_DB_POOL_SIZE".to_owned(), n.to_string())),
            )
            .envs(settings.server_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("server log")?)
            .stderr(log);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: prctl is async-signal-safe; it only asks the kernel to
            // kill the server if this process dies without its Drop running.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", env!("CARGO_BIN_EXE_medesk")))?;
        Ok(Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            log_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `/health` answers 200 with the expected backend.
    pub async fn wait_until_ready(&mut self, backend: Backend) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < STARTUP_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited during start-up ({status}){}",
                    self.log_tail()
                );
            }
            match http.get(format!("{}/health", self.base_url)).send().await {
                Ok(response) if response.status().is_success() => {
                    let body: Value = response.json().await?;
                    ensure!(
                        body["database"] == backend.name(),
                        "/health reports {body}, expected database {:?}",
                        backend.name()
                    );
                    return Ok(());
                }
                Ok(response) => last = format!("HTTP {}", response.status()),
                Err(error) => last = error_chain(&error),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the server did not answer /health within {STARTUP_TIMEOUT:?} ({last}){}",
            self.log_tail()
        )
    }

    /// Ok when the server is still running (it should not exit by itself).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!(
                "the server exited during the benchmark ({status}){}",
                self.log_tail()
            ),
        }
    }

    /// The end of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        if lines.is_empty() {
            return String::new();
        }
        let tail = lines[lines.len().saturating_sub(20)..].join("\n  ");
        format!("\nserver log ({}):\n  {tail}", self.log_path.display())
    }

    pub fn log_line_count(&self) -> usize {
        std::fs::read_to_string(&self.log_path).map_or(0, |log| log.lines().count())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Where the server drops its mail (no SMTP relay is configured): a
/// directory in RAM (`/dev/shm`) where there is one. A run writes tens of
/// thousands of mail files; on a disk directory ext4's inode allocation for
/// them took 15 % of the server's CPU in the desk day (`recently_deleted`,
/// `find_inode_bit` under `openat`), a cost of this file drop that a desk
/// sending through its SMTP relay never pays.
pub fn mail_drop_dir() -> anyhow::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("medesk-bench-mail-");
    let in_memory = Path::new("/dev/shm");
    if in_memory.is_dir()
        && let Ok(dir) = builder.tempdir_in(in_memory)
    {
        return Ok(dir);
    }
    builder
        .tempdir()
        .context("creating the mail drop directory")
}
