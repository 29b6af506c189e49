//! PostgreSQL work gathered: the requests waiting at a moment go to the
//! database as one statement (case reads) or a few (intakes,
//! `desk::cases`).
//!
//! A case read on PostgreSQL is one statement of ≈ 15 µs in the database
//! inside a round trip that costs far more: the loopback TCP both ways and
//! the wake-ups of the backend and of a blocking thread. In issue 19's
//! twentieth round the statement's call was 38 % of medesk's samples in a
//! read, most of it libpq sending and receiving through the kernel, and the
//! database spent ≈ 110 µs of CPU per read. Like the SQLite writer's group
//! commit, a thread takes every read that is waiting when it comes free and
//! asks for all of them in one statement: under load one round trip serves
//! many reads, and a read alone goes at once.
//!
//! A gathered read sees what was committed when its statement ran, which is
//! after the caller asked: no older than a read of its own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use diesel::r2d2::Pool;

use super::{AnyConnection, DbError, DbResult, pool};

/// The most requests answered together.
const MOST_PER_STATEMENT: usize = 64;

/// Answers `keys` (one per waiting caller, repeats included) together: one
/// answer per key, in the order of `keys`. An error fails every caller.
/// Each thread runs a clone of its own, so a load may keep state between
/// its statements (the intakes' reserved case numbers).
pub trait Load<K, V>:
    FnMut(&mut AnyConnection, &[K]) -> DbResult<Vec<V>> + Clone + Send + 'static
{
}

impl<K, V, F> Load<K, V> for F where
    F: FnMut(&mut AnyConnection, &[K]) -> DbResult<Vec<V>> + Clone + Send + 'static
{
}

/// One caller's key and where its answer goes.
type Waiting<K, V> = (K, tokio::sync::oneshot::Sender<DbResult<V>>);

/// Handle to the gathering threads; cloning shares them. They stop when
/// every handle is dropped.
pub struct Gathered<K, V> {
    waiting: mpsc::Sender<Waiting<K, V>>,
}

impl<K, V> Clone for Gathered<K, V> {
    fn clone(&self) -> Self {
        Self {
            waiting: self.waiting.clone(),
        }
    }
}

impl<K, V> Gathered<K, V>
where
    K: Send + 'static,
    V: Send + 'static,
{
    /// Starts `threads` threads that answer with `load` on connections of
    /// `pool`, each holding one only while its statement runs.
    pub fn start(
        name: &str,
        threads: usize,
        pool: Pool<pool::Connections>,
        load: impl Load<K, V>,
    ) -> DbResult<Self> {
        let (waiting, queue) = mpsc::channel::<Waiting<K, V>>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let pool = pool.clone();
            let load = load.clone();
            thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || gather_loop(&queue, &pool, load))
                .map_err(|e| DbError::Commit(format!("could not start {name}: {e}")))?;
        }
        Ok(Self { waiting })
    }

    /// The answer for `key`, with whatever else is waiting.
    pub async fn get(&self, key: K) -> DbResult<V> {
        self.ask(key).await
    }

    /// Queues `key` now; the answer comes when the returned future is
    /// awaited.
    fn ask(&self, key: K) -> impl Future<Output = DbResult<V>> + use<K, V> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        // A send fails only when every thread has stopped: the dropped
        // reply then tells the caller.
        let _ = self.waiting.send((key, reply));
        async move {
            answer.await.unwrap_or_else(|_| {
                Err(DbError::Commit(
                    "a gathered read ended without an answer (it panicked)".into(),
                ))
            })
        }
    }
}

