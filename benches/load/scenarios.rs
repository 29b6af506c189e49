//! The scenarios, in the order they run: what each measures, what it needs
//! seeded, and how its phases are laid out over the runner. The requests
//! they send are in `requests`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::future::{BoxFuture, join_all};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::Backend;
use crate::payloads::{STATS_RANGES, case_body};
use crate::report::{PhaseResult, ScenarioReport, round3};
use crate::requests::{
    LIST_PAGE_APPLICANT, LIST_PAGE_PATH, LIST_PAGE_SUPPORTER, QUEUE_PAGE, claim_and_triage,
    get_case_page, get_health, get_own_case, get_queue, get_queue_page, get_stats, list_own_cases,
    post_case, post_login, post_message, supporter_get_case, supporter_list_cases,
};
use crate::runner::{Applicant, Bench, Phase};
use crate::settings::Settings;
use crate::wrk::ScriptedRequest;

/// The acceptance target of the `login` scenario: /health p99 under login load
/// at most this many times its idle p99.
const LOGIN_P99_RATIO_TARGET: f64 = 2.0;
/// The acceptance target of the `pages` scenario: p99 of each page below this.
const PAGE_P99_TARGET_MS: f64 = 50.0;

pub type ScenarioFn = for<'a> fn(&'a Bench) -> BoxFuture<'a, anyhow::Result<ScenarioReport>>;

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    /// What must be seeded before the scenario runs.
    pub needs: fn(&Settings) -> Needs,
    pub run: ScenarioFn,
}

/// What a scenario needs seeded. Seeding is cumulative: what one scenario
/// seeded (and wrote) stays for the next ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// Registered applicant accounts (`Ctx::users`), for `login`.
    pub accounts: usize,
    /// The desk: the imported history (`--cases`), `--supporters` signed-in
    /// supporters, and this many applicants signed in, each with one case of
    /// its own (their "own cases", which `mixed` never claims).
    pub desk: usize,
    /// Untriaged cases besides the applicants' own (`--untriaged`).
    pub untriaged: usize,
    /// A signed-in manager.
    pub manager: bool,
    /// The benchmark's SMTP sink: when any chosen scenario asks for it, it
    /// is started before the server, and every instance delivers its mail
    /// there for the whole run (instead of dropping files).
    pub smtp_sink: bool,
}

/// The desk every case scenario runs against: one applicant per client.
fn desk(settings: &Settings) -> Needs {
    Needs {
        desk: settings.concurrency,
        ..Needs::default()
    }
}

