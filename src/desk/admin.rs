//! Desk administration: the access log and the mail outbox (admins only).

use anyhow::anyhow;

use super::{Desk, DeskError};
use crate::clock;
use crate::db::cases::{self as store, AccessRow};
pub use crate::db::outbox::MailState;
use crate::db::outbox::{self, OutboxRow};
use crate::domain::role::{Caller, Role};

/// Who reads the access log and runs the outbox.
pub const ADMINS: &[Role] = &[Role::Admin];

/// Page sizes of the admin views.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

/// One page, newest first.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The id to pass as `before` for the next page; None on the last.
    pub next_cursor: Option<i64>,
}

fn check_limit(limit: i64) -> Result<(), DeskError> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(DeskError::field(
            "limit",
            format!("must be from 1 to {MAX_LIMIT}"),
        ))
    }
}

fn page<R, T>(
    rows: Vec<R>,
    limit: i64,
    id: impl Fn(&R) -> i64,
    item: impl Fn(R) -> Result<T, DeskError>,
) -> Result<Page<T>, DeskError> {
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(&id))
        .flatten();
    Ok(Page {
        items: rows.into_iter().map(item).collect::<Result<_, _>>()?,
        next_cursor,
    })
}

// ---------------------------------------------------------------- access log

/// Which reads of case text to list.
#[derive(Debug, Clone)]
pub struct AccessLogQuery {
    pub case_id: Option<i64>,
    pub user_id: Option<i64>,
    /// A `next_cursor` of the previous page.
    pub before: Option<i64>,
    pub limit: i64,
}

/// Who read which case's text, and when.
#[derive(Debug)]
pub struct AccessEntry {
    pub row: AccessRow,
    /// The reader's role.
    pub user_role: Role,
}

/// The access log, newest first, by case and/or reader.
pub async fn access_log(
    desk: &Desk,
    caller: Caller,
    query: AccessLogQuery,
) -> Result<Page<AccessEntry>, DeskError> {
    caller.require(ADMINS)?;
    check_limit(query.limit)?;
    let AccessLogQuery {
        case_id,
        user_id,
        before,
        limit,
    } = query;
    let rows = desk
        .read(move |conn| Ok(store::access_log(conn, case_id, user_id, before, limit)?))
        .await?;
    page(
        rows,
        limit,
        |row| row.id,
        |row| {
            let user_role = row.user_role.parse().map_err(|_| {
                DeskError::internal(anyhow!(
                    "user {}: unknown role {:?} in the database",
                    row.user_id,
                    row.user_role
                ))
            })?;
            Ok(AccessEntry { row, user_role })
        },
    )
}

// ---------------------------------------------------------------- outbox

/// A mail in the outbox.
#[derive(Debug)]
pub struct Mail {
    pub row: OutboxRow,
    pub state: MailState,
}

fn mail(row: OutboxRow) -> Result<Mail, DeskError> {
    let state = row.state.parse().map_err(|_| {
        DeskError::internal(anyhow!(
            "mail {}: unknown state {:?} in the database",
            row.id,
            row.state
        ))
    })?;
    Ok(Mail { row, state })
}

/// Which mails to list.
#[derive(Debug, Clone)]
pub struct OutboxQuery {
    pub state: Option<MailState>,
    /// A `next_cursor` of the previous page.
    pub before: Option<i64>,
    pub limit: i64,
}

/// The mail outbox with each mail's state and last error, newest first.
pub async fn outbox(
    desk: &Desk,
    caller: Caller,
    query: OutboxQuery,
) -> Result<Page<Mail>, DeskError> {
    caller.require(ADMINS)?;
    check_limit(query.limit)?;
    let OutboxQuery {
        state,
        before,
        limit,
    } = query;
    let rows = desk
        .read(move |conn| Ok(outbox::list(conn, state, before, limit)?))
        .await?;
    page(rows, limit, |row| row.id, mail)
}

/// Queues a failed mail again: due now, with a fresh attempt budget.
pub async fn retry_mail(desk: &Desk, caller: Caller, id: i64) -> Result<Mail, DeskError> {
    caller.require(ADMINS)?;
    let row = desk
        .write_and_mail(move |conn| {
            let row = outbox::find(conn, id)?.ok_or(DeskError::NotFound)?;
            if !outbox::retry_failed(conn, id, clock::now_micros())? {
                return Err(DeskError::conflict(format!(
                    "only failed mails are retried; this one is {}",
                    row.state
                )));
            }
            outbox::find(conn, id)?.ok_or(DeskError::NotFound)
        })
        .await?;
    mail(row)
}
