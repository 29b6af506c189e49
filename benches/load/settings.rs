//! The command line (its doc comments are the `--help` text) and the
//! settings a run uses, checked; and the short smoke run `cargo test` makes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, ensure};
use clap::Parser;

use crate::common::{Backend, check_local_postgres_url};
use crate::scenarios::{SCENARIOS, Scenario};

/// Load benchmark for medesk: starts `medesk serve` on a fresh database and
/// drives it over HTTP on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "load", bin_name = "cargo bench --bench load --")]
pub struct Args {
    /// Database backend of the server under test.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Seconds per phase of the throughput scenarios (the phases of `mixed`
    /// run at the same time; login has its own --login-duration).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    duration: f64,
    /// Clients of the throughput scenarios (health, intake, read, queue,
    /// stats, mixed, mail-drain, two-instances: half per instance); as many
    /// applicants are seeded, one per client.
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Comma-separated scenarios to run: health, intake, read, queue, pages, stats,
    /// login, mixed, booking-storm, mail-drain, two-instances (default: all, in that
    /// order). health, the reference rate, is added to any choice but login alone.
    /// With mail-drain or two-instances (PostgreSQL only) every instance sends its
    /// mail to the benchmark's SMTP sink for the whole run.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    scenarios: Vec<String>,
    /// Data volume: closed historical cases imported (CSV imports of up to
    /// 100,000 rows) before the first case scenario, received April 2019 to
    /// March 2026.
    #[arg(long, value_name = "N", default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    cases: u32,
    /// Supporter accounts (every intake mails each of them).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    supporters: u32,
    /// Submitted cases (besides the applicants' own) in the triage queue
    /// before queue and mixed; topped up by filing cases.
    #[arg(long, value_name = "N", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(1..=450))]
    untriaged: u32,
    /// The server's connection pool (MEDESK_DB_POOL_SIZE); without it the
    /// server's default (SQLite: one reader thread per core, at least 2;
    /// PostgreSQL: two per core and two more, 4 to 32). A --server-env
    /// setting wins.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=512))]
    db_pool_size: Option<u32>,
    /// Write the results as JSON to this file (instead of stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Seconds per phase of the login scenario (idle, then under login): its
    /// p99 ratio needs more samples than the throughput figures.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    login_duration: f64,
    /// Clients logging in continuously in the login scenario, each with its own account.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    login_clients: u32,
    /// Clients measuring /health latency in the login scenario.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    probe_clients: u32,
    /// Each probe client sends one request per this many milliseconds; 0 sends
    /// back to back (which on 2 cores saturates the machine by itself).
    #[arg(long, value_name = "MS", default_value_t = 5)]
    probe_interval_ms: u64,
    /// Applicants racing in booking-storm, each of its own organisation
    /// (registered and signed in before the storm).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    storm_clients: u32,
    /// The next open Open Hours slots booking-storm races for.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    storm_slots: u32,
    /// Seats an admin gives each of those slots before the storm (where
    /// `PUT /api/v1/open-hours/slots/{id}` exists; else the weekday's).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    storm_capacity: u32,
    /// PostgreSQL server (no database name) where a scratch database is created
    /// and dropped; must be on this machine.
    #[arg(
        long,
        value_name = "URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres_url: String,
    /// Connection parameters appended to the server's DATABASE_URL on
    /// PostgreSQL, e.g. `sslmode=disable` (libpq otherwise negotiates TLS
    /// when the server offers it, even on 127.0.0.1).
    #[arg(long, value_name = "PARAMS", default_value = "")]
    postgres_params: String,
    /// Extra environment for the server, e.g. MEDESK_WORKERS=1 (repeatable).
    #[arg(long = "server-env", value_name = "KEY=VALUE")]
    server_env: Vec<String>,
    /// The medesk binary to start (default: the one this build made), e.g.
    /// a build of an older commit to measure it with this benchmark.
    #[arg(long, value_name = "PATH", default_value = THIS_BUILD)]
    medesk: PathBuf,
    /// Passed by `cargo bench`; without it only a short smoke run is made.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The medesk binary cargo built beside this benchmark: `--medesk`'s default.
pub const THIS_BUILD: &str = env!("CARGO_BIN_EXE_medesk");

#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Backend,
    pub duration: Duration,
    pub login_duration: Duration,
    pub concurrency: usize,
    pub cases: usize,
    pub supporters: usize,
    pub untriaged: usize,
    pub db_pool_size: Option<u32>,
    pub login_clients: usize,
    pub probe_clients: usize,
    pub probe_pace: Option<Duration>,
    pub storm_clients: usize,
    pub storm_slots: usize,
    pub storm_capacity: u32,
    pub postgres_url: String,
    pub postgres_params: String,
    pub server_env: Vec<(String, String)>,
    /// The medesk binary started (`--medesk`).
    pub medesk: PathBuf,
    pub json: Option<PathBuf>,
    pub smoke: bool,
}

