//! Persistence: one connection type over SQLite and PostgreSQL, a pool, the
//! embedded migrations, and the rule that diesel never runs on the async
//! executor threads.

/// Runs the same diesel expression on the concrete connection, for the few
/// statements `MultiConnection` cannot express (multi-row inserts, upserts).
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Sqlite($c) => $body,
            $crate::db::AnyConnection::Postgres($c) => $body,
        }
    };
}

/// Runs an insert of many rows, `$statement` built from `$values`; yields
/// `QueryResult<usize>`. On SQLite one single-row statement per row: it is
/// prepared once and then taken from the statement cache, while a multi-row
/// statement has a new shape for every row count and is parsed afresh each
/// time, and an embedded database has no round trips to save. On PostgreSQL
/// one multi-row statement: one round trip.
macro_rules! insert_rows {
    ($conn:expr, $rows:expr, |$values:ident| $statement:expr) => {
        match $conn {
            $crate::db::AnyConnection::Sqlite(c) => (|| {
                let mut inserted = 0;
                for $values in $rows {
                    inserted += diesel::RunQueryDsl::execute($statement, c)?;
                }
                Ok::<usize, diesel::result::Error>(inserted)
            })(),
            $crate::db::AnyConnection::Postgres(c) => {
                let $values = $rows;
                diesel::RunQueryDsl::execute($statement, c)
            }
        }
    };
}

mod arrays;
pub mod assignments;
pub mod browser_sessions;
mod case_numbers;
pub mod cases;
mod counters;
pub mod duplicates;
pub mod experts;
mod gathered;
mod id_lists;
pub mod idempotency;
pub mod import;
pub mod notices;
pub mod open_hours;
pub mod organizations;
pub mod outbox;
mod pool;
mod readers;
pub mod schema;
pub mod stats;
pub mod tokens;
pub mod users;
mod wal_buffer;
mod writer;

pub use readers::Shared;

use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{CustomizeConnection, Pool};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::Semaphore;

use crate::config::DatabaseUrl;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection type for both backends: models and queries are written once.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("unique constraint violated: {0}")]
    UniqueViolation(String),
    #[error("database error: {0}")]
    Query(diesel::result::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("could not connect: {0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("the write was not committed: {0}")]
    Commit(String),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    UnknownValue(#[from] UnknownStoredValue),
    /// One failure answered to several callers (`gathered`'s reads).
    #[error(transparent)]
    Shared(Arc<DbError>),
}

impl From<diesel::result::Error> for DbError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => DbError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                DbError::UniqueViolation(info.message().to_owned())
            }
            other => DbError::Query(other),
        }
    }
}

/// A code in a row that the domain does not know (a value written by a
/// newer version, or by hand): the row cannot be read safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} {id}: unknown {column} {value:?} in the database")]
pub struct UnknownStoredValue {
    pub table: &'static str,
    pub id: i64,
    pub column: &'static str,
    pub value: String,
}

/// Reads the codes of one stored row into domain types, naming the row and
/// column of a value that does not parse.
pub(crate) struct StoredCodes {
    table: &'static str,
    id: i64,
}

impl StoredCodes {
    pub(crate) fn new(table: &'static str, id: i64) -> Self {
        StoredCodes { table, id }
    }

    pub(crate) fn parse<T: std::str::FromStr>(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<T, UnknownStoredValue> {
        value.parse().map_err(|_| UnknownStoredValue {
            table: self.table,
            id: self.id,
            column,
            value: value.to_owned(),
        })
    }

    pub(crate) fn parse_optional<T: std::str::FromStr>(
        &self,
        column: &'static str,
        value: Option<&str>,
    ) -> Result<Option<T>, UnknownStoredValue> {
        value.map(|v| self.parse(column, v)).transpose()
    }
}

/// A fault of the database, not of the request: it should pass by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The database cannot be reached, is restarting, locked, or lost the
    /// connection: the same request may succeed in a moment.
    Unavailable,
    /// The disk is full: nothing more can be stored until space is freed.
    StorageFull,
}

