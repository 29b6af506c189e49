//! Mail delivery: the outbox worker and its transports (SMTP via lettre, or
//! `.eml` files when no SMTP server is configured).

pub mod claim_floor;
pub mod fan_out;
pub mod lease;
pub mod notify;
pub mod reminders;
pub mod retry;
pub mod smtp;
pub mod templates;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use rand::Rng;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Config;
use crate::db::outbox::{self, OutboxRow, Settlement};
use crate::db::{Database, DbError};
use claim_floor::ClaimFloor;
use lease::Lease;
use notify::Notifier;
use smtp::{Relay, SmtpSender};

pub enum Transport {
    /// Boxed: it holds the kept connection, over a kilobyte.
    Smtp(Box<SmtpSender>),
    /// One `<message-id>.eml` per mail; re-delivery overwrites the same file.
    Files(PathBuf),
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        match &config.smtp_url {
            Some(url) => {
                let sender = Relay::parse(url)
                    .and_then(|relay| SmtpSender::new(relay, config.smtp_timeout))
                    .map_err(|e| anyhow::anyhow!("MEDESK_SMTP_URL: {e}"))?;
                Ok(Transport::Smtp(Box::new(sender)))
            }
            None => Ok(Transport::Files(config.mail_dir.clone())),
        }
    }

    /// The most one delivery takes: SMTP's bound. A file is written on the
    /// local disk, unbounded, in milliseconds (the lease's margin covers it).
    fn delivery_bound(&self) -> Duration {
        match self {
            Transport::Smtp(smtp) => smtp.bound(),
            Transport::Files(_) => Duration::ZERO,
        }
    }

    /// Ends an SMTP session politely at shutdown.
    async fn close(&self) {
        if let Transport::Smtp(smtp) = self {
            smtp.close().await;
        }
    }

    async fn deliver(&self, message: Message, message_id: &str) -> Result<(), DeliveryError> {
        match self {
            Transport::Smtp(smtp) => smtp.send(&message).await,
            Transport::Files(dir) => {
                let dir = dir.clone();
                let name: String = message_id
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
                    .collect();
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || write_eml(&dir, &name, &bytes))
                    .await
                    .map_err(|e| DeliveryError::transient(e.to_string()))?
                    .map_err(|e| DeliveryError::transient(e.to_string()))
            }
        }
    }
}

/// Why a delivery failed, and whether trying again could help.
#[derive(Debug)]
pub struct DeliveryError {
    pub message: String,
    pub permanent: bool,
}

impl DeliveryError {
    fn transient(message: String) -> Self {
        Self {
            message,
            permanent: false,
        }
    }
}

impl From<lettre::transport::smtp::Error> for DeliveryError {
    fn from(error: lettre::transport::smtp::Error) -> Self {
        Self {
            // A 5xx answer (unknown mailbox, refused sender) will not change
            // by retrying.
            permanent: error.is_permanent(),
            message: error.to_string(),
        }
    }
}

/// Write-then-rename so a reader never sees half a mail.
fn write_eml(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let partial = dir.join(format!(".{name}.partial"));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, dir.join(format!("{name}.eml")))
}

/// The iTIP method the calendar document declares (`REQUEST` when none):
/// the attachment's content type must say the same (RFC 6047).
fn calendar_method(ics: &str) -> &str {
    ics.lines()
        .find_map(|line| line.strip_prefix("METHOD:"))
        .map(str::trim)
        .filter(|method| method.chars().all(|c| c.is_ascii_alphabetic()) && !method.is_empty())
        .unwrap_or("REQUEST")
}

