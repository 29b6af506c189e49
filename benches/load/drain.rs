//! The mail scenarios of issue 19, both over the benchmark's SMTP sink
//! ([`crate::smtp_sink`]), which every instance of the run delivers to.
//!
//! `mail-drain`: applicants file cases (the intake request, insisting on
//! 201) for `--duration`; then the scenario waits (up to
//! [`MAIL_WAIT_TIMEOUT`]) until the sink has the mail they queued: 1 +
//! supporters per case, counted from the sink's counts at the scenario's
//! start (the driver waits for an empty outbox between scenarios, so the
//! earlier scenarios' mail is in by then). Once that many arrived, it waits
//! for the server's outbox to be empty and [`LATE_MAIL_GRACE`] more, so that
//! a mail sent twice has the time to show. It reports the cases, the mails
//! expected and received (one per recipient: the desk's mail to its
//! supporters is one message to several), the messages and their distinct
//! Message-IDs, the sink's
//! connections, the mails per second from the first mail of the scenario to
//! the last, and how long the drain took after the filing ended; then the
//! exactly-once check: received = expected and distinct ids = messages. A
//! FAIL counts as failed requests, so the run exits non-zero. Target: at
//! least [`MAILS_PER_SECOND_TARGET`] mails/s for the one instance (reported,
//! not failing the run).
//!
//! `two-instances` (PostgreSQL only; on SQLite reported unavailable): the
//! same filing for `--duration` on the one instance, then, once its mail is
//! in, a second `medesk serve` on the same database (the same environment,
//! its own port, `server-2.log`), the clients split half and half between
//! the two for `--duration` (the seeded applicants file on either: the JWT
//! secret is the same), and the mail awaited as in `mail-drain`. The checks:
//! no request failed; the case numbers are unique (`count(*)` against
//! `count(DISTINCT number)` over `cases`, read with psql) and the cases
//! table grew by the 201s exactly; every mail arrived exactly once, for each
//! phase. The combined rate against the single instance's is reported, met
//! or not, without failing the run, and so are the cases filed and notified
//! per second: the cases over the filing and the drain after it, to the
//! last mail (the intake's rate leaves out the mail still queued when the
//! filing stops, and two instances send theirs about twice as fast).
//!
//! When `wrk` is installed the same comparison is made again from wrk (the
//! single instance right after its own-client phase, the two after
//! theirs; one `wrk -t1` per instance, the applicants split as above): the
//! benchmark's client needs about ten times wrk's CPU per request on the
//! cores the instances and the database share. wrk stops without waiting
//! for the requests in flight, so a wrk phase's cases are what the table
//! gained once they settled ([`WRK_SETTLE`]), checked to lie between its
//! answers 2xx and those plus one per connection; its mail is checked
//! exactly once as above. The second instance is stopped (SIGTERM)
//! afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use serde_json::{Value, json};

use crate::common::{self, Backend};
use crate::report::{PhaseResult, ScenarioReport, round3};
use crate::requests::file_case;
use crate::runner::{Applicant, Bench, Phase};
use crate::sampling::{CpuCores, CpuTimes};
use crate::server::Server;
use crate::smtp_sink::{SinkCounts, SmtpSink};

/// How long the mail of a filing phase may take to reach the sink.
pub const MAIL_WAIT_TIMEOUT: Duration = Duration::from_secs(300);
/// After the expected mail arrived and the outbox is empty: time for a mail
/// sent twice to arrive too.
const LATE_MAIL_GRACE: Duration = Duration::from_millis(500);
/// Issue 19's target: mails per second one instance delivers.
pub const MAILS_PER_SECOND_TARGET: f64 = 500.0;
/// How long the second instance may take to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// The mail of one filing phase, as the sink received it.
struct MailCheck {
    cases: u64,
    expected: u64,
    received: u64,
    /// Received before the filing ended: the mail work that shared the
    /// cores with the intake (the rest came after).
    during_filing: u64,
    messages: u64,
    distinct_ids: u64,
    without_id: u64,
    /// Connections the sink accepted meanwhile (the server keeps its own).
    new_connections: u64,
    connections: u64,
    /// From the first mail since the phase began to the last.
    span_seconds: Option<f64>,
    mails_per_second: Option<f64>,
    /// From the end of the filing to the last mail.
    drain_seconds: Option<f64>,
    /// Server and database CPU while waiting for the mail after the filing.
    drain_cpu: CpuCores,
    timed_out: bool,
}