/// Every scenario, in the order they run. `--scenarios` picks a subset.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "health",
        about: "GET /health at --concurrency clients: the reference ceiling",
        needs: |_| Needs::default(),
        run: |bench| Box::pin(health_scenario(bench)),
    },
    Scenario {
        name: "intake",
        about: "applicants POST /api/v1/cases (2-3 categories, Japanese text), \
                each client its own applicant",
        needs: desk,
        run: |bench| Box::pin(intake_scenario(bench)),
    },
    Scenario {
        name: "read",
        about: "applicants GET /api/v1/cases/{id} of their own case",
        needs: desk,
        run: |bench| Box::pin(read_scenario(bench)),
    },
    Scenario {
        name: "queue",
        about: "supporters GET /api/v1/triage-queue (the 100 oldest untriaged cases)",
        needs: |settings| Needs {
            untriaged: settings.untriaged,
            ..desk(settings)
        },
        run: |bench| Box::pin(queue_scenario(bench)),
    },
    Scenario {
        name: "list",
        about: "supporters, then applicants, GET /api/v1/cases?limit=20 (the newest cases \
                they may read: the whole desk's, their organisation's)",
        needs: |settings| Needs {
            untriaged: settings.untriaged,
            ..desk(settings)
        },
        run: |bench| Box::pin(list_scenario(bench)),
    },
    Scenario {
        name: "pages",
        about: "supporters' browsers GET the triage queue page (/queue) and a case page \
                (/cases/{id}) with a session cookie (target: p99 < 50 ms)",
        needs: |settings| Needs {
            untriaged: settings.untriaged,
            ..desk(settings)
        },
        run: |bench| Box::pin(pages_scenario(bench)),
    },
    Scenario {
        name: "stats",
        about: "a manager GETs /api/v1/stats/categories for multi-year ranges of the history",
        needs: |settings| Needs {
            manager: true,
            ..desk(settings)
        },
        run: |bench| Box::pin(stats_scenario(bench)),
    },
    Scenario {
        name: "login",
        about: "GET /health p99 with a few probe clients, idle and while \
                --login-clients clients log in continuously (target: ratio <= 2)",
        needs: |settings| Needs {
            accounts: settings.login_clients,
            ..Needs::default()
        },
        run: |bench| Box::pin(login_scenario(bench)),
    },
    Scenario {
        name: "mixed",
        about: "a desk day: mostly applicants reading their cases and lists, some intake, \
                supporters reading, claiming and triaging, messages",
        needs: |settings| Needs {
            untriaged: settings.untriaged,
            ..desk(settings)
        },
        run: |bench| Box::pin(mixed_scenario(bench)),
    },
    Scenario {
        name: "booking-storm",
        about: "--storm-clients applicants (one organisation each) race for the seats of the \
                next --storm-slots Open Hours slots, booking slot after slot; checks that no \
                slot ends above its capacity",
        needs: |settings| Needs {
            accounts: settings.storm_clients,
            ..Needs::default()
        },
        run: |bench| Box::pin(crate::storm::booking_storm_scenario(bench)),
    },
    Scenario {
        name: "mail-drain",
        about: "applicants file cases for --duration, then the mail they queued is awaited \
                at the benchmark's SMTP sink; checks every mail arrived exactly once \
                (target: >= 500 mails/s per instance)",
        needs: |settings| Needs {
            smtp_sink: true,
            ..desk(settings)
        },
        run: |bench| Box::pin(crate::drain::mail_drain_scenario(bench)),
    },
    Scenario {
        name: "two-instances",
        about: "PostgreSQL only: intake on one instance, then split over two instances on \
                the same database; checks no error, unique case numbers and every mail sent \
                exactly once",
        needs: |settings| match settings.backend {
            Backend::Postgres => Needs {
                smtp_sink: true,
                ..desk(settings)
            },
            Backend::Sqlite => Needs::default(),
        },
        run: |bench| Box::pin(crate::drain::two_instances_scenario(bench)),
    },
];

async fn health_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let phase = Phase::new(
        "GET /health",
        bench.settings.concurrency,
        bench.settings.duration,
    );
    let result = bench.run_phase(phase, get_health).await?;
    let mut report = ScenarioReport::new(vec![result]);
    // The same load from wrk, whose rate (not capped by this client's CPU)
    // is then the reference of %health.
    let url = format!("{}/health", bench.ctx.base_url);
    let (clients, duration) = (bench.settings.concurrency, bench.settings.duration);
    let measured =
        tokio::task::spawn_blocking(move || crate::wrk::measure(&url, clients, duration)).await?;
    match measured {
        Ok(Some(wrk)) => {
            let rate = wrk.requests_per_second();
            report
                .summary
                .insert(WRK_HEALTH_KEY.to_owned(), json!(round3(rate)));
            report
                .summary
                .insert("wrk_p99_ms".to_owned(), json!(round3(wrk.p99_ms)));
            report.notes.push(format!(
                "wrk -t1 -c{clients} -d{}s: {rate:.1} req/s, p99 {:.3} ms — the reference of %health",
                duration.as_secs().max(1),
                wrk.p99_ms,
            ));
        }
        Ok(None) => report.notes.push(
            "wrk is not installed: %health divides by this client's own /health rate, \
             which its CPU (the gen column) may cap"
                .to_owned(),
        ),
        Err(e) => report.notes.push(format!(
            "wrk failed ({e}): %health divides by this client's own /health rate"
        )),
    }
    Ok(report)
}

/// How many different intake forms wrk's script sends in turn (each case
/// still gets a number and rows of its own).
const WRK_INTAKE_FORMS: u64 = 256;

