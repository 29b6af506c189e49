//! SQLite's single writer, with group commit.
//!
//! SQLite lets one connection write at a time. Instead of every request
//! taking a turn on a pooled connection (a BEGIN, a COMMIT and its WAL frames
//! each, and a page cache that the next writer's connection does not have),
//! one thread owns the writing connection. It takes every write that is
//! waiting, runs each inside a savepoint of one transaction and commits once:
//! pages several writes touch (the newest cases page, the year's counter,
//! today's statistics rows) go to the WAL once per batch. A write whose work
//! fails rolls back its own savepoint only; each caller hears of its result
//! after the commit, so nothing is acknowledged that is not stored.
//!
//! Every savepoint keeps a statement journal of the pages its write changes
//! (to roll back just that write); `temp_store = MEMORY` keeps it in memory
//! instead of a temporary file written with a system call per page.
//!
//! Checkpoints run on a connection of their own every `CHECKPOINT_EVERY`, so
//! copying the WAL back into the database never happens inside a commit.
//!
//! The statistics rollups are written once per batch: the writes note their
//! deltas (`stats::add_counts`) and the batch upserts each cell's sum before
//! it commits, instead of every intake updating the same day's cells again.
//!
//! A write that can run again (`SqliteWriter::submit_repeatable`: the
//! intake) needs no savepoint of its own. Consecutive such writes share
//! one savepoint; when one fails, the shared savepoint is rolled back and
//! the others run again without it. A savepoint's statement journal copies
//! every page the write changes, and the intakes of a batch change the
//! same pages (the newest cases, their indexes, the outbox's tail): one
//! savepoint per batch copies each once, where one per intake copied them
//! for every intake (with `SAVEPOINT` and `RELEASE`, some 16 % of the
//! writer's instructions per case; docs/performance.md, issue 19's
//! thirteenth round). The repeatable writes a batch begins with need none
//! at all: if one fails, nothing else has run in the transaction, so it is
//! rolled back and begun again, and the others run again in a shared
//! savepoint (twenty-seventh round).
//!
//! A bulk write (an import) runs alone instead ([`SqliteWriter::submit`]):
//! in the batch's transaction itself, with no savepoint, and a failure rolls
//! the whole transaction back. A savepoint keeps the original of every page
//! its write changes in memory until it ends — and, as nested statement
//! journals are only dropped with the outermost savepoint, again for every
//! statement — which for a large import was hundreds of MB
//! (docs/performance.md).

use std::collections::VecDeque;
use std::fmt::Display;
use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak, mpsc};
use std::thread;
use std::time::Duration;

use diesel::Connection;
use diesel::connection::{SimpleConnection, TransactionManager};

use super::{AnyConnection, DbError, DbResult, case_numbers, stats};

/// At most this many writes share one commit, so a long queue still commits
/// (and answers) in steady steps.
const MAX_BATCH: usize = 64;
/// Often enough that at a full intake the WAL seldom reaches the writer's
/// own autocheckpoint, which stalled a batch mid-commit (intake p99 36–40
/// against 19 ms at 200 ms; issue 19).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// The writer touches the same hot pages (newest cases, indexes, outbox
/// tail) in every batch; SQLite's default 2 MiB cache re-reads them.
const WRITER_CACHE_KIB: u32 = 8 * 1024;
/// Between attempts to open the writing connection again.
const REOPEN_PAUSE: Duration = Duration::from_millis(200);
/// Backstop for when the checkpoint thread falls behind (pages of 4 KiB).
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 8_000;

/// What a finished write tells its caller once the batch's fate is known.
type Completion = Box<dyn FnOnce(Result<(), CommitFailed>) + Send>;
/// One caller's write: runs inside the batch's transaction and gives, when
/// its work failed (rolled back: its savepoint, or the whole transaction of
/// a write that runs alone), its error's message; None when it succeeded.
type Job = Box<dyn FnOnce(&mut AnyConnection) -> (Completion, Option<String>) + Send>;

/// A write that may run more than once in its batch (its savepoint shared
/// with its neighbours was rolled back because one of them failed); only
/// its last run counts.
trait RepeatableWrite: Send {
    /// Runs the write, keeping its outcome in place of any earlier run's;
    /// its error's message if it failed.
    fn run(&mut self, conn: &mut AnyConnection) -> Option<String>;
    /// Tells the caller its last run's outcome once the batch's fate is known.
    fn complete(self: Box<Self>, commit: Result<(), CommitFailed>);
}

struct Repeatable<T, E, F> {
    work: F,
    outcome: Option<Result<T, E>>,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> RepeatableWrite for Repeatable<T, E, F>
where
    F: Fn(&mut AnyConnection) -> Result<T, E> + Send,
    T: Send,
    E: From<DbError> + Display + Send,
{
    fn run(&mut self, conn: &mut AnyConnection) -> Option<String> {
        let outcome = (self.work)(conn);
        let failure = outcome.as_ref().err().map(ToString::to_string);
        self.outcome = Some(outcome);
        failure
    }

    fn complete(self: Box<Self>, commit: Result<(), CommitFailed>) {
        let answer = match (self.outcome, commit) {
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(failed)) => Err(E::from(DbError::from(failed))),
            (Some(Err(error)), _) => Err(error),
            (None, Err(failed)) => Err(E::from(DbError::from(failed))),
            (None, Ok(())) => Err(E::from(DbError::Commit("the write never ran".into()))),
        };
        let _ = self.reply.send(answer);
    }
}

/// What a write waiting for the writer is.
enum Write {
    /// Runs once, in a savepoint of its own.
    Once(Job),
    /// May run again; shares a savepoint with the repeatable writes next
    /// to it.
    Repeatable(Box<dyn RepeatableWrite>),
    /// Runs in a batch of its own, without a savepoint.
    Alone(Job),
}

