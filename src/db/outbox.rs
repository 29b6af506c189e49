//! The mail outbox. Rows are written inside the transaction of the change
//! that causes the mail, then claimed and delivered by the worker.

use diesel::prelude::*;

use super::schema::outbox;
use super::{AnyConnection, DbResult};

/// Where a mail stands: `pending` until it is sent or given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailState {
    /// Waiting for its (next) attempt.
    Pending,
    Sent,
    /// Given up after its attempts; an operator may retry it.
    Failed,
}

impl MailState {
    pub const ALL: [MailState; 3] = [MailState::Pending, MailState::Sent, MailState::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            MailState::Pending => "pending",
            MailState::Sent => "sent",
            MailState::Failed => "failed",
        }
    }
}

impl std::str::FromStr for MailState {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MailState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or("must be pending, sent or failed")
    }
}

/// A rendered mail, ready to be queued. Its HTML alternative is rendered
/// from subject, text, locale and link when it is sent.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub kind: &'static str,
    pub case_id: Option<i64>,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    /// `ja` or `en`: the language of the HTML page.
    pub locale: &'static str,
    /// The line of the text that the HTML makes a link.
    pub link: Option<String>,
    /// An iCalendar document to attach.
    pub calendar: Option<String>,
}

/// Most addresses one mail carries: RFC 5321 has every server accept at
/// least 100 recipients per message; half of that leaves room.
const MAX_RECIPIENTS_PER_MAIL: usize = 50;

/// Whether `address` may share a mail with others in one `recipient` field
/// (addresses joined by ", "): one that needs quotes or holds a comma is
/// mailed alone, so [`recipients`] can split the field back exactly.
pub fn can_share_a_mail(address: &str) -> bool {
    !address.contains(['"', ','])
}

/// The addresses of a `recipient` field: several joined by ", " (the desk's
/// mails to its supporters), or one.
pub fn recipients(field: &str) -> Vec<&str> {
    if field.contains('"') {
        return vec![field];
    }
    field
        .split(',')
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .collect()
}

impl NewMail {
    /// Whether one more address may join this mail (see [`can_share_a_mail`]).
    pub fn can_add_recipient(&self) -> bool {
        // A field of shared addresses holds commas but never quotes.
        !self.recipient.contains('"') && recipients(&self.recipient).len() < MAX_RECIPIENTS_PER_MAIL
    }

    pub fn add_recipient(&mut self, address: &str) {
        self.recipient.push_str(", ");
        self.recipient.push_str(address);
    }
}

/// `<time.random@medesk>`: unique (a microsecond and 64 random bits), and
/// in the order mails are queued, so the unique index on it grows at its
/// end. A purely random id put every new mail on another page of the index,
/// and each of those pages was written to the WAL again at every commit.
fn new_message_id(now: i64) -> String {
    use rand::Rng as _;
    let suffix: u64 = rand::thread_rng().r#gen();
    format!("<{now:x}.{suffix:016x}@medesk>")
}

pub fn enqueue(conn: &mut AnyConnection, mail: &NewMail, now: i64) -> DbResult<()> {
    enqueue_all(conn, std::slice::from_ref(mail), now)
}

/// Queues several mails with one statement (e.g. one per supporter).
pub fn enqueue_all(conn: &mut AnyConnection, mails: &[NewMail], now: i64) -> DbResult<()> {
    insert_mails(conn, mails.iter().map(|mail| (mail, now)), now)
}

