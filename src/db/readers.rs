//! SQLite's readers: a few threads, each owning a connection, taking reads
//! from one queue.
//!
//! A read used to go to tokio's blocking pool (`spawn_blocking`) and take a
//! connection from the r2d2 pool: a task allocated, an idle thread woken for
//! every read, the pool's lock taken twice. SQLite reads are CPU-bound (no
//! round trip to wait on), so a few threads that stay awake while reads are
//! waiting serve them back to back instead, and sleep only when the queue
//! is empty (docs/performance.md has the profile).
//!
//! Each read runs in one read transaction: its statements see one snapshot,
//! and SQLite takes its WAL read lock (a `fcntl` on the shared-memory file)
//! once per read instead of once per statement.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::BigInt;
use diesel::sqlite::Sqlite;
use diesel::{Connection, QueryResult, RunQueryDsl};

use super::{AnyConnection, DbError, DbResult};

/// One caller's read; it answers the caller itself.
type Job = Box<dyn FnOnce(&mut AnyConnection) + Send>;

/// Handle to the reader threads; cloning shares them. They stop when every
/// handle is dropped.
#[derive(Clone)]
pub struct SqliteReaders {
    jobs: mpsc::Sender<Job>,
}

impl SqliteReaders {
    /// Opens `threads` connections and starts a thread for each.
    pub fn start(
        path: &str,
        threads: usize,
        setup: fn(&mut AnyConnection) -> DbResult<()>,
    ) -> DbResult<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let mut conn = AnyConnection::establish(path)?;
            setup(&mut conn)?;
            let queue = Arc::clone(&queue);
            thread::Builder::new()
                .name(format!("sqlite-reader-{index}"))
                .spawn(move || read_loop(conn, &queue))
                .map_err(|e| DbError::Commit(format!("could not start a reader: {e}")))?;
        }
        Ok(Self { jobs })
    }

    /// Queues `work`; the receiver gets its result, or is dropped if the
    /// readers stopped or `work` panicked.
    pub fn submit<T, E, F>(&self, work: F) -> tokio::sync::oneshot::Receiver<Result<T, E>>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(in_read_transaction(conn, work));
        });
        // A send fails only when every reader has stopped: the dropped
        // reply then tells the caller.
        let _ = self.jobs.send(job);
        result
    }
}

fn read_loop(mut conn: AnyConnection, queue: &Mutex<mpsc::Receiver<Job>>) {
    // This thread keeps `conn` for its whole life: what a read found on it
    // holds while the connection's data version does.
    SNAPSHOT_MEMO.with(|memo| *memo.borrow_mut() = Some(SnapshotMemo::default()));
    loop {
        // The lock is held only while waiting for the next job, so one
        // thread waits on the queue and the others on the lock.
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = next else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| job(&mut conn))).is_err() {
            // The read's transaction may still be open: end it, so the
            // connection does not pin an old snapshot of the WAL.
            let _ = conn.batch_execute("ROLLBACK");
        }
    }
}

/// How many answers a reader thread keeps for one data version: the queue,
/// the desk's list and the lists of the organisations whose members are
/// reading (a page of 20 cases is some 40 KiB; the oldest goes first).
const MEMO_ENTRIES: usize = 64;

thread_local! {
    /// Set on reader threads only: elsewhere a thread may use several
    /// connections, whose data versions cannot be compared.
    static SNAPSHOT_MEMO: RefCell<Option<SnapshotMemo>> = const { RefCell::new(None) };
}

/// Answers read on this thread's connection since the database last changed.
#[derive(Default)]
struct SnapshotMemo {
    data_version: Option<i64>,
    /// (key, answer), both type-erased so one memo serves every kind of read.
    entries: Vec<(Box<dyn Any>, Box<dyn Any>)>,
}

/// `PRAGMA data_version` as a statement the statement cache keeps
/// (`sql_query` is prepared anew every time).
#[derive(Debug, Clone, Copy, QueryId)]
struct DataVersion;

impl QueryFragment<Sqlite> for DataVersion {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("PRAGMA data_version");
        Ok(())
    }
}

impl Query for DataVersion {
    type SqlType = BigInt;
}

impl<Conn> RunQueryDsl<Conn> for DataVersion {}