/// wrk's script of intakes: [`WRK_INTAKE_FORMS`] forms, filed in turn by
/// `applicants` (each its own organisation's).
pub fn intake_forms(bench: &Bench, applicants: &[Applicant]) -> Vec<ScriptedRequest> {
    let base = bench
        .ctx
        .sequence
        .fetch_add(WRK_INTAKE_FORMS, Ordering::Relaxed);
    (0..WRK_INTAKE_FORMS)
        .map(|k| ScriptedRequest {
            method: "POST",
            path: "/api/v1/cases".to_owned(),
            bearer: applicants[k as usize % applicants.len()].token.clone(),
            body: Some(case_body(base + k).to_string()),
        })
        .collect()
}

/// The health scenario's summary key of wrk's rate.
pub const WRK_HEALTH_KEY: &str = "wrk_requests_per_second";

/// Issue 4's intake figure: one authenticated POST per request, each client
/// filing as its own applicant (one organisation each).
async fn intake_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let phase = Phase::new(
        "POST /api/v1/cases",
        bench.settings.concurrency,
        bench.settings.duration,
    );
    // wrk first: it is the figure of record, and each phase leaves a mail
    // backlog that is drained before the next one starts.
    let (mut phases, mut notes) = (Vec::new(), Vec::new());
    let forms = intake_forms(bench, &bench.ctx.applicants);
    if let Some(wrk) = bench.run_wrk_phase(&phase.label, forms).await? {
        phases.push(wrk);
        if let Some(took) = bench.drain_mail().await? {
            notes.push(format!(
                "after wrk's phase the mail worker took {:.1} s to send the mail it queued, \
                 before the next phase started",
                took.as_secs_f64()
            ));
        }
    }
    phases.push(
        bench
            .run_phase(phase, |worker| post_case(worker, 0))
            .await?,
    );
    let mut report = ScenarioReport::new(phases);
    report.notes = notes;
    let supporters = bench.ctx.supporters.len();
    report.notes.push(format!(
        "every case queues mail for {} people in {} messages (the applicant's acknowledgement; \
         one announcement to the {supporters} supporters, who all read Japanese); the mail \
         worker sends them beside the requests",
        supporters + 1,
        1 + usize::from(supporters > 0)
    ));
    Ok(report)
}

/// Issue 4's case-read figure: applicants reading their own case.
async fn read_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let phase = Phase::new(
        "GET /api/v1/cases/{id}",
        bench.settings.concurrency,
        bench.settings.duration,
    );
    let reads = bench.ctx.applicants.iter().map(|applicant| {
        ScriptedRequest::get(
            format!("/api/v1/cases/{}", applicant.case_id),
            &applicant.token,
        )
    });
    let mut phases = Vec::from_iter(bench.run_wrk_phase(&phase.label, reads.collect()).await?);
    phases.push(
        bench
            .run_phase(phase, |worker| get_own_case(worker, 0))
            .await?,
    );
    Ok(ScenarioReport::new(phases))
}

async fn queue_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let phase = Phase::new(
        "GET /api/v1/triage-queue",
        bench.settings.concurrency,
        bench.settings.duration,
    );
    let reads = bench
        .ctx
        .supporters
        .iter()
        .map(|token| ScriptedRequest::get("/api/v1/triage-queue", token));
    let mut phases = Vec::from_iter(bench.run_wrk_phase(&phase.label, reads.collect()).await?);
    phases.push(bench.run_phase(phase, get_queue).await?);
    let mut report = ScenarioReport::new(phases);
    report.notes.push(format!(
        "{} supporters share the clients; each answer lists {QUEUE_PAGE} cases and \
         logs their reading (a write)",
        bench.ctx.supporters.len()
    ));
    Ok(report)
}

