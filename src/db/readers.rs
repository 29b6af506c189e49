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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use diesel::Connection;
use diesel::connection::{SimpleConnection, TransactionManager};

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