/// Writes each mail, due and created at its own time, with one statement
/// on PostgreSQL.
fn insert_mails<'a>(
    conn: &mut AnyConnection,
    mails: impl ExactSizeIterator<Item = (&'a NewMail, i64)> + Clone,
    now: i64,
) -> DbResult<()> {
    if mails.len() == 0 {
        return Ok(());
    }
    if let AnyConnection::Postgres(c) = conn {
        super::arrays::QueuedMails {
            message_ids: mails.clone().map(|_| new_message_id(now)).collect(),
            kinds: mails.clone().map(|(m, _)| m.kind).collect(),
            case_ids: mails.clone().map(|(m, _)| m.case_id).collect(),
            recipients: mails.clone().map(|(m, _)| m.recipient.as_str()).collect(),
            subjects: mails.clone().map(|(m, _)| m.subject.as_str()).collect(),
            bodies: mails.clone().map(|(m, _)| m.body_text.as_str()).collect(),
            locales: mails.clone().map(|(m, _)| m.locale).collect(),
            links: mails.clone().map(|(m, _)| m.link.as_deref()).collect(),
            calendars: mails.clone().map(|(m, _)| m.calendar.as_deref()).collect(),
            queued_at: mails.map(|(_, at)| at).collect(),
        }
        .execute(c)?;
        return Ok(());
    }
    let rows: Vec<_> = mails
        .map(|(mail, queued_at)| {
            (
                outbox::message_id.eq(new_message_id(now)),
                outbox::kind.eq(mail.kind),
                outbox::case_id.eq(mail.case_id),
                outbox::recipient.eq(&mail.recipient),
                outbox::subject.eq(&mail.subject),
                outbox::body_text.eq(&mail.body_text),
                outbox::locale.eq(mail.locale),
                outbox::link.eq(&mail.link),
                outbox::calendar.eq(&mail.calendar),
                outbox::next_attempt_at.eq(queued_at),
                outbox::created_at.eq(queued_at),
            )
        })
        .collect();
    insert_rows!(conn, rows, |values| diesel::insert_into(outbox::table)
        .values(values))?;
    Ok(())
}

/// The kind of an outbox row that stands for a filed case, not for a mail.
/// The mail worker replaces it with the case's mails, the acknowledgement
/// and the desk's, rendered then ([`replace_events`], `mail::fan_out`).
/// The intake writes one narrow row instead of rendering and writing two:
/// those were a fifth of the SQLite writer's work per intake (issue 19).
pub const CASE_SUBMITTED: &str = "case_submitted";

/// Whether an outbox row of `kind` stands for an event to replace by its
/// mails rather than for a mail to send.
pub fn is_event(kind: &str) -> bool {
    kind == CASE_SUBMITTED
}

/// Queues the event `kind` of case `case_id` (see [`CASE_SUBMITTED`]): no
/// recipient, subject or text until the worker writes its mails.
pub fn enqueue_event(
    conn: &mut AnyConnection,
    kind: &'static str,
    case_id: i64,
    now: i64,
) -> DbResult<()> {
    debug_assert!(is_event(kind));
    let row = (
        outbox::message_id.eq(""),
        outbox::kind.eq(kind),
        outbox::case_id.eq(case_id),
        outbox::recipient.eq(""),
        outbox::subject.eq(""),
        outbox::body_text.eq(""),
        outbox::next_attempt_at.eq(now),
        outbox::created_at.eq(now),
    );
    let insert = diesel::insert_into(outbox::table).values(row);
    on_backend!(conn, |c| insert.execute(c))?;
    Ok(())
}

/// A claimed event row and the mails it stands for.
#[derive(Debug, Clone)]
pub struct FannedOut {
    pub event_id: i64,
    /// The claim's token (its `locked_until`).
    pub held: i64,
    /// The event's `created_at`: its mails are due and created then, so
    /// they keep the event's place in the queue.
    pub queued_at: i64,
    pub mails: Vec<NewMail>,
}

/// Replaces claimed event rows with their mails (call inside one
/// transaction), each only if this worker still holds it: an event another
/// instance took meanwhile is left to that one, so its mails are written
/// once. Returns how many were replaced.
pub fn replace_events(conn: &mut AnyConnection, events: &[FannedOut], now: i64) -> DbResult<usize> {
    let mut replaced = Vec::with_capacity(events.len());
    if let AnyConnection::Postgres(c) = conn {
        // Planned for the outbox as it is now: a plan kept from when the
        // outbox was nearly empty scanned every pending row per statement
        // (3–9 ms under a backlog, issue 19's twenty-first round).
        diesel::sql_query("SET LOCAL plan_cache_mode = force_custom_plan").execute(c)?;
        let ids: Vec<i64> = events.iter().map(|event| event.event_id).collect();
        let held: Vec<i64> = events.iter().map(|event| event.held).collect();
        let deleted: Vec<i64> = super::arrays::DeleteHeld {
            ids: &ids,
            held: &held,
        }
        .load(c)?;
        replaced.extend(events.iter().filter(|e| deleted.contains(&e.event_id)));
    } else {
        for event in events {
            // By primary key, one at a time: no round trips on SQLite.
            let still_held = outbox::table
                .find(event.event_id)
                .filter(outbox::locked_until.eq(event.held))
                .filter(outbox::state.eq(MailState::Pending.as_str()));
            if diesel::delete(still_held).execute(conn)? == 1 {
                replaced.push(event);
            }
        }
    }
    let count = replaced.len();
    let mails: Vec<(&NewMail, i64)> = replaced
        .into_iter()
        .flat_map(|event| event.mails.iter().map(|mail| (mail, event.queued_at)))
        .collect();
    insert_mails(conn, mails.into_iter(), now)?;
    Ok(count)
}

