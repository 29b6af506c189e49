//! Statistics benchmark: starts the real `medesk serve` on a fresh database,
//! imports generated historical cases through `POST /api/v1/import/cases`
//! (in chunks), then measures the category table's latency over HTTP for the
//! full range, one year and one month.
//!
//! ```text
//! cargo bench --bench stats -- [--backend sqlite|postgres] [--cases N]
//!     [--chunk ROWS] [--repetitions N] [--postgres-url URL] [--import-only]
//! ```
//!
//! Defaults: 1,000,000 cases received over ten years (2016–2025), about 2.5
//! categories each, imported 100,000 rows per request; 30 timed requests per
//! range after 3 warm-ups. The target (issue 7) is ≤ 50 ms per table. The
//! import rate is reported per chunk: the first chunk is the "100,000 CSV
//! rows into an empty desk" figure, the last one into a desk that already
//! holds the rest. After each request it prints the server's peak RSS so far
//! (VmHWM from `/proc/PID/status`); `--cases 100000 --chunk 100000
//! --import-only` is the issue 14 import check (one 100,000-row request, peak
//! RSS and rate, no latency phase).
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it makes a short
//! smoke run instead: 20,000 cases on SQLite, 3 repetitions.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use chrono::NaiveDate;
use clap::Parser;
use serde_json::{Value, json};

mod common;
use common::{Backend, PgDatabase, check_local_postgres_url, proc_status_kib};

const ADMIN_EMAIL: &str = "bench-admin@medesk.example";
const ADMIN_PASSWORD: &str = "bench admin password, long enough";
const JWT_SECRET: &str = "medesk-stats-benchmark-secret-0123456789abcdef";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// The acceptance target per category-table request.
const TARGET_MS: f64 = 50.0;

const PRODUCTS: [&str; 4] = ["drug", "medical_device", "regenerative", "other"];
/// Roughly the published table's mix, in per mille.
const PRODUCT_WEIGHTS: [u64; 4] = [240, 476, 87, 197];
const CATEGORIES: [&str; 9] = [
    "regulatory",
    "marketing",
    "business_plan",
    "fundraising",
    "management_strategy",
    "ip_strategy",
    "international",
    "reimbursement",
    "other",
];
/// How many categories a case has: 1, 2, 3 or 4 in these per-mille shares
/// (mean 2.5).
const CATEGORY_COUNT_WEIGHTS: [u64; 4] = [200, 300, 300, 200];
const ORGANIZATIONS: u64 = 5_000;

/// Category-table latency and import rate of medesk on generated cases.
#[derive(Debug, Parser)]
#[command(name = "stats", bin_name = "cargo bench --bench stats --")]
struct Args {
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Cases to generate, received over 2016-01-01..=2025-12-31.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    cases: u64,
    /// Rows per import request (each request is one transaction).
    #[arg(long, value_name = "ROWS", default_value_t = 100_000)]
    chunk: u64,
    /// Timed requests per range (after 3 warm-up requests).
    #[arg(long, value_name = "N", default_value_t = 30)]
    repetitions: usize,
    /// PostgreSQL server (no database name) for a scratch database; local only.
    #[arg(
        long,
        value_name = "URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres_url: String,
    /// Only import (and report rate and peak RSS); skip the category table.
    #[arg(long)]
    import_only: bool,
    /// Leave the seeded database (SQLite file or PostgreSQL database) in
    /// place and print where it is, for inspection.
    #[arg(long)]
    keep: bool,
    /// Passed by `cargo bench`; without it only a short smoke run is made.
    #[arg(long, hide = true)]
    bench: bool,
}

// ---------------------------------------------------------------- data

/// splitmix64: a small deterministic generator, so every run imports the
/// same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn weighted(&mut self, per_mille: &[u64]) -> usize {
        let mut roll = self.below(1000);
        for (i, weight) in per_mille.iter().enumerate() {
            if roll < *weight {
                return i;
            }
            roll -= weight;
        }
        per_mille.len() - 1
    }
}

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2016, 1, 1).expect("valid date")
}

fn last_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 12, 31).expect("valid date")
}

