//! The `booking-storm` scenario (issue 18): many applicants, each of its
//! own organisation, race for the few seats of the next Open Hours slots,
//! every client booking slot after slot in the same order, all starting at
//! once. It reports the bookings made per second (201), the refusals (409
//! `slot_full` and 409 already booked, apart), any other answer, and the
//! latency; then it reads every slot back and checks that none ended above
//! its capacity, that `booked + available = capacity`, that each slot's
//! seats taken equal the 201s it gave, and that no seat was left free while
//! someone was told the slot was full. A failed check prints FAIL and counts
//! as failed requests, so the run exits non-zero.
//!
//! Before the timed phase (unmeasured): the applicants are registered (by the
//! driver) and signed in, an admin gives the chosen slots `--storm-capacity`
//! seats (`PUT /api/v1/open-hours/slots/{id}`; where that endpoint is
//! missing the slots keep their weekday's capacity). After the check, the
//! storm's bookings are cancelled by the admin: that frees the slots for
//! the next run and takes back the reminders they queued for the business
//! day before (mail due later, which the driver's wait for the outbox would
//! otherwise wait for).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, anyhow, ensure};
use futures_util::{StreamExt as _, stream};
use hdrhistogram::Histogram;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::report::{LatencyMs, PhaseResult, ScenarioReport, round3};
use crate::runner::{Bench, http_client};
use crate::sampling::{CpuCores, CpuTimes};

/// Slots starting sooner than this are not raced for: the run must end
/// before they start (a started slot is refused with 422).
const LEAD_TIME: chrono::Duration = chrono::Duration::hours(1);
/// Concurrent unmeasured requests (sign-in, capacity, cancelling).
const SETUP_CONCURRENCY: usize = 4;

/// A slot of the storm, as chosen and then as read back.
#[derive(Debug, Clone)]
struct StormSlot {
    /// Opaque: echoed back as the API gave it.
    id: Value,
    starts_at: String,
    capacity: i64,
}

/// What one answer to a booking was.
enum Answer {
    Booked(Value),
    SlotFull,
    AlreadyBooked,
    Other(String),
}

/// One client's (then the merged) count.
struct Tally {
    /// Every answered booking request (201 and 409 alike).
    answered_us: Histogram<u64>,
    /// The 201s only.
    booked_us: Histogram<u64>,
    /// Per slot (index into the storm's slots): 201s.
    booked_per_slot: Vec<u64>,
    slot_full: u64,
    already_booked: u64,
    /// Other answers and transport errors, by description.
    other: BTreeMap<String, u64>,
    /// The bookings made (their ids), to cancel afterwards.
    bookings: Vec<Value>,
}

impl Tally {
    fn new(slots: usize) -> Self {
        let histogram =
            || Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds");
        Self {
            answered_us: histogram(),
            booked_us: histogram(),
            booked_per_slot: vec![0; slots],
            slot_full: 0,
            already_booked: 0,
            other: BTreeMap::new(),
            bookings: Vec::new(),
        }
    }

    fn merge(&mut self, other: Tally) {
        self.answered_us
            .add(&other.answered_us)
            .expect("same bounds");
        self.booked_us.add(&other.booked_us).expect("same bounds");
        for (mine, theirs) in self.booked_per_slot.iter_mut().zip(other.booked_per_slot) {
            *mine += theirs;
        }
        self.slot_full += other.slot_full;
        self.already_booked += other.already_booked;
        for (kind, n) in other.other {
            *self.other.entry(kind).or_default() += n;
        }
        self.bookings.extend(other.bookings);
    }

    fn booked(&self) -> u64 {
        self.booked_us.len()
    }

    fn others(&self) -> u64 {
        self.other.values().sum()
    }
}

fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The answer to `method path` as JSON, insisting on `expected`.
async fn call(
    request: reqwest::RequestBuilder,
    expected: StatusCode,
    what: &str,
) -> anyhow::Result<Value> {
    let response = request.send().await.with_context(|| what.to_owned())?;
    let status = response.status();
    let text = response.text().await.with_context(|| what.to_owned())?;
    ensure!(
        status == expected,
        "{what}: HTTP {status}: {}",
        text.chars().take(300).collect::<String>()
    );
    serde_json::from_str(&text).with_context(|| format!("{what}: the answer is not JSON"))
}