/// Queues one mail that goes at `due_at`, not before (a gathered message
/// notice); returns its id.
pub fn enqueue_due(
    conn: &mut AnyConnection,
    mail: &NewMail,
    now: i64,
    due_at: i64,
) -> DbResult<i64> {
    Ok(diesel::insert_into(outbox::table)
        .values((
            outbox::message_id.eq(new_message_id(now)),
            outbox::kind.eq(mail.kind),
            outbox::case_id.eq(mail.case_id),
            outbox::recipient.eq(&mail.recipient),
            outbox::subject.eq(&mail.subject),
            outbox::body_text.eq(&mail.body_text),
            outbox::locale.eq(mail.locale),
            outbox::link.eq(&mail.link),
            outbox::calendar.eq(&mail.calendar),
            outbox::next_attempt_at.eq(due_at),
            outbox::created_at.eq(now),
        ))
        .returning(outbox::id)
        .get_result(conn)?)
}

/// Gives a queued mail that no worker has taken yet a new subject and text
/// (a waiting message notice that one more message joins). False when the
/// mail is no longer waiting — claimed, sent or given up — and must not be
/// changed.
pub fn rewrite_waiting(conn: &mut AnyConnection, id: i64, mail: &NewMail) -> DbResult<bool> {
    Ok(diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::state.eq(MailState::Pending.as_str()))
            .filter(outbox::attempts.eq(0))
            .filter(outbox::locked_until.is_null()),
    )
    .set((
        outbox::subject.eq(&mail.subject),
        outbox::body_text.eq(&mail.body_text),
    ))
    .execute(conn)?
        == 1)
}

/// Takes back a queued mail no worker has taken yet (the reminder of a
/// cancelled booking); false when it is claimed, sent or given up already,
/// or is not of `kind`.
pub fn withdraw_waiting(conn: &mut AnyConnection, id: i64, kind: &str) -> DbResult<bool> {
    Ok(diesel::delete(
        outbox::table
            .find(id)
            .filter(outbox::kind.eq(kind))
            .filter(outbox::state.eq(MailState::Pending.as_str()))
            .filter(outbox::attempts.eq(0))
            .filter(outbox::locked_until.is_null()),
    )
    .execute(conn)?
        == 1)
}

#[derive(Debug, Clone, Queryable)]
pub struct OutboxRow {
    pub id: i64,
    pub message_id: String,
    pub kind: String,
    pub case_id: Option<i64>,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    /// Stored HTML of mails queued before it was rendered at delivery.
    pub body_html: Option<String>,
    pub calendar: Option<String>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub locked_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub locale: Option<String>,
    pub link: Option<String>,
}