impl DbError {
    /// Which infrastructure fault this is, if any (None: a bug or a refusal).
    pub fn fault(&self) -> Option<Fault> {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        let message = match self {
            DbError::Shared(error) => return error.fault(),
            DbError::Pool(_) | DbError::Connection(_) => return Some(Fault::Unavailable),
            DbError::Commit(message) => message.as_str(),
            DbError::Query(Error::DatabaseError(kind, info)) => {
                if matches!(
                    kind,
                    Kind::ClosedConnection
                        | Kind::UnableToSendCommand
                        | Kind::SerializationFailure
                        | Kind::ReadOnlyTransaction
                ) {
                    return Some(Fault::Unavailable);
                }
                info.message()
            }
            DbError::Query(Error::BrokenTransactionManager) => return Some(Fault::Unavailable),
            _ => return None,
        };
        fault_in_message(message)
    }
}

/// Faults as SQLite and PostgreSQL word them (neither gives diesel a code).
fn fault_in_message(message: &str) -> Option<Fault> {
    let message = message.to_ascii_lowercase();
    const FULL: [&str; 3] = ["disk is full", "no space left on device", "disk full"];
    const UNAVAILABLE: [&str; 11] = [
        "database is locked",
        // The statement was rolled back and another try may pass: SQLite's
        // and PostgreSQL's words for a memory allocation that failed, and
        // PostgreSQL's for a transaction it chose to end.
        "out of memory",
        "deadlock detected",
        "database table is locked",
        "disk i/o error",
        "terminating connection",
        "the database system is",
        "server closed the connection",
        "connection refused",
        "could not connect",
        "the sqlite writer stopped",
    ];
    if FULL.iter().any(|m| message.contains(m)) {
        Some(Fault::StorageFull)
    } else if UNAVAILABLE.iter().any(|m| message.contains(m)) {
        Some(Fault::Unavailable)
    } else {
        None
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// Per-connection settings, for pooled connections and the SQLite writer.
fn setup_connection(conn: &mut AnyConnection) -> DbResult<()> {
    let sql = match conn {
        // WAL lets readers run beside the writer; NORMAL is durable across
        // application crashes (the WAL is synced at checkpoints).
        AnyConnection::Sqlite(_) => {
            "PRAGMA busy_timeout = 10000;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -512;"
        }
        // No JIT: medesk's statements are short, and a plan whose estimate
        // passes `jit_above_cost` (stale statistics after an import) spent
        // 11 ms compiling a case read that ran in 0.3 ms (issue 19's
        // twentieth round).
        AnyConnection::Postgres(_) => "SET application_name = 'medesk'; SET jit = off",
    };
    Ok(conn.batch_execute(sql)?)
}

#[derive(Debug)]
struct ConnectionSetup;

impl CustomizeConnection<pool::Connection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut pool::Connection) -> Result<(), diesel::r2d2::Error> {
        setup_connection(conn).map_err(|error| match error {
            DbError::Query(error) => diesel::r2d2::Error::QueryError(error),
            other => diesel::r2d2::Error::QueryError(diesel::result::Error::QueryBuilderError(
                other.to_string().into(),
            )),
        })
    }
}

/// On SQLite, how many reads may wait for each reader thread.
const READS_QUEUED_PER_READER: usize = 16;

/// On PostgreSQL, how many case reads go to the database at once, each
/// with every read waiting when it left (gathered.rs). One: a second
/// thread halves the reads each statement serves, and the statement's
/// fixed cost is most of the database's CPU (24,000–26,000 reads/s with
/// one, 18,000 with two, issue 19's twentieth round). A read alone still
/// goes at once.
const CASE_READ_THREADS: usize = 1;

/// Threads that file PostgreSQL's gathered intakes (`cases::file_own`).
/// One: a second lets one batch run while the other commits (+10 % on a
/// machine with slow commits), but halves the batches, so the database
/// spends more per case and two instances on one database fell from
/// 85–93 % to 70–75 % of one (issue 19's twenty-ninth round).
const INTAKE_THREADS: usize = 1;

