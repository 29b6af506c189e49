//! Load benchmark: starts the real `medesk serve` as a child process on a
//! fresh database and drives it over HTTP on 127.0.0.1.
//!
//! ```text
//! cargo bench --bench load -- [--backend sqlite|postgres] [--duration SECS]
//!     [--concurrency N] [--scenarios health,login] [--json PATH]
//! ```
//!
//! `cargo bench --bench load -- --help` lists every flag. Each scenario prints
//! requests/s, p50/p95/p99/max latency of the successful requests, the error
//! count (non-2xx answers, transport errors and time-outs), the CPU used by
//! the server, by this load generator and by anything else on the machine
//! (which disturbs the figures), and the server's peak RSS. The table goes to
//! stdout, followed by the same results as JSON (or only into `--json PATH`).
//! The exit status is non-zero when any request failed or the server died.
//!
//! The load generator runs in this process on a multi-threaded tokio runtime
//! and shares the machine's cores with the server: on a 2-core machine the
//! `health` ceiling is as much a measure of the client as of the server (the
//! `gen CPU` column shows how much it took).
//!
//! Adding a scenario: write the request as `async fn(Worker) -> Outcome`, and
//! a scenario function that runs one or more [`Phase`]s with
//! [`Bench::run_phase`]; then add a line to [`SCENARIOS`]. The runner handles
//! the clients, their pacing, the time limit and the latency histograms; the
//! driver samples the server's memory around every scenario.
//!
//! When run without `--bench` (as `cargo test --all-targets` does), it makes a
//! short smoke run instead (SQLite, 1 s per phase) and ignores other flags.

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail, ensure};
use clap::{Parser, ValueEnum};
use futures_util::future::BoxFuture;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// The start-up admin (`MEDESK_ADMIN_*`), for scenarios that need staff users.
const ADMIN_EMAIL: &str = "bench-admin@medesk.example";
const ADMIN_PASSWORD: &str = "bench admin password, long enough";
/// A fixed, non-development secret keeps the start-up warning out of the log.
const JWT_SECRET: &str = "medesk-load-benchmark-secret-0123456789abcdef";

/// One request never waits longer than this (reqwest and the runner both enforce it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server may take to answer `/health` after start (migrations included).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Other processes using this much CPU during a phase disturb its figures.
const DISTURBED_CPU_CORES: f64 = 0.2;
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
/// The acceptance target of the `login` scenario: /health p99 under login load
/// at most this many times its idle p99.
const LOGIN_P99_RATIO_TARGET: f64 = 2.0;

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

type ScenarioFn = for<'a> fn(&'a Bench) -> BoxFuture<'a, anyhow::Result<ScenarioReport>>;

struct Scenario {
    name: &'static str,
    about: &'static str,
    /// How many applicant accounts the scenario needs seeded before it runs.
    users: fn(&Settings) -> usize,
    run: ScenarioFn,
}

/// Every scenario, in the order they run. `--scenarios` picks a subset.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "health",
        about: "GET /health at --concurrency clients: the reference ceiling",
        users: |_| 0,
        run: |bench| Box::pin(health_scenario(bench)),
    },
    Scenario {
        name: "login",
        about: "GET /health p99 with a few probe clients, idle and while \
                --login-clients clients log in continuously (target: ratio <= 2)",
        users: |settings| settings.login_clients,
        run: |bench| Box::pin(login_scenario(bench)),
    },
];

async fn health_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let phase = Phase::new(
        "GET /health",
        bench.settings.concurrency,
        bench.settings.duration,
    );
    let result = bench.run_phase(phase, get_health).await?;
    Ok(ScenarioReport::new(vec![result]))
}