/// Claims up to `limit` due mails for `lease_micros` (call inside a
/// transaction), the oldest first, none due before `due_from` (None: from
/// the first; `mail::claim_floor` says why). On PostgreSQL the rows are
/// locked with SKIP LOCKED, so several instances never claim the same mail;
/// on SQLite the single writer gives the same guarantee. A claim that is
/// not settled (crash) expires with its lease and the mail is tried again.
pub fn claim_due(
    conn: &mut AnyConnection,
    now: i64,
    lease_micros: i64,
    limit: i64,
    due_from: Option<i64>,
) -> DbResult<Vec<OutboxRow>> {
    let due_from = due_from.unwrap_or(i64::MIN);
    let due = outbox::table
        .filter(outbox::state.eq(MailState::Pending.as_str()))
        .filter(outbox::next_attempt_at.ge(due_from))
        .filter(outbox::next_attempt_at.le(now))
        .filter(
            outbox::locked_until
                .is_null()
                .or(outbox::locked_until.lt(now)),
        )
        .order((outbox::next_attempt_at.asc(), outbox::id.asc()))
        .limit(limit)
        .select(outbox::id);
    let ids: Vec<i64> = match conn {
        AnyConnection::Postgres(c) => {
            // One statement: the claim's three were three round trips, and
            // the last, `id = ANY($1)`, was planned once per connection when
            // the table was nearly empty, as a scan of the whole table (2.8
            // ms each under a backlog of 27,000 mails; docs/performance.md).
            //
            // The only plan that stays cheap under a backlog walks
            // `outbox_due` in order and stops after `limit` rows. Kept from
            // when the outbox was nearly empty, the plan was a bitmap scan
            // of every due mail and a sort: 11 ms a claim under a backlog
            // of 40,000 (issue 19, twenty-second round). Hence planned for
            // the table as it is, and with no sort or bitmap to choose even
            // where the statistics are older than a burst.
            diesel::sql_query(
                "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), \
                 set_config('enable_sort', 'off', true), \
                 set_config('enable_bitmapscan', 'off', true)",
            )
            .execute(c)?;
            let claim = super::arrays::ClaimDue {
                due_from,
                now,
                until: now + lease_micros,
                limit,
            };
            let mut claimed: Vec<OutboxRow> = claim.load(c)?;
            claimed.sort_by_key(|row| row.id);
            return Ok(claimed);
        }
        AnyConnection::Sqlite(c) => due.load(c)?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
        .set((
            outbox::locked_until.eq(now + lease_micros),
            outbox::attempts.eq(outbox::attempts + 1),
        ))
        .execute(conn)?;
    Ok(outbox::table
        .filter(outbox::id.eq_any(&ids))
        .order(outbox::id.asc())
        .load(conn)?)
}

/// Extends the claim on a mail just before sending it. The lease value is
/// the claim's token: false when it changed, i.e. the lease ran out and
/// another worker took the mail — then this worker must not send it.
pub fn renew_claim(conn: &mut AnyConnection, id: i64, held: i64, until: i64) -> DbResult<bool> {
    Ok(diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::state.eq(MailState::Pending.as_str()))
            .filter(outbox::locked_until.eq(held)),
    )
    .set(outbox::locked_until.eq(until))
    .execute(conn)?
        == 1)
}

/// What became of one claimed mail, to be written back with [`settle`].
#[derive(Debug, Clone)]
pub enum Settlement {
    /// Handed to the transport.
    Sent { id: i64, held: i64 },
    /// Not sent: tried again at `retry_at`, or failed for good without one.
    Failed {
        id: i64,
        held: i64,
        error: String,
        retry_at: Option<i64>,
    },
}