/// The database handle shared by every request.
#[derive(Clone)]
pub struct Database {
    pool: Pool<pool::Connections>,
    backend: Backend,
    /// Bounds requests waiting for a connection without holding a thread each.
    permits: Arc<Semaphore>,
    /// SQLite has one writer: a thread of its own with group commit
    /// (writer.rs). None on PostgreSQL, where writes run on pooled
    /// connections in transactions of their own.
    sqlite_writer: Option<writer::SqliteWriter>,
    /// SQLite's reads run on threads of their own (readers.rs). None on
    /// PostgreSQL, whose reads wait on round trips and so take a pooled
    /// connection on the blocking pool.
    sqlite_readers: Option<readers::SqliteReaders>,
    /// PostgreSQL's case reads, gathered into one statement per round trip
    /// (gathered.rs). None on SQLite, whose reads have no round trip.
    case_reads: Option<gathered::Gathered<i64, cases::FullCaseRead>>,
    /// PostgreSQL's intakes of applicants, gathered into a statement and a
    /// commit per batch (`cases::file_own`). None on SQLite, whose writer
    /// commits its intakes together already.
    intakes: Option<gathered::Gathered<cases::OwnFiling, DbResult<Option<cases::CaseRow>>>>,
}

impl Database {
    /// Opens the pool and applies pending migrations.
    pub fn connect(url: &DatabaseUrl, pool_size: u32) -> DbResult<Self> {
        let (backend, connection_url) = match url {
            DatabaseUrl::Sqlite(path) => {
                // Before any connection opens, so each one writes its WAL
                // through it.
                wal_buffer::install();
                (Backend::Sqlite, path.clone())
            }
            DatabaseUrl::Postgres(url) => (Backend::Postgres, url.clone()),
        };
        let manager = pool::Connections::new(connection_url.clone());
        let pool = Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            // A database that is down answers 503 after this, not after a long stall.
            .connection_timeout(Duration::from_secs(5))
            .connection_customizer(Box::new(ConnectionSetup))
            .build(manager)?;
        let database = Self {
            pool,
            backend,
            permits: Arc::new(Semaphore::new(match backend {
                // Reads wait in the readers' queue, not on a thread, and a
                // queue keeps the readers busy back to back.
                Backend::Sqlite => pool_size as usize * READS_QUEUED_PER_READER,
                Backend::Postgres => pool_size as usize,
            })),
            sqlite_writer: None,
            sqlite_readers: None,
            case_reads: None,
            intakes: None,
        };
        database.migrate()?;
        let case_reads = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(gathered::Gathered::start(
                "pg-case-reads",
                CASE_READ_THREADS,
                database.pool.clone(),
                cases::find_full_many,
            )?),
        };
        let intakes = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(gathered::Gathered::start(
                "pg-intakes",
                INTAKE_THREADS,
                database.pool.clone(),
                {
                    let mut reserved = cases::ReservedNumbers::default();
                    move |conn: &mut AnyConnection, filings: &[cases::OwnFiling]| {
                        cases::file_own_together(conn, &mut reserved, filings)
                    }
                },
            )?),
        };
        let (sqlite_writer, sqlite_readers) = match backend {
            Backend::Sqlite => (
                Some(writer::SqliteWriter::start(
                    &connection_url,
                    setup_connection,
                )?),
                Some(readers::SqliteReaders::start(
                    &connection_url,
                    pool_size as usize,
                    setup_connection,
                )?),
            ),
            Backend::Postgres => (None, None),
        };
        Ok(Self {
            sqlite_writer,
            sqlite_readers,
            case_reads,
            intakes,
            ..database
        })
    }

    /// Whether applicants' intakes go through [`cases::file_own`]
    /// (PostgreSQL).
    pub fn gathers_intakes(&self) -> bool {
        self.intakes.is_some()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations (blocking; called at start).
    pub fn migrate(&self) -> DbResult<()> {
        let mut conn = self.pool.get()?;
        run_migrations(&mut conn)
    }

    /// Runs read-only work on a pooled connection, off the async threads.
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let Some(readers) = &self.sqlite_readers else {
            return self.on_pooled(work).await;
        };
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        readers.submit(work).await.unwrap_or_else(|_| {
            // Readers run while a handle exists: only a panic of
            // `work` drops its answer. A bug, not a fault (500).
            Err(E::from(DbError::Commit(
                "the read ended without an answer (it panicked)".into(),
            )))
        })
    }

    /// Runs `work` in one transaction, off the async threads; any error rolls
    /// back what it did. On SQLite the writer thread runs it, in a savepoint
    /// of a transaction it may share with other writes (group commit); the
    /// result comes after the commit.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + std::fmt::Display + Send + 'static,
    {
        self.write_in(false, work).await
    }

    /// Like [`write`](Self::write), for a bulk write (an import): on SQLite
    /// it runs in the writer's transaction by itself rather than in a
    /// savepoint of a shared batch (`SqliteWriter::submit`), which
    /// would hold a copy of every page it changes in memory. The same as
    /// `write` on PostgreSQL.
    pub async fn write_alone<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + std::fmt::Display + Send + 'static,
    {
        self.write_in(true, work).await
    }

    /// Like [`write`](Self::write), with `before` run first on the same
    /// connection: on PostgreSQL outside the transaction, so its statements
    /// commit by themselves and hold their locks only that long (a case
    /// number, `reserve_sequence`), without a second connection and its
    /// round trips. On SQLite's writer both run as a write that may run
    /// again (`SqliteWriter::submit_repeatable`): in a savepoint shared with
    /// the writes of the same kind next to it, run again when one of them
    /// fails. `before` and `work` must change nothing but the database.
    pub async fn write_after<B, T, E, P, F>(&self, before: P, work: F) -> Result<T, E>
    where
        P: Fn(&mut AnyConnection) -> Result<B, E> + Send + 'static,
        F: Fn(&mut AnyConnection, B) -> Result<T, E> + Send + 'static,
        B: Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + std::fmt::Display + Send + 'static,
    {
        if let Some(writer) = &self.sqlite_writer {
            let work = move |conn: &mut AnyConnection| {
                let prepared = before(conn)?;
                work(conn, prepared)
            };
            return writer.submit_repeatable(work).await.unwrap_or_else(|_| {
                Err(E::from(DbError::Commit(
                    "the SQLite writer stopped before answering".into(),
                )))
            });
        }
        self.on_pooled(move |conn| {
            let prepared = before(conn)?;
            conn.transaction(|conn| work(conn, prepared))
        })
        .await
    }

    async fn write_in<T, E, F>(&self, alone: bool, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + std::fmt::Display + Send + 'static,
    {
        if let Some(writer) = &self.sqlite_writer {
            return writer.submit(alone, work).await.unwrap_or_else(|_| {
                Err(E::from(DbError::Commit(
                    "the SQLite writer stopped before answering".into(),
                )))
            });
        }
        self.on_pooled(move |conn| conn.transaction(work)).await
    }

    /// Runs `work` on a pooled connection, off the async threads.
    async fn on_pooled<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut pooled = pool.get().map_err(DbError::from)?;
            let result = work(&mut pooled);
            pooled.note_outcome(result.is_ok());
            result
        })
        .await
        .map_err(DbError::from)?
    }

    /// Blocking access for the CLI and start-up (not for request handlers).
    /// On SQLite it writes beside the writer thread, which SQLite's own lock
    /// and busy timeout keep apart; at start-up the writer is idle anyway.
    pub fn write_blocking<T>(
        &self,
        work: impl FnOnce(&mut AnyConnection) -> DbResult<T>,
    ) -> DbResult<T> {
        let mut pooled = self.pool.get()?;
        let conn: &mut AnyConnection = &mut pooled;
        conn.transaction(work)
    }
}