fn gather_loop<K, V>(
    queue: &Mutex<mpsc::Receiver<Waiting<K, V>>>,
    pool: &Pool<pool::Connections>,
    mut load: impl Load<K, V>,
) {
    loop {
        let batch = {
            // One thread waits on the queue, the others on the lock; the
            // one that got the first read takes the others waiting with it.
            let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
            let Ok(first) = queue.recv() else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MOST_PER_STATEMENT {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        // A panic in `load` drops the replies: each caller hears of it.
        let _ = catch_unwind(AssertUnwindSafe(|| answer(batch, pool, &mut load)));
    }
}

/// Answers the keys of `batch` together and each caller its own.
fn answer<K, V>(
    batch: Vec<Waiting<K, V>>,
    pool: &Pool<pool::Connections>,
    load: &mut impl Load<K, V>,
) {
    let (keys, replies): (Vec<K>, Vec<_>) = batch.into_iter().unzip();
    let loaded = pool.get().map_err(DbError::from).and_then(|mut conn| {
        let loaded = load(&mut conn, &keys);
        conn.note_outcome(loaded.is_ok());
        loaded
    });
    match loaded {
        Ok(answers) => {
            let mut answers = answers.into_iter();
            for reply in replies {
                let answer = answers
                    .next()
                    .ok_or_else(|| DbError::Commit("a gathered statement lost a key".into()));
                let _ = reply.send(answer);
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for reply in replies {
                let _ = reply.send(Err(DbError::Shared(Arc::clone(&error))));
            }
        }
    }
}

/// Runs `items` together with `run`, one answer per item. When that fails
/// for a reason other than a fault of the database (a constraint, a row
/// gone), runs each item alone, so that the others still get their answer
/// and the failing one its own error; a fault fails every item, since the
/// database is what failed.
pub fn together_or_alone<T, V>(
    items: &[T],
    mut run: impl FnMut(&[T]) -> DbResult<Vec<V>>,
) -> DbResult<Vec<DbResult<V>>> {
    match run(items) {
        Ok(answers) => Ok(answers.into_iter().map(Ok).collect()),
        Err(error) if error.fault().is_some() || items.len() == 1 => Err(error),
        Err(_) => items
            .iter()
            .map(|item| {
                let alone = run(std::slice::from_ref(item));
                match alone {
                    Err(error) if error.fault().is_some() => Err(error),
                    alone => Ok(alone.and_then(|answers| {
                        answers.into_iter().next().ok_or_else(|| {
                            DbError::Commit("a statement of one item answered nothing".into())
                        })
                    })),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};

    use diesel::r2d2::Pool;

    use super::*;
    use crate::db::{Fault, pool};

    fn one_connection() -> Pool<pool::Connections> {
        Pool::builder()
            .max_size(1)
            .build(pool::Connections::new(":memory:".into()))
            .unwrap()
    }

    /// A gate the first statement waits at, so that reads queue behind it.
    struct Gate {
        open: Mutex<(bool, bool)>,
        changed: Condvar,
    }

    impl Gate {
        const fn new() -> Self {
            Gate {
                open: Mutex::new((false, false)),
                changed: Condvar::new(),
            }
        }

        /// In the statement: says it arrived, then waits to be let through.
        fn arrive_and_wait(&self) {
            let mut state = self.open.lock().unwrap();
            state.0 = true;
            self.changed.notify_all();
            while !state.1 {
                state = self.changed.wait(state).unwrap();
            }
        }

        fn wait_for_arrival(&self) {
            let mut state = self.open.lock().unwrap();
            while !state.0 {
                state = self.changed.wait(state).unwrap();
            }
        }

        fn let_through(&self) {
            self.open.lock().unwrap().1 = true;
            self.changed.notify_all();
        }
    }

    static HELD_GATE: Gate = Gate::new();
    static HELD_STATEMENTS: Mutex<Vec<Vec<i64>>> = Mutex::new(Vec::new());

    /// Key × 10; the statement with key 0 waits at the gate.
    fn held_load(_: &mut AnyConnection, keys: &[i64]) -> DbResult<Vec<i64>> {
        HELD_STATEMENTS.lock().unwrap().push(keys.to_vec());
        if keys.contains(&0) {
            HELD_GATE.arrive_and_wait();
        }
        Ok(keys.iter().map(|k| k * 10).collect())
    }

    #[tokio::test]
    async fn reads_waiting_behind_a_statement_go_together_in_the_next() {
        let gathered = Gathered::start("test-held", 1, one_connection(), held_load).unwrap();
        let first = gathered.ask(0);
        let first = tokio::spawn(first);
        HELD_GATE.wait_for_arrival();
        let waiting: Vec<_> = [5, 3, 7, 3].into_iter().map(|k| gathered.ask(k)).collect();
        HELD_GATE.let_through();

        assert_eq!(first.await.unwrap().unwrap(), 0);
        let mut answers = Vec::new();
        for answer in waiting {
            answers.push(answer.await.unwrap());
        }
        assert_eq!(answers, [50, 30, 70, 30], "each caller gets its own key's");
        assert_eq!(
            *HELD_STATEMENTS.lock().unwrap(),
            [vec![0], vec![5, 3, 7, 3]],
            "one statement for the waiting reads, one key per caller"
        );
        assert_eq!(
            gathered.get(9).await.unwrap(),
            90,
            "a read alone goes by itself"
        );
    }

    fn failing_load(_: &mut AnyConnection, _: &[i64]) -> DbResult<Vec<i64>> {
        Err(DbError::Commit(
            "server closed the connection unexpectedly".into(),
        ))
    }

    #[tokio::test]
    async fn a_failed_statement_answers_each_caller_with_its_fault() {
        let gathered = Gathered::start("test-failing", 1, one_connection(), failing_load).unwrap();
        let asked: Vec<_> = [1, 2, 2].into_iter().map(|k| gathered.ask(k)).collect();
        for answer in asked {
            let error = answer.await.unwrap_err();
            assert_eq!(error.fault(), Some(Fault::Unavailable), "{error}");
        }
    }

    fn panicking_load(_: &mut AnyConnection, keys: &[i64]) -> DbResult<Vec<i64>> {
        assert!(!keys.contains(&13), "a bug in a statement");
        Ok(keys.to_vec())
    }

    #[tokio::test]
    async fn a_panic_answers_its_callers_and_the_next_reads_are_served() {
        let gathered =
            Gathered::start("test-panicking", 1, one_connection(), panicking_load).unwrap();
        let error = gathered.get(13).await.unwrap_err();
        assert_eq!(error.fault(), None, "a bug, not a fault: {error}");
        assert_eq!(gathered.get(4).await.unwrap(), 4);
    }

    fn short_load(_: &mut AnyConnection, keys: &[i64]) -> DbResult<Vec<i64>> {
        Ok(keys[1..].to_vec())
    }

    #[tokio::test]
    async fn a_statement_that_loses_a_key_answers_its_caller_with_an_error() {
        let gathered = Gathered::start("test-short", 1, one_connection(), short_load).unwrap();
        assert!(gathered.get(1).await.is_err());
    }

    /// A refusal of one item among many: the statement of all fails, each
    /// alone then succeeds but that one.
    fn refusing_seven(items: &[i64]) -> DbResult<Vec<i64>> {
        if items.contains(&7) {
            Err(DbError::Commit("violates foreign key constraint".into()))
        } else {
            Ok(items.iter().map(|i| i * 2).collect())
        }
    }

    #[test]
    fn one_refused_item_among_many_fails_alone() {
        let mut statements = Vec::new();
        let answers = together_or_alone(&[1, 7, 3], |items| {
            statements.push(items.to_vec());
            refusing_seven(items)
        })
        .unwrap();
        assert_eq!(answers[0].as_ref().unwrap(), &2);
        assert!(answers[1].is_err());
        assert_eq!(answers[2].as_ref().unwrap(), &6);
        assert_eq!(statements, [vec![1, 7, 3], vec![1], vec![7], vec![3]]);

        let together = together_or_alone(&[1, 3], refusing_seven).unwrap();
        assert_eq!(
            together.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [2, 6],
            "no refusal: one statement answers all"
        );
    }

    #[test]
    fn a_fault_fails_every_item_without_running_them_alone() {
        let mut runs = 0;
        let error = together_or_alone(&[1, 2, 3], |_| -> DbResult<Vec<i64>> {
            runs += 1;
            Err(DbError::Commit(
                "server closed the connection unexpectedly".into(),
            ))
        })
        .unwrap_err();
        assert_eq!(error.fault(), Some(Fault::Unavailable));
        assert_eq!(runs, 1);
    }
}