/// Writes back the outcomes of several deliveries, each only if this worker
/// still holds the mail (call inside one transaction). The sent mails take
/// one statement per lease value (usually one: a claim's mails share it),
/// so a batch costs one commit where a mail each cost one; `now` is their
/// `sent_at`. Returns how many rows were still held and so written.
pub fn settle(conn: &mut AnyConnection, settlements: &[Settlement], now: i64) -> DbResult<usize> {
    let mut sent_by_lease: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    let mut written = 0;
    for settlement in settlements {
        match settlement {
            Settlement::Sent { id, held } => sent_by_lease.entry(*held).or_default().push(*id),
            Settlement::Failed {
                id,
                held,
                error,
                retry_at,
            } => {
                written += usize::from(mark_attempt_failed(
                    conn, *id, *held, error, *retry_at, now,
                )?)
            }
        }
    }
    for (held, ids) in sent_by_lease {
        written += diesel::update(
            outbox::table
                .filter(outbox::id.eq_any(&ids))
                .filter(outbox::locked_until.eq(held)),
        )
        .set((
            outbox::state.eq(MailState::Sent.as_str()),
            outbox::sent_at.eq(now),
            outbox::locked_until.eq(None::<i64>),
            outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    }
    Ok(written)
}

/// Records a failed attempt, if this worker still holds the mail: retried
/// at `retry_at`, or `failed` for good. A mail to several people is split
/// instead into one mail each, due at `now` and keeping the attempts made:
/// a failed SMTP transaction delivered it to none of them (a refused
/// recipient stops it before its data), so each is tried alone and one
/// bad address no longer holds back the others.
pub fn mark_attempt_failed(
    conn: &mut AnyConnection,
    id: i64,
    held: i64,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> DbResult<bool> {
    let still_held = outbox::table.find(id).filter(outbox::locked_until.eq(held));
    let row = match find(conn, id)? {
        Some(row) if row.locked_until == Some(held) && recipients(&row.recipient).len() > 1 => row,
        _ => {
            let state = if retry_at.is_some() {
                MailState::Pending
            } else {
                MailState::Failed
            };
            return Ok(diesel::update(still_held)
                .set((
                    outbox::state.eq(state.as_str()),
                    outbox::last_error.eq(error),
                    outbox::locked_until.eq(None::<i64>),
                    outbox::next_attempt_at.eq(retry_at.unwrap_or(0)),
                ))
                .execute(conn)?
                == 1);
        }
    };
    split_recipients(conn, &row, held, error, now)
}

/// Turns the claimed mail `row` to several people into one pending mail per
/// person, due at `now`, with the attempts made and `error`; false (and
/// nothing changed) when this worker no longer holds it.
fn split_recipients(
    conn: &mut AnyConnection,
    row: &OutboxRow,
    held: i64,
    error: &str,
    now: i64,
) -> DbResult<bool> {
    let addresses = recipients(&row.recipient);
    let Some((first, others)) = addresses.split_first() else {
        return Ok(false);
    };
    let updated = diesel::update(
        outbox::table
            .find(row.id)
            .filter(outbox::locked_until.eq(held)),
    )
    .set((
        outbox::recipient.eq(*first),
        outbox::state.eq(MailState::Pending.as_str()),
        outbox::last_error.eq(error),
        outbox::locked_until.eq(None::<i64>),
        outbox::next_attempt_at.eq(now),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Ok(false);
    }
    for address in others {
        diesel::insert_into(outbox::table)
            .values((
                outbox::message_id.eq(new_message_id(now)),
                outbox::kind.eq(&row.kind),
                outbox::case_id.eq(row.case_id),
                outbox::recipient.eq(*address),
                outbox::subject.eq(&row.subject),
                outbox::body_text.eq(&row.body_text),
                outbox::body_html.eq(&row.body_html),
                outbox::locale.eq(&row.locale),
                outbox::link.eq(&row.link),
                outbox::calendar.eq(&row.calendar),
                outbox::attempts.eq(row.attempts),
                outbox::last_error.eq(error),
                outbox::next_attempt_at.eq(now),
                outbox::created_at.eq(row.created_at),
            ))
            .execute(conn)?;
    }
    Ok(true)
}

/// Outbox rows for operators, newest first.
pub fn list(
    conn: &mut AnyConnection,
    state: Option<MailState>,
    before_id: Option<i64>,
    limit: i64,
) -> DbResult<Vec<OutboxRow>> {
    let mut query = outbox::table
        .select(outbox::all_columns)
        .order(outbox::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(outbox::state.eq(state.as_str()));
    }
    if let Some(before) = before_id {
        query = query.filter(outbox::id.lt(before));
    }
    Ok(query.load(conn)?)
}

/// Puts a failed mail back in the queue, due now, with a fresh attempt budget.
pub fn retry_failed(conn: &mut AnyConnection, id: i64, now: i64) -> DbResult<bool> {
    Ok(diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::state.eq(MailState::Failed.as_str())),
    )
    .set((
        outbox::state.eq(MailState::Pending.as_str()),
        outbox::attempts.eq(0),
        outbox::next_attempt_at.eq(now),
        outbox::locked_until.eq(None::<i64>),
    ))
    .execute(conn)?
        == 1)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> DbResult<Option<OutboxRow>> {
    Ok(outbox::table
        .find(id)
        .select(outbox::all_columns)
        .first(conn)
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use crate::db::Database;

    fn mail(n: usize) -> NewMail {
        NewMail {
            kind: "case_submitted_applicant",
            case_id: None,
            recipient: format!("person{n}@example.com"),
            subject: format!("mail {n}"),
            body_text: "text".into(),
            locale: "en",
            link: None,
            calendar: None,
        }
    }

    /// A claim from a floor leaves the mail due before it to the claim
    /// from the first mail (`mail::claim_floor`), which takes it.
    #[tokio::test]
    async fn a_claim_from_a_floor_leaves_earlier_mail_to_a_claim_from_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floor.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 2).unwrap();
        let (from_floor, from_first) = db
            .write(|conn| {
                enqueue_all(conn, &[mail(1)], 100)?;
                enqueue_all(conn, &[mail(2)], 300)?;
                let from_floor = claim_due(conn, 400, 1_000, 10, Some(200))?;
                let from_first = claim_due(conn, 400, 1_000, 10, None)?;
                Ok::<_, crate::db::DbError>((from_floor, from_first))
            })
            .await
            .unwrap();
        let recipients = |rows: &[OutboxRow]| -> Vec<String> {
            rows.iter().map(|row| row.recipient.clone()).collect()
        };
        assert_eq!(recipients(&from_floor), ["person2@example.com"]);
        assert_eq!(recipients(&from_first), ["person1@example.com"]);
    }

    /// Queuing mail and settling it, as diesel writes the statements, check
    /// the outbox's state without building a temporary B-tree per row, as a
    /// CHECK's `IN` list did (migration 000023).
    #[tokio::test]
    async fn queuing_and_settling_mail_build_no_temporary_table() {
        #[derive(diesel::QueryableByName)]
        struct Step {
            #[diesel(sql_type = diesel::sql_types::Text)]
            opcode: String,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.db").to_string_lossy().into_owned();
        let (mut conn, statements) = crate::db::recording_sqlite(&path);
        enqueue_all(&mut conn, &[mail(1), mail(2)], 10).unwrap();
        settle(&mut conn, &[Settlement::Sent { id: 1, held: 5 }], 20).unwrap();
        let statements = statements.lock().unwrap().clone();
        assert!(
            statements.iter().any(|sql| sql.starts_with("INSERT"))
                && statements.iter().any(|sql| sql.starts_with("UPDATE")),
            "{statements:?}"
        );
        for sql in statements {
            let program = diesel::sql_query(format!("EXPLAIN {sql}"))
                .load::<Step>(&mut conn)
                .unwrap();
            let opcodes: Vec<&str> = program.iter().map(|step| step.opcode.as_str()).collect();
            assert!(opcodes.contains(&"Insert"), "{sql}: {opcodes:?}");
            assert!(!opcodes.contains(&"OpenEphemeral"), "{sql}: {opcodes:?}");
        }
    }

    /// A failed mail to several people becomes one pending mail each, due
    /// at once with the attempt counted; a failed mail to one is retried as
    /// itself, and a mail another worker holds now is left alone.
    #[tokio::test]
    async fn a_failed_mail_to_several_people_is_split_into_one_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 2).unwrap();
        let mut shared = mail(1);
        assert!(shared.can_add_recipient());
        shared.add_recipient("person2@example.com");
        shared.add_recipient("person3@example.com");
        let claimed = db
            .write(move |conn| {
                enqueue_all(conn, &[shared, mail(4)], 100)?;
                claim_due(conn, 200, 1_000, 10, None)
            })
            .await
            .unwrap();
        assert_eq!(
            recipients(&claimed[0].recipient),
            [
                "person1@example.com",
                "person2@example.com",
                "person3@example.com"
            ]
        );
        let held = claimed[0].locked_until.unwrap();
        let (shared_id, single_id) = (claimed[0].id, claimed[1].id);
        let failed = move |id| Settlement::Failed {
            id,
            held,
            error: "550 no such mailbox".into(),
            retry_at: None,
        };
        let stale = Settlement::Failed {
            id: shared_id,
            held: 999,
            error: "late".into(),
            retry_at: None,
        };
        let written = db
            .write(move |conn| settle(conn, &[stale], 300))
            .await
            .unwrap();
        assert_eq!(written, 0, "a mail another worker holds is left alone");
        let written = db
            .write(move |conn| settle(conn, &[failed(shared_id), failed(single_id)], 300))
            .await
            .unwrap();
        assert_eq!(written, 2);
        let rows = db.read(|conn| list(conn, None, None, 10)).await.unwrap();
        let mut split: Vec<_> = rows
            .iter()
            .filter(|row| row.subject == "mail 1")
            .map(|row| {
                (
                    row.recipient.as_str(),
                    row.state.as_str(),
                    row.attempts,
                    row.next_attempt_at,
                    row.last_error.as_deref(),
                    row.locked_until,
                )
            })
            .collect();
        split.sort();
        let error = Some("550 no such mailbox");
        assert_eq!(
            split,
            [
                ("person1@example.com", "pending", 1, 300, error, None),
                ("person2@example.com", "pending", 1, 300, error, None),
                ("person3@example.com", "pending", 1, 300, error, None),
            ]
        );
        let ids: std::collections::HashSet<_> = rows.iter().map(|row| &row.message_id).collect();
        assert_eq!(ids.len(), rows.len(), "each mail its own Message-ID");
        let single = rows.iter().find(|row| row.id == single_id).unwrap();
        assert_eq!((single.state.as_str(), single.attempts), ("failed", 1));
    }

    #[test]
    fn addresses_that_need_quotes_are_never_shared() {
        assert!(can_share_a_mail("desk@example.com"));
        assert!(!can_share_a_mail("\"a,b\"@example.com"));
        assert_eq!(recipients("\"a,b\"@example.com"), ["\"a,b\"@example.com"]);
        assert_eq!(
            recipients("a@example.com, b@example.com"),
            ["a@example.com", "b@example.com"]
        );
        let mut mail = mail(1);
        for n in 2..=MAX_RECIPIENTS_PER_MAIL {
            assert!(mail.can_add_recipient(), "{n}");
            mail.add_recipient(&format!("person{n}@example.com"));
        }
        assert!(!mail.can_add_recipient());
        assert_eq!(recipients(&mail.recipient).len(), MAX_RECIPIENTS_PER_MAIL);
    }

    /// One settle writes the sent mails still held in one statement, takes
    /// the failed ones back for a retry, and leaves alone a mail whose claim
    /// another worker holds now.
    /// Only a waiting mail of the kind asked for is taken back: an id that
    /// came back for another mail is left alone.
    #[tokio::test]
    async fn a_waiting_mail_is_withdrawn_only_by_its_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 2).unwrap();
        let (other_kind, withdrawn, left) = db
            .write(|conn| {
                let id = enqueue_due(conn, &mail(1), 100, 500)?;
                let other_kind = withdraw_waiting(conn, id, "open_hours_reminder")?;
                let withdrawn = withdraw_waiting(conn, id, "case_submitted_applicant")?;
                let left: i64 = outbox::table.count().get_result(conn)?;
                Ok::<_, crate::db::DbError>((other_kind, withdrawn, left))
            })
            .await
            .unwrap();
        assert!(!other_kind);
        assert!(withdrawn);
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn settling_writes_only_mails_still_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 2).unwrap();
        let claimed = db
            .write(|conn| {
                enqueue_all(conn, &[mail(1), mail(2), mail(3), mail(4)], 100)?;
                claim_due(conn, 200, 1_000, 10, None)
            })
            .await
            .unwrap();
        let held = claimed[0].locked_until.unwrap();
        assert_eq!(held, 1_200);
        let ids: Vec<i64> = claimed.iter().map(|row| row.id).collect();
        let settlements = vec![
            Settlement::Sent { id: ids[0], held },
            Settlement::Sent { id: ids[1], held },
            // Its lease ran out and another worker claimed it since.
            Settlement::Sent {
                id: ids[2],
                held: 999,
            },
            Settlement::Failed {
                id: ids[3],
                held,
                error: "421 try later".into(),
                retry_at: Some(5_000),
            },
        ];
        let written = db
            .write(move |conn| settle(conn, &settlements, 300))
            .await
            .unwrap();
        assert_eq!(written, 3);
        let rows = db
            .read(move |conn| {
                ids.iter()
                    .map(|id| find(conn, *id).map(Option::unwrap))
                    .collect::<DbResult<Vec<_>>>()
            })
            .await
            .unwrap();
        for sent in &rows[..2] {
            assert_eq!(
                (sent.state.as_str(), sent.sent_at, sent.locked_until),
                ("sent", Some(300), None)
            );
        }
        assert_eq!(
            (rows[2].state.as_str(), rows[2].locked_until),
            ("pending", Some(held))
        );
        assert_eq!(
            (
                rows[3].state.as_str(),
                rows[3].next_attempt_at,
                rows[3].last_error.as_deref(),
                rows[3].locked_until
            ),
            ("pending", 5_000, Some("421 try later"), None)
        );
    }

    /// What SQLite runs for `message_notices.outbox_id`'s ON DELETE SET
    /// NULL when an outbox row is deleted (an event the worker replaced by
    /// its mails) goes through an index, not over every notice.
    #[test]
    fn a_deleted_rows_message_notices_are_found_through_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db").to_string_lossy().into_owned();
        let (mut conn, statements) = crate::db::recording_sqlite(&path);
        statements
            .lock()
            .unwrap()
            .push("UPDATE message_notices SET outbox_id = NULL WHERE outbox_id = 7".to_owned());
        let (sql, steps) = crate::db::last_statement_plan(&mut conn, &statements);
        assert!(
            steps
                .iter()
                .any(|step| step.starts_with("SEARCH message_notices USING")
                    && step.ends_with("INDEX message_notices_outbox (outbox_id=?)")),
            "{sql}: {steps:?}"
        );
    }
}