/// Issue 19's case-list figure: the first page of `GET /api/v1/cases`, as
/// a supporter's desk-wide list and as an applicant's own list.
async fn list_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let duration = bench.settings.duration;
    let clients = bench.settings.concurrency;
    let supporters = Phase::new(LIST_PAGE_SUPPORTER, clients, duration);
    let supporter_lists = bench
        .ctx
        .supporters
        .iter()
        .map(|token| ScriptedRequest::get(LIST_PAGE_PATH, token));
    let mut phases = Vec::from_iter(
        bench
            .run_wrk_phase(&supporters.label, supporter_lists.collect())
            .await?,
    );
    phases.push(bench.run_phase(supporters, supporter_list_cases).await?);
    let applicants = Phase::new(LIST_PAGE_APPLICANT, clients, duration);
    let own_lists = bench
        .ctx
        .applicants
        .iter()
        .map(|applicant| ScriptedRequest::get(LIST_PAGE_PATH, &applicant.token));
    phases.extend(
        bench
            .run_wrk_phase(&applicants.label, own_lists.collect())
            .await?,
    );
    phases.push(
        bench
            .run_phase(applicants, |worker| list_own_cases(worker, 0))
            .await?,
    );
    let mut report = ScenarioReport::new(phases);
    report.notes.push(format!(
        "{} supporters share the clients in the first phases, each listing the desk's 20 newest \
         cases of {} and logging their reading (a write, once a minute per supporter and case); \
         in the last phases each client is an applicant listing its organisation's cases",
        bench.ctx.supporters.len(),
        bench.settings.cases + bench.settings.untriaged + bench.settings.concurrency,
    ));
    Ok(report)
}

/// Issue 17's page figures: the HTML a supporter's browser gets, rendered
/// from the same use cases as the API, one phase per page.
async fn pages_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let sessions = Arc::new(bench.supporter_page_sessions().await?);
    let clients = bench.settings.concurrency;
    let queue = {
        let sessions = sessions.clone();
        bench
            .run_phase(
                Phase::new("GET /queue (page)", clients, bench.settings.duration),
                move |worker| get_queue_page(worker, sessions.clone()),
            )
            .await?
    };
    let case = bench
        .run_phase(
            Phase::new("GET /cases/{id} (page)", clients, bench.settings.duration),
            move |worker| get_case_page(worker, sessions.clone()),
        )
        .await?;
    let worst = queue.latency_ms.p99.max(case.latency_ms.p99);
    let mut report = ScenarioReport::new(vec![queue, case]);
    report.summary = BTreeMap::from([
        ("p99_target_ms".to_owned(), json!(PAGE_P99_TARGET_MS)),
        ("meets_target".to_owned(), json!(worst < PAGE_P99_TARGET_MS)),
    ]);
    report.notes.push(format!(
        "{} supporters signed in through the sign-in page share the clients; the queue page \
         lists the oldest untriaged cases, the case page one applicant's case with its \
         messages and timeline; {} imported cases in the desk",
        bench.ctx.supporters.len(),
        bench.settings.cases
    ));
    Ok(report)
}

/// The manager's category table. Statistics may not be built yet on this
/// branch: a 404 (or 405/501) on the first request reports the scenario
/// unavailable instead of failing the run.
async fn stats_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let probe = bench.api.stats_status(bench.manager_token()?).await?;
    if matches!(
        probe,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
    ) {
        let mut report = ScenarioReport::new(Vec::new());
        report.summary.insert("available".to_owned(), json!(false));
        report.notes.push(format!(
            "unavailable: GET /api/v1/stats/categories answered {probe} (not built yet?); skipped"
        ));
        return Ok(report);
    }
    let phase = Phase::new(
        "GET /api/v1/stats/categories",
        bench.settings.concurrency,
        bench.settings.duration,
    );
    let result = bench.run_phase(phase, get_stats).await?;
    let mut report = ScenarioReport::new(vec![result]);
    report.summary.insert("available".to_owned(), json!(true));
    let ranges: Vec<String> = STATS_RANGES
        .iter()
        .map(|(from, to)| format!("{from}..{to}"))
        .collect();
    report.notes.push(format!(
        "one manager, ranges {} in turn, over {} imported cases and everything filed since",
        ranges.join(", "),
        bench.settings.cases
    ));
    Ok(report)
}

