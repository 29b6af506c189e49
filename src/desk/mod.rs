//! The desk's use cases: one function per thing a person does — file a
//! case, claim it, triage it, propose an expert, hold a meeting, read the
//! statistics …
//!
//! Every interface calls these and nothing below them: the JSON handlers in
//! `crate::http` translate a request into a command and the result into a
//! response; the web pages do the same with forms and templates. A use case
//! takes the acting [`Caller`] and a command whose values the domain already
//! checked, decides with the rules of `crate::domain`, and owns everything
//! the change brings with it: its transaction, its timeline events, the
//! statistics rollups, the access log and the mail queued in the same
//! commit. It answers with a typed result or a [`DeskError`].
//!
//! ```text
//!   http (JSON)   pages (HTML)        interfaces: parse, call, present
//!          \        /
//!           desk                      use cases: one transaction each
//!          /    |    \
//!    domain    db    mail             rules · persistence · outbox
//! ```

pub mod accounts;
pub mod admin;
pub mod assignments;
pub mod cases;
mod error;
pub mod experts;
pub mod import;
pub mod meetings;
pub mod open_hours;
pub mod organizations;
mod reads;
pub mod sessions;
pub mod statistics;
pub mod terms;

use std::sync::{Arc, Mutex};

pub use error::{DeskError, check_version};

use crate::auth::sessions::SessionRegistry;
use crate::clock::Clock;
use crate::db::{AnyConnection, Backend, Database};
use crate::domain::access::ListingViews;
pub use crate::domain::role::Caller;
use crate::domain::role::Role;
use crate::mail::MailSignal;
use crate::mail::notify::Notifier;

/// What the use cases work with, shared by every interface and worker.
#[derive(Clone)]
pub struct Desk {
    pub(crate) db: Database,
    /// Builds the mails that changes cause (inside their transactions).
    pub(crate) notifier: Notifier,
    /// Wakes the mail worker after a transaction queued mail.
    pub(crate) mail_signal: MailSignal,
    /// Listings already in the access log (see `domain::access`).
    pub(crate) listing_views: Arc<Mutex<ListingViews>>,
    /// Accounts whose sessions a password reset ended (see
    /// `auth::sessions`).
    pub(crate) sessions: Arc<SessionRegistry>,
    /// The time of use cases whose rules wait (message notices).
    pub(crate) clock: Clock,
    /// The Open Hours rules and the holidays last read (`open_hours`).
    pub(crate) setup: Arc<open_hours::SetupCache>,
}

impl Desk {
    pub fn new(db: Database, notifier: Notifier, mail_signal: MailSignal) -> Self {
        Desk {
            db,
            notifier,
            mail_signal,
            listing_views: Default::default(),
            sessions: Default::default(),
            clock: Clock::system(),
            setup: Default::default(),
        }
    }

    /// Whether an access token of `generation` for `user_id` is still a
    /// session (a password reset ends the older ones); no database work.
    pub fn session_is_current(&self, user_id: i64, generation: i64) -> bool {
        self.sessions.is_current(user_id, generation)
    }

    /// The same desk going by `clock` (tests let time pass with it).
    pub fn with_clock(self, clock: Clock) -> Self {
        Desk { clock, ..self }
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// The database, for the infrastructure around the use cases (mail
    /// worker, reminders, request replay); not for interfaces.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Runs `work` in one write transaction.
    async fn write<T, F>(&self, work: F) -> Result<T, DeskError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DeskError> + Send + 'static,
        T: Send + 'static,
    {
        self.db.write(work).await
    }

    /// Runs `work` in one write transaction, then wakes the mail worker for
    /// the mail it queued.
    async fn write_and_mail<T, F>(&self, work: F) -> Result<T, DeskError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DeskError> + Send + 'static,
        T: Send + 'static,
    {
        let value = self.db.write(work).await?;
        self.mail_signal.queued();
        Ok(value)
    }

    /// [`write_and_mail`](Self::write_and_mail) with `before` run first on
    /// the same connection, outside the transaction on PostgreSQL
    /// (`Database::write_after`). Both may run more than once (on SQLite,
    /// when a write sharing their savepoint fails): they must change
    /// nothing but the database.
    async fn write_and_mail_after<B, T, P, F>(&self, before: P, work: F) -> Result<T, DeskError>
    where
        P: Fn(&mut AnyConnection) -> Result<B, DeskError> + Send + 'static,
        F: Fn(&mut AnyConnection, B) -> Result<T, DeskError> + Send + 'static,
        B: Send + 'static,
        T: Send + 'static,
    {
        let value = self.db.write_after(before, work).await?;
        self.mail_signal.queued();
        Ok(value)
    }

    /// Runs `work` on a pooled read connection.
    async fn read<T, F>(&self, work: F) -> Result<T, DeskError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DeskError> + Send + 'static,
        T: Send + 'static,
    {
        self.db.read(work).await
    }
}

impl Caller {
    /// Refuses unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), DeskError> {
        if self.is_one_of(roles) {
            Ok(())
        } else {
            Err(DeskError::Forbidden("your role may not do this"))
        }
    }
}