impl MailCheck {
    fn violations(&self) -> Vec<String> {
        let mut violations = Vec::new();
        if self.received != self.expected {
            violations.push(format!(
                "{} mails received, {} expected ({} cases x {}){}",
                self.received,
                self.expected,
                self.cases,
                self.expected.checked_div(self.cases).unwrap_or(0),
                if self.timed_out {
                    format!(" after waiting {MAIL_WAIT_TIMEOUT:?}")
                } else {
                    String::new()
                }
            ));
        }
        if self.distinct_ids != self.messages - self.without_id {
            violations.push(format!(
                "{} messages but {} distinct Message-IDs: {} sent more than once",
                self.messages - self.without_id,
                self.distinct_ids,
                self.messages - self.without_id - self.distinct_ids
            ));
        }
        if self.without_id > 0 {
            violations.push(format!("{} mails without a Message-ID", self.without_id));
        }
        violations
    }

    fn summary(&self) -> Value {
        json!({
            "cases_filed_201": self.cases,
            "mails_expected": self.expected,
            "mails_received": self.received,
            "mails_received_during_filing": self.during_filing,
            "messages_received": self.messages,
            "distinct_message_ids": self.distinct_ids,
            "mails_without_message_id": self.without_id,
            "sink_connections": self.connections,
            "sink_new_connections": self.new_connections,
            "first_to_last_mail_seconds": self.span_seconds.map(round3),
            "mails_per_second": self.mails_per_second.map(round3),
            "drain_after_filing_seconds": self.drain_seconds.map(round3),
            "drain_server_cpu_cores": self.drain_cpu.server,
            "drain_database_cpu_cores": self.drain_cpu.database,
            "exactly_once": if self.violations().is_empty() { "PASS" } else { "FAIL" },
        })
    }

    /// Cases filed and notified per second: the cases over the filing's
    /// `filing_seconds` and the drain after it, until the last mail. The
    /// whole of the desk's work for them, where the intake's rate leaves
    /// out the mail still queued when the filing stopped.
    fn filed_and_notified_per_second(&self, filing_seconds: f64) -> Option<f64> {
        let seconds = filing_seconds + self.drain_seconds?;
        (seconds > 0.0 && !self.timed_out).then(|| self.cases as f64 / seconds)
    }

    /// One line for the notes.
    fn line(&self) -> String {
        let seconds = |s: Option<f64>| s.map_or("-".to_owned(), |s| format!("{s:.1} s"));
        format!(
            "{} cases filed (201) -> {} mails expected, {} received ({} during the filing) in \
             {} messages with {} distinct Message-IDs; \
             sink connections {} ({} new); {:.0} mails/s over {} from the first mail to the \
             last; drained {} after the filing ended (server {:.2}, database {:.2} cores then)",
            self.cases,
            self.expected,
            self.received,
            self.during_filing,
            self.messages,
            self.distinct_ids,
            self.connections,
            self.new_connections,
            self.mails_per_second.unwrap_or(0.0),
            seconds(self.span_seconds),
            seconds(self.drain_seconds),
            self.drain_cpu.server,
            self.drain_cpu.database,
        )
    }
}

/// Waits for the mail of `cases` cases filed since `start` (the sink's
/// counts then), the filing having ended at `filing_ended`.
async fn await_mail(
    bench: &Bench,
    sink: &SmtpSink,
    start: SinkCounts,
    cases: u64,
    filing_ended: Instant,
    server_pids: &[u32],
) -> anyhow::Result<MailCheck> {
    let per_case = 1 + bench.ctx.supporters.len() as u64;
    let expected = cases * per_case;
    let during_filing = sink.counts().mails - start.mails;
    let cpu_before = CpuTimes::now(server_pids, bench.settings.backend);
    let waiting = Instant::now();
    let reached = sink
        .wait_for(start.mails + expected, MAIL_WAIT_TIMEOUT)
        .await;
    let cpu_after = CpuTimes::now(server_pids, bench.settings.backend);
    let waited = waiting.elapsed().as_secs_f64().max(0.001);
    let timed_out = reached.mails < start.mails + expected;
    if !timed_out {
        // A mail sent twice would come before the outbox is empty, or just after.
        bench.drain_mail().await?;
        tokio::time::sleep(LATE_MAIL_GRACE).await;
    }
    let end = sink.counts();
    let received = end.mails - start.mails;
    let span = match (end.first, end.last) {
        (Some(first), Some(last)) if received > 0 => Some((last - first).as_secs_f64()),
        _ => None,
    };
    let drain_seconds = end
        .last
        .filter(|_| received > 0)
        .map(|last| last.saturating_duration_since(filing_ended).as_secs_f64());
    Ok(MailCheck {
        cases,
        expected,
        received,
        during_filing,
        messages: end.messages - start.messages,
        distinct_ids: end.distinct_ids - start.distinct_ids,
        without_id: end.without_id - start.without_id,
        new_connections: end.connections - start.connections,
        connections: end.connections,
        span_seconds: span,
        mails_per_second: span.filter(|s| *s > 0.0).map(|s| (received - 1) as f64 / s),
        drain_seconds,
        drain_cpu: CpuCores::between(&cpu_before, &cpu_after, waited),
        timed_out,
    })
}

