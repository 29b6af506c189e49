//! Message notices (`domain::notice`): per case and person, the latest
//! notice of new messages — when it goes or went, how many messages it
//! tells of, and its outbox row.

use diesel::prelude::*;

use super::schema::message_notices;
use super::{AnyConnection, DbResult};
use crate::domain::notice::Notice;

/// A person's latest notice about a case, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
pub struct NoticeRow {
    pub due_at: i64,
    pub messages: i32,
    pub outbox_id: Option<i64>,
}

impl NoticeRow {
    /// The notice, or None before the first one.
    pub fn notice(self) -> Option<Notice> {
        (self.messages > 0).then_some(Notice {
            due_at: self.due_at,
            messages: self.messages,
        })
    }
}

/// The person's notice row about the case, locked until the transaction
/// ends (call inside one). A first message creates it empty (no messages),
/// so that there is always a row to lock: on PostgreSQL a second writer
/// waits here for the first to commit and then reads what it decided
/// (`INSERT … ON CONFLICT DO NOTHING` waits for a conflicting insert too),
/// instead of both deciding from the same old state; SQLite's single writer
/// runs one write at a time anyway. Callers lock a case's rows in the order
/// of user ids, so two writers cannot deadlock.
pub fn lock(conn: &mut AnyConnection, case_id: i64, user_id: i64) -> DbResult<NoticeRow> {
    let insert = diesel::insert_into(message_notices::table)
        .values((
            message_notices::case_id.eq(case_id),
            message_notices::user_id.eq(user_id),
            message_notices::due_at.eq(0_i64),
            message_notices::messages.eq(0),
            message_notices::outbox_id.eq(None::<i64>),
        ))
        .on_conflict_do_nothing();
    on_backend!(conn, |c| insert.execute(c))?;
    let query = message_notices::table.find((case_id, user_id)).select((
        message_notices::due_at,
        message_notices::messages,
        message_notices::outbox_id,
    ));
    Ok(match conn {
        AnyConnection::Postgres(c) => query.for_update().first(c)?,
        AnyConnection::Sqlite(c) => query.first(c)?,
    })
}

/// Stores the person's latest notice about the case (its row is locked).
pub fn set(
    conn: &mut AnyConnection,
    case_id: i64,
    user_id: i64,
    notice: Notice,
    outbox_id: i64,
) -> DbResult<()> {
    diesel::update(message_notices::table.find((case_id, user_id)))
        .set((
            message_notices::due_at.eq(notice.due_at),
            message_notices::messages.eq(notice.messages),
            message_notices::outbox_id.eq(Some(outbox_id)),
        ))
        .execute(conn)?;
    Ok(())
}