/// Rows `start..start + count` of the generated data set as an import file;
/// also returns how many category tags it holds.
fn csv_chunk(rng: &mut Rng, start: u64, count: u64) -> (Vec<u8>, u64) {
    let days = (last_day() - first_day()).num_days() as u64 + 1;
    let mut text = String::with_capacity(count as usize * 100);
    text.push_str("received_on,product_type,categories,organization,title,status,outcome\n");
    let mut tags = 0;
    for i in start..start + count {
        let day = first_day() + chrono::Duration::days(rng.below(days) as i64);
        let product = PRODUCTS[rng.weighted(&PRODUCT_WEIGHTS)];
        let wanted = rng.weighted(&CATEGORY_COUNT_WEIGHTS) + 1;
        let mut chosen = [false; 9];
        let mut picked = 0;
        while picked < wanted {
            let c = rng.below(9) as usize;
            if !chosen[c] {
                chosen[c] = true;
                picked += 1;
            }
        }
        let categories: Vec<&str> = (0..9)
            .filter(|c| chosen[*c])
            .map(|c| CATEGORIES[c])
            .collect();
        tags += categories.len() as u64;
        let organization = rng.below(ORGANIZATIONS);
        text.push_str(&format!(
            "{day},{product},{},Venture {organization},Historical case {i},closed,resolved\n",
            categories.join(";")
        ));
    }
    (text.into_bytes(), tags)
}

// ---------------------------------------------------------------- the server

/// The `medesk serve` child process, killed on drop.
struct Server {
    child: Child,
    base_url: String,
    log_path: PathBuf,
}

impl Server {
    fn start(dir: &Path, database_url: &str) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("finding a free port")?
            .port();
        let log_path = dir.join("server.log");
        let log = File::create(&log_path).context("creating the server log")?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_medesk"));
        command.arg("serve");
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
            .env("MEDESK_MAIL_DIR", dir.join("mail"))
            .env("RUST_LOG", "warn")
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