/// Counts each violation as a failed request of `phase` (so the run exits
/// non-zero), under `what`.
fn fail(phase: &mut PhaseResult, what: &str, violations: &[String]) {
    for violation in violations {
        phase.errors += 1;
        *phase
            .errors_by_kind
            .entry(format!("{what}: {violation}"))
            .or_default() += 1;
    }
}

fn pass_fail(violations: &[String]) -> &'static str {
    if violations.is_empty() {
        "PASS"
    } else {
        "FAIL"
    }
}

fn filed(phase: &PhaseResult) -> u64 {
    phase.requests - phase.errors
}

/// One instance's share of a wrk filing: its address, connections and
/// applicants (each files on one instance only).
struct WrkTarget<'a> {
    base_url: &'a str,
    clients: usize,
    applicants: &'a [Applicant],
}

/// A filing driven by wrk, one wrk per instance at once, and its mail.
struct WrkFiling {
    phases: Vec<PhaseResult>,
    /// Answered 2xx, all instances.
    answered: u64,
    /// Cases the database gained: the answered ones and those still in
    /// flight when wrk stopped (it stops without waiting for them).
    grew: u64,
    cases_per_second: f64,
    /// Over the longest of its wrk runs and the drain after it.
    filed_and_notified_per_second: Option<f64>,
    cpu: CpuCores,
    mail: MailCheck,
    violations: Vec<String>,
}

/// How long requests still in flight when wrk stops may take to commit
/// before the cases are counted (the slowest intake takes tens of ms).
const WRK_SETTLE: Duration = Duration::from_secs(1);

