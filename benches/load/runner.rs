//! Load generation: closed-loop clients that send one kind of request back
//! to back (or paced) for a phase's duration, their latency histograms and
//! error tally, and [`Bench`], the running benchmark every scenario is
//! handed.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use crate::report::{LatencyMs, PhaseResult, ScenarioResult, StepResult, round3};
use crate::requests::Outcome;
use crate::sampling::{self, CpuCores, CpuTimes};
use crate::scenarios::Scenario;
use crate::seeding::{Api, Seeded};
use crate::server::Launch;
use crate::settings::Settings;
use crate::smtp_sink::SmtpSink;
use crate::wrk::ScriptedRequest;

/// One request never waits longer than this (reqwest and the runner both enforce it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared by every client of every scenario (rebuilt after seeding).
pub struct Ctx {
    pub base_url: String,
    /// Registered applicants; the login scenario's client `i` uses `users[i % len]`.
    pub users: Vec<Credentials>,
    /// The first of `users`, signed in, each with a case of its own.
    pub applicants: Vec<Applicant>,
    /// Access tokens of the seeded supporters.
    pub supporters: Vec<String>,
    /// Access token of the seeded manager.
    pub manager: Option<String>,
    /// The applicants' own cases: read and messaged, never claimed.
    pub reserved: HashSet<i64>,
    /// Shared counter that varies the cases, texts and ranges requested.
    pub sequence: AtomicU64,
}

#[derive(Clone)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Clone)]
pub struct Applicant {
    pub token: String,
    /// The case this applicant filed while seeding.
    pub case_id: i64,
}

/// What a request function gets: its client number, its own HTTP client
/// (one connection per simulated user) and the shared context.
#[derive(Clone)]
pub struct Worker {
    pub id: usize,
    pub http: reqwest::Client,
    pub ctx: Arc<Ctx>,
    /// Latencies of the HTTP requests of the operation in flight, for
    /// operations of several requests (see [`Worker::step`]).
    steps: Arc<Mutex<Vec<(&'static str, Duration)>>>,
}

impl Worker {
    /// Runs one HTTP request of a multi-request operation and notes how long
    /// it took under `label`: the table shows each request's latency beside
    /// the whole operation's.
    pub async fn step<T>(&self, label: &'static str, request: impl Future<Output = T>) -> T {
        let began = Instant::now();
        let answer = request.await;
        self.steps
            .lock()
            .expect("steps lock")
            .push((label, began.elapsed()));
        answer
    }

