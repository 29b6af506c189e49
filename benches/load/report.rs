//! What a run measured and how it is shown: the result types (also the JSON
//! output), issue 8's targets checked against them, the table printed to
//! stdout and the JSON document.

use std::collections::BTreeMap;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};

use crate::common::Backend;
use crate::sampling::CpuCores;
use crate::settings::Settings;

/// Other processes using this much CPU during a phase disturb its figures.
const DISTURBED_CPU_CORES: f64 = 0.2;

/// Issues 8 and 19's targets, for the embedded SQLite at 32 connections on
/// a 2-core machine: intake, case-read, triage-queue and case-list rates as a share of
/// the `/health` rate measured in the same run (issue 19's; issue 8 asked
/// 10 % and 30 %), p99 latency and the server's peak RSS.
const INTAKE_PERCENT_TARGET: f64 = 15.0;
const READ_PERCENT_TARGET: f64 = 40.0;
const QUEUE_PERCENT_TARGET: f64 = 20.0;
const LIST_PERCENT_TARGET: f64 = 20.0;
const P99_TARGET_MS: f64 = 50.0;
const PEAK_RSS_TARGET_MB: f64 = 100.0;

#[derive(Debug, Clone, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencyMs {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| round3(micros as f64 / 1000.0);
        Self {
            p50: ms(histogram.value_at_quantile(0.50)),
            p95: ms(histogram.value_at_quantile(0.95)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
            mean: round3(histogram.mean() / 1000.0),
        }
    }
}

/// One HTTP request of a multi-request operation, over its successful operations.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub label: &'static str,
    pub requests: u64,
    pub requests_per_second: f64,
    pub latency_ms: LatencyMs,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    pub label: String,
    /// What sent the requests: [`OWN_CLIENT`] or [`WRK_CLIENT`].
    pub load_client: &'static str,
    pub clients: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace_ms: Option<f64>,
    pub seconds: f64,
    /// Successes plus errors.
    pub requests: u64,
    pub errors: u64,
    pub requests_per_second: f64,
    /// Of the successful requests (operations) only.
    pub latency_ms: LatencyMs,
    /// Each request of a multi-request operation on its own (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepResult>,
    /// CPU time the server used during the phase, in cores (1.0 = one core busy).
    pub server_cpu_cores: f64,
    /// The same for this load generator (all its threads, every phase running).
    pub loadgen_cpu_cores: f64,
    /// The same for the PostgreSQL server's processes (0 on SQLite, which runs
    /// inside the server).
    pub database_cpu_cores: f64,
    /// The same for everything else on the machine: well above 0 means other
    /// work competed for the cores and disturbed the figures.
    pub other_cpu_cores: f64,
    /// `requests_per_second` as a percentage of the `health` scenario's rate
    /// in the same run (when it ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent_of_health: Option<f64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_kind: BTreeMap<String, u64>,
}

impl PhaseResult {
    /// A phase of `requests` (of which `errors` failed) over `seconds`, with
    /// the CPU each party used meanwhile; no pace, steps or `%health` yet.
    #[allow(clippy::too_many_arguments)]
    pub fn measured(
        label: String,
        load_client: &'static str,
        clients: usize,
        seconds: f64,
        requests: u64,
        errors: u64,
        latency_ms: LatencyMs,
        cpu: &CpuCores,
    ) -> Self {
        Self {
            label,
            load_client,
            clients,
            pace_ms: None,
            seconds: round3(seconds),
            requests,
            errors,
            requests_per_second: round3(requests as f64 / seconds.max(f64::MIN_POSITIVE)),
            latency_ms,
            steps: Vec::new(),
            server_cpu_cores: cpu.server,
            loadgen_cpu_cores: cpu.loadgen,
            database_cpu_cores: cpu.database,
            other_cpu_cores: cpu.other,
            percent_of_health: None,
            errors_by_kind: BTreeMap::new(),
        }
    }
}

/// What a scenario function returns; the driver adds the memory figures.
pub struct ScenarioReport {
    pub phases: Vec<PhaseResult>,
    /// Scenario-specific figures for the JSON output.
    pub summary: BTreeMap<String, Value>,
    /// Lines printed under the table.
    pub notes: Vec<String>,
}