pub fn build_message(row: &OutboxRow, from: &Mailbox) -> Result<Message, String> {
    let mut builder = Message::builder()
        .message_id(Some(row.message_id.clone()))
        .from(from.clone())
        .subject(row.subject.clone());
    for address in outbox::recipients(&row.recipient) {
        let to: Mailbox = address
            .parse()
            .map_err(|e| format!("bad recipient {address}: {e}"))?;
        builder = builder.to(to);
    }
    let html = match (&row.body_html, &row.locale) {
        (Some(stored), _) => Some(stored.clone()),
        (None, Some(locale)) => Some(templates::html_alternative(
            crate::db::StoredCodes::new("outbox", row.id)
                .parse("locale", locale)
                .map_err(|e| e.to_string())?,
            &row.subject,
            &row.body_text,
            row.link.as_deref(),
        )),
        (None, None) => None,
    };
    let body = match html {
        Some(html) => MultiPart::alternative_plain_html(row.body_text.clone(), html),
        None => MultiPart::alternative().singlepart(SinglePart::plain(row.body_text.clone())),
    };
    let body = match &row.calendar {
        Some(ics) => MultiPart::mixed().multipart(body).singlepart(
            Attachment::new("invite.ics".to_owned()).body(
                ics.clone(),
                ContentType::parse(&format!(
                    "text/calendar; charset=utf-8; method={}",
                    calendar_method(ics)
                ))
                .map_err(|e| e.to_string())?,
            ),
        ),
        None => body,
    };
    builder.multipart(body).map_err(|e| e.to_string())
}

/// Wakes the worker when a mail was queued, so it need not wait for its tick.
#[derive(Clone, Default)]
pub struct MailSignal(Arc<Notify>);

impl MailSignal {
    pub fn queued(&self) {
        self.0.notify_one();
    }
}

/// Rows a round claims while requests are under way: between small rounds
/// the cores go to the requests.
const BATCH_BESIDE_REQUESTS: i64 = 20;
/// Rows a round claims when no request is under way: a third less CPU per
/// mail than rounds of 20, and a backlog drained twice as fast (issue 19's
/// twenty-fourth round).
const BATCH_WHEN_IDLE: i64 = 128;

/// While requests are under way the worker rests this many times as long
/// as its last round took, so that its work, and the database's for it,
/// takes at most a third of the time: the niceness of its thread does not
/// reach the PostgreSQL backends (or SQLite's writer) that run its
/// statements. Under a full intake this raised the intake by 1–16 % on one
/// instance and 8–46 % on two, and the cases filed and notified per
/// second did not fall (issue 19, twenty-sixth round).
const REST_PER_ROUND_BESIDE_REQUESTS: u32 = 2;
/// The longest rest: a round slowed by a slow mail server must not stop
/// the mail for long.
const LONGEST_REST: Duration = Duration::from_millis(250);

/// How long the worker rests before its next round, given the requests
/// under way when its last round ended and how long that round took; None
/// when no request is under way (then it goes on at once).
pub fn rest_after_round(requests_in_flight: usize, round_took: Duration) -> Option<Duration> {
    (requests_in_flight > 0)
        .then(|| (round_took * REST_PER_ROUND_BESIDE_REQUESTS).min(LONGEST_REST))
}

/// How many outbox rows the next round claims, given the HTTP requests
/// under way (`crate::busy`).
pub fn claim_size(requests_in_flight: usize) -> i64 {
    if requests_in_flight == 0 {
        BATCH_WHEN_IDLE
    } else {
        BATCH_BESIDE_REQUESTS
    }
}