/// The acceptance check: does argon2 hashing starve the other requests?
///
/// The probes are paced (`--probe-interval-ms`, 200 requests/s per probe by
/// default): back-to-back probes would keep both cores busy on their own, so
/// "idle" would not be idle, and the low-priority hashing threads would be
/// starved (fewer logins) instead of competing with the requests.
async fn login_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let settings = &bench.settings;
    let probe = |label| Phase {
        pace: settings.probe_pace,
        ..Phase::new(label, settings.probe_clients, settings.login_duration)
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
                settings.login_duration
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

/// One kind of work in the desk day.
struct DeskTask {
    label: &'static str,
    /// Clients out of every 32.
    weight: usize,
    /// HTTP requests one operation makes.
    requests: u64,
}

/// The desk day (`mixed`), as clients per 32: mostly applicants reading
/// their case and their list, some intake, supporters reading, claiming and
/// triaging, and messages. The order is the order of the phases in the table.
const DESK_DAY: [DeskTask; 7] = [
    DeskTask {
        label: "applicant: GET own case",
        weight: 12,
        requests: 1,
    },
    DeskTask {
        label: "applicant: GET case list",
        weight: 6,
        requests: 1,
    },
    DeskTask {
        label: "supporter: GET case",
        weight: 3,
        requests: 1,
    },
    DeskTask {
        label: "supporter: GET case list",
        weight: 2,
        requests: 1,
    },
    DeskTask {
        label: "applicant: POST case",
        weight: 4,
        requests: 1,
    },
    DeskTask {
        label: "supporter: queue+claim+triage",
        weight: 3,
        requests: 3,
    },
    DeskTask {
        label: "applicant: POST message",
        weight: 2,
        requests: 1,
    },
];

/// A desk day: every kind of work at once, each in its own phase (so each has
/// its own latency), the clients split by [`DESK_DAY`]. Supporters claim only
/// cases whose id falls in their own residue class, never an applicant's own
/// case (which applicants message meanwhile): no claim races, no 409/412.
async fn mixed_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let settings = &bench.settings;
    let clients: Vec<usize> = DESK_DAY
        .iter()
        .map(|task| ((settings.concurrency * task.weight + 16) / 32).max(1))
        .collect();
    // Applicant-side phases use distinct applicants (as far as there are enough).
    let mut offsets = [0usize; DESK_DAY.len()];
    let mut next = 0;
    for (i, task) in DESK_DAY.iter().enumerate() {
        if task.label.starts_with("applicant") {
            offsets[i] = next;
            next += clients[i];
        }
    }
    let phase = |i: usize| Phase::new(DESK_DAY[i].label, clients[i], settings.duration);
    let (o0, o1, o4, o6) = (offsets[0], offsets[1], offsets[4], offsets[6]);
    let partitions = clients[5];
    let phases: Vec<BoxFuture<'_, anyhow::Result<PhaseResult>>> = vec![
        Box::pin(bench.run_phase(phase(0), move |w| get_own_case(w, o0))),
        Box::pin(bench.run_phase(phase(1), move |w| list_own_cases(w, o1))),
        Box::pin(bench.run_phase(phase(2), supporter_get_case)),
        Box::pin(bench.run_phase(phase(3), supporter_list_cases)),
        Box::pin(bench.run_phase(phase(4), move |w| post_case(w, o4))),
        Box::pin(bench.run_phase(phase(5), move |w| claim_and_triage(w, partitions))),
        Box::pin(bench.run_phase(phase(6), move |w| post_message(w, o6))),
    ];
    let results = join_all(phases)
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;

    let operations: f64 = results.iter().map(|r| r.requests_per_second).sum();
    let requests: f64 = results
        .iter()
        .zip(&DESK_DAY)
        .map(|(r, task)| r.requests_per_second * task.requests as f64)
        .sum();
    let mut mix = String::new();
    let mut shares = serde_json::Map::new();
    for (result, task) in results.iter().zip(&DESK_DAY) {
        let share = if operations > 0.0 {
            100.0 * result.requests_per_second / operations
        } else {
            0.0
        };
        shares.insert(task.label.to_owned(), json!(round3(share)));
        let _ = write!(
            mix,
            "{}{} x {} ({share:.0} %)",
            if mix.is_empty() { "" } else { ", " },
            result.clients,
            task.label
        );
    }
    let mut report = ScenarioReport::new(results);
    report.summary = BTreeMap::from([
        (
            "operations_per_second".to_owned(),
            json!(round3(operations)),
        ),
        (
            "http_requests_per_second".to_owned(),
            json!(round3(requests)),
        ),
        ("operation_share_percent".to_owned(), Value::Object(shares)),
    ]);
    report.notes.push(format!(
        "mix, clients x work (share of operations): {mix}; \
         {operations:.1} operations/s = {requests:.1} HTTP requests/s \
         (queue+claim+triage is 3 requests: its row times all three, the rows under it each one)"
    ));
    Ok(report)
}