/// `load`'s answer for `key`, read again only when the database changed
/// since this reader thread last read it. SQLite's `PRAGMA data_version`
/// changes whenever another connection commits (the writer; readers never
/// write), and inside the read transaction it is the version of the
/// snapshot the read sees. Off a reader thread (PostgreSQL, the writer),
/// `load` simply runs.
///
/// For reads that many people repeat between two writes, like the triage
/// queue that every supporter keeps open: decoding its rows was half of the
/// readers' time (docs/performance.md, issue 19's ninth round).
pub(crate) fn memoized<K, V>(
    conn: &mut AnyConnection,
    key: K,
    load: impl FnOnce(&mut AnyConnection) -> DbResult<V>,
) -> DbResult<V>
where
    K: PartialEq + 'static,
    V: Clone + 'static,
{
    if !keeps_answers(conn) {
        return load(conn);
    }
    let AnyConnection::Sqlite(sqlite) = conn else {
        return load(conn);
    };
    let version: i64 = DataVersion.get_result(sqlite)?;
    let found = SNAPSHOT_MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        let memo = memo.as_mut()?;
        if memo.data_version != Some(version) {
            memo.data_version = Some(version);
            memo.entries.clear();
            return None;
        }
        memo.entries.iter().find_map(|(k, v)| {
            (k.downcast_ref::<K>() == Some(&key)).then(|| v.downcast_ref::<V>().cloned())?
        })
    });
    if let Some(answer) = found {
        return Ok(answer);
    }
    let answer = load(conn)?;
    SNAPSHOT_MEMO.with(|memo| {
        if let Some(memo) = memo.borrow_mut().as_mut() {
            if memo.entries.len() >= MEMO_ENTRIES {
                memo.entries.remove(0);
            }
            memo.entries.push((Box::new(key), Box::new(answer.clone())));
        }
    });
    Ok(answer)
}

/// Whether [`memoized`] keeps answers read on `conn` on this thread: on
/// SQLite's reader threads only.
fn keeps_answers(conn: &AnyConnection) -> bool {
    matches!(conn, AnyConnection::Sqlite(_)) && SNAPSHOT_MEMO.with(|memo| memo.borrow().is_some())
}

/// Rows read once for every read of one data version, or for one read.
#[derive(Debug)]
pub struct Shared<T: ?Sized> {
    pub rows: Arc<T>,
    /// Whether the next reads of the same data version on this reader
    /// thread get this very `Arc` ([`memoized`] kept it). False where
    /// nothing is memoized (PostgreSQL, the writer): no one should keep
    /// what was read for one request.
    pub shared: bool,
}

impl<T: ?Sized> Shared<T> {
    /// The rows when they are shared, for whatever is kept beside them.
    pub fn if_shared(&self) -> Option<&Arc<T>> {
        self.shared.then_some(&self.rows)
    }
}

impl<T: ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            rows: Arc::clone(&self.rows),
            shared: self.shared,
        }
    }
}

/// [`memoized`] for rows handed out as one `Arc`, saying whether they are
/// shared: what is derived of shared rows (a written JSON body) can be
/// kept beside them, keyed by the `Arc`'s identity.
pub(crate) fn memoized_shared<K, T>(
    conn: &mut AnyConnection,
    key: K,
    load: impl FnOnce(&mut AnyConnection) -> DbResult<Arc<T>>,
) -> DbResult<Shared<T>>
where
    K: PartialEq + 'static,
    T: ?Sized + 'static,
{
    let shared = keeps_answers(conn);
    Ok(Shared {
        rows: memoized(conn, key, load)?,
        shared,
    })
}