    async fn wait_until_ready(
        &mut self,
        http: &reqwest::Client,
        backend: Backend,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < STARTUP_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited during start-up ({status}){}",
                    self.log_tail()
                );
            }
            if let Ok(response) = http.get(format!("{}/health", self.base_url)).send().await
                && response.status().is_success()
            {
                let body: Value = response.json().await?;
                ensure!(
                    body["database"] == backend.name(),
                    "/health reports {body}, expected {}",
                    backend.name()
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the server did not answer /health in time{}",
            self.log_tail()
        )
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n  ");
        format!("\nserver log ({}):\n  {tail}", self.log_path.display())
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

// ---------------------------------------------------------------- measuring

struct Latency {
    label: &'static str,
    from: String,
    to: String,
    cases: i64,
    median_ms: f64,
    p90_ms: f64,
    max_ms: f64,
}

/// The server's resident memory in MiB: `VmHWM` (peak since start) or `VmRSS`.
fn server_mib(pid: u32, field: &str) -> f64 {
    proc_status_kib(pid, field).map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

async fn import(
    http: &reqwest::Client,
    base_url: &str,
    token: &str,
    server_pid: u32,
    args: &Args,
) -> anyhow::Result<()> {
    let mut rng = Rng(0x6D65_6465_736B);
    let mut start = 0;
    let mut total_elapsed = Duration::ZERO;
    println!(
        "import: {} cases in requests of {} rows ({})",
        args.cases,
        args.chunk,
        args.backend.name()
    );
    println!(
        "  before: server VmHWM {:.1} MiB, VmRSS {:.1} MiB",
        server_mib(server_pid, "VmHWM"),
        server_mib(server_pid, "VmRSS")
    );
    while start < args.cases {
        let count = args.chunk.min(args.cases - start);
        let (body, tags) = csv_chunk(&mut rng, start, count);
        let size = body.len();
        let began = Instant::now();
        let response = http
            .post(format!("{base_url}/api/v1/import/cases"))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(body)
            .send()
            .await
            .context("import request")?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let elapsed = began.elapsed();
        ensure!(
            status == reqwest::StatusCode::CREATED,
            "import rows {start}..{}: HTTP {status}: {}",
            start + count,
            text.chars().take(300).collect::<String>()
        );
        total_elapsed += elapsed;
        println!(
            "  rows {:>9}..{:<9} {:>6.1} MiB, {tags} category tags: {:>7.2} s, {:>8.0} rows/s, \
             server VmHWM {:.1} MiB (VmRSS {:.1} MiB)",
            start,
            start + count,
            size as f64 / (1024.0 * 1024.0),
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64(),
            server_mib(server_pid, "VmHWM"),
            server_mib(server_pid, "VmRSS")
        );
        start += count;
    }
    println!(
        "  total {:.1} s, {:.0} rows/s on average; server peak RSS (VmHWM) {:.1} MiB",
        total_elapsed.as_secs_f64(),
        args.cases as f64 / total_elapsed.as_secs_f64(),
        server_mib(server_pid, "VmHWM")
    );
    Ok(())
}

async fn measure(
    http: &reqwest::Client,
    base_url: &str,
    token: &str,
    label: &'static str,
    from: &str,
    to: &str,
    repetitions: usize,
) -> anyhow::Result<Latency> {
    let url = format!("{base_url}/api/v1/stats/categories?from={from}&to={to}");
    let mut samples = Vec::with_capacity(repetitions);
    let mut cases = 0;
    for i in 0..repetitions + 3 {
        let began = Instant::now();
        let response = http.get(&url).bearer_auth(token).send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        let elapsed = began.elapsed();
        ensure!(status.is_success(), "{url}: HTTP {status}: {body}");
        cases = body["total"]["cases"].as_i64().unwrap_or(-1);
        if i >= 3 {
            samples.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Ok(Latency {
        label,
        from: from.to_owned(),
        to: to.to_owned(),
        cases,
        median_ms: at(0.5),
        p90_ms: at(0.9),
        max_ms: *samples.last().unwrap_or(&f64::NAN),
    })
}

async fn drive(server: &mut Server, args: &Args) -> anyhow::Result<bool> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .build()?;
    server.wait_until_ready(&http, args.backend).await?;
    let base_url = server.base_url.clone();
    let login: Value = http
        .post(format!("{base_url}/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .ok_or_else(|| anyhow!("admin login failed: {login}"))?
        .to_owned();

    import(&http, &base_url, &token, server.child.id(), args).await?;
    if args.import_only {
        return Ok(true);
    }

    let ranges = [
        (
            "full range",
            first_day().to_string(),
            last_day().to_string(),
        ),
        ("one year", "2020-01-01".to_owned(), "2020-12-31".to_owned()),
        (
            "one month",
            "2020-06-01".to_owned(),
            "2020-06-30".to_owned(),
        ),
    ];
    let mut results = Vec::new();
    for (label, from, to) in &ranges {
        results.push(measure(&http, &base_url, &token, label, from, to, args.repetitions).await?);
    }
    println!(
        "\ncategory table over HTTP, {} cases, {} ({} requests each after 3 warm-ups)",
        args.cases,
        args.backend.name(),
        args.repetitions
    );
    println!(
        "  {:<11} {:<23} {:>9} {:>10} {:>8} {:>8}  target ≤ {TARGET_MS} ms",
        "range", "dates", "cases", "median ms", "p90 ms", "max ms"
    );
    let mut met = true;
    for r in &results {
        let ok = r.median_ms <= TARGET_MS;
        met &= ok;
        println!(
            "  {:<11} {}..{} {:>9} {:>10.2} {:>8.2} {:>8.2}  {}",
            r.label,
            r.from,
            r.to,
            r.cases,
            r.median_ms,
            r.p90_ms,
            r.max_ms,
            if ok { "met" } else { "NOT met" }
        );
    }
    ensure!(
        results[0].cases == args.cases as i64,
        "the full range counts {} cases, expected {}",
        results[0].cases,
        args.cases
    );
    Ok(met)
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.backend == Backend::Postgres {
        check_local_postgres_url(&args.postgres_url)?;
    }
    ensure!(
        args.cases > 0 && args.chunk > 0 && args.repetitions > 0,
        "counts must be positive"
    );
    let dir = tempfile::Builder::new()
        .prefix("medesk-stats-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let pg = match args.backend {
        Backend::Postgres => Some(PgDatabase::create(
            args.postgres_url.trim_end_matches('/'),
            "medesk_stats_bench",
        )?),
        Backend::Sqlite => None,
    };
    let database_url = match &pg {
        Some(pg) => pg.url(),
        None => format!("sqlite://{}", dir.path().join("medesk.db").display()),
    };
    let mut server = Server::start(dir.path(), &database_url)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = drive(&mut server, &args) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    let outcome = outcome.map_err(|e| anyhow!("{e:#}{}", server.log_tail()))?;
    drop(server);
    if args.keep {
        let dir = dir.keep();
        println!("kept: {database_url} (files in {})", dir.display());
        std::mem::forget(pg);
    } else {
        drop(pg);
    }
    Ok(if outcome {
        ExitCode::SUCCESS
    } else {
        println!("the {TARGET_MS} ms target was not met");
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    let args = if smoke {
        eprintln!(
            "stats: not run by `cargo bench` (no --bench): smoke run, 20,000 cases on SQLite"
        );
        Args::parse_from([
            "stats",
            "--cases",
            "20000",
            "--chunk",
            "10000",
            "--repetitions",
            "3",
        ])
    } else {
        Args::parse()
    };
    match run(args) {
        // A smoke run (debug build, shared machine) checks that it works, not the target.
        Ok(_) if smoke => ExitCode::SUCCESS,
        Ok(code) => code,
        Err(error) => {
            eprintln!("stats: {error:#}");
            ExitCode::FAILURE
        }
    }
}