/// Files for `--duration` from one wrk per target, all at once; None when
/// wrk is not installed. wrk cannot tell the cases it left in flight, so
/// the cases filed are what the database gained, which must lie between
/// the answers and the answers plus one per connection.
async fn wrk_filing(
    bench: &Bench,
    sink: &SmtpSink,
    label: &str,
    targets: &[WrkTarget<'_>],
    server_pids: &[u32],
) -> anyhow::Result<Option<WrkFiling>> {
    let database_url = bench.launch.database_url.clone();
    let (before, _) = case_numbers(&database_url).await?;
    let start = sink.mark();
    let cpu_before = CpuTimes::now(server_pids, bench.settings.backend);
    let started = Instant::now();
    let runs = futures_util::future::join_all(targets.iter().enumerate().map(|(i, target)| {
        let forms = crate::scenarios::intake_forms(bench, target.applicants);
        let label = format!(
            "{label}, instance {} of {}: POST cases",
            i + 1,
            targets.len()
        );
        async move {
            bench
                .run_wrk_phase_on(target.base_url, server_pids, &label, target.clients, forms)
                .await
        }
    }))
    .await;
    let ended = Instant::now();
    let cpu = CpuCores::between(
        &cpu_before,
        &CpuTimes::now(server_pids, bench.settings.backend),
        started.elapsed().as_secs_f64(),
    );
    let mut phases = Vec::new();
    for run in runs {
        match run? {
            Some(phase) => phases.push(phase),
            None => return Ok(None),
        }
    }
    tokio::time::sleep(WRK_SETTLE).await;
    let (after, _) = case_numbers(&database_url).await?;
    let grew = after.saturating_sub(before);
    let answered: u64 = phases.iter().map(filed).sum();
    let failed: u64 = phases.iter().map(|p| p.errors).sum();
    let in_flight_at_most: u64 = targets.iter().map(|t| t.clients as u64).sum();
    let seconds = phases.iter().map(|p| p.seconds).fold(0.0, f64::max);
    let mail = await_mail(bench, sink, start, grew, ended, server_pids).await?;
    let mut violations = mail.violations();
    if failed > 0 {
        violations.push(format!("{failed} wrk request(s) failed"));
    }
    if grew < answered || grew > answered + in_flight_at_most {
        violations.push(format!(
            "the cases table grew by {grew} for {answered} answers 2xx and at most \
             {in_flight_at_most} requests in flight"
        ));
    }
    Ok(Some(WrkFiling {
        phases,
        answered,
        grew,
        cases_per_second: if seconds > 0.0 {
            answered as f64 / seconds
        } else {
            0.0
        },
        filed_and_notified_per_second: mail.filed_and_notified_per_second(seconds),
        cpu,
        mail,
        violations,
    }))
}

fn sink(bench: &Bench) -> anyhow::Result<&SmtpSink> {
    bench
        .sink
        .as_deref()
        .ok_or_else(|| anyhow!("no SMTP sink: the scenario's Needs ask for it"))
}

fn unavailable(why: String) -> ScenarioReport {
    let mut report = ScenarioReport::new(Vec::new());
    report.summary.insert("available".to_owned(), json!(false));
    report.notes.push(format!("unavailable: {why}; skipped"));
    report
}

pub async fn mail_drain_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let sink = sink(bench)?;
    let start = sink.mark();
    let phase = Phase::new(
        "POST /api/v1/cases",
        bench.settings.concurrency,
        bench.settings.duration,
    );
    let mut filing = bench
        .run_phase(phase, |worker| file_case(worker, 0))
        .await?;
    let ended = Instant::now();
    let check = await_mail(
        bench,
        sink,
        start,
        filed(&filing),
        ended,
        &[bench.server_pid],
    )
    .await?;
    let violations = check.violations();
    eprintln!(
        "load: mail-drain: exactly-once check {}{}",
        pass_fail(&violations),
        violations
            .iter()
            .map(|v| format!("\n  {v}"))
            .collect::<String>()
    );
    fail(&mut filing, "exactly-once check", &violations);

    let mut report = ScenarioReport::new(vec![filing]);
    let mut summary = check.summary();
    summary["available"] = json!(true);
    summary["mails_per_second_target"] = json!(MAILS_PER_SECOND_TARGET);
    summary["violations"] = json!(violations);
    report.summary = summary
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    report.notes.push(check.line());
    report.notes.push(match check.mails_per_second {
        Some(rate) => format!(
            "target >= {MAILS_PER_SECOND_TARGET:.0} mails/s per instance: {rate:.0} mails/s, {}",
            if rate >= MAILS_PER_SECOND_TARGET {
                "met"
            } else {
                "NOT met"
            }
        ),
        None => "target: no mails/s measured (fewer than two mails)".to_owned(),
    });
    report.notes.push(if violations.is_empty() {
        "exactly-once check PASS: every expected mail arrived, each Message-ID once".to_owned()
    } else {
        format!("exactly-once check FAIL: {}", violations.join("; "))
    });
    Ok(report)
}

/// `count(*)` and `count(DISTINCT number)` of the cases table.
async fn case_numbers(database_url: &str) -> anyhow::Result<(u64, u64)> {
    let url = database_url.to_owned();
    let row = tokio::task::spawn_blocking(move || {
        common::query(&url, "SELECT count(*), count(DISTINCT number) FROM cases")
    })
    .await??;
    let (all, distinct) = row
        .split_once('|')
        .ok_or_else(|| anyhow!("counting the cases: unexpected answer {row:?}"))?;
    Ok((
        all.trim().parse().context("counting the cases")?,
        distinct.trim().parse().context("counting the cases")?,
    ))
}