impl Settings {
    pub fn from_args(args: Args) -> anyhow::Result<(Self, Vec<&'static Scenario>)> {
        for (flag, seconds) in [
            ("--duration", args.duration),
            ("--login-duration", args.login_duration),
        ] {
            ensure!(
                seconds.is_finite() && (0.1..=3600.0).contains(&seconds),
                "{flag} must be between 0.1 and 3600 seconds"
            );
        }
        let server_env = args
            .server_env
            .iter()
            .map(|pair| {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--server-env {pair:?}: expected KEY=VALUE"))?;
                Ok((key.to_owned(), value.to_owned()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let scenarios = if args.scenarios.is_empty() {
            SCENARIOS.iter().collect()
        } else {
            let mut chosen = Vec::new();
            for name in &args.scenarios {
                let name = name.trim();
                let scenario = SCENARIOS.iter().find(|s| s.name == name).ok_or_else(|| {
                    let known: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
                    anyhow!("unknown scenario {name:?}; known: {}", known.join(", "))
                })?;
                if !chosen.iter().any(|s: &&Scenario| s.name == name) {
                    chosen.push(scenario);
                }
            }
            let health = &SCENARIOS[0];
            if chosen.iter().any(|s| s.name != "login")
                && !chosen.iter().any(|s| s.name == "health")
            {
                eprintln!("load: adding the health scenario: the reference rate");
                chosen.insert(0, health);
            }
            chosen
        };
        if args.backend == Backend::Postgres {
            check_local_postgres_url(&args.postgres_url)?;
        }
        ensure!(
            args.medesk.is_file(),
            "--medesk {}: no such file",
            args.medesk.display()
        );
        let settings = Self {
            backend: args.backend,
            duration: Duration::from_secs_f64(args.duration),
            login_duration: Duration::from_secs_f64(args.login_duration),
            concurrency: args.concurrency as usize,
            cases: args.cases as usize,
            supporters: args.supporters as usize,
            untriaged: args.untriaged as usize,
            db_pool_size: args.db_pool_size,
            login_clients: args.login_clients as usize,
            probe_clients: args.probe_clients as usize,
            probe_pace: (args.probe_interval_ms > 0)
                .then(|| Duration::from_millis(args.probe_interval_ms)),
            storm_clients: args.storm_clients as usize,
            storm_slots: args.storm_slots as usize,
            storm_capacity: args.storm_capacity,
            postgres_url: args.postgres_url.trim_end_matches('/').to_owned(),
            postgres_params: args.postgres_params.trim_start_matches('?').to_owned(),
            server_env,
            medesk: args.medesk,
            json: args.json,
            smoke: false,
        };
        Ok((settings, scenarios))
    }

    /// Under `cargo test` (no `--bench`): every scenario, briefly, on SQLite.
    /// The medesk binary started when it is not the one this build made.
    pub fn other_medesk(&self) -> Option<&Path> {
        (self.medesk != Path::new(THIS_BUILD)).then_some(self.medesk.as_path())
    }

    pub fn smoke() -> (Self, Vec<&'static Scenario>) {
        let args = Args::parse_from([
            "load",
            "--duration",
            "1",
            "--login-duration",
            "1",
            "--concurrency",
            "4",
            "--cases",
            "200",
            "--untriaged",
            "20",
            "--storm-clients",
            "8",
            "--storm-slots",
            "3",
        ]);
        let (mut settings, scenarios) = Self::from_args(args).expect("smoke settings are valid");
        settings.smoke = true;
        (settings, scenarios)
    }
}