/// Runs `work` in a read transaction. Its statements share one snapshot; a
/// read that fails ends it the same way, as nothing was written.
fn in_read_transaction<T, E, F>(conn: &mut AnyConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<DbError>,
{
    type Manager = <AnyConnection as Connection>::TransactionManager;
    Manager::begin_transaction(conn).map_err(DbError::from)?;
    let result = work(conn);
    match Manager::commit_transaction(conn) {
        Ok(()) => result,
        Err(error) => {
            let _ = Manager::rollback_transaction(conn);
            result.and(Err(DbError::from(error).into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::Connection;

    use crate::db::writer::tests::{insert, rows, scratch_database};
    use crate::db::{AnyConnection, DbError};

    /// A read's statements see one snapshot: a write committed between
    /// them (here by another connection, in the middle of the read) shows
    /// in the next read, not in this one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_sees_one_snapshot() {
        let (dir, db) = scratch_database().await;
        let path = dir.path().join("writer.db").to_string_lossy().into_owned();
        let (before, during) = db
            .read(move |conn| {
                let before = rows(conn)?;
                let mut other = AnyConnection::establish(&path).map_err(DbError::from)?;
                insert(&mut other, 7)?;
                Ok::<_, DbError>((before, rows(conn)?))
            })
            .await
            .unwrap();
        assert_eq!((before, during), (0, 0));
        assert_eq!(db.read(rows).await.unwrap(), 1);
    }

    /// A memoized read is loaded again only after a commit: at most once
    /// per reader thread while nothing changes, and never stale after a
    /// write. Other keys and other threads (the writer) load their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_memoized_read_holds_until_the_next_commit() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use super::memoized;

        let (_dir, db) = scratch_database().await;
        let loads = Arc::new(AtomicUsize::new(0));
        let read = |key: u8| {
            let loads = loads.clone();
            db.read(move |conn| {
                memoized(conn, key, |conn| {
                    loads.fetch_add(1, Ordering::SeqCst);
                    rows(conn)
                })
            })
        };
        const READERS: usize = 4; // scratch_database's pool size
        for _ in 0..40 {
            assert_eq!(read(1).await.unwrap(), 0);
        }
        let first = loads.load(Ordering::SeqCst);
        assert!((1..=READERS).contains(&first), "{first} loads for 40 reads");

        db.write(|conn| insert(conn, 1)).await.unwrap();
        for _ in 0..40 {
            assert_eq!(read(1).await.unwrap(), 1, "no stale answer after a write");
        }
        let second = loads.load(Ordering::SeqCst) - first;
        assert!(
            (1..=READERS).contains(&second),
            "{second} loads after a write"
        );

        assert_eq!(read(2).await.unwrap(), 1);
        assert_eq!(
            loads.load(Ordering::SeqCst),
            first + second + 1,
            "a new key loads"
        );

        let before = loads.load(Ordering::SeqCst);
        for _ in 0..3 {
            let loads = loads.clone();
            db.write(move |conn| {
                memoized(conn, 1u8, |conn| {
                    loads.fetch_add(1, Ordering::SeqCst);
                    rows(conn)
                })
            })
            .await
            .unwrap();
        }
        assert_eq!(
            loads.load(Ordering::SeqCst),
            before + 3,
            "the writer never memoizes"
        );
    }

    /// A reader thread keeps as many answers as there are organisations'
    /// lists and queues in use at once (`MEMO_ENTRIES`): reading them all
    /// round after round loads each at most once per reader thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_keeps_an_answer_per_key_in_use() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use super::{MEMO_ENTRIES, memoized};

        let (_dir, db) = scratch_database().await;
        let loads = Arc::new(AtomicUsize::new(0));
        const READERS: usize = 4; // scratch_database's pool size
        for _round in 0..10 {
            for key in 0..MEMO_ENTRIES {
                let loads = loads.clone();
                let answer = db
                    .read(move |conn| {
                        memoized(conn, key, |conn| {
                            loads.fetch_add(1, Ordering::SeqCst);
                            rows(conn)
                        })
                    })
                    .await
                    .unwrap();
                assert_eq!(answer, 0);
            }
        }
        let loaded = loads.load(Ordering::SeqCst);
        assert!(
            (MEMO_ENTRIES..=MEMO_ENTRIES * READERS).contains(&loaded),
            "{loaded} loads for 10 rounds of {MEMO_ENTRIES} keys"
        );
    }

    /// Shared rows are one `Arc` per reader thread and data version, and
    /// say so; the writer's are its own and say that too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_rows_are_the_same_arc_until_the_next_commit() {
        use std::sync::Arc;

        use super::{Shared, memoized_shared};

        let (_dir, db) = scratch_database().await;
        async fn read(db: &crate::db::Database) -> Result<Shared<i64>, DbError> {
            db.read(|conn| memoized_shared(conn, 1u8, |conn| Ok(Arc::new(rows(conn)?))))
                .await
        }
        const READERS: usize = 4; // scratch_database's pool size
        let mut seen: Vec<Shared<i64>> = Vec::new();
        for _ in 0..40 {
            let answer = read(&db).await.unwrap();
            assert!(answer.shared);
            assert_eq!(*answer.rows, 0);
            if !seen.iter().any(|s| Arc::ptr_eq(&s.rows, &answer.rows)) {
                seen.push(answer);
            }
        }
        assert!(
            (1..=READERS).contains(&seen.len()),
            "{} distinct Arcs for 40 reads",
            seen.len()
        );

        db.write(|conn| insert(conn, 1)).await.unwrap();
        let after = read(&db).await.unwrap();
        assert_eq!(*after.rows, 1, "no stale rows after a write");
        assert!(!seen.iter().any(|s| Arc::ptr_eq(&s.rows, &after.rows)));

        let written = db
            .write(|conn| memoized_shared(conn, 1u8, |conn| Ok(Arc::new(rows(conn)?))))
            .await
            .unwrap();
        assert!(!written.shared, "the writer shares nothing");
    }

    /// A read that panics answers its caller with an error (a 500, not a
    /// hang), and the readers go on serving the next reads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_read_fails_alone() {
        let (_dir, db) = scratch_database().await;
        db.write(|conn| insert(conn, 1)).await.unwrap();
        let failed = db
            .read(|_conn| -> Result<i64, DbError> { panic!("a bug in a read") })
            .await
            .unwrap_err();
        assert!(failed.to_string().contains("without an answer"), "{failed}");
        assert_eq!(failed.fault(), None);
        // More reads than reader threads: every reader is still alive.
        for _ in 0..8 {
            assert_eq!(db.read(rows).await.unwrap(), 1);
        }
    }
}