fn run_migrations(conn: &mut AnyConnection) -> DbResult<()> {
    let result = match conn {
        AnyConnection::Sqlite(conn) => conn.run_pending_migrations(SQLITE_MIGRATIONS).map(drop),
        AnyConnection::Postgres(conn) => {
            // Several instances may start at once: one migrates, the others wait.
            conn.batch_execute("SELECT pg_advisory_lock(7243110)")?;
            let result = conn.run_pending_migrations(POSTGRES_MIGRATIONS).map(drop);
            conn.batch_execute("SELECT pg_advisory_unlock(7243110)")?;
            result
        }
    };
    result.map_err(|e| DbError::Migration(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind as Kind, Error};

    fn database_error(kind: Kind, message: &str) -> DbError {
        DbError::Query(Error::DatabaseError(kind, Box::new(message.to_owned())))
    }

    #[test]
    fn lost_or_busy_databases_are_unavailable() {
        for error in [
            database_error(Kind::ClosedConnection, "server closed the connection"),
            database_error(Kind::UnableToSendCommand, "no connection to the server"),
            database_error(Kind::SerializationFailure, "could not serialize access"),
            database_error(
                Kind::Unknown,
                "terminating connection due to administrator command",
            ),
            database_error(Kind::Unknown, "the database system is starting up"),
            database_error(Kind::Unknown, "database is locked"),
            database_error(Kind::Unknown, "out of memory"),
            database_error(Kind::Unknown, "deadlock detected"),
            DbError::Commit("the SQLite writer stopped before answering".into()),
        ] {
            assert_eq!(error.fault(), Some(Fault::Unavailable), "{error}");
        }
    }

    #[test]
    fn a_full_disk_is_storage_full() {
        for error in [
            database_error(Kind::Unknown, "database or disk is full"),
            database_error(
                Kind::Unknown,
                "could not extend file \"base/16384/2619\": No space left on device",
            ),
            DbError::Commit("database or disk is full".into()),
        ] {
            assert_eq!(error.fault(), Some(Fault::StorageFull), "{error}");
        }
    }

    #[test]
    fn refusals_and_bugs_are_not_faults() {
        for error in [
            DbError::NotFound,
            DbError::UniqueViolation("users.email".into()),
            database_error(Kind::ForeignKeyViolation, "FOREIGN KEY constraint failed"),
            database_error(Kind::Unknown, "no such column: nmae"),
            DbError::Query(Error::NotFound),
        ] {
            assert_eq!(error.fault(), None, "{error}");
        }
    }
}

/// A migrated SQLite database in `dir` with one admin account (its id), for
/// unit tests that need real tables.
#[cfg(test)]
mod migration_tests {
    use super::*;
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Nullable, Text};

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Notice {
        #[diesel(sql_type = Nullable<BigInt>)]
        outbox_id: Option<i64>,
    }

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Sql {
        #[diesel(sql_type = Text)]
        sql: String,
    }

    fn outbox_schema(conn: &mut SqliteConnection) -> Vec<String> {
        diesel::sql_query(
            "SELECT sql FROM sqlite_schema WHERE tbl_name = 'outbox' AND sql IS NOT NULL ORDER BY name",
        )
        .load::<Sql>(conn)
        .unwrap()
        .into_iter()
        .map(|row| row.sql)
        .collect()
    }

    /// The outbox rebuilt without AUTOINCREMENT keeps every mail and the
    /// waiting message notices' links to theirs, which dropping the old
    /// table (foreign keys on) would have set to NULL.
    #[test]
    fn the_lighter_outbox_keeps_mails_and_the_notices_that_wait_on_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("migrate.db").to_string_lossy().into_owned();
        let mut conn = SqliteConnection::establish(&path).unwrap();
        conn.batch_execute("PRAGMA foreign_keys = ON").unwrap();
        conn.run_pending_migrations(SQLITE_MIGRATIONS).unwrap();
        // Back to before migration 000020, reverting any that came after it.
        while !conn
            .revert_last_migration(SQLITE_MIGRATIONS)
            .unwrap()
            .to_string()
            .ends_with("000020")
        {}
        assert!(outbox_schema(&mut conn)[0].contains("AUTOINCREMENT"));
        conn.batch_execute(
            "INSERT INTO users (id, email, password_hash, name, role, created_at)
                 VALUES (1, 'a@example.com', '!', 'A', 'applicant', 0);
             INSERT INTO organizations (id, name, created_at) VALUES (1, 'Org', 0);
             INSERT INTO cases (id, number, organization_id, title, description, product_type,
                 stage, language, organization_name, organization_kind, status,
                 effective_product_type, received_on, received_at, updated_at)
                 VALUES (1, 'MD-2026-00001', 1, 't', 'd', 'device', 'idea', 'ja', 'Org',
                 'startup', 'submitted', 'device', '2026-12-04', 0, 0);
             INSERT INTO outbox (message_id, kind, case_id, recipient, subject, body_text,
                 next_attempt_at, created_at)
                 VALUES ('<1@medesk>', 'case_submitted_applicant', 1, 'a@example.com', 's', 'b', 0, 0),
                        ('<2@medesk>', 'message_posted', 1, 'a@example.com', 's', 'b', 5, 0);
             INSERT INTO message_notices (case_id, user_id, due_at, messages, outbox_id)
                 VALUES (1, 1, 5, 2, 2);",
        )
        .unwrap();

        conn.run_pending_migrations(SQLITE_MIGRATIONS).unwrap();
        let notices = diesel::sql_query("SELECT outbox_id FROM message_notices")
            .load::<Notice>(&mut conn)
            .unwrap();
        assert_eq!(notices, [Notice { outbox_id: Some(2) }]);
        let kinds: Vec<(i64, String)> = schema::outbox::table
            .select((schema::outbox::id, schema::outbox::kind))
            .order(schema::outbox::id)
            .load(&mut conn)
            .unwrap();
        assert_eq!(
            kinds,
            [
                (1, "case_submitted_applicant".to_owned()),
                (2, "message_posted".to_owned())
            ]
        );
        let outbox = outbox_schema(&mut conn);
        assert!(
            !outbox.iter().any(|sql| sql.contains("AUTOINCREMENT")),
            "{outbox:?}"
        );
        assert!(
            !outbox.iter().any(|sql| sql.contains("UNIQUE")),
            "{outbox:?}"
        );
        assert!(
            outbox.iter().any(|sql| sql.contains("outbox_due")),
            "{outbox:?}"
        );
    }
}