/// A write that ran in a batch and waits for its commit.
enum Finished {
    Once(Completion),
    Repeatable(Box<dyn RepeatableWrite>),
}

impl Finished {
    fn complete(self, commit: Result<(), CommitFailed>) {
        match self {
            Finished::Once(completion) => completion(commit),
            Finished::Repeatable(write) => write.complete(commit),
        }
    }
}

/// The batch a write belonged to could not be committed.
#[derive(Debug, Clone)]
pub struct CommitFailed(pub String);

impl From<CommitFailed> for DbError {
    fn from(failed: CommitFailed) -> Self {
        DbError::Commit(failed.0)
    }
}

/// Handle to the writer thread; cloning shares the thread.
#[derive(Clone)]
pub struct SqliteWriter {
    jobs: mpsc::Sender<Write>,
    /// The checkpointer runs while any handle holds this.
    _alive: Arc<()>,
}

impl SqliteWriter {
    /// Opens the writing connection and the checkpointer and starts both
    /// threads. They stop when every handle is dropped.
    pub fn start(path: &str, setup: fn(&mut AnyConnection) -> DbResult<()>) -> DbResult<Self> {
        let open = {
            let path = path.to_owned();
            move || -> DbResult<AnyConnection> {
                let mut conn = AnyConnection::establish(&path)?;
                setup(&mut conn)?;
                conn.batch_execute(&format!(
                    "PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES};
                     PRAGMA cache_size = -{WRITER_CACHE_KIB};
                     PRAGMA temp_store = MEMORY;"
                ))?;
                Ok(conn)
            }
        };
        let conn = open()?;
        let (jobs, queue) = mpsc::channel::<Write>();
        thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(conn, open, queue))
            .map_err(|e| DbError::Commit(format!("could not start the writer: {e}")))?;

        let mut checkpointer = AnyConnection::establish(path)?;
        setup(&mut checkpointer)?;
        let alive = Arc::new(());
        let watched = Arc::downgrade(&alive);
        thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, watched))
            .map_err(|e| DbError::Commit(format!("could not start the checkpointer: {e}")))?;
        Ok(Self {
            jobs,
            _alive: alive,
        })
    }

    /// Queues `work` and returns how to wait for its result. `work` runs in a
    /// savepoint: its error rolls back only what it did. With `alone` (a
    /// bulk write) it runs in a transaction of its own instead, after the
    /// writes queued before it and before those queued after it, with no
    /// savepoint (whose page copies would be held in memory); its error
    /// rolls the transaction back.
    pub fn submit<T, E, F>(
        &self,
        alone: bool,
        work: F,
    ) -> tokio::sync::oneshot::Receiver<Result<T, E>>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Display + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let outcome = if alone {
                work(conn)
            } else {
                in_savepoint(conn, work)
            };
            let failure = outcome.as_ref().err().map(ToString::to_string);
            let completion: Completion = Box::new(move |commit| {
                let answer = match (outcome, commit) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(failed)) => Err(E::from(DbError::from(failed))),
                    (Err(error), _) => Err(error),
                };
                let _ = reply.send(answer);
            });
            (completion, failure)
        });
        // A closed queue drops `reply`: the caller sees the writer as gone.
        let _ = self.jobs.send(if alone {
            Write::Alone(job)
        } else {
            Write::Once(job)
        });
        result
    }

    /// Queues `work`, which may run more than once: it shares a savepoint
    /// with the repeatable writes queued next to it, and runs again when
    /// one of them fails (only its last run's changes and outcome count).
    /// It must change nothing but the database.
    pub fn submit_repeatable<T, E, F>(
        &self,
        work: F,
    ) -> tokio::sync::oneshot::Receiver<Result<T, E>>
    where
        F: Fn(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Display + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        let _ = self.jobs.send(Write::Repeatable(Box::new(Repeatable {
            work,
            outcome: None,
            reply,
        })));
        result
    }
}

