//! The connection pool's manager: r2d2 as diesel sets it up, except that a
//! connection whose last work succeeded moments ago is handed out without
//! the `SELECT 1` r2d2 otherwise sends before every checkout. On PostgreSQL
//! that ping was a round trip, and a statement the server parses and runs,
//! for every request.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use diesel::r2d2::{ConnectionManager, ManageConnection};

use super::AnyConnection;

/// How long after a success a connection is trusted without a ping. A fault
/// since then (the server restarting) fails the next work on it, which
/// answers 503 and takes the trust away: the checkout after pings it, and
/// the pool replaces it if the ping fails.
const TRUSTED_AFTER_SUCCESS: Duration = Duration::from_secs(1);

/// A pooled connection and when work on it last succeeded.
pub struct Connection {
    conn: AnyConnection,
    succeeded_at: Option<Instant>,
}

impl Connection {
    /// Notes how the work just done on this connection ended.
    pub fn note_outcome(&mut self, succeeded: bool) {
        self.succeeded_at = succeeded.then(Instant::now);
    }
}

impl Deref for Connection {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

/// Makes, checks and discards the pool's connections.
#[derive(Debug)]
pub struct Connections(ConnectionManager<AnyConnection>);

impl Connections {
    pub fn new(url: String) -> Self {
        Self(ConnectionManager::new(url))
    }
}

impl ManageConnection for Connections {
    type Connection = Connection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Connection, Self::Error> {
        Ok(Connection {
            conn: self.0.connect()?,
            succeeded_at: None,
        })
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), Self::Error> {
        match conn.succeeded_at {
            Some(at) if at.elapsed() < TRUSTED_AFTER_SUCCESS => Ok(()),
            _ => self.0.is_valid(&mut conn.conn),
        }
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        self.0.has_broken(&mut conn.conn)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::connection::{Connection as _, InstrumentationEvent};

    use super::*;

    /// A connection from `manager` and how many statements it has run since.
    fn counted(manager: &Connections) -> (Connection, Arc<AtomicUsize>) {
        let mut conn = manager.connect().unwrap();
        let statements = Arc::new(AtomicUsize::new(0));
        let seen = statements.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { .. } = event {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
        (conn, statements)
    }

    #[test]
    fn a_connection_is_pinged_unless_its_last_work_succeeded_just_now() {
        let manager = Connections::new(":memory:".into());
        let (mut conn, statements) = counted(&manager);
        let pings = |conn: &mut Connection| {
            let before = statements.load(Ordering::SeqCst);
            manager.is_valid(conn).unwrap();
            statements.load(Ordering::SeqCst) - before
        };
        assert_eq!(pings(&mut conn), 1, "a new connection is pinged");
        conn.note_outcome(true);
        assert_eq!(pings(&mut conn), 0, "trusted just after a success");
        conn.note_outcome(false);
        assert_eq!(pings(&mut conn), 1, "a failure takes the trust away");
        conn.note_outcome(true);
        conn.succeeded_at = Some(Instant::now() - TRUSTED_AFTER_SUCCESS * 2);
        assert_eq!(pings(&mut conn), 1, "the trust runs out");
    }
}