#[cfg(test)]
pub(crate) fn scratch_sqlite_with_admin(dir: &std::path::Path) -> (Database, i64) {
    use crate::domain::account::Locale;
    use crate::domain::role::Role;
    let path = dir.join("scratch.db").to_string_lossy().into_owned();
    let db = Database::connect(&crate::config::DatabaseUrl::Sqlite(path), 4).unwrap();
    db.migrate().unwrap();
    let admin = db
        .write_blocking(|conn| {
            users::insert(
                conn,
                &users::NewUser {
                    email: "admin@scratch.example",
                    password_hash: "!unset",
                    name: "Admin",
                    role: Role::Admin.as_str(),
                    locale: Locale::Ja.as_str(),
                    organization_id: None,
                    created_at: 0,
                },
            )
        })
        .unwrap()
        .id;
    (db, admin)
}

/// A connection to a freshly migrated SQLite database at `path` that notes
/// the SQL of every statement it runs (without the binds), for unit tests of
/// the statements diesel really sends.
#[cfg(test)]
pub(crate) fn recording_sqlite(
    path: &str,
) -> (AnyConnection, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use diesel::connection::{Connection as _, InstrumentationEvent};
    // Migrated by the desk's own start-up.
    drop(Database::connect(&crate::config::DatabaseUrl::Sqlite(path.to_owned()), 2).unwrap());
    let mut sqlite = diesel::SqliteConnection::establish(path).unwrap();
    let statements = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = statements.clone();
    sqlite.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let statement = query.to_string();
            let sql = statement.split(" -- binds:").next().unwrap_or_default();
            seen.lock().unwrap().push(sql.to_owned());
        }
    });
    (AnyConnection::Sqlite(sqlite), statements)
}