/// The issue's acceptance check: does argon2 hashing starve the other requests?
///
/// The probes are paced (`--probe-interval-ms`, 200 requests/s per probe by
/// default): back-to-back probes would keep both cores busy on their own, so
/// "idle" would not be idle, and the low-priority hashing threads would be
/// starved (fewer logins) instead of competing with the requests.
async fn login_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let settings = &bench.settings;
    let probe = |label| Phase {
        pace: settings.probe_pace,
        ..Phase::new(label, settings.probe_clients, settings.duration)
    };
    let idle = bench
        .run_phase(probe("idle: GET /health"), get_health)
        .await?;
    let (under, logins) = tokio::join!(
        bench.run_phase(probe("under login: GET /health"), get_health),
        bench.run_phase(
            Phase::new(
                "POST /api/v1/auth/login",
                settings.login_clients,
                settings.duration
            ),
            post_login,
        ),
    );
    let (under, logins) = (under?, logins?);

    let idle_p99 = idle.latency_ms.p99;
    let under_p99 = under.latency_ms.p99;
    let ratio = if idle_p99 > 0.0 {
        under_p99 / idle_p99
    } else {
        f64::NAN
    };
    let meets = ratio <= LOGIN_P99_RATIO_TARGET;
    let mut report = ScenarioReport::new(vec![idle, under, logins.clone()]);
    report.summary = BTreeMap::from([
        ("idle_p99_ms".to_owned(), json!(round3(idle_p99))),
        ("under_login_p99_ms".to_owned(), json!(round3(under_p99))),
        ("p99_ratio".to_owned(), json!(round3(ratio))),
        ("p99_ratio_target".to_owned(), json!(LOGIN_P99_RATIO_TARGET)),
        ("meets_target".to_owned(), json!(meets)),
        (
            "logins_per_second".to_owned(),
            json!(round3(logins.requests_per_second)),
        ),
    ]);
    report.notes.push(format!(
        "/health p99 idle {idle_p99:.3} ms, under login {under_p99:.3} ms: ratio {ratio:.2} \
         (target <= {LOGIN_P99_RATIO_TARGET:.1}: {}); {:.1} logins/s by {} clients",
        if meets { "met" } else { "NOT met" },
        logins.requests_per_second,
        logins.clients,
    ));
    Ok(report)
}

// --- requests: one async fn per kind, each returns the request's outcome ---

/// What one request came to: `Err` carries a short description of the failure.
type Outcome = Result<(), String>;

async fn get_health(worker: Worker) -> Outcome {
    expect_success(worker.http.get(worker.url("/health")).send().await).await
}

async fn post_login(worker: Worker) -> Outcome {
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

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------

/// Shared by every client of every scenario.
struct Ctx {
    base_url: String,
    /// Seeded applicants; client `i` uses `users[i % len]`.
    users: Vec<Credentials>,
}

#[derive(Clone)]
struct Credentials {
    email: String,
    password: String,
}

/// What a request function gets: its client number, its own HTTP client
/// (one connection per simulated user) and the shared context.
#[derive(Clone)]
struct Worker {
    id: usize,
    http: reqwest::Client,
    ctx: Arc<Ctx>,
}

impl Worker {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.ctx.base_url)
    }
}

/// One load phase: `clients` closed-loop clients for `duration`.
#[derive(Clone)]
struct Phase {
    label: String,
    clients: usize,
    duration: Duration,
    /// Each client starts a request at most this often (`None`: back to back).
    pace: Option<Duration>,
}

impl Phase {
    fn new(label: impl Into<String>, clients: usize, duration: Duration) -> Self {
        Self {
            label: label.into(),
            clients,
            duration,
            pace: None,
        }
    }
}

/// Latencies in microseconds, 3 significant digits, up to 2 minutes.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