    fn take_steps(&self) -> Vec<(&'static str, Duration)> {
        std::mem::take(&mut *self.steps.lock().expect("steps lock"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.ctx.base_url)
    }

    /// The next number of the shared sequence.
    pub fn next(&self) -> u64 {
        self.ctx.sequence.fetch_add(1, Ordering::Relaxed)
    }

    /// This client's applicant: number `id + offset` (modulo how many there are).
    pub fn applicant(&self, offset: usize) -> &Applicant {
        let applicants = &self.ctx.applicants;
        &applicants[(self.id + offset) % applicants.len()]
    }

    /// This client's supporter's access token (clients share supporters).
    pub fn supporter(&self) -> &str {
        let supporters = &self.ctx.supporters;
        &supporters[self.id % supporters.len()]
    }
}

/// One load phase: `clients` closed-loop clients for `duration`.
#[derive(Clone)]
pub struct Phase {
    pub label: String,
    pub clients: usize,
    pub duration: Duration,
    /// Each client starts a request at most this often (`None`: back to back).
    pub pace: Option<Duration>,
}

impl Phase {
    pub fn new(label: impl Into<String>, clients: usize, duration: Duration) -> Self {
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

fn micros(took: Duration) -> u64 {
    u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// One client's (then the merged) count of outcomes.
struct Tally {
    latency_us: Histogram<u64>,
    /// Per request of multi-request operations, in the order first seen.
    step_latency_us: Vec<(&'static str, Histogram<u64>)>,
    errors: u64,
    /// Distinct error descriptions and how often each occurred (at most 10 kept).
    error_kinds: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency_us: new_histogram(),
            step_latency_us: Vec::new(),
            errors: 0,
            error_kinds: BTreeMap::new(),
        }
    }

    fn success(&mut self, took: Duration, steps: Vec<(&'static str, Duration)>) {
        self.latency_us.saturating_record(micros(took));
        for (label, took) in steps {
            self.step_histogram(label).saturating_record(micros(took));
        }
    }

    fn step_histogram(&mut self, label: &'static str) -> &mut Histogram<u64> {
        let at = match self.step_latency_us.iter().position(|(l, _)| *l == label) {
            Some(at) => at,
            None => {
                self.step_latency_us.push((label, new_histogram()));
                self.step_latency_us.len() - 1
            }
        };
        &mut self.step_latency_us[at].1
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
        for (label, histogram) in other.step_latency_us {
            self.step_histogram(label)
                .add(&histogram)
                .expect("histograms with the same bounds");
        }
        for (description, count) in other.error_kinds {
            self.add_errors(description, count);
        }
    }
}

/// The running benchmark, handed to every scenario.
pub struct Bench {
    pub settings: Settings,
    pub ctx: Arc<Ctx>,
    pub server_pid: u32,
    /// Seeding and bookkeeping requests (not measured).
    pub api: Api,
    /// What has been seeded so far; `ctx` is rebuilt from it.
    pub seeded: Seeded,
    /// How the server was started: a scenario may start another instance.
    pub launch: Launch,
    /// The SMTP sink every instance delivers to, when a chosen scenario
    /// needs it ([`crate::scenarios::Needs::smtp_sink`]).
    pub sink: Option<Arc<SmtpSink>>,
}

impl Bench {
    /// Runs `phase.clients` clients, each calling `request` in a loop until
    /// `phase.duration` has passed (a request in flight then still finishes,
    /// within `REQUEST_TIMEOUT`), and returns the merged figures.
    pub async fn run_phase<F, Fut>(&self, phase: Phase, request: F) -> anyhow::Result<PhaseResult>
    where
        F: Fn(Worker) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        self.run_phase_on(self.ctx.clone(), &[self.server_pid], phase, request)
            .await
    }

    /// As [`Self::run_phase`], against the server `ctx` names (its
    /// `base_url`), with the CPU of the instances `server_pids` as the
    /// server's: for a second instance (`two-instances`).
    pub async fn run_phase_on<F, Fut>(
        &self,
        ctx: Arc<Ctx>,
        server_pids: &[u32],
        phase: Phase,
        request: F,
    ) -> anyhow::Result<PhaseResult>
    where
        F: Fn(Worker) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        ensure!(phase.clients > 0, "{}: no clients", phase.label);
        let cpu_before = CpuTimes::now(server_pids, self.settings.backend);
        let started = Instant::now();
        let deadline = started + phase.duration;
        let mut clients = JoinSet::new();
        for id in 0..phase.clients {
            let worker = Worker {
                id,
                http: http_client()?,
                ctx: ctx.clone(),
                steps: Arc::default(),
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
        let cpu = CpuCores::between(
            &cpu_before,
            &CpuTimes::now(server_pids, self.settings.backend),
            seconds,
        );

        let requests = total.latency_us.len() + total.errors;
        let steps = total
            .step_latency_us
            .iter()
            .map(|(label, histogram)| StepResult {
                label,
                requests: histogram.len(),
                requests_per_second: round3(histogram.len() as f64 / seconds),
                latency_ms: LatencyMs::of(histogram),
            })
            .collect();
        Ok(PhaseResult {
            pace_ms: phase.pace.map(|p| round3(p.as_secs_f64() * 1000.0)),
            steps,
            errors_by_kind: total.error_kinds,
            ..PhaseResult::measured(
                phase.label,
                crate::report::OWN_CLIENT,
                phase.clients,
                seconds,
                requests,
                total.errors,
                LatencyMs::of(&total.latency_us),
                &cpu,
            )
        })
    }

    /// The same load as a [`Self::run_phase`] from `wrk -t1` at
    /// `--concurrency` connections for `--duration`, sending `requests` in
    /// turn; `Ok(None)` when wrk is not installed. Its CPU is the phase's
    /// load-generator CPU.
    pub async fn run_wrk_phase(
        &self,
        label: &str,
        requests: Vec<ScriptedRequest>,
    ) -> anyhow::Result<Option<PhaseResult>> {
        self.run_wrk_phase_on(
            &self.ctx.base_url,
            &[self.server_pid],
            label,
            self.settings.concurrency,
            requests,
        )
        .await
    }

    /// As [`Self::run_wrk_phase`], with `clients` connections to the server
    /// at `base_url`, the CPU of the instances `server_pids` counted as the
    /// server's: for `two-instances`, which runs one wrk per instance.
    pub async fn run_wrk_phase_on(
        &self,
        base_url: &str,
        server_pids: &[u32],
        label: &str,
        clients: usize,
        requests: Vec<ScriptedRequest>,
    ) -> anyhow::Result<Option<PhaseResult>> {
        let duration = self.settings.duration;
        let base_url = base_url.to_owned();
        let cpu_before = CpuTimes::now(server_pids, self.settings.backend);
        let started = Instant::now();
        let run = tokio::task::spawn_blocking(move || {
            crate::wrk::measure_script(&base_url, clients, duration, &requests)
        })
        .await??;
        let Some(run) = run else {
            return Ok(None);
        };
        let cpu = CpuCores::between(
            &cpu_before,
            &CpuTimes::now(server_pids, self.settings.backend),
            started.elapsed().as_secs_f64(),
        );
        let errors = run.bad_status + run.socket_errors;
        ensure!(
            errors < run.requests,
            "{label}: every one of the {} requests wrk sent failed ({} answered outside 2xx/3xx)",
            run.requests,
            run.bad_status
        );
        let errors_by_kind = [
            ("HTTP status outside 2xx/3xx", run.bad_status),
            ("socket error or timeout", run.socket_errors),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(kind, count)| (kind.to_owned(), count))
        .collect();
        let latency = LatencyMs {
            p50: round3(run.p50_ms),
            p95: round3(run.p95_ms),
            p99: round3(run.p99_ms),
            max: round3(run.max_ms),
            mean: round3(run.mean_ms),
        };
        Ok(Some(PhaseResult {
            errors_by_kind,
            ..PhaseResult::measured(
                format!("{label} (wrk)"),
                crate::report::WRK_CLIENT,
                clients,
                run.seconds,
                run.requests,
                errors,
                latency,
                &cpu,
            )
        }))
    }

    /// Runs one scenario while sampling the server's resident memory.
    pub async fn run_scenario(&self, scenario: &Scenario) -> anyhow::Result<ScenarioResult> {
        let pid = self.server_pid;
        let (report, peak_kib) = sampling::with_peak_rss(pid, (scenario.run)(self)).await;
        let report = report?;
        let hwm_kib = sampling::peak_since_start_kib(pid);
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
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, request(worker.clone())).await;
        let steps = worker.take_steps();
        match outcome {
            Ok(Ok(())) => tally.success(began.elapsed(), steps),
            Ok(Err(description)) => tally.error(description),
            Err(_) => tally.error(format!("no answer within {REQUEST_TIMEOUT:?}")),
        }
    }
    tally
}

pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        // Never route the benchmark's traffic through a proxy from the environment.
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")
}