fn write_loop(
    mut conn: AnyConnection,
    open: impl Fn() -> DbResult<AnyConnection>,
    queue: mpsc::Receiver<Write>,
) {
    // Writes taken from the queue but not run yet: one that must run alone,
    // met while a batch filled, or those of a batch given up before them.
    let mut held: VecDeque<Write> = VecDeque::new();
    loop {
        let first = match held.pop_front() {
            Some(first) => first,
            None => match queue.recv() {
                Ok(first) => first,
                Err(_) => return,
            },
        };
        let alone = matches!(first, Write::Alone(_));
        let mut batch = vec![first];
        while !alone && batch.len() < MAX_BATCH {
            match held.pop_front().map(Ok).unwrap_or_else(|| queue.try_recv()) {
                Ok(next @ Write::Alone(_)) => {
                    held.push_front(next);
                    break;
                }
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let Err(given_up) = run_batch(&mut conn, batch) else {
            continue;
        };
        tracing::error!(error = %given_up.reason, "a batch of database writes was given up and rolled back");
        for write in given_up.not_run.into_iter().rev() {
            held.push_front(write);
        }
        if given_up.reopen {
            match reopen(&open, &queue, &mut held) {
                Some(fresh) => conn = fresh,
                None => return,
            }
        }
    }
}

/// A fresh writing connection, for one whose transaction state is unknown
/// (closing it rolls back what it held). Tries until one opens, and the
/// writer goes on once the fault has passed. Meanwhile no write waits for
/// it: after each failed attempt the writes waiting are dropped unrun, so
/// their callers hear at once that the writer stopped (503) and may try
/// again. None when every handle is gone.
fn reopen(
    open: &impl Fn() -> DbResult<AnyConnection>,
    queue: &mpsc::Receiver<Write>,
    held: &mut VecDeque<Write>,
) -> Option<AnyConnection> {
    loop {
        let error = match open() {
            Ok(fresh) => return Some(fresh),
            Err(error) => error,
        };
        let mut refused = held.len();
        held.clear();
        loop {
            match queue.try_recv() {
                Ok(_) => refused += 1,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return None,
            }
        }
        tracing::error!(%error, refused, "could not reopen the SQLite writer; the writes waiting were refused, trying again");
        thread::sleep(REOPEN_PAUSE);
    }
}

/// Why a batch stopped before its commit. Every write that had run hears
/// `reason` (or its own error); `not_run` are the writes it had not run, or
/// whose runs were rolled back with it: they run in the next batch.
struct GivenUp {
    reason: String,
    not_run: Vec<Write>,
    /// The connection's transaction state is unknown: open another.
    reopen: bool,
}

impl GivenUp {
    /// The writer cannot tell what the connection holds: reopened, and the
    /// writes that ran hear a fault that passes (503).
    fn unknown_state(what: impl Display) -> Self {
        GivenUp {
            reason: format!("the SQLite writer stopped this batch: {what}"),
            not_run: Vec::new(),
            reopen: true,
        }
    }

    fn not_run(mut self, writes: impl IntoIterator<Item = Write>) -> Self {
        self.not_run.extend(writes);
        self
    }
}

/// Whether the batch may go on after a failed write was rolled back: its
/// transaction must be as deep as `expected` (1 after a savepoint, 0 after
/// the whole transaction). SQLite rolls the whole transaction back by
/// itself on some errors (a full disk, an I/O error) when the statement
/// has no journal of its own; what the batch ran before is gone then, and
/// its callers hear the error that took it (507 for a full disk).
fn go_on_after(conn: &mut AnyConnection, expected: u32, failure: &str) -> Result<(), GivenUp> {
    match Manager::transaction_manager_status_mut(conn).transaction_depth() {
        Ok(depth) if depth.map_or(0, NonZeroU32::get) == expected => Ok(()),
        Ok(None) => Err(GivenUp {
            reason: format!("{failure} (SQLite rolled back the batch with it)"),
            not_run: Vec::new(),
            reopen: false,
        }),
        _ => Err(GivenUp::unknown_state(format_args!(
            "a failed write's rollback left the transaction unknown ({failure})"
        ))),
    }
}

/// `work` in a savepoint: its error rolls back what it did. The caller
/// hears that error even when the rollback fails (SQLite already rolled
/// the whole transaction back); the batch then sees its transaction gone
/// ([`go_on_after`]).
fn in_savepoint<T, E>(
    conn: &mut AnyConnection,
    work: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    Manager::begin_transaction(conn)?;
    match work(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            let _ = Manager::rollback_transaction(conn);
            Err(error)
        }
    }
}

/// Runs one batch in one transaction (a write alone runs without a
/// savepoint, and its failure rolls the transaction back). Given up when a
/// write panicked or took the transaction with it: every write that ran is
/// answered, and those that did not come back to run again.
fn run_batch(conn: &mut AnyConnection, batch: Vec<Write>) -> Result<(), GivenUp> {
    if let Err(error) = Manager::begin_transaction(conn) {
        // The writes never run; dropping them tells each caller so.
        tracing::error!(%error, "could not begin a write transaction");
        return Ok(());
    }
    stats::begin_batch();
    case_numbers::begin_batch();
    let mut finished = Vec::with_capacity(batch.len());
    let mut failed_alone = false;
    let mut pending = batch.into_iter().peekable();
    // Consecutive repeatable writes, run together in one savepoint.
    let mut neighbours: Vec<Box<dyn RepeatableWrite>> = Vec::new();
    let ran = (|| -> Result<(), GivenUp> {
        let mut leading = Vec::new();
        while let Some(Write::Repeatable(write)) =
            pending.next_if(|write| matches!(write, Write::Repeatable(_)))
        {
            leading.push(write);
        }
        if !leading.is_empty() {
            run_leading_repeatable(conn, leading, &mut finished)?;
        }
        while let Some(next) = pending.peek() {
            // Peeked, so that a write waiting on its neighbours stays
            // pending if they give the batch up.
            if !matches!(next, Write::Repeatable(_)) && !neighbours.is_empty() {
                run_repeatable(conn, std::mem::take(&mut neighbours), &mut finished)?;
            }
            let Some(write) = pending.next() else { break };
            match write {
                Write::Repeatable(write) => neighbours.push(write),
                Write::Once(job) => {
                    if let Some(failure) = run_once(conn, job, &mut finished)? {
                        go_on_after(conn, 1, &failure)?;
                    }
                }
                Write::Alone(job) => {
                    failed_alone = run_once(conn, job, &mut finished)?.is_some();
                }
            }
        }
        if !neighbours.is_empty() {
            run_repeatable(conn, std::mem::take(&mut neighbours), &mut finished)?;
        }
        Ok(())
    })();
    if let Err(given_up) = ran {
        stats::abandon_batch();
        case_numbers::abandon_batch();
        let failed = CommitFailed(given_up.reason.clone());
        for write in finished {
            write.complete(Err(failed.clone()));
        }
        let not_run = neighbours.into_iter().map(Write::Repeatable).chain(pending);
        return Err(given_up.not_run(not_run));
    }
    if failed_alone {
        // Nothing else is in the transaction; the caller hears its own error.
        stats::abandon_batch();
        case_numbers::abandon_batch();
        if let Err(error) = Manager::rollback_transaction(conn) {
            tracing::error!(%error, "could not roll back a failed write");
        }
        for write in finished {
            write.complete(Ok(()));
        }
        return Ok(());
    }
    let commit = stats::flush_batch(conn)
        .and_then(|()| match conn {
            AnyConnection::Sqlite(c) => case_numbers::flush_batch(c),
            AnyConnection::Postgres(_) => Ok(()),
        })
        .map_err(|error| error.to_string())
        .and_then(|()| Manager::commit_transaction(conn).map_err(|error| error.to_string()))
        .map_err(|error| {
            tracing::error!(%error, "group commit failed");
            let _ = Manager::rollback_transaction(conn);
            CommitFailed(error)
        });
    for write in finished {
        write.complete(commit.clone());
    }
    Ok(())
}

type Manager = <AnyConnection as Connection>::TransactionManager;

/// Runs the repeatable writes a batch begins with in its transaction
/// itself, without a savepoint: under a steady intake most batches are
/// nothing else, and a savepoint's statement journal copied each page the
/// batch changed once more, some 8 % of the writer's time per case
/// (docs/performance.md, issue 19's twenty-seventh round). When one fails,
/// nothing else has run in the transaction yet: it is rolled back (unless
/// SQLite already did) and begun again, the failed write keeps its error,
/// and the others run again in a shared savepoint ([`run_repeatable`]).
/// Numbers the rolled-back writes took are not handed out again
/// (`case_numbers`).
fn run_leading_repeatable(
    conn: &mut AnyConnection,
    mut writes: Vec<Box<dyn RepeatableWrite>>,
    finished: &mut Vec<Finished>,
) -> Result<(), GivenUp> {
    let Some((index, failure)) = run_until_one_fails(conn, &mut writes)? else {
        stats::end_shared_savepoint(true);
        finished.extend(writes.into_iter().map(Finished::Repeatable));
        return Ok(());
    };
    stats::end_shared_savepoint(false);
    finished.push(Finished::Repeatable(writes.remove(index)));
    let again = |given_up: GivenUp| given_up.not_run(writes_again(&mut writes));
    // Its error is beside the point when SQLite rolled back first.
    let _ = Manager::rollback_transaction(conn);
    go_on_after(conn, 0, &failure).map_err(again)?;
    if let Err(error) = Manager::begin_transaction(conn) {
        let given_up = GivenUp::unknown_state(format_args!(
            "could not begin a write transaction again: {error}"
        ));
        return Err(given_up.not_run(writes.into_iter().map(Write::Repeatable)));
    }
    run_repeatable(conn, writes, finished)
}

/// The writes of a shared savepoint given up with their batch, to run again.
fn writes_again(writes: &mut Vec<Box<dyn RepeatableWrite>>) -> Vec<Write> {
    writes.drain(..).map(Write::Repeatable).collect()
}

/// Runs consecutive repeatable writes in one savepoint. When one fails, the
/// savepoint is rolled back (its changes with everyone's) and the rest run
/// again in a new one, until all that are left succeed together; each
/// failed write keeps the error of its run, whose changes are gone.
fn run_repeatable(
    conn: &mut AnyConnection,
    mut writes: Vec<Box<dyn RepeatableWrite>>,
    finished: &mut Vec<Finished>,
) -> Result<(), GivenUp> {
    while !writes.is_empty() {
        // Without its savepoint no write could be undone alone: the batch
        // is given up, and these writes run again in the next.
        if let Err(error) = Manager::begin_transaction(conn) {
            let given_up =
                GivenUp::unknown_state(format_args!("could not open a savepoint: {error}"));
            return Err(given_up.not_run(writes_again(&mut writes)));
        }
        match run_until_one_fails(conn, &mut writes)? {
            None => {
                stats::end_shared_savepoint(true);
                if let Err(error) = Manager::commit_transaction(conn) {
                    let given_up = GivenUp::unknown_state(format_args!(
                        "could not release a savepoint: {error}"
                    ));
                    return Err(given_up.not_run(writes_again(&mut writes)));
                }
                finished.extend(writes.into_iter().map(Finished::Repeatable));
                return Ok(());
            }
            Some((index, failure)) => {
                stats::end_shared_savepoint(false);
                finished.push(Finished::Repeatable(writes.remove(index)));
                let _ = Manager::rollback_transaction(conn);
                if let Err(given_up) = go_on_after(conn, 1, &failure) {
                    return Err(given_up.not_run(writes_again(&mut writes)));
                }
            }
        }
    }
    Ok(())
}

/// Runs `writes` in order, their rollup deltas held apart as a shared
/// savepoint's, until one fails; the place of the one that failed and its
/// error's message. A write that panics is dropped (its caller sees its
/// reply dropped) and the batch given up with the others to run again.
fn run_until_one_fails(
    conn: &mut AnyConnection,
    writes: &mut Vec<Box<dyn RepeatableWrite>>,
) -> Result<Option<(usize, String)>, GivenUp> {
    stats::begin_shared_savepoint();
    for index in 0..writes.len() {
        let failure = match unless_panicked(|| writes[index].run(conn)) {
            Ok(failure) => failure,
            Err(given_up) => {
                drop(writes.remove(index));
                return Err(given_up.not_run(writes_again(writes)));
            }
        };
        stats::end_job(failure.is_none());
        if let Some(failure) = failure {
            return Ok(Some((index, failure)));
        }
    }
    Ok(None)
}

/// Runs a write that runs once (in a savepoint of its own, or alone); its
/// error's message if it failed.
fn run_once(
    conn: &mut AnyConnection,
    job: Job,
    finished: &mut Vec<Finished>,
) -> Result<Option<String>, GivenUp> {
    let (completion, failure) = unless_panicked(|| job(conn))?;
    stats::end_job(failure.is_none());
    finished.push(Finished::Once(completion));
    Ok(failure)
}

/// `run`'s result; a panic gives the batch up (the panicking write's
/// caller sees its reply dropped).
fn unless_panicked<T>(run: impl FnOnce() -> T) -> Result<T, GivenUp> {
    catch_unwind(AssertUnwindSafe(run)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        GivenUp::unknown_state(format_args!("a write panicked: {message}"))
    })
}

