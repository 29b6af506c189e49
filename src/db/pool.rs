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
    use super::*;

    fn sqlite() -> Connection {
        Connections::new(":memory:".into()).connect().unwrap()
    }

    #[test]
    fn a_connection_is_trusted_only_just_after_a_success() {
        let manager = Connections::new(":memory:".into());
        let mut conn = sqlite();
        assert!(
            conn.succeeded_at.is_none(),
            "a new connection is pinged first"
        );
        conn.note_outcome(true);
        assert!(conn.succeeded_at.is_some());
        assert!(manager.is_valid(&mut conn).is_ok());
        conn.note_outcome(false);
        assert!(
            conn.succeeded_at.is_none(),
            "a failure takes the trust away"
        );
        conn.succeeded_at = Some(Instant::now() - TRUSTED_AFTER_SUCCESS * 2);
        assert!(manager.is_valid(&mut conn).is_ok(), "pinged: alive");
    }
}