pub async fn two_instances_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let settings = &bench.settings;
    if settings.backend != Backend::Postgres {
        return Ok(unavailable(
            "two instances share one database on PostgreSQL only (SQLite is embedded, \
             one process); run with --backend postgres"
                .to_owned(),
        ));
    }
    let clients = settings.concurrency;
    if clients < 2 {
        return Ok(unavailable(
            "needs --concurrency 2 or more (half the clients per instance)".to_owned(),
        ));
    }
    let sink = sink(bench)?;
    let database_url = bench.launch.database_url.clone();
    let (cases_before, _) = case_numbers(&database_url).await?;

    // One instance, as a reference.
    let start = sink.mark();
    let mut single = bench
        .run_phase(
            Phase::new("single: POST /api/v1/cases", clients, settings.duration),
            |worker| file_case(worker, 0),
        )
        .await?;
    let ended = Instant::now();
    let single_mail = await_mail(
        bench,
        sink,
        start,
        filed(&single),
        ended,
        &[bench.server_pid],
    )
    .await?;

    // The same from wrk, when installed: the benchmark's own client needs
    // about ten times wrk's CPU per request, on the cores the instances and
    // the database share.
    let wrk_single = wrk_filing(
        bench,
        sink,
        "wrk, single",
        &[WrkTarget {
            base_url: &bench.ctx.base_url,
            clients,
            applicants: &bench.ctx.applicants,
        }],
        &[bench.server_pid],
    )
    .await?;

    // The second instance, on the same database and sink.
    let mut second = Server::start(&bench.launch, settings, 2)?;
    second.wait_until_ready(settings.backend).await?;
    let pids = [bench.server_pid, second.pid()];
    let second_ctx = Arc::new(bench.seeded.ctx(&second.base_url));
    let (first_half, second_half) = (clients - clients / 2, clients / 2);
    let start = sink.mark();
    let (on_first, on_second) = tokio::join!(
        bench.run_phase_on(
            bench.ctx.clone(),
            &pids,
            Phase::new("instance 1 of 2: POST cases", first_half, settings.duration),
            |worker| file_case(worker, 0),
        ),
        // Applicants after the first half's: no applicant files on both.
        bench.run_phase_on(
            second_ctx,
            &pids,
            Phase::new(
                "instance 2 of 2: POST cases",
                second_half,
                settings.duration
            ),
            move |worker| file_case(worker, first_half),
        ),
    );
    let (mut on_first, on_second) = (on_first?, on_second?);
    let ended = Instant::now();
    let two_mail = await_mail(
        bench,
        sink,
        start,
        filed(&on_first) + filed(&on_second),
        ended,
        &pids,
    )
    .await?;
    let applicants = &bench.ctx.applicants;
    let (first_applicants, second_applicants) =
        applicants.split_at(first_half.min(applicants.len().saturating_sub(1)));
    let wrk_two = match wrk_single {
        Some(_) if !first_applicants.is_empty() => {
            wrk_filing(
                bench,
                sink,
                "wrk, two",
                &[
                    WrkTarget {
                        base_url: &bench.ctx.base_url,
                        clients: first_half,
                        applicants: first_applicants,
                    },
                    WrkTarget {
                        base_url: &second.base_url,
                        clients: second_half,
                        applicants: second_applicants,
                    },
                ],
                &pids,
            )
            .await?
        }
        _ => None,
    };
    let second_alive = second.check_alive();
    let second_log_lines = second.log_line_count();
    let second_log = second.log_tail();
    let stopped = second.stop(STOP_GRACE).await;
    let (cases_after, distinct_numbers) = case_numbers(&database_url).await?;

    // The invariants.
    let request_errors = single.errors + on_first.errors + on_second.errors;
    let wrk_filings: Vec<&WrkFiling> = wrk_single.iter().chain(wrk_two.iter()).collect();
    let filed_total = filed(&single)
        + filed(&on_first)
        + filed(&on_second)
        + wrk_filings.iter().map(|f| f.grew).sum::<u64>();
    let grew = cases_after as i64 - cases_before as i64;
    let single_violations = single_mail.violations();
    let mut violations: Vec<String> = two_mail.violations();
    if cases_after != distinct_numbers {
        violations.push(format!(
            "{cases_after} cases but {distinct_numbers} distinct case numbers"
        ));
    }
    if grew != filed_total as i64 {
        violations.push(format!(
            "the cases table grew by {grew} but {filed_total} cases were filed (answered 201; \
             in wrk's phases, counted in the table)"
        ));
    }
    if let Err(error) = &second_alive {
        violations.push(format!("{error:#}"));
    }
    if let Err(error) = &stopped {
        violations.push(format!("stopping the second instance: {error:#}"));
    }
    let mut all_violations = single_violations.clone();
    all_violations.extend(violations.iter().cloned());
    for filing in &wrk_filings {
        all_violations.extend(filing.violations.iter().cloned());
    }
    eprintln!(
        "load: two-instances: checks {}{}{}",
        pass_fail(&all_violations),
        if request_errors > 0 {
            format!(" (and {request_errors} request(s) failed)")
        } else {
            String::new()
        },
        all_violations
            .iter()
            .map(|v| format!("\n  {v}"))
            .collect::<String>()
    );
    fail(&mut single, "one instance check", &single_violations);
    fail(&mut on_first, "two instances check", &violations);

    let single_rate = filed(&single) as f64 / single.seconds;
    let two_seconds = on_first.seconds.max(on_second.seconds);
    let two_rate = (filed(&on_first) + filed(&on_second)) as f64 / two_seconds;
    let rate_met = two_rate >= single_rate;
    let notified_rates = (
        single_mail.filed_and_notified_per_second(single.seconds),
        two_mail.filed_and_notified_per_second(two_seconds),
    );
    let checks_passed = all_violations.is_empty() && request_errors == 0;

    // Both phases' CPU per filed case: where a combined rate below the
    // single one goes when the cores are shared (both instances' CPU is
    // in the first instance's phase).
    let cpu_note = format!(
        "CPU per filed case: one instance {}; two instances {}",
        cpu_per_case(&single, single_rate),
        cpu_per_case(&on_first, two_rate)
    );
    // wrk's pair, when installed: the figure of the servers rather than of
    // this client (as in `intake`).
    let mut wrk_summary = Vec::new();
    let mut wrk_notes = Vec::new();
    if let (Some(one), Some(two)) = (&wrk_single, &wrk_two) {
        let met = two.cases_per_second >= one.cases_per_second;
        wrk_notes.push(format!(
            "intake from wrk: one instance {:.1} cases/s ({clients} connections), two \
             instances {:.1} cases/s ({first_half} + {second_half}): combined >= single {}",
            one.cases_per_second,
            two.cases_per_second,
            if met { "met" } else { "NOT met" }
        ));
        wrk_notes.push(format!(
            "CPU per filed case from wrk: one instance {}; two instances {}",
            cores_per_case(&one.cpu, one.cases_per_second),
            cores_per_case(&two.cpu, two.cases_per_second)
        ));
        wrk_notes.push(end_to_end_note(
            "from wrk",
            (
                one.filed_and_notified_per_second,
                two.filed_and_notified_per_second,
            ),
        ));
        for (which, filing) in [("one instance", one), ("two instances", two)] {
            wrk_notes.push(format!(
                "wrk, {which}: {} answered 2xx, the cases table grew by {}; mail: {}",
                filing.answered,
                filing.grew,
                filing.mail.line()
            ));
        }
        wrk_summary = vec![
            (
                "wrk_single_instance_cases_per_second".to_owned(),
                json!(round3(one.cases_per_second)),
            ),
            (
                "wrk_two_instances_cases_per_second".to_owned(),
                json!(round3(two.cases_per_second)),
            ),
            ("wrk_combined_rate_at_least_single".to_owned(), json!(met)),
            (
                "wrk_single_instance_filed_and_notified_per_second".to_owned(),
                json!(one.filed_and_notified_per_second.map(round3)),
            ),
            (
                "wrk_two_instances_filed_and_notified_per_second".to_owned(),
                json!(two.filed_and_notified_per_second.map(round3)),
            ),
            ("wrk_single_instance_mail".to_owned(), one.mail.summary()),
            ("wrk_two_instances_mail".to_owned(), two.mail.summary()),
        ];
    } else {
        wrk_notes.push(
            "wrk is not installed (or fewer than 2 applicants): the comparison from wrk was \
             skipped"
                .to_owned(),
        );
    }
    let mut phases = vec![single, on_first, on_second];
    for filing in [wrk_single, wrk_two].into_iter().flatten() {
        let mut filing_phases = filing.phases;
        if let Some(first) = filing_phases.first_mut() {
            fail(first, "wrk check", &filing.violations);
        }
        phases.extend(filing_phases);
    }
    let mut report = ScenarioReport::new(phases);
    report.summary = BTreeMap::from([
        ("available".to_owned(), json!(true)),
        (
            "single_instance_cases_per_second".to_owned(),
            json!(round3(single_rate)),
        ),
        (
            "two_instances_cases_per_second".to_owned(),
            json!(round3(two_rate)),
        ),
        ("combined_rate_at_least_single".to_owned(), json!(rate_met)),
        (
            "single_instance_filed_and_notified_per_second".to_owned(),
            json!(notified_rates.0.map(round3)),
        ),
        (
            "two_instances_filed_and_notified_per_second".to_owned(),
            json!(notified_rates.1.map(round3)),
        ),
        ("single_instance_mail".to_owned(), single_mail.summary()),
        ("two_instances_mail".to_owned(), two_mail.summary()),
        ("cases_in_database".to_owned(), json!(cases_after)),
        ("distinct_case_numbers".to_owned(), json!(distinct_numbers)),
        ("request_errors".to_owned(), json!(request_errors)),
        (
            "checks".to_owned(),
            json!(if checks_passed { "PASS" } else { "FAIL" }),
        ),
        ("violations".to_owned(), json!(all_violations)),
        (
            "second_instance_log_lines".to_owned(),
            json!(second_log_lines),
        ),
    ]);
    report.summary.extend(wrk_summary);
    report.notes.push(format!(
        "intake: one instance {single_rate:.1} cases/s ({clients} clients), two instances \
         {two_rate:.1} cases/s ({first_half} + {second_half} clients): combined >= single {}",
        if rate_met { "met" } else { "NOT met" }
    ));
    report.notes.push(cpu_note);
    report.notes.push(end_to_end_note("", notified_rates));
    report.notes.extend(wrk_notes);
    report
        .notes
        .push(format!("one instance's mail: {}", single_mail.line()));
    report
        .notes
        .push(format!("two instances' mail: {}", two_mail.line()));
    if let Some(rate) = two_mail.mails_per_second {
        report.notes.push(format!(
            "two instances delivered {rate:.0} mails/s together, {:.0} per instance \
             (target >= {MAILS_PER_SECOND_TARGET:.0} per instance: {})",
            rate / 2.0,
            if rate / 2.0 >= MAILS_PER_SECOND_TARGET {
                "met"
            } else {
                "NOT met"
            }
        ));
    }
    report.notes.push(format!(
        "cases table: {cases_after} rows, {distinct_numbers} distinct numbers, grew by {grew} \
         for {filed_total} cases filed"
    ));
    report.notes.push(if checks_passed {
        "checks PASS: no request failed, case numbers unique, every mail sent exactly once \
         (each phase)"
            .to_owned()
    } else {
        format!(
            "checks FAIL: {request_errors} request(s) failed; {}",
            all_violations.join("; ")
        )
    });
    report.notes.push(
        "the two-instance rows' srv CPU is both instances together; peak RSS is the first \
         instance's"
            .to_owned(),
    );
    if second_log_lines > 0 {
        report.notes.push(format!(
            "the second instance logged {second_log_lines} line(s) at warn or above:{}",
            second_log.replace('\n', " |")
        ));
    }
    Ok(report)
}