/// Copies committed WAL pages back into the database between commits.
/// PASSIVE never blocks the writer or readers. Stops with the last handle.
fn checkpoint_loop(mut conn: AnyConnection, alive: Weak<()>) {
    loop {
        thread::sleep(CHECKPOINT_EVERY);
        if alive.upgrade().is_none() {
            return;
        }
        if let Err(error) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
            tracing::warn!(%error, "WAL checkpoint failed");
        }
    }
}

/// A scratch SQLite database with a `probe` table, shared with the readers' tests.
#[cfg(test)]
pub(super) mod tests {
    use diesel::RunQueryDsl;
    use diesel::connection::{SimpleConnection, TransactionManager};
    use diesel::sql_types::BigInt;

    use super::{Manager, SqliteWriter};
    use crate::config::DatabaseUrl;
    use crate::db::{AnyConnection, Database, DbError, stats};

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    pub(in crate::db) fn rows(conn: &mut AnyConnection) -> Result<i64, DbError> {
        let count: Count = diesel::sql_query("SELECT COUNT(*) AS n FROM probe").get_result(conn)?;
        Ok(count.n)
    }

    /// The probe's values, in order.
    fn values(conn: &mut AnyConnection) -> Result<Vec<i64>, DbError> {
        #[derive(diesel::QueryableByName)]
        struct Value {
            #[diesel(sql_type = BigInt)]
            value: i64,
        }
        let rows: Vec<Value> =
            diesel::sql_query("SELECT value FROM probe ORDER BY value").load(conn)?;
        Ok(rows.into_iter().map(|row| row.value).collect())
    }

