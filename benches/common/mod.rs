//! What both benchmarks need: the backend choice, and a scratch PostgreSQL
//! database on this machine's server (created with `psql`, dropped with its
//! connections when the benchmark ends).

use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, ensure};
use clap::ValueEnum;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The benchmark only ever talks to this machine.
pub fn check_local_postgres_url(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| anyhow!("--postgres-url must start with postgres://"))?;
    let authority = rest.trim_end_matches('/');
    ensure!(
        !authority.contains('/'),
        "--postgres-url names the server only, without a database"
    );
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let local = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    ensure!(
        local,
        "--postgres-url must point at this machine (got host {host:?})"
    );
    Ok(())
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// A scratch PostgreSQL database, dropped (with its connections) on drop.
pub struct PgDatabase {
    server_url: String,
    name: String,
}

impl PgDatabase {
    /// A new database `<prefix>_<pid>_<nanos>` on `server_url`.
    pub fn create(server_url: &str, prefix: &str) -> anyhow::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("{prefix}_{}_{nanos}", std::process::id());
        psql(server_url, &format!("CREATE DATABASE {name}"))?;
        Ok(Self {
            server_url: server_url.to_owned(),
            name,
        })
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.server_url, self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = psql(&self.server_url, &statement) {
            eprintln!(
                "could not drop the benchmark database {}: {error:#}",
                self.name
            );
        }
    }
}

fn psql(server_url: &str, statement: &str) -> anyhow::Result<()> {
    run_psql(&format!("{server_url}/postgres"), statement, &[]).map(drop)
}

/// What `query` returns on the database `database_url` (a scratch
/// database's URL, parameters allowed), as psql prints it unaligned and
/// without headers: one row a line, columns separated by `|`.
#[allow(
    dead_code,
    reason = "the load benchmark's checks; the stats benchmark has none"
)]
pub fn query(database_url: &str, query: &str) -> anyhow::Result<String> {
    run_psql(database_url, query, &["--no-align", "--tuples-only"])
}

fn run_psql(url: &str, statement: &str, options: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("psql")
        .arg(url)
        .args([
            "--no-psqlrc",
            "--quiet",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            statement,
        ])
        .args(options)
        .stdin(Stdio::null())
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    ensure!(
        output.status.success(),
        "psql {statement:?}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