/// The slots as listed (today to the booking horizon).
async fn list_slots(
    http: &reqwest::Client,
    base_url: &str,
    token: &str,
) -> anyhow::Result<Vec<Value>> {
    let listing = call(
        http.get(format!("{base_url}/api/v1/open-hours/slots"))
            .bearer_auth(token),
        StatusCode::OK,
        "listing the Open Hours slots",
    )
    .await?;
    listing["items"]
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow!("the slot listing has no items: {listing}"))
}

/// Books `slot` as the applicant `token`.
async fn book(http: &reqwest::Client, base_url: &str, token: &str, slot: &StormSlot) -> Answer {
    let body = json!({
        "slot_id": slot.id,
        "topic": "資金調達の進め方について短く相談したい",
        "categories": ["fundraising", "business_plan"],
        "language": "ja",
    });
    let response = match http
        .post(format!("{base_url}/api/v1/open-hours/bookings"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => return Answer::Other(format!("transport: {error}")),
    };
    let status = response.status();
    let text = match response.text().await {
        Ok(text) => text,
        Err(error) => return Answer::Other(format!("reading body: {error}")),
    };
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    match status {
        StatusCode::CREATED => Answer::Booked(json["id"].clone()),
        StatusCode::CONFLICT
            if json["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("slot_full")) =>
        {
            Answer::SlotFull
        }
        StatusCode::CONFLICT => Answer::AlreadyBooked,
        other => Answer::Other(format!(
            "HTTP {other}: {}",
            text.chars().take(160).collect::<String>()
        )),
    }
}

/// One client: waits for every other, then books each slot in turn.
async fn client(
    base_url: Arc<str>,
    token: String,
    slots: Arc<Vec<StormSlot>>,
    start: Arc<Barrier>,
) -> anyhow::Result<Tally> {
    let http = http_client()?;
    let mut tally = Tally::new(slots.len());
    start.wait().await;
    for (i, slot) in slots.iter().enumerate() {
        let began = Instant::now();
        let answer = book(&http, &base_url, &token, slot).await;
        let took = u64::try_from(began.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        match answer {
            Answer::Booked(id) => {
                tally.answered_us.saturating_record(took);
                tally.booked_us.saturating_record(took);
                tally.booked_per_slot[i] += 1;
                tally.bookings.push(id);
            }
            Answer::SlotFull => {
                tally.answered_us.saturating_record(took);
                tally.slot_full += 1;
            }
            Answer::AlreadyBooked => {
                tally.answered_us.saturating_record(took);
                tally.already_booked += 1;
            }
            Answer::Other(kind) => *tally.other.entry(kind).or_default() += 1,
        }
    }
    Ok(tally)
}

/// What the slots read back after the storm broke.
fn check(slots: &[StormSlot], listed: &[Value], tally: &Tally, clients: usize) -> Vec<String> {
    let mut violations = Vec::new();
    let mut booked_sum = 0;
    for (i, slot) in slots.iter().enumerate() {
        let Some(now) = listed.iter().find(|s| s["id"] == slot.id) else {
            violations.push(format!("slot {} is no longer listed", slot.starts_at));
            continue;
        };
        let number = |field: &str| now[field].as_i64().unwrap_or(-1);
        let (capacity, booked, available) =
            (number("capacity"), number("booked"), number("available"));
        booked_sum += booked.max(0);
        if booked > capacity {
            violations.push(format!(
                "slot {}: {booked} booked > capacity {capacity}",
                slot.starts_at
            ));
        }
        if booked + available != capacity {
            violations.push(format!(
                "slot {}: booked {booked} + available {available} != capacity {capacity}",
                slot.starts_at
            ));
        }
        if booked != tally.booked_per_slot[i] as i64 {
            violations.push(format!(
                "slot {}: {booked} booked but {} answered 201",
                slot.starts_at, tally.booked_per_slot[i]
            ));
        }
        // Every client asked for every slot: unless a request failed, a slot
        // that said "full" to someone must be full.
        if tally.others() == 0 && clients as i64 >= capacity && booked < capacity {
            violations.push(format!(
                "slot {}: {booked} of {capacity} seats taken although {clients} clients asked",
                slot.starts_at
            ));
        }
    }
    if booked_sum != tally.booked() as i64 {
        violations.push(format!(
            "{} answers 201 but the slots hold {booked_sum} bookings",
            tally.booked()
        ));
    }
    if tally.already_booked > 0 {
        violations.push(format!(
            "{} answers 409 already booked: each organisation asked once per slot",
            tally.already_booked
        ));
    }
    violations
}

pub async fn booking_storm_scenario(bench: &Bench) -> anyhow::Result<ScenarioReport> {
    let settings = &bench.settings;
    let base_url: Arc<str> = Arc::from(bench.ctx.base_url.as_str());
    let http = http_client()?;
    let admin = bench.admin_token().to_owned();

    // Is Open Hours there at all?
    let probe = http
        .get(format!("{base_url}/api/v1/open-hours/slots"))
        .bearer_auth(&admin)
        .send()
        .await
        .context("probing /api/v1/open-hours/slots")?;
    let probe_status = probe.status();
    let _ = probe.bytes().await;
    if matches!(
        probe_status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
    ) {
        let mut report = ScenarioReport::new(Vec::new());
        report.summary.insert("available".to_owned(), json!(false));
        report.notes.push(format!(
            "unavailable: GET /api/v1/open-hours/slots answered {probe_status} (not built yet?); skipped"
        ));
        return Ok(report);
    }

    // The next open slots nobody booked yet, far enough ahead.
    let earliest = chrono::Utc::now() + LEAD_TIME;
    let mut slots: Vec<StormSlot> = list_slots(&http, &base_url, &admin)
        .await?
        .into_iter()
        .filter(|s| s["closed"] == false && s["booked"].as_i64() == Some(0))
        .filter(|s| {
            s["starts_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t > earliest)
        })
        .take(settings.storm_slots)
        .map(|s| StormSlot {
            id: s["id"].clone(),
            starts_at: s["starts_at"].as_str().unwrap_or_default().to_owned(),
            capacity: s["capacity"].as_i64().unwrap_or(0),
        })
        .collect();
    ensure!(
        !slots.is_empty(),
        "booking-storm: no open, unbooked slot starts after {earliest}"
    );

    // The admin gives them --storm-capacity seats, where the API allows it.
    let mut capacity_note = format!(
        "an admin set capacity {} on each (PUT /api/v1/open-hours/slots/{{id}})",
        settings.storm_capacity
    );
    for slot in &mut slots {
        let response = http
            .put(format!(
                "{base_url}/api/v1/open-hours/slots/{}",
                id_text(&slot.id)
            ))
            .bearer_auth(&admin)
            .json(&json!({"capacity": settings.storm_capacity}))
            .send()
            .await
            .context("setting a slot's capacity")?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        match status {
            StatusCode::OK => {
                let changed: Value =
                    serde_json::from_str(&text).context("the changed slot is not JSON")?;
                slot.capacity = changed["capacity"].as_i64().unwrap_or(slot.capacity);
            }
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
                capacity_note = format!(
                    "PUT /api/v1/open-hours/slots/{{id}} answered {status}: the slots keep \
                     their weekday's capacity"
                );
                break;
            }
            other => anyhow::bail!(
                "setting a slot's capacity: HTTP {other}: {}",
                text.chars().take(300).collect::<String>()
            ),
        }
    }
    let seats: i64 = slots.iter().map(|s| s.capacity).sum();

    // Every applicant signs in before the storm.
    let clients = settings.storm_clients;
    let accounts = &bench.ctx.users;
    ensure!(
        accounts.len() >= clients,
        "booking-storm: {} applicants seeded, {clients} needed",
        accounts.len()
    );
    let api = &bench.api;
    let tokens: Vec<String> = stream::iter(accounts[..clients].to_vec())
        .map(|account| async move { api.login(&account).await })
        .buffered(SETUP_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;

    // The storm.
    let shared_slots = Arc::new(slots.clone());
    let start = Arc::new(Barrier::new(clients + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens {
        tasks.spawn(client(
            base_url.clone(),
            token,
            shared_slots.clone(),
            start.clone(),
        ));
    }
    start.wait().await;
    let cpu_before = CpuTimes::now(&[bench.server_pid], settings.backend);
    let started = Instant::now();
    let mut tally = Tally::new(slots.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(client)) => tally.merge(client),
            Ok(Err(error)) => *tally.other.entry(format!("client: {error:#}")).or_default() += 1,
            Err(error) => {
                *tally
                    .other
                    .entry(format!("client task: {error}"))
                    .or_default() += 1
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = CpuCores::between(
        &cpu_before,
        &CpuTimes::now(&[bench.server_pid], settings.backend),
        seconds,
    );

    // Read back and check.
    let listed = list_slots(&http, &base_url, &admin).await?;
    let violations = check(&slots, &listed, &tally, clients);
    let passed = violations.is_empty();
    eprintln!(
        "load: booking-storm: capacity check {}{}",
        if passed { "PASS" } else { "FAIL" },
        violations
            .iter()
            .map(|v| format!("\n  {v}"))
            .collect::<String>()
    );

    // Clean up: the admin cancels the storm's bookings (frees the seats,
    // takes back the reminders queued for later).
    let cancelled = stream::iter(tally.bookings.iter().map(id_text).collect::<Vec<_>>())
        .map(|id| {
            let request = http
                .post(format!("{base_url}/api/v1/open-hours/bookings/{id}/cancel"))
                .bearer_auth(&admin)
                .json(&json!({}));
            call(request, StatusCode::OK, "cancelling a storm booking")
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let not_cancelled: Vec<String> = cancelled
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();

    let requests = tally.answered_us.len() + tally.others();
    let mut errors_by_kind = tally.other.clone();
    for violation in &violations {
        errors_by_kind.insert(format!("capacity check: {violation}"), 1);
    }
    let errors = tally.others() + violations.len() as u64;
    let phase = PhaseResult {
        errors_by_kind,
        ..PhaseResult::measured(
            "POST /api/v1/open-hours/bookings (storm)".to_owned(),
            crate::report::OWN_CLIENT,
            clients,
            seconds,
            requests,
            errors,
            LatencyMs::of(&tally.answered_us),
            &cpu,
        )
    };
    let booked_latency = LatencyMs::of(&tally.booked_us);
    let bookings_per_second = tally.booked() as f64 / seconds;
    let mut report = ScenarioReport::new(vec![phase]);
    report.summary = BTreeMap::from([
        ("available".to_owned(), json!(true)),
        ("slots".to_owned(), json!(slots.len())),
        ("seats".to_owned(), json!(seats)),
        ("booked_201".to_owned(), json!(tally.booked())),
        (
            "bookings_per_second".to_owned(),
            json!(round3(bookings_per_second)),
        ),
        ("slot_full_409".to_owned(), json!(tally.slot_full)),
        ("already_booked_409".to_owned(), json!(tally.already_booked)),
        ("other_answers".to_owned(), json!(tally.other)),
        ("booked_latency_ms".to_owned(), json!(booked_latency)),
        (
            "capacity_check".to_owned(),
            json!(if passed { "PASS" } else { "FAIL" }),
        ),
        ("violations".to_owned(), json!(violations)),
    ]);
    report.notes.push(format!(
        "{clients} applicants (one organisation each) raced for {seats} seats of {} slots \
         ({capacity_note}), each client booking every slot in turn, all starting at once",
        slots.len()
    ));
    report.notes.push(format!(
        "{} x 201 ({bookings_per_second:.1} bookings/s; p50 {:.1} ms, p99 {:.1} ms), \
         {} x 409 slot_full, {} x 409 already booked, {} other; latency over every answer: \
         p50 {:.1} ms, p99 {:.1} ms",
        tally.booked(),
        booked_latency.p50,
        booked_latency.p99,
        tally.slot_full,
        tally.already_booked,
        tally.others(),
        LatencyMs::of(&tally.answered_us).p50,
        LatencyMs::of(&tally.answered_us).p99,
    ));
    report.notes.push(if passed {
        "capacity check PASS: no slot above its capacity, booked + available = capacity, \
         each slot's seats = its 201s, no seat left free"
            .to_owned()
    } else {
        format!("capacity check FAIL: {}", violations.join("; "))
    });
    if !not_cancelled.is_empty() {
        report.notes.push(format!(
            "{} storm bookings could not be cancelled afterwards (first: {})",
            not_cancelled.len(),
            not_cancelled[0]
        ));
    }
    Ok(report)
}