    pub(in crate::db) fn insert(conn: &mut AnyConnection, value: i64) -> Result<(), DbError> {
        diesel::sql_query("INSERT INTO probe (value) VALUES (?)")
            .bind::<BigInt, _>(value)
            .execute(conn)?;
        Ok(())
    }

    pub(in crate::db) async fn scratch_database() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writer.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 4).unwrap();
        db.write_blocking(|conn| {
            diesel::sql_query("CREATE TABLE probe (value BIGINT NOT NULL)").execute(conn)?;
            Ok(())
        })
        .unwrap();
        (dir, db)
    }

    /// Writes that share a commit stay independent: a failing one leaves
    /// nothing behind, the others are all stored and each caller hears its
    /// own result.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_write_rolls_back_only_itself() {
        let (_dir, db) = scratch_database().await;
        let writes = (0..200_i64).map(|value| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |conn| {
                    insert(conn, value)?;
                    if value % 3 == 0 {
                        return Err(DbError::NotFound);
                    }
                    Ok(value)
                })
                .await
            })
        });
        let results = futures_util::future::join_all(writes).await;
        let mut stored = 0;
        for (value, result) in results.into_iter().enumerate() {
            match result.unwrap() {
                Ok(v) => {
                    assert_eq!(v, value as i64);
                    assert_ne!(value % 3, 0);
                    stored += 1;
                }
                Err(error) => {
                    assert!(matches!(error, DbError::NotFound), "{error}");
                    assert_eq!(value % 3, 0);
                }
            }
        }
        assert_eq!(stored, 133);
        assert_eq!(db.read(rows).await.unwrap(), 133);
    }

    /// Writes that run alone (imports) share no batch: one that fails rolls
    /// back its whole transaction and nothing else, the others and the
    /// shared writes queued around them are all stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_write_alone_fails_alone() {
        let (_dir, db) = scratch_database().await;
        let writes = (0..120_i64).map(|value| {
            let db = db.clone();
            tokio::spawn(async move {
                match value % 6 {
                    0 => {
                        db.write_alone(move |conn| {
                            insert(conn, value)?;
                            insert(conn, -value)?;
                            Err::<(), _>(DbError::NotFound)
                        })
                        .await
                    }
                    1 => db.write_alone(move |conn| insert(conn, value)).await,
                    _ => db.write(move |conn| insert(conn, value)).await,
                }
            })
        });
        let results = futures_util::future::join_all(writes).await;
        for (value, result) in results.into_iter().enumerate() {
            let result = result.unwrap();
            assert_eq!(result.is_err(), value % 6 == 0, "write {value}: {result:?}");
        }
        assert_eq!(db.read(rows).await.unwrap(), 100);
    }

    /// Rollup deltas noted by a batch's writes are written once per batch:
    /// what the rollups hold afterwards is exactly the sum of the writes that
    /// succeeded (a failed write's deltas go with its savepoint), and cells
    /// that net to zero are not created.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_batch_writes_the_rollup_deltas_of_its_successful_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollups.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 4).unwrap();
        db.migrate().unwrap();
        let writes = (0..120_i64).map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |conn| {
                    let day = if n % 2 == 0 {
                        "2026-11-02"
                    } else {
                        "2026-12-01"
                    };
                    stats::count_case(conn, day, "device", &["funding", "ip"], 1)?;
                    // Counted and taken back in the same write: nets to zero.
                    stats::count_case(conn, "2026-10-01", "drug", &["ip"], 1)?;
                    stats::count_case(conn, "2026-10-01", "drug", &["ip"], -1)?;
                    if n % 3 == 0 {
                        return Err(DbError::NotFound);
                    }
                    Ok(())
                })
                .await
            })
        });
        let results = futures_util::future::join_all(writes).await;
        let failed = results.into_iter().filter(|r| r.as_ref().unwrap().is_err());
        assert_eq!(failed.count(), 40);

        let cells = db.read(stats::rollup_cells).await.unwrap();
        let cell = |period: &str, category: Option<&str>| {
            let key = (
                period.to_owned(),
                "device".to_owned(),
                category.map(str::to_owned),
            );
            cells.get(&key).copied()
        };
        // 60 even and 60 odd writes, of which every third (20 of each) failed.
        for period in ["2026-11-02", "2026-11", "2026-12-01", "2026-12"] {
            assert_eq!(cell(period, None), Some(40), "{period}");
            assert_eq!(cell(period, Some("funding")), Some(40), "{period}");
            assert_eq!(cell(period, Some("ip")), Some(40), "{period}");
        }
        assert_eq!(cells.len(), 12, "{cells:?}");
        let netted: Count = db
            .read(|conn| {
                diesel::sql_query(
                    "SELECT COUNT(*) AS n FROM stats_daily_categories WHERE product_type = 'drug'",
                )
                .get_result(conn)
                .map_err(DbError::from)
            })
            .await
            .unwrap();
        assert_eq!(netted.n, 0, "a cell that nets to zero is not created");
    }

    /// Holds the writer in a write of its own until the returned sender is
    /// used (or dropped), so that what is queued meanwhile forms one batch.
    fn hold_writer(db: &Database) -> std::sync::mpsc::Sender<()> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let writer = db.sqlite_writer.as_ref().unwrap();
        drop(writer.submit(false, move |_conn| {
            started.send(()).unwrap();
            let _ = held.recv();
            Ok::<_, DbError>(())
        }));
        running.recv().unwrap();
        release
    }

    /// Queues `work` as a repeatable write or as one that runs once.
    fn submit_as<T, F>(
        writer: &SqliteWriter,
        repeatable: bool,
        work: F,
    ) -> tokio::sync::oneshot::Receiver<Result<T, DbError>>
    where
        F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        if repeatable {
            writer.submit_repeatable(work)
        } else {
            writer.submit(false, work)
        }
    }

    /// Repeatable writes share a savepoint: when one fails, it alone is
    /// rolled back and answered with its error; those that ran before it in
    /// the same savepoint run again, once, and each caller hears its own
    /// last run. A write that runs once (its own savepoint) between them
    /// splits them into two shared savepoints.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_repeatable_write_rolls_back_only_itself_and_its_neighbours_run_again() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let (_dir, db) = scratch_database().await;
        let writer = db.sqlite_writer.clone().unwrap();
        let release = hold_writer(&db);
        // (value, fails, repeatable)
        let plan = [
            (0, false, true),
            (1, false, true),
            (2, true, true),
            (3, false, false),
            (4, false, true),
            (5, true, true),
            (6, false, true),
        ];
        let runs: Vec<Arc<AtomicUsize>> = plan.iter().map(|_| Arc::default()).collect();
        let answers: Vec<_> = plan
            .iter()
            .zip(&runs)
            .map(|(&(value, fails, repeatable), runs)| {
                let runs = Arc::clone(runs);
                let work = move |conn: &mut AnyConnection| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    insert(conn, value)?;
                    if fails {
                        return Err(DbError::NotFound);
                    }
                    Ok(value)
                };
                submit_as(&writer, repeatable, work)
            })
            .collect();
        release.send(()).unwrap();
        for (answer, &(value, fails, _)) in answers.into_iter().zip(&plan) {
            match answer.await.unwrap() {
                Ok(stored) => {
                    assert!(!fails);
                    assert_eq!(stored, value);
                }
                Err(error) => {
                    assert!(fails, "write {value}: {error}");
                    assert!(matches!(error, DbError::NotFound), "{error}");
                }
            }
        }
        let runs: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        assert_eq!(runs, vec![2, 2, 1, 1, 2, 1, 1]);
        let stored = db.read(values).await.unwrap();
        assert_eq!(stored, vec![0, 1, 3, 4, 6]);
    }

    /// The repeatable writes a batch begins with run in its transaction
    /// itself, without a savepoint (depth 1); a write that runs once takes
    /// its own (depth 2), and the repeatable writes after it share one.
    /// When one of the first fails, the transaction is begun again and
    /// those before it run again, then in a savepoint.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_begins_without_a_savepoint_and_takes_one_after_a_failure() {
        use std::sync::{Arc, Mutex};

        let (_dir, db) = scratch_database().await;
        let writer = db.sqlite_writer.clone().unwrap();
        let depth = |conn: &mut AnyConnection| {
            Manager::transaction_manager_status_mut(conn)
                .transaction_depth()
                .unwrap()
                .map_or(0, u32::from)
        };
        for (second_fails, expected, stored) in [
            (
                false,
                vec![(0, 1), (1, 1), (2, 2), (3, 2)],
                vec![0, 1, 2, 3],
            ),
            (
                true,
                vec![(0, 1), (1, 1), (0, 2), (2, 2), (3, 2)],
                vec![0, 2, 3],
            ),
        ] {
            let seen: Arc<Mutex<Vec<(i64, u32)>>> = Arc::default();
            let release = hold_writer(&db);
            let repeatable = |value: i64, fails: bool| {
                let seen = Arc::clone(&seen);
                writer.submit_repeatable(move |conn| {
                    seen.lock().unwrap().push((value, depth(conn)));
                    insert(conn, value)?;
                    if fails {
                        return Err(DbError::NotFound);
                    }
                    Ok(())
                })
            };
            let mut answers = vec![repeatable(0, false), repeatable(1, second_fails)];
            answers.push({
                let seen = Arc::clone(&seen);
                writer.submit(false, move |conn| {
                    seen.lock().unwrap().push((2, depth(conn)));
                    insert(conn, 2)
                })
            });
            answers.push(repeatable(3, false));
            release.send(()).unwrap();
            let outcomes: Vec<bool> = futures_util::future::join_all(answers)
                .await
                .into_iter()
                .map(|answer| answer.unwrap().is_ok())
                .collect();
            assert_eq!(outcomes, vec![true, !second_fails, true, true]);
            assert_eq!(
                *seen.lock().unwrap(),
                expected,
                "second fails: {second_fails}"
            );
            let kept = db
                .write(|conn| {
                    let kept = values(conn)?;
                    diesel::sql_query("DELETE FROM probe").execute(conn)?;
                    Ok::<_, DbError>(kept)
                })
                .await
                .unwrap();
            assert_eq!(kept, stored, "second fails: {second_fails}");
        }
    }

    /// The rollup deltas of repeatable writes count once per write that
    /// is kept: a write that runs again after its shared savepoint was
    /// rolled back does not count twice, a failed one not at all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repeatable_writes_count_their_rollups_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollups.db").to_string_lossy().into_owned();
        let db = Database::connect(&DatabaseUrl::Sqlite(path), 2).unwrap();
        db.migrate().unwrap();
        let writer = db.sqlite_writer.clone().unwrap();
        let release = hold_writer(&db);
        let answers: Vec<_> = [false, false, true, false]
            .into_iter()
            .map(|fails| {
                writer.submit_repeatable(move |conn| {
                    stats::count_case(conn, "2026-12-01", "device", &["funding"], 1)?;
                    if fails {
                        return Err(DbError::NotFound);
                    }
                    Ok(())
                })
            })
            .collect();
        release.send(()).unwrap();
        let mut failed = 0;
        for answer in answers {
            failed += usize::from(answer.await.unwrap().is_err());
        }
        assert_eq!(failed, 1);
        let cells = db.read(stats::rollup_cells).await.unwrap();
        let cell = |period: &str, category: Option<&str>| {
            cells
                .get(&(
                    period.to_owned(),
                    "device".to_owned(),
                    category.map(str::to_owned),
                ))
                .copied()
        };
        for period in ["2026-12-01", "2026-12"] {
            assert_eq!(cell(period, None), Some(3), "{period}");
            assert_eq!(cell(period, Some("funding")), Some(3), "{period}");
        }
    }

    /// What each write of a batch that ran out of space hears, and what it
    /// left behind: `plan` is (repeatable, bytes) per write, queued as one
    /// batch on a database that may grow by `room_pages` pages.
    async fn fill_up(
        plan: &[(bool, i64)],
        room_pages: i64,
    ) -> (Vec<Result<(), DbError>>, Vec<i64>) {
        let (_dir, db) = scratch_database().await;
        let writer = db.sqlite_writer.clone().unwrap();
        db.write(move |conn| {
            diesel::sql_query("CREATE TABLE bulk (id BIGINT NOT NULL, data BLOB NOT NULL)")
                .execute(conn)?;
            let pages: Count = diesel::sql_query("SELECT page_count AS n FROM pragma_page_count")
                .get_result(conn)?;
            // Per connection: the writer's until it is opened again.
            conn.batch_execute(&format!("PRAGMA max_page_count = {}", pages.n + room_pages))?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
        let release = hold_writer(&db);
        let answers: Vec<_> = plan
            .iter()
            .enumerate()
            .map(|(id, &(repeatable, bytes))| {
                let work = move |conn: &mut AnyConnection| {
                    diesel::sql_query("INSERT INTO bulk (id, data) VALUES (?, zeroblob(?))")
                        .bind::<BigInt, _>(id as i64)
                        .bind::<BigInt, _>(bytes)
                        .execute(conn)?;
                    Ok::<_, DbError>(())
                };
                submit_as(&writer, repeatable, work)
            })
            .collect();
        release.send(()).unwrap();
        let mut heard = Vec::new();
        for answer in answers {
            heard.push(answer.await.unwrap_or_else(|_| {
                Err(DbError::Commit(
                    "the SQLite writer stopped before answering".into(),
                ))
            }));
        }
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let stored: Vec<Id> = db
            .read(|conn| {
                diesel::sql_query("SELECT id FROM bulk ORDER BY id")
                    .load(conn)
                    .map_err(DbError::from)
            })
            .await
            .unwrap();
        // The writer goes on: a small write later is stored.
        db.write(|conn| insert(conn, 1)).await.unwrap();
        assert_eq!(db.read(rows).await.unwrap(), 1);
        (heard, stored.into_iter().map(|row| row.id).collect())
    }

    /// A write that finds the disk full mid-batch (SQLite may then roll the
    /// whole transaction back, savepoints and all): every caller hears
    /// either success, and its row is stored, or that the disk is full
    /// (507), and nothing of it is stored; the writer goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_finds_the_disk_full_leaves_every_answer_true() {
        use crate::db::Fault;
        const SMALL: i64 = 100;
        const BIG: i64 = 400_000;
        let plans: [&[(bool, i64)]; 4] = [
            // The batch's leading repeatable writes, no savepoint.
            &[(true, SMALL), (true, SMALL), (true, BIG), (true, SMALL)],
            // In a shared savepoint, after a write of its own.
            &[
                (true, SMALL),
                (false, SMALL),
                (true, SMALL),
                (true, BIG),
                (true, SMALL),
            ],
            // A write in a savepoint of its own, with others after it.
            &[(true, SMALL), (false, BIG), (false, SMALL), (true, SMALL)],
            // Every kind, twice full.
            &[
                (false, SMALL),
                (true, BIG),
                (true, SMALL),
                (false, BIG),
                (false, SMALL),
                (true, SMALL),
            ],
        ];
        for plan in plans {
            let (heard, stored) = fill_up(plan, 40).await;
            for (id, answer) in heard.iter().enumerate() {
                let id = id as i64;
                match answer {
                    Ok(()) => assert!(
                        stored.contains(&id),
                        "{plan:?}: write {id} acknowledged, not stored"
                    ),
                    Err(error) => {
                        assert!(
                            !stored.contains(&id),
                            "{plan:?}: write {id} refused ({error}), but stored"
                        );
                        assert_eq!(
                            error.fault(),
                            Some(Fault::StorageFull),
                            "{plan:?}: write {id}: {error}"
                        );
                    }
                }
            }
            assert!(
                !stored.is_empty(),
                "{plan:?}: the small writes after it go on"
            );
            for (id, &(_, bytes)) in plan.iter().enumerate() {
                if bytes == BIG {
                    assert!(
                        heard[id].is_err(),
                        "{plan:?}: the big write {id} cannot fit"
                    );
                }
            }
        }
    }

    /// A write that panics mid-batch gives the batch up: a write that ran
    /// before it hears a fault that passes (503) and is not stored; those
    /// queued after it run in the next batch and are stored. A repeatable
    /// write that panics is not run again; its neighbours are.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writes_after_a_panicking_one_run_in_the_next_batch() {
        use crate::db::Fault;
        let (_dir, db) = scratch_database().await;
        let writer = db.sqlite_writer.clone().unwrap();
        let release = hold_writer(&db);
        let before = writer.submit_repeatable(|conn| insert(conn, 0));
        let panicking = writer.submit(false, |conn| -> Result<(), DbError> {
            insert(conn, 1)?;
            panic!("a bug in a handler");
        });
        let after = [
            writer.submit_repeatable(|conn| insert(conn, 2)),
            writer.submit(false, |conn| insert(conn, 3)),
        ];
        release.send(()).unwrap();
        let error = before.await.unwrap().unwrap_err();
        assert_eq!(error.fault(), Some(Fault::Unavailable), "{error}");
        assert!(panicking.await.is_err(), "its reply is dropped");
        for answer in after {
            answer.await.unwrap().unwrap();
        }
        assert_eq!(db.read(values).await.unwrap(), vec![2, 3]);

        // Repeatable writes: the leading ones, and in a shared savepoint.
        for first_runs_once in [false, true] {
            db.write(|conn| {
                diesel::sql_query("DELETE FROM probe").execute(conn)?;
                Ok::<_, DbError>(())
            })
            .await
            .unwrap();
            let release = hold_writer(&db);
            let first = if first_runs_once {
                writer.submit(false, |conn| insert(conn, 10))
            } else {
                writer.submit_repeatable(|conn| insert(conn, 10))
            };
            let neighbour = writer.submit_repeatable(|conn| insert(conn, 11));
            let panicking = writer.submit_repeatable(|conn| -> Result<(), DbError> {
                insert(conn, 12)?;
                panic!("a bug in a repeatable handler");
            });
            let after = writer.submit_repeatable(|conn| insert(conn, 13));
            release.send(()).unwrap();
            assert!(panicking.await.is_err(), "its reply is dropped");
            after.await.unwrap().unwrap();
            neighbour.await.unwrap().unwrap();
            let stored = db.read(values).await.unwrap();
            match first.await.unwrap() {
                // Ran before the panic in a savepoint of its own: gone with the batch.
                Err(error) => {
                    assert!(first_runs_once);
                    assert_eq!(error.fault(), Some(Fault::Unavailable), "{error}");
                    assert_eq!(stored, vec![11, 13]);
                }
                Ok(()) => {
                    assert!(!first_runs_once);
                    assert_eq!(stored, vec![10, 11, 13]);
                }
            }
        }
    }

    /// While the writer cannot open its database again (here its directory
    /// is gone), a write is refused at once with a fault that passes (503)
    /// instead of waiting for the fault to end; once the directory is back
    /// the writer serves again by itself, and the refused write left
    /// nothing behind.
    #[tokio::test]
    async fn a_write_is_refused_while_the_writer_cannot_reopen_and_served_after() {
        let (dir, db) = scratch_database().await;
        let away = dir.path().with_extension("away");
        std::fs::rename(dir.path(), &away).unwrap();
        let panicked = db
            .write(|_conn| -> Result<(), DbError> {
                panic!("a bug that leaves the writer to reopen")
            })
            .await;
        assert!(matches!(panicked, Err(DbError::Commit(_))), "{panicked:?}");
        // Bounded only so that a writer that never answers fails the test
        // instead of hanging it.
        let refused = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            db.write(|conn| insert(conn, 1)),
        )
        .await
        .expect("the write waited for the database to come back");
        let error = refused.expect_err("the writer has no database to write to");
        assert_eq!(
            error.fault(),
            Some(crate::db::Fault::Unavailable),
            "{error}"
        );

        std::fs::rename(&away, dir.path()).unwrap();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let written = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                db.write(|conn| insert(conn, 2)),
            )
            .await
            .expect("the write waited for the database to come back");
            match written {
                Ok(()) => break,
                Err(error) if attempts < 100 => {
                    assert_eq!(
                        error.fault(),
                        Some(crate::db::Fault::Unavailable),
                        "{error}"
                    );
                    tokio::time::sleep(super::REOPEN_PAUSE).await;
                }
                Err(error) => panic!("the writer did not come back: {error}"),
            }
        }
        assert_eq!(db.read(values).await.unwrap(), vec![2]);
    }

    /// A write that panics fails (its caller is told), takes its batch's
    /// uncommitted work with it, and the writer keeps serving.
    #[tokio::test]
    async fn a_panicking_write_does_not_stop_the_writer() {
        let (_dir, db) = scratch_database().await;
        let panicked = db
            .write(|conn| -> Result<(), DbError> {
                insert(conn, 1)?;
                panic!("a bug in a handler");
            })
            .await;
        assert!(matches!(panicked, Err(DbError::Commit(_))));
        db.write(|conn| insert(conn, 2)).await.unwrap();
        assert_eq!(db.read(rows).await.unwrap(), 1);
    }
}
