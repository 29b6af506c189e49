//! Load benchmark: starts the real `medesk serve` as a child process on a
//! fresh database, seeds a desk (historical cases, supporters, applicants
//! with a case each) and drives it over HTTP on 127.0.0.1.
//!
//! ```text
//! cargo bench --bench load -- [--backend sqlite|postgres] [--duration SECS]
//!     [--concurrency N] [--cases N]
//!     [--scenarios health,intake,read,queue,pages,stats,login,mixed,booking-storm,
//!                  mail-drain,two-instances]
//!     [--storm-clients N] [--storm-slots N] [--storm-capacity N]
//!     [--medesk PATH] [--json PATH]
//! ```
//!
//! `cargo bench --bench load -- --help` lists every flag; docs/performance.md
//! explains the scenarios and the figures. Each scenario prints requests/s
//! (and as a percentage of the `/health` rate measured in the same run),
//! p50/p95/p99/max latency of the successful requests, the error count
//! (non-2xx answers, transport errors and time-outs), the CPU used by the
//! server, by this load generator, by PostgreSQL and by anything else on the
//! machine (which disturbs the figures), and the server's peak RSS; then the
//! issue's targets, met or not. The table goes to stdout, followed by the same
//! results as JSON (or only into `--json PATH`). The exit status is non-zero
//! when any request failed, a scenario's check failed (`booking-storm`,
//! `mail-drain`, `two-instances`) or the server died. `--medesk PATH` starts
//! another medesk binary than this build's (a build of an older commit), and
//! the table and the JSON say so.
//!
//! The load generator runs in this process on a multi-threaded tokio runtime
//! and shares the machine's cores with the server: on a 2-core machine the
//! `health` ceiling is as much a measure of the client as of the server (the
//! `gen CPU` column shows how much it took).
//!
//! The modules, in the order a run uses them:
//!
//! - [`settings`]: the command line and the settings it gives;
//! - [`server`]: the `medesk serve` child process (or two);
//! - [`smtp_sink`]: the loopback SMTP sink every instance delivers to when a
//!   chosen scenario needs it (otherwise the mail is dropped as files);
//! - [`seeding`]: what each scenario needs seeded, and the unmeasured requests;
//! - [`scenarios`]: the scenarios, each a function over the runner;
//! - [`storm`]: the `booking-storm` scenario (its own clients, one booking
//!   per slot each, and the capacity check after it);
//! - [`drain`]: the `mail-drain` and `two-instances` scenarios (the mail
//!   awaited at the sink, the exactly-once and case-number checks, the
//!   second instance);
//! - [`requests`] and [`payloads`]: the measured requests and what they send;
//! - [`runner`]: the load generation (clients, pacing, latency histograms);
//! - [`sampling`]: CPU and memory of the server and the machine, from `/proc`;
//! - [`report`]: the results, the targets, the table and the JSON;
//! - `common` (`benches/common/`, shared with the stats benchmark): the
//!   backend choice and the scratch PostgreSQL database (and a query on it).
//!
//! This file starts the server, drives the scenarios one after the other and
//! hands the results to the report.
//!
//! Adding a scenario: write the request as `async fn(Worker) -> Outcome` in
//! [`requests`], and a scenario function that runs one or more
//! [`runner::Phase`]s with [`runner::Bench::run_phase`]; then add a line to
//! [`scenarios::SCENARIOS`] saying what it needs seeded
//! ([`scenarios::Needs`], which also asks for the SMTP sink). The runner handles the clients, their pacing, the
//! time limit and the latency histograms; the driver seeds, samples the
//! server's memory around every scenario and waits for the mail it queued to
//! be sent before the next one starts.
//!
//! When run without `--bench` (as `cargo test --all-targets` does), it makes a
//! short smoke run instead (SQLite, 1 s per phase, a small desk) and ignores
//! other flags.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Parser;
use serde_json::json;

#[path = "../common/mod.rs"]
mod common;
mod drain;
mod payloads;
mod report;
mod requests;
mod runner;
mod sampling;
mod scenarios;
mod seeding;
mod server;
mod settings;
mod smtp_sink;
mod storm;
mod wrk;