/// One client's (then the merged) count of outcomes.
struct Tally {
    latency_us: Histogram<u64>,
    errors: u64,
    /// Distinct error descriptions and how often each occurred (at most 10 kept).
    error_kinds: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency_us: new_histogram(),
            errors: 0,
            error_kinds: BTreeMap::new(),
        }
    }

    fn success(&mut self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency_us.saturating_record(micros);
    }

    fn error(&mut self, description: String) {
        self.add_errors(description, 1);
    }

    fn add_errors(&mut self, description: String, count: u64) {
        self.errors += count;
        let key = if self.error_kinds.len() < 10 || self.error_kinds.contains_key(&description) {
            description
        } else {
            "(other errors)".to_owned()
        };
        *self.error_kinds.entry(key).or_default() += count;
    }

    fn merge(&mut self, other: Tally) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms with the same bounds");
        for (description, count) in other.error_kinds {
            self.add_errors(description, count);
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct LatencyMs {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

#[derive(Debug, Clone, Serialize)]
struct PhaseResult {
    label: String,
    clients: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pace_ms: Option<f64>,
    seconds: f64,
    /// Successes plus errors.
    requests: u64,
    errors: u64,
    requests_per_second: f64,
    /// Of the successful requests only.
    latency_ms: LatencyMs,
    /// CPU time the server used during the phase, in cores (1.0 = one core busy).
    server_cpu_cores: f64,
    /// The same for this load generator (all its threads, every phase running).
    loadgen_cpu_cores: f64,
    /// The same for the PostgreSQL server's processes (0 on SQLite, which runs
    /// inside the server).
    database_cpu_cores: f64,
    /// The same for everything else on the machine: well above 0 means other
    /// work competed for the cores and disturbed the figures.
    other_cpu_cores: f64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    errors_by_kind: BTreeMap<String, u64>,
}

/// What a scenario function returns; the driver adds the memory figures.
struct ScenarioReport {
    phases: Vec<PhaseResult>,
    /// Scenario-specific figures for the JSON output.
    summary: BTreeMap<String, Value>,
    /// Lines printed under the table.
    notes: Vec<String>,
}

impl ScenarioReport {
    fn new(phases: Vec<PhaseResult>) -> Self {
        Self {
            phases,
            summary: BTreeMap::new(),
            notes: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize)]
struct ScenarioResult {
    name: String,
    phases: Vec<PhaseResult>,
    /// The largest VmRSS sampled every 100 ms while the scenario ran (the
    /// accounts seeded for it are registered just before, and their password
    /// hashes' memory shows here).
    server_peak_rss_mib: f64,
    /// The server's VmHWM at the end of the scenario: its peak since start.
    server_vmhwm_mib: f64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    summary: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

/// The running benchmark, handed to every scenario.
struct Bench {
    settings: Settings,
    ctx: Arc<Ctx>,
    server_pid: u32,
}

impl Bench {
    /// Runs `phase.clients` clients, each calling `request` in a loop until
    /// `phase.duration` has passed (a request in flight then still finishes,
    /// within `REQUEST_TIMEOUT`), and returns the merged figures.
    async fn run_phase<F, Fut>(&self, phase: Phase, request: F) -> anyhow::Result<PhaseResult>
    where
        F: Fn(Worker) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        ensure!(phase.clients > 0, "{}: no clients", phase.label);
        let server_cpu_before = cpu_seconds(&self.server_pid.to_string());
        let own_cpu_before = cpu_seconds("self");
        let machine_cpu_before = machine_cpu_seconds();
        let database_cpu_before = self.database_cpu_seconds();
        let started = Instant::now();
        let deadline = started + phase.duration;
        let mut clients = JoinSet::new();
        for id in 0..phase.clients {
            let worker = Worker {
                id,
                http: http_client()?,
                ctx: self.ctx.clone(),
            };
            let request = request.clone();
            let pace = phase.pace;
            // Spread paced clients over the interval instead of firing together.
            let first = started
                + pace.map_or(Duration::ZERO, |p| {
                    p.mul_f64(id as f64 / phase.clients as f64)
                });
            clients.spawn(client_loop(worker, request, deadline, pace, first));
        }

        let mut total = Tally::new();
        let hard_stop = deadline + REQUEST_TIMEOUT + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(hard_stop.into(), clients.join_next()).await {
                Ok(Some(Ok(tally))) => total.merge(tally),
                Ok(Some(Err(join_error))) => total.error(format!("client task: {join_error}")),
                Ok(None) => break,
                Err(_) => {
                    total.add_errors(
                        "client task did not stop in time".to_owned(),
                        clients.len() as u64,
                    );
                    clients.abort_all();
                    break;
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let per_second = |before: Option<f64>, after: Option<f64>| match (before, after) {
            (Some(before), Some(after)) => round3((after - before) / seconds),
            _ => f64::NAN,
        };
        let server_cpu_cores =
            per_second(server_cpu_before, cpu_seconds(&self.server_pid.to_string()));
        let loadgen_cpu_cores = per_second(own_cpu_before, cpu_seconds("self"));
        let machine_cpu_cores = per_second(machine_cpu_before, machine_cpu_seconds());
        let database_cpu_cores = per_second(database_cpu_before, self.database_cpu_seconds());
        let other_cpu_cores = round3(
            (machine_cpu_cores - server_cpu_cores - loadgen_cpu_cores - database_cpu_cores)
                .max(0.0),
        );

        let histogram = &total.latency_us;
        let ms = |micros: u64| round3(micros as f64 / 1000.0);
        let requests = histogram.len() + total.errors;
        Ok(PhaseResult {
            label: phase.label,
            clients: phase.clients,
            pace_ms: phase.pace.map(|p| round3(p.as_secs_f64() * 1000.0)),
            seconds: round3(seconds),
            requests,
            errors: total.errors,
            requests_per_second: round3(requests as f64 / seconds),
            latency_ms: LatencyMs {
                p50: ms(histogram.value_at_quantile(0.50)),
                p95: ms(histogram.value_at_quantile(0.95)),
                p99: ms(histogram.value_at_quantile(0.99)),
                max: ms(histogram.max()),
                mean: round3(histogram.mean() / 1000.0),
            },
            server_cpu_cores,
            loadgen_cpu_cores,
            database_cpu_cores,
            other_cpu_cores,
            errors_by_kind: total.error_kinds,
        })
    }

    /// CPU time of the PostgreSQL server processes (all of them: this machine
    /// runs no other PostgreSQL work while benchmarking, or it disturbs anyway).
    fn database_cpu_seconds(&self) -> Option<f64> {
        match self.settings.backend {
            Backend::Sqlite => Some(0.0),
            Backend::Postgres => {
                let mut total = 0.0;
                for entry in std::fs::read_dir("/proc").ok()?.flatten() {
                    let name = entry.file_name();
                    let Some(pid) = name
                        .to_str()
                        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                    else {
                        continue;
                    };
                    let is_postgres = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|comm| comm.trim_end() == "postgres");
                    if is_postgres {
                        total += cpu_seconds(pid).unwrap_or(0.0);
                    }
                }
                Some(total)
            }
        }
    }

    /// Runs one scenario while sampling the server's resident memory.
    async fn run_scenario(&self, scenario: &Scenario) -> anyhow::Result<ScenarioResult> {
        let pid = self.server_pid;
        let mut peak_kib = proc_status_kib(pid, "VmRSS").unwrap_or(0);
        let mut tick = tokio::time::interval(RSS_SAMPLE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let run = (scenario.run)(self);
        tokio::pin!(run);
        let report = loop {
            tokio::select! {
                report = &mut run => break report?,
                _ = tick.tick() => {
                    peak_kib = peak_kib.max(proc_status_kib(pid, "VmRSS").unwrap_or(0));
                }
            }
        };
        peak_kib = peak_kib.max(proc_status_kib(pid, "VmRSS").unwrap_or(0));
        let hwm_kib = proc_status_kib(pid, "VmHWM").unwrap_or(0);
        Ok(ScenarioResult {
            name: scenario.name.to_owned(),
            phases: report.phases,
            server_peak_rss_mib: round3(peak_kib as f64 / 1024.0),
            server_vmhwm_mib: round3(hwm_kib as f64 / 1024.0),
            summary: report.summary,
            notes: report.notes,
        })
    }
}

/// One client: requests back to back (or paced) until the deadline.
async fn client_loop<F, Fut>(
    worker: Worker,
    request: F,
    deadline: Instant,
    pace: Option<Duration>,
    first: Instant,
) -> Tally
where
    F: Fn(Worker) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let mut tally = Tally::new();
    let mut next = first;
    loop {
        if pace.is_some() && next > Instant::now() {
            tokio::time::sleep_until(next.into()).await;
        }
        let began = Instant::now();
        if began >= deadline {
            break;
        }
        if let Some(pace) = pace {
            next += pace;
            if next < began {
                // Fell behind (a slow answer): carry on from now, no burst.
                next = began + pace;
            }
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, request(worker.clone())).await {
            Ok(Ok(())) => tally.success(began.elapsed()),
            Ok(Err(description)) => tally.error(description),
            Err(_) => tally.error(format!("no answer within {REQUEST_TIMEOUT:?}")),
        }
    }
    tally
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        // Never route the benchmark's traffic through a proxy from the environment.
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// User plus system CPU time of a process (`"self"` or a pid), in seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces;
    // utime and stime are fields 14 and 15, so 11 and 12 here.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_second()?)
}

/// CPU time every process on the machine used since boot, in seconds.
fn machine_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let all: u64 = ticks.get(..8)?.iter().sum();
    Some((all - ticks[3] - ticks[4]) as f64 / ticks_per_second()?)
}

fn ticks_per_second() -> Option<f64> {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then_some(ticks as f64)
}

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Load benchmark for medesk: starts `medesk serve` on a fresh database and
/// drives it over HTTP on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "load", bin_name = "cargo bench --bench load --")]
struct Args {
    /// Database backend of the server under test.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Seconds per phase (the login scenario has two phases).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    duration: f64,
    /// Clients of the throughput scenarios (health).
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Comma-separated scenarios to run: health, login (default: all, in that order).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    scenarios: Vec<String>,
    /// Write the results as JSON to this file (instead of stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
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
    /// PostgreSQL server (no database name) where a scratch database is created
    /// and dropped; must be on this machine.
    #[arg(
        long,
        value_name = "URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres_url: String,
    /// Extra environment for the server, e.g. MEDESK_WORKERS=1 (repeatable).
    #[arg(long = "server-env", value_name = "KEY=VALUE")]
    server_env: Vec<String>,
    /// Passed by `cargo bench`; without it only a short smoke run is made.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Clone)]
struct Settings {
    backend: Backend,
    duration: Duration,
    concurrency: usize,
    login_clients: usize,
    probe_clients: usize,
    probe_pace: Option<Duration>,
    postgres_url: String,
    server_env: Vec<(String, String)>,
    json: Option<PathBuf>,
    smoke: bool,
}

impl Settings {
    fn from_args(args: Args) -> anyhow::Result<(Self, Vec<&'static Scenario>)> {
        ensure!(
            args.duration.is_finite() && (0.1..=3600.0).contains(&args.duration),
            "--duration must be between 0.1 and 3600 seconds"
        );
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
            chosen
        };
        if args.backend == Backend::Postgres {
            check_local_postgres_url(&args.postgres_url)?;
        }
        let settings = Self {
            backend: args.backend,
            duration: Duration::from_secs_f64(args.duration),
            concurrency: args.concurrency as usize,
            login_clients: args.login_clients as usize,
            probe_clients: args.probe_clients as usize,
            probe_pace: (args.probe_interval_ms > 0)
                .then(|| Duration::from_millis(args.probe_interval_ms)),
            postgres_url: args.postgres_url.trim_end_matches('/').to_owned(),
            server_env,
            json: args.json,
            smoke: false,
        };
        Ok((settings, scenarios))
    }

    /// Under `cargo test` (no `--bench`): every scenario, briefly, on SQLite.
    fn smoke() -> (Self, Vec<&'static Scenario>) {
        let args = Args::parse_from(["load", "--duration", "1", "--concurrency", "4"]);
        let (mut settings, scenarios) = Self::from_args(args).expect("smoke settings are valid");
        settings.smoke = true;
        (settings, scenarios)
    }
}

/// The benchmark only ever talks to this machine.
fn check_local_postgres_url(url: &str) -> anyhow::Result<()> {
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

// ---------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------

/// A scratch PostgreSQL database, dropped (with its connections) on drop.
struct PgDatabase {
    server_url: String,
    name: String,
}

impl PgDatabase {
    fn create(server_url: &str) -> anyhow::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("medesk_bench_{}_{nanos}", std::process::id());
        psql(server_url, &format!("CREATE DATABASE {name}"))?;
        Ok(Self {
            server_url: server_url.to_owned(),
            name,
        })
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server_url, self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = psql(&self.server_url, &statement) {
            eprintln!("load: could not drop database {}: {error:#}", self.name);
        }
    }
}

fn psql(server_url: &str, statement: &str) -> anyhow::Result<()> {
    let output = Command::new("psql")
        .arg(format!("{server_url}/postgres"))
        .args([
            "--no-psqlrc",
            "--quiet",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            statement,
        ])
        .stdin(Stdio::null())
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    ensure!(
        output.status.success(),
        "psql {statement:?}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// The `medesk serve` child process, killed on drop (also when panicking).
struct Server {
    child: Child,
    base_url: String,
    log_path: PathBuf,
}

impl Server {
    fn start(dir: &Path, database_url: &str, settings: &Settings) -> anyhow::Result<Self> {
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
            .env("MEDESK_MAIL_DIR", dir.join("mail"))
            .env("RUST_LOG", "warn")
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

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `/health` answers 200 with the expected backend.
    async fn wait_until_ready(&mut self, backend: Backend) -> anyhow::Result<()> {
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
    fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!(
                "the server exited during the benchmark ({status}){}",
                self.log_tail()
            ),
        }
    }

    /// The end of the server's log, for error messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        if lines.is_empty() {
            return String::new();
        }
        let tail = lines[lines.len().saturating_sub(20)..].join("\n  ");
        format!("\nserver log ({}):\n  {tail}", self.log_path.display())
    }

    fn log_line_count(&self) -> usize {
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

/// Registers applicants number `range` through the API, one after another.
async fn seed_users(
    base_url: &str,
    range: std::ops::Range<usize>,
) -> anyhow::Result<Vec<Credentials>> {
    let http = http_client()?;
    let mut users = Vec::with_capacity(range.len());
    for i in range {
        let user = Credentials {
            email: format!("bench-user-{i}@medesk.example"),
            password: format!("bench password number {i}"),
        };
        let response = http
            .post(format!("{base_url}/api/v1/auth/register"))
            .json(&json!({
                "email": user.email,
                "password": user.password,
                "name": format!("Bench User {i}"),
                "organization": format!("Bench Venture {i}"),
                "locale": "en",
            }))
            .send()
            .await
            .with_context(|| format!("registering {}", user.email))?;
        let status = response.status();
        ensure!(
            status == reqwest::StatusCode::CREATED,
            "registering {}: HTTP {status}: {}",
            user.email,
            response.text().await.unwrap_or_default()
        );
        users.push(user);
    }
    Ok(users)
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

fn main() -> ExitCode {
    // cargo bench passes --bench; cargo test (harness = false) passes none and
    // may pass libtest flags this program does not know.
    let selected = if std::env::args().any(|arg| arg == "--bench") {
        Settings::from_args(Args::parse())
    } else {
        eprintln!("load: not run by `cargo bench` (no --bench): smoke run, 1 s per phase");
        Ok(Settings::smoke())
    };
    let result = selected.and_then(|(settings, scenarios)| run(settings, &scenarios));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("load: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(settings: Settings, scenarios: &[&'static Scenario]) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("medesk-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    // Dropped in reverse order: the server first, then its database, then the files.
    let pg = match settings.backend {
        Backend::Postgres => Some(PgDatabase::create(&settings.postgres_url)?),
        Backend::Sqlite => None,
    };
    let database_url = match &pg {
        Some(pg) => pg.url(),
        None => format!("sqlite://{}", dir.path().join("medesk.db").display()),
    };
    // Started from the main thread: the parent-death signal follows this thread.
    let mut server = Server::start(dir.path(), &database_url, &settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = drive(&mut server, &settings, scenarios) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    let results = outcome?;
    let alive = server.check_alive();
    let log_lines = server.log_line_count();

    print_table(&settings, &results);
    let document = json!({
        "backend": settings.backend,
        "duration_seconds": settings.duration.as_secs_f64(),
        "concurrency": settings.concurrency,
        "login_clients": settings.login_clients,
        "probe_clients": settings.probe_clients,
        "probe_interval_ms": settings.probe_pace.map(|p| p.as_secs_f64() * 1000.0),
        "server_env": settings.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "smoke": settings.smoke,
        "scenarios": results,
    });
    let text = serde_json::to_string_pretty(&document)?;
    match &settings.json {
        Some(path) => {
            std::fs::write(path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            println!("\nJSON written to {}", path.display());
        }
        None => println!("\n{text}"),
    }

    let errors: u64 = results
        .iter()
        .flat_map(|r| &r.phases)
        .map(|p| p.errors)
        .sum();
    if log_lines > 0 {
        eprintln!(
            "load: the server logged {log_lines} line(s) at warn or above{}",
            server.log_tail()
        );
    }
    alive?;
    if errors > 0 {
        eprintln!("load: {errors} request(s) failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn drive(
    server: &mut Server,
    settings: &Settings,
    scenarios: &[&'static Scenario],
) -> anyhow::Result<Vec<ScenarioResult>> {
    eprintln!(
        "load: medesk on {} ({}), {:?} per phase",
        server.base_url,
        settings.backend.name(),
        settings.duration
    );
    server.wait_until_ready(settings.backend).await?;
    let mut bench = Bench {
        settings: settings.clone(),
        ctx: Arc::new(Ctx {
            base_url: server.base_url.clone(),
            users: Vec::new(),
        }),
        server_pid: server.pid(),
    };
    let mut results = Vec::new();
    for scenario in scenarios {
        eprintln!("load: scenario {}: {}", scenario.name, scenario.about);
        // Seeded just before the scenario that needs them, so that the memory
        // their password hashes take counts there and not in earlier scenarios.
        let needed = (scenario.users)(settings);
        if needed > bench.ctx.users.len() {
            let mut users = bench.ctx.users.clone();
            users.extend(seed_users(&server.base_url, users.len()..needed).await?);
            bench.ctx = Arc::new(Ctx {
                base_url: server.base_url.clone(),
                users,
            });
        }
        let result = bench.run_scenario(scenario).await?;
        server.check_alive()?;
        results.push(result);
    }
    Ok(results)
}

fn print_table(settings: &Settings, results: &[ScenarioResult]) {
    println!(
        "\nmedesk load benchmark: {} backend, {:.1} s per phase, {} cores shared by server and load generator{}",
        settings.backend.name(),
        settings.duration.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if settings.smoke { " (smoke run)" } else { "" },
    );
    println!(
        "\n{:<9} {:<26} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "scenario",
        "phase",
        "clients",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "errors",
        "srv CPU",
        "gen CPU",
        "db CPU",
        "oth CPU",
        "peak RSS"
    );
    for result in results {
        for phase in &result.phases {
            println!(
                "{:<9} {:<26} {:>7} {:>10.1} {:>8.3} {:>8.3} {:>8.3} {:>8.2} {:>7} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>5.1} MiB",
                result.name,
                phase.label,
                phase.clients,
                phase.requests_per_second,
                phase.latency_ms.p50,
                phase.latency_ms.p95,
                phase.latency_ms.p99,
                phase.latency_ms.max,
                phase.errors,
                phase.server_cpu_cores,
                phase.loadgen_cpu_cores,
                phase.database_cpu_cores,
                phase.other_cpu_cores,
                result.server_peak_rss_mib,
            );
        }
    }
    println!(
        "\npeak RSS: largest server VmRSS sampled every 100 ms during the scenario \
         (after seeding its accounts).\nCPU: cores busy during the phase in the server (srv), \
         this load generator (gen), PostgreSQL (db) and all other processes (oth)."
    );
    for result in results {
        println!(
            "{}: server VmHWM (peak since start) {:.1} MiB",
            result.name, result.server_vmhwm_mib
        );
        for note in &result.notes {
            println!("{}: {note}", result.name);
        }
        for phase in &result.phases {
            if phase.other_cpu_cores >= DISTURBED_CPU_CORES {
                println!(
                    "{} / {}: WARNING other processes used {:.2} cores: figures disturbed",
                    result.name, phase.label, phase.other_cpu_cores
                );
            }
            for (kind, count) in &phase.errors_by_kind {
                println!("{} / {}: {count} x {kind}", result.name, phase.label);
            }
        }
    }
}