impl ScenarioReport {
    pub fn new(phases: Vec<PhaseResult>) -> Self {
        Self {
            phases,
            summary: BTreeMap::new(),
            notes: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub phases: Vec<PhaseResult>,
    /// The largest VmRSS sampled every 100 ms while the scenario ran (the
    /// accounts seeded for it are registered just before, and their password
    /// hashes' memory shows here).
    pub server_peak_rss_mib: f64,
    /// The server's VmHWM at the end of the scenario: its peak since start.
    pub server_vmhwm_mib: f64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub summary: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Adds each phase's share of the `/health` rate, then prints the table and
/// the JSON document (to stdout, or into `--json PATH`).
pub fn publish(settings: &Settings, results: &mut [ScenarioResult]) -> anyhow::Result<()> {
    let health = results.iter().find(|r| r.name == "health");
    let wrk_rps = health
        .and_then(|r| r.summary.get(crate::scenarios::WRK_HEALTH_KEY))
        .and_then(Value::as_f64);
    // wrk's rate when it ran (the server's ceiling), else this client's.
    let health_rps = wrk_rps
        .or_else(|| {
            health
                .and_then(|r| r.phases.first())
                .map(|p| p.requests_per_second)
        })
        .filter(|rps| *rps > 0.0);
    let reference = if wrk_rps.is_some() {
        "wrk -t1"
    } else {
        "this load generator"
    };
    if let Some(health_rps) = health_rps {
        for phase in results.iter_mut().flat_map(|r| &mut r.phases) {
            phase.percent_of_health = Some(round3(100.0 * phase.requests_per_second / health_rps));
        }
    }
    let targets = target_checks(results);
    print_table(settings, results, health_rps, reference, &targets);
    let document = json!({
        "backend": settings.backend,
        "postgres_params": (settings.backend == Backend::Postgres).then_some(&settings.postgres_params),
        "duration_seconds": settings.duration.as_secs_f64(),
        "login_duration_seconds": settings.login_duration.as_secs_f64(),
        "concurrency": settings.concurrency,
        "db_pool_size": settings.db_pool_size,
        "cases_imported": settings.cases,
        "supporters": settings.supporters,
        "untriaged": settings.untriaged,
        "login_clients": settings.login_clients,
        "probe_clients": settings.probe_clients,
        "probe_interval_ms": settings.probe_pace.map(|p| p.as_secs_f64() * 1000.0),
        "server_env": settings.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "medesk_binary": settings.medesk.display().to_string(),
        "medesk_binary_is_this_build": settings.other_medesk().is_none(),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "smoke": settings.smoke,
        "health_requests_per_second": health_rps,
        "health_measured_by": reference,
        "targets": targets,
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
    Ok(())
}

/// One of issue 8's targets, met or not.
#[derive(Debug, Serialize)]
struct TargetCheck {
    what: String,
    value: f64,
    target: String,
    met: bool,
}

/// The targets (stated for SQLite; checked on either backend).
fn target_checks(results: &[ScenarioResult]) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    // wrk's phases when it ran (the share of a rate wrk measured on
    // /health), else the scenario's first phase.
    let reference_phases = |name: &str| {
        let phases = &results.iter().find(|r| r.name == name)?.phases;
        let by_wrk: Vec<&PhaseResult> = phases
            .iter()
            .filter(|p| p.load_client == WRK_CLIENT)
            .collect();
        Some(if by_wrk.is_empty() {
            phases.iter().take(1).collect()
        } else {
            by_wrk
        })
    };
    for (name, target) in [
        ("intake", INTAKE_PERCENT_TARGET),
        ("read", READ_PERCENT_TARGET),
        ("queue", QUEUE_PERCENT_TARGET),
        ("list", LIST_PERCENT_TARGET),
    ] {
        for phase in reference_phases(name).unwrap_or_default() {
            let Some(percent) = phase.percent_of_health else {
                continue;
            };
            let what = if name == "list" {
                format!("{} as % of /health (by {})", phase.label, phase.load_client)
            } else {
                format!("{name} rate as % of /health (by {})", phase.load_client)
            };
            checks.push(TargetCheck {
                what,
                value: percent,
                target: format!(">= {target}"),
                met: percent >= target,
            });
        }
    }
    for result in results {
        // booking-storm is a burst of --storm-clients at one moment on
        // purpose (issue 18 asks only that no slot is overbooked): its
        // latency is reported, not held to issue 8's target.
        if matches!(result.name.as_str(), "health" | "login" | "booking-storm") {
            continue;
        }
        for phase in &result.phases {
            // The target is per HTTP request: a multi-request operation is
            // checked request by request (its total is in the table).
            let requests: Vec<(String, f64)> = if phase.steps.is_empty() {
                vec![(phase.label.clone(), phase.latency_ms.p99)]
            } else {
                phase
                    .steps
                    .iter()
                    .map(|step| {
                        (
                            format!("{}: {}", phase.label, step.label),
                            step.latency_ms.p99,
                        )
                    })
                    .collect()
            };
            for (label, p99) in requests {
                checks.push(TargetCheck {
                    what: format!("{} / {label} p99 ms", result.name),
                    value: p99,
                    target: format!("< {P99_TARGET_MS}"),
                    met: p99 < P99_TARGET_MS,
                });
            }
        }
    }
    if let Some(peak) = results
        .iter()
        .map(|r| r.server_vmhwm_mib.max(r.server_peak_rss_mib))
        .reduce(f64::max)
    {
        let megabytes = round3(peak * 1024.0 * 1024.0 / 1e6);
        checks.push(TargetCheck {
            what: "server peak RSS (VmHWM) MB".to_owned(),
            value: megabytes,
            target: format!("<= {PEAK_RSS_TARGET_MB}"),
            met: megabytes <= PEAK_RSS_TARGET_MB,
        });
    }
    checks
}

fn print_table(
    settings: &Settings,
    results: &[ScenarioResult],
    health_rps: Option<f64>,
    reference: &str,
    targets: &[TargetCheck],
) {
    println!(
        "\nmedesk load benchmark: {} backend, {:.1} s per phase (login {:.1} s), {} cores shared \
         by server and load generator, DB pool {}, {} historical cases, {} supporters{}",
        settings.backend.name(),
        settings.duration.as_secs_f64(),
        settings.login_duration.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        settings
            .db_pool_size
            .map_or("the server's default".to_owned(), |n| n.to_string()),
        settings.cases,
        settings.supporters,
        if settings.smoke { " (smoke run)" } else { "" },
    );
    println!(
        "\n{:<9} {:<30} {:>7} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "scenario",
        "phase",
        "clients",
        "req/s",
        "%health",
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
        if result.phases.is_empty() {
            println!("{:<9} (unavailable: see below)", result.name);
        }
        for phase in &result.phases {
            let percent = phase
                .percent_of_health
                .map_or_else(|| "-".to_owned(), |p| format!("{p:.1}"));
            println!(
                "{:<9} {:<30} {:>7} {:>9.1} {:>7} {:>8.3} {:>8.3} {:>8.3} {:>8.2} {:>6} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>5.1} MiB",
                result.name,
                phase.label,
                phase.clients,
                phase.requests_per_second,
                percent,
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
            for step in &phase.steps {
                println!(
                    "{:<9} {:<30} {:>7} {:>9.1} {:>7} {:>8.3} {:>8.3} {:>8.3} {:>8.2}",
                    "",
                    format!("  - {}", step.label),
                    "",
                    step.requests_per_second,
                    "",
                    step.latency_ms.p50,
                    step.latency_ms.p95,
                    step.latency_ms.p99,
                    step.latency_ms.max,
                );
            }
        }
    }
    println!(
        "\n%health: req/s as a percentage of the health scenario's rate in this run{}.\n\
         peak RSS: largest server VmRSS sampled every 100 ms during the scenario \
         (after seeding its accounts).\nCPU: cores busy during the phase in the server (srv), \
         this load generator (gen), PostgreSQL (db) and all other processes (oth).",
        health_rps.map_or_else(
            || " (not measured: add health to --scenarios)".to_owned(),
            |rps| format!(" ({rps:.1} req/s, measured by {reference})")
        ),
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
    if let Some(binary) = settings.other_medesk() {
        println!(
            "\nmedesk binary: {} (--medesk), not the one this build made",
            binary.display()
        );
    }
    if !targets.is_empty() {
        println!(
            "\ntargets (issues 8 and 19, stated for the embedded SQLite at 32 connections{}):",
            if settings.backend == Backend::Sqlite {
                ""
            } else {
                "; shown here for comparison"
            }
        );
        for check in targets {
            println!(
                "  {:<58} {:>10.3} {:<8} {}",
                check.what,
                check.value,
                check.target,
                if check.met { "met" } else { "NOT met" }
            );
        }
    }
}

/// The benchmark's own closed-loop clients (reqwest on tokio).
pub const OWN_CLIENT: &str = "medesk load";
/// `wrk -t1`, from a Lua script ([`crate::wrk`]).
pub const WRK_CLIENT: &str = "wrk -t1";

/// Figures are reported to three decimals.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