/// SQLite's `EXPLAIN QUERY PLAN` of the last statement `statements` noted
/// (see [`recording_sqlite`]): the statement's SQL and its plan's steps.
#[cfg(test)]
pub(crate) fn last_statement_plan(
    conn: &mut AnyConnection,
    statements: &std::sync::Mutex<Vec<String>>,
) -> (String, Vec<String>) {
    #[derive(diesel::QueryableByName)]
    struct Step {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    let sql = statements.lock().unwrap().last().cloned().unwrap();
    let plan = diesel::RunQueryDsl::load::<Step>(
        diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}")),
        conn,
    )
    .unwrap();
    (sql, plan.into_iter().map(|step| step.detail).collect())
}

#[cfg(test)]
mod stored_codes_tests {
    use super::*;
    use crate::domain::vocabulary::CaseStatus;

    #[test]
    fn a_known_code_reads_into_its_enum() {
        let codes = StoredCodes::new("cases", 7);
        assert_eq!(
            codes.parse::<CaseStatus>("status", "triage"),
            Ok(CaseStatus::Triage)
        );
        assert_eq!(
            codes.parse_optional::<CaseStatus>("resume_to", None),
            Ok(None)
        );
    }

    #[test]
    fn an_unknown_code_names_its_table_row_and_column() {
        let error = StoredCodes::new("cases", 7)
            .parse::<CaseStatus>("status", "archived")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cases 7: unknown status \"archived\" in the database"
        );
        // Not a fault of the infrastructure: a 500, logged, not a 503.
        assert_eq!(DbError::from(error).fault(), None);
    }
}
