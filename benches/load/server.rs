//! The server under test: `medesk serve` started as a child process on a
//! free port of 127.0.0.1 with the benchmark's environment, its log, and
//! where its mail goes (a directory it drops files into, or the benchmark's
//! SMTP sink). A scenario may start a second instance on the same database
//! (`two-instances`) from the same [`Launch`].

use std::ffi::OsStr;
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

/// How to start an instance: the same for every instance of a run.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The run's temporary directory (the SQLite database, the logs).
    pub dir: PathBuf,
    /// Where the mail goes without `smtp_url`.
    pub mail_dir: PathBuf,
    pub database_url: String,
    /// The benchmark's SMTP sink (`MEDESK_SMTP_URL`), when the run uses it.
    pub smtp_url: Option<String>,
}

/// The `medesk serve` child process, killed on drop (also when panicking).
pub struct Server {
    child: Child,
    pub base_url: String,
    log_path: PathBuf,
}

impl Server {
    /// Starts instance number `instance` (1, 2, …: its log is
    /// `server.log`, `server-2.log`, …) on a free port.
    pub fn start(launch: &Launch, settings: &Settings, instance: usize) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("finding a free port")?
            .port();
        let log_path = match instance {
            1 => launch.dir.join("server.log"),
            n => launch.dir.join(format!("server-{n}.log")),
        };
        let log = File::create(&log_path).context("creating the server log")?;
        let mut command = Command::new(&settings.medesk);
        command.arg("serve");
        // Only the settings below count, not the caller's own MEDESK_* variables.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MEDESK_") {
                command.env_remove(key);
            }
        }
        command
            .env("MEDESK_BIND", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &launch.database_url)
            .env("MEDESK_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("MEDESK_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("MEDESK_JWT_SECRET", JWT_SECRET)
            .env("MEDESK_LOGIN_PER_ACCOUNT_PER_MINUTE", "1000000")
            .env("MEDESK_LOGIN_PER_ADDRESS_PER_MINUTE", "1000000")
            .env("RUST_LOG", "warn")
            .envs(match &launch.smtp_url {
                Some(url) => [("MEDESK_SMTP_URL", OsStr::new(url))],
                None => [("MEDESK_MAIL_DIR", launch.mail_dir.as_os_str())],
            })
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
            .with_context(|| format!("starting {}", settings.medesk.display()))?;
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

    /// Stops the server as an operator would (SIGTERM: it finishes the
    /// requests and the delivery under way), killing it after `grace`.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.child.id()).context("the server's pid")?;
        // SAFETY: kill only sends a signal to our own child, still running.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let started = Instant::now();
        while started.elapsed() < grace {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the server did not stop within {grace:?} of SIGTERM (killed){}",
            self.log_tail()
        )
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