/// Delivers due outbox rows until `shutdown` turns true; a delivery under
/// way is finished first, so a clean stop never leaves a sent mail unmarked.
/// Rows are due by `clock`, which gathered message notices wait for.
pub fn spawn_worker(
    db: Database,
    worker: Worker,
    signal: MailSignal,
    clock: Clock,
    requests: crate::busy::RequestsInFlight,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let rounds = async move {
        let lease = Lease::covering(worker.transport.delivery_bound());
        let mut floor = ClaimFloor::default();
        while !*shutdown.borrow() {
            let limit = claim_size(requests.now());
            let started = tokio::time::Instant::now();
            match deliver_due(&db, &worker, lease, &clock, &mut floor, limit).await {
                Ok(round) if round.more_may_be_waiting() => {
                    if let Some(rest) = rest_after_round(requests.now(), started.elapsed()) {
                        tokio::select! {
                            changed = shutdown.changed() => if changed.is_err() { break },
                            _ = tokio::time::sleep(rest) => {}
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "outbox worker"),
            }
            tokio::select! {
                _ = signal.0.notified() => {}
                // The server dropped without a stop (a test that ended):
                // nothing will say stop, so stop now.
                changed = shutdown.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        worker.transport.close().await;
    };
    // Its own thread and runtime, so that mail gives way to the requests:
    // on a saturated machine the worker's rounds took CPU from the intake
    // (issue 19, twenty-fifth round). The runtime's blocking threads, where
    // its database work runs, start from that thread and inherit its
    // niceness.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("mail-worker-blocking")
        // A round waits on at most a claim, its deliveries and one settling
        // write at a time. Uncapped, the pool grew past 70 threads and
        // 140 MiB on PostgreSQL with mail to files (issue 19's
        // twenty-eighth round): its threads, niced and preempted between
        // finishing a task and counting themselves idle, looked busy, and
        // the runtime started new ones.
        .max_blocking_threads(MAIL_BLOCKING_THREADS)
        .build()?;
    let (finished, worker_done) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("mail-worker".into())
        .spawn(move || {
            crate::busy::give_way(crate::busy::GiveWay::Mostly);
            runtime.block_on(rounds);
            let _ = finished.send(());
        })?;
    Ok(tokio::spawn(async move {
        let _ = worker_done.await;
    }))
}

/// Blocking threads of the mail worker's runtime (its database work and
/// `.eml` files): the most one round uses at once, and a spare.
const MAIL_BLOCKING_THREADS: usize = smtp::PARALLEL_DELIVERIES + 3;

/// What the outbox worker sends with, and renders the mails of events with.
pub struct Worker {
    pub transport: Transport,
    pub from: Mailbox,
    pub notifier: Notifier,
}

/// What one round of the worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Outbox rows claimed: mails and events.
    pub claimed: usize,
    /// Events replaced by their mails, which are due now.
    pub fanned_out: usize,
    /// The most rows the round could claim.
    pub limit: i64,
}

impl Round {
    fn more_may_be_waiting(self) -> bool {
        self.claimed as i64 == self.limit || self.fanned_out > 0
    }
}

/// One round: claim up to `limit` rows from `floor`; replace the claimed
/// events with their mails; send the claimed mails and settle them.
pub async fn deliver_due(
    db: &Database,
    worker: &Worker,
    lease: Lease,
    clock: &Clock,
    floor: &mut ClaimFloor,
    limit: i64,
) -> Result<Round, DbError> {
    let now = clock.now_micros();
    let due_from = floor.start(now);
    let claimed = db
        .write(move |conn| outbox::claim_due(conn, now, lease.micros, limit, due_from))
        .await?;
    floor.found(claimed.iter().map(|row| row.next_attempt_at).min());
    let count = claimed.len();
    let (events, mails): (Vec<_>, Vec<_>) = claimed
        .into_iter()
        .partition(|row| outbox::is_event(&row.kind));
    // A failed fan-out leaves its events claimed until the lease runs out;
    // the round's mails go all the same.
    let mut first_error = None;
    let fanned_out = fan_out::fan_out(db, &worker.notifier, events, clock.now_micros())
        .await
        .unwrap_or_else(|error| {
            first_error = Some(error);
            0
        });
    let mut settling = Settling::default();
    let mut deliveries = futures_util::stream::iter(
        mails
            .into_iter()
            .map(|row| deliver_claimed(db, &worker.transport, &worker.from, lease, clock, row)),
    )
    // Files too: each is written on a blocking thread of its own.
    .buffer_unordered(smtp::PARALLEL_DELIVERIES);
    // An error ends no other delivery: one cut off mid-exchange could have
    // been sent and never be marked.
    while let Some(delivered) = deliveries.next().await {
        match delivered {
            Ok(Some(settlement)) => settling.push(db, clock, settlement),
            // The claim was lost to another instance, which delivers it.
            Ok(None) => {}
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    settling.finish(db, clock).await?;
    first_error.map_or(
        Ok(Round {
            claimed: count,
            fanned_out,
            limit,
        }),
        Err,
    )
}

/// Delivers one claimed mail; its outcome to settle, or None when the claim
/// could not be renewed (another instance took the mail).
async fn deliver_claimed(
    db: &Database,
    transport: &Transport,
    from: &Mailbox,
    lease: Lease,
    clock: &Clock,
    row: OutboxRow,
) -> Result<Option<Settlement>, DbError> {
    let id = row.id;
    let mut held = row.locked_until.unwrap_or_default();
    // The claim must outlast this delivery, or another instance could
    // take (and send) the same mail meanwhile.
    if held - clock.now_micros() < lease.renew_below_micros {
        let until = clock.now_micros() + lease.micros;
        if !db
            .write(move |conn| outbox::renew_claim(conn, id, held, until))
            .await?
        {
            return Ok(None);
        }
        held = until;
    }
    let result = match build_message(&row, from) {
        Ok(message) => transport.deliver(message, &row.message_id).await,
        Err(e) => Err(DeliveryError {
            message: e,
            permanent: true,
        }),
    };
    Ok(Some(match result {
        Ok(()) => {
            tracing::info!(outbox_id = id, kind = %row.kind, "mail sent");
            Settlement::Sent { id, held }
        }
        Err(error) => {
            let jitter: f64 = rand::thread_rng().r#gen();
            let retry_at = (!error.permanent)
                .then(|| retry::next_delay_micros(row.attempts, jitter))
                .flatten()
                .map(|delay| clock.now_micros() + delay);
            tracing::warn!(
                outbox_id = id,
                attempts = row.attempts,
                permanent = error.permanent,
                error = %error.message,
                "mail not sent"
            );
            Settlement::Failed {
                id,
                held,
                error: error.message,
                retry_at,
            }
        }
    }))
}

/// The outcomes of a round's deliveries on their way to the outbox.
///
/// An outcome is written as soon as the write before it has committed: the
/// first at once, and those that arrive while a write is under way together
/// in the next one (group commit). So the time in which a crash could leave
/// a sent mail unmarked (and so send it again) stays about one commit, as
/// with a write per mail, while a round of 20 mails takes a few commits
/// instead of 20 (on PostgreSQL each was a transaction with its own fsync).
#[derive(Default)]
struct Settling {
    queue: Arc<std::sync::Mutex<SettleQueue>>,
    writers: Vec<tokio::task::JoinHandle<Result<(), DbError>>>,
}

#[derive(Default)]
struct SettleQueue {
    waiting: Vec<Settlement>,
    /// A writer is running and will take what waits before it stops.
    writing: bool,
}

impl Settling {
    fn push(&mut self, db: &Database, clock: &Clock, settlement: Settlement) {
        let start_writer = {
            let mut queue = lock(&self.queue);
            queue.waiting.push(settlement);
            !std::mem::replace(&mut queue.writing, true)
        };
        if start_writer {
            self.writers.push(tokio::spawn(write_settlements(
                self.queue.clone(),
                db.clone(),
                clock.clone(),
            )));
        }
    }

    /// Waits until every outcome is written; the first failed write's error.
    async fn finish(self, db: &Database, clock: &Clock) -> Result<(), DbError> {
        let mut first_error = None;
        for writer in self.writers {
            if let Err(error) = writer.await.map_err(DbError::from).and_then(|r| r) {
                first_error.get_or_insert(error);
            }
        }
        // What arrived while a write was failing, which no writer took:
        // every writer has stopped, so one more takes it here.
        if let Err(error) = write_settlements(self.queue, db.clone(), clock.clone()).await {
            first_error.get_or_insert(error);
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The queue's outcomes after a panic elsewhere held the lock (each update
/// is one push or one take, so it stays consistent).
fn lock(queue: &std::sync::Mutex<SettleQueue>) -> std::sync::MutexGuard<'_, SettleQueue> {
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes what waits in `queue`, one transaction per batch, until it is
/// empty. A failed write leaves its mails claimed: their lease runs out and
/// they are tried again, as when the mail worker stops mid-round.
async fn write_settlements(
    queue: Arc<std::sync::Mutex<SettleQueue>>,
    db: Database,
    clock: Clock,
) -> Result<(), DbError> {
    loop {
        let batch = {
            let mut queue = lock(&queue);
            if queue.waiting.is_empty() {
                queue.writing = false;
                return Ok(());
            }
            std::mem::take(&mut queue.waiting)
        };
        let clock = clock.clone();
        let written = db
            .write(move |conn| outbox::settle(conn, &batch, clock.now_micros()))
            .await;
        if let Err(error) = written {
            lock(&queue).writing = false;
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_claims_more_only_when_no_request_is_under_way() {
        assert_eq!(claim_size(0), 128);
        for requests in [1, 2, 32, usize::MAX] {
            assert_eq!(claim_size(requests), 20, "{requests}");
        }
    }

    #[test]
    fn the_worker_rests_twice_its_round_only_beside_requests_and_never_long() {
        let ms = Duration::from_millis;
        assert_eq!(rest_after_round(0, ms(40)), None, "idle: no rest");
        assert_eq!(rest_after_round(1, ms(3)), Some(ms(6)));
        assert_eq!(rest_after_round(32, ms(40)), Some(ms(80)));
        assert_eq!(
            rest_after_round(5, Duration::from_secs(30)),
            Some(LONGEST_REST),
            "a round slowed by the mail server"
        );
    }

    #[test]
    fn a_full_round_or_a_fan_out_means_more_may_be_waiting() {
        let round = |claimed, fanned_out| Round {
            claimed,
            fanned_out,
            limit: 20,
        };
        assert!(round(20, 0).more_may_be_waiting());
        assert!(round(3, 2).more_may_be_waiting());
        assert!(!round(19, 0).more_may_be_waiting());
    }

    fn queued(body_html: Option<&str>, locale: Option<&str>) -> OutboxRow {
        OutboxRow {
            id: 1,
            message_id: "<m1@medesk>".into(),
            kind: "case_submitted_applicant".into(),
            case_id: Some(1),
            recipient: "a@example.com".into(),
            subject: "[MD-2026-00001] Received".into(),
            body_text: "Hello\n\nhttp://desk/cases/1\n".into(),
            body_html: body_html.map(str::to_owned),
            calendar: None,
            state: "pending".into(),
            attempts: 0,
            next_attempt_at: 0,
            locked_until: None,
            last_error: None,
            created_at: 0,
            sent_at: None,
            locale: locale.map(str::to_owned),
            link: Some("http://desk/cases/1".into()),
        }
    }

    fn sent(row: &OutboxRow) -> String {
        let from: Mailbox = "desk@example.com".parse().unwrap();
        String::from_utf8(build_message(row, &from).unwrap().formatted()).unwrap()
    }

    #[test]
    fn the_html_alternative_is_rendered_at_delivery_in_the_mails_language() {
        let mail = sent(&queued(None, Some("ja")));
        assert!(mail.contains("text/plain"));
        assert!(mail.contains("text/html"));
        assert!(mail.contains("lang=3D\"ja\"") || mail.contains("lang=\"ja\""));
        assert!(mail.contains("&#x2f;&#x2f;desk&#x2f;cases&#x2f;1"));
    }

    #[test]
    fn mails_queued_with_stored_html_send_it_and_mails_without_send_plain_text() {
        let stored = sent(&queued(Some("<p>stored before</p>"), Some("en")));
        assert!(stored.contains("<p>stored before</p>"));
        let plain = sent(&queued(None, None));
        assert!(plain.contains("text/plain"));
        assert!(!plain.contains("text/html"));
    }
}