/// One instance's and two instances' cases filed and notified per second
/// (`MailCheck::filed_and_notified_per_second`), compared.
fn end_to_end_note(source: &str, (one, two): (Option<f64>, Option<f64>)) -> String {
    let source = if source.is_empty() {
        String::new()
    } else {
        format!(" {source}")
    };
    match (one, two) {
        (Some(one), Some(two)) => format!(
            "cases filed and notified{source} (to the last mail after the filing): one \
             instance {one:.1} cases/s, two instances {two:.1} cases/s: two >= one {}",
            if two >= one { "met" } else { "NOT met" }
        ),
        _ => format!("cases filed and notified{source}: not measured (mail missing)"),
    }
}

/// `phase`'s CPU per case filed at `rate`, in µs, per party, and the cores
/// left idle: what the comparison of one instance with two rests on.
fn cpu_per_case(phase: &PhaseResult, rate: f64) -> String {
    cores_per_case(
        &CpuCores {
            server: phase.server_cpu_cores,
            loadgen: phase.loadgen_cpu_cores,
            database: phase.database_cpu_cores,
            other: phase.other_cpu_cores,
        },
        rate,
    )
}

fn cores_per_case(busy: &CpuCores, rate: f64) -> String {
    let micros = |cores: f64| {
        if rate > 0.0 { cores * 1e6 / rate } else { 0.0 }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let all = busy.server + busy.loadgen + busy.database + busy.other;
    format!(
        "server {:.0} µs, database {:.0} µs, load generator {:.0} µs, {:.0} % of the cores idle",
        micros(busy.server),
        micros(busy.database),
        micros(busy.loadgen),
        ((cores - all) / cores * 100.0).max(0.0)
    )
}