use common::{Backend, PgDatabase};
use report::{ScenarioResult, round3};
use runner::Bench;
use scenarios::Scenario;
use seeding::{Api, MAIL_DRAIN_TIMEOUT, Seeded};
use server::{Launch, Server, mail_drop_dir};
use settings::{Args, Settings};
use smtp_sink::SmtpSink;

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
    let mail_dir = mail_drop_dir()?;
    // Dropped in reverse order: the server first, then its database, then the files.
    let pg = match settings.backend {
        Backend::Postgres => Some(PgDatabase::create(&settings.postgres_url, "medesk_bench")?),
        Backend::Sqlite => None,
    };
    let database_url = match &pg {
        Some(pg) if settings.postgres_params.is_empty() => pg.url(),
        Some(pg) => format!("{}?{}", pg.url(), settings.postgres_params),
        None => format!("sqlite://{}", dir.path().join("medesk.db").display()),
    };
    // The SMTP sink listens before the server starts, for the whole run.
    let sink_listener = if scenarios.iter().any(|s| (s.needs)(&settings).smtp_sink) {
        let overridden = settings
            .server_env
            .iter()
            .find(|(key, _)| key == "MEDESK_SMTP_URL" || key == "MEDESK_MAIL_DIR");
        if let Some((key, _)) = overridden {
            bail!(
                "--server-env {key}: the chosen scenarios send the mail to the benchmark's SMTP sink"
            );
        }
        Some(SmtpSink::bind()?)
    } else {
        None
    };
    let launch = Launch {
        dir: dir.path().to_owned(),
        mail_dir: mail_dir.path().to_owned(),
        database_url,
        smtp_url: sink_listener.as_ref().map(SmtpSink::url_of).transpose()?,
    };
    // Started from the main thread: the parent-death signal follows this
    // thread (a second instance is started from the scenario, which
    // `block_on` also runs on this thread).
    let mut server = Server::start(&launch, &settings, 1)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let outcome = runtime.block_on(async {
        let sink = sink_listener
            .map(SmtpSink::start)
            .transpose()?
            .map(Arc::new);
        tokio::select! {
            outcome = drive(&mut server, &settings, scenarios, launch, sink) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    let mut results = outcome?;
    let alive = server.check_alive();
    let log_lines = server.log_line_count();

    report::publish(&settings, &mut results)?;

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
    launch: Launch,
    sink: Option<Arc<SmtpSink>>,
) -> anyhow::Result<Vec<ScenarioResult>> {
    eprintln!(
        "load: {} (pid {}) on {} ({}), {:?} per phase (login {:?}), mail to {}",
        settings.medesk.display(),
        server.pid(),
        server.base_url,
        settings.backend.name(),
        settings.duration,
        settings.login_duration,
        launch.smtp_url.as_deref().unwrap_or("files")
    );
    server.wait_until_ready(settings.backend).await?;
    let mut bench = Bench {
        settings: settings.clone(),
        ctx: Arc::new(Seeded::default().ctx(&server.base_url)),
        server_pid: server.pid(),
        api: Api::new(&server.base_url)?,
        seeded: Seeded::default(),
        launch,
        sink,
    };
    let mut results = Vec::new();
    for scenario in scenarios {
        eprintln!("load: scenario {}: {}", scenario.name, scenario.about);
        // Seeded just before the scenario that needs it, so that the memory
        // the accounts' password hashes take counts there and not in earlier
        // scenarios.
        bench.prepare((scenario.needs)(settings)).await?;
        eprintln!("load: scenario {}: seeded, measuring", scenario.name);
        let mut result = bench.run_scenario(scenario).await?;
        server.check_alive()?;
        // The mail a scenario queued is sent before the next one starts.
        match bench.drain_mail().await? {
            Some(took) if took >= Duration::from_millis(500) => {
                let seconds = took.as_secs_f64();
                result
                    .summary
                    .insert("mail_backlog_seconds".to_owned(), json!(round3(seconds)));
                result.notes.push(format!(
                    "the mail worker took {seconds:.1} s after the scenario to send the mail it queued"
                ));
            }
            Some(_) => {}
            None => result.notes.push(format!(
                "mail it queued was still pending {MAIL_DRAIN_TIMEOUT:?} after the scenario"
            )),
        }
        results.push(result);
    }
    Ok(results)
}
