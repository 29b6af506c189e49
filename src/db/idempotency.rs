//! Idempotency keys: the first answer to a POST, kept so that the same
//! request sent again with the same key (a double click, a retry after a
//! lost connection) gets that answer instead of doing the work twice.
//!
//! The key is taken before the request runs (a row without a status), so
//! a second request racing the first finds it and waits; the database's
//! primary key decides which of two simultaneous requests goes first, on
//! either backend and across instances sharing one PostgreSQL.
//!
//! Each function here is one transaction of its own, run through
//! [`Database`] (the `Idempotency-Key` middleware calls them around the
//! request it guards).

use diesel::prelude::*;

use super::schema::idempotency_keys as keys;
use super::{AnyConnection, Database, DbResult};
use crate::clock;

/// How long a key is remembered.
pub const KEY_LIFETIME_MICROS: i64 = 24 * 3600 * 1_000_000;
/// A request that took its key this long ago and never answered died with
/// its process; a retry may take the key over.
pub const ABANDONED_AFTER_MICROS: i64 = 60 * 1_000_000;

/// A stored answer.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub status: i32,
    /// The replayed headers, as a JSON object of name → value.
    pub headers: String,
    pub body: Vec<u8>,
}

/// What a request carrying a key may do.
#[derive(Debug)]
pub enum Claim {
    /// The key is new (or expired, or abandoned): run the request.
    Run,
    /// The same request was answered before: send this again.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Mismatch,
    /// The same request is running now.
    InFlight,
}

/// When the key was taken, and by which request.
struct KeyUse<'a> {
    pub user_id: i64,
    pub key: &'a str,
    /// Hash of the method, path, query and body.
    pub fingerprint: &'a str,
    pub now: i64,
    /// Keys older than this are forgotten (24 hours).
    pub expired_before: i64,
    /// A request that took its key before this and never answered died
    /// with its process: its key may be taken again.
    pub abandoned_before: i64,
}

type KeyRow = (String, i64, Option<i32>, Option<String>, Option<Vec<u8>>);

/// Takes `key` for a request of `user_id` with this `fingerprint` (a hash
/// of its method, path, query and body), or says why not.
pub async fn claim(db: &Database, user_id: i64, key: &str, fingerprint: &str) -> DbResult<Claim> {
    let key = key.to_owned();
    let fingerprint = fingerprint.to_owned();
    db.write(move |conn| {
        // The time the write runs, not the time it was queued.
        let now = clock::now_micros();
        claim_in(
            conn,
            &KeyUse {
                user_id,
                key: &key,
                fingerprint: &fingerprint,
                now,
                expired_before: now - KEY_LIFETIME_MICROS,
                abandoned_before: now - ABANDONED_AFTER_MICROS,
            },
        )
    })
    .await
}

fn claim_in(conn: &mut AnyConnection, key_use: &KeyUse<'_>) -> DbResult<Claim> {
    let this = keys::table
        .filter(keys::user_id.eq(key_use.user_id))
        .filter(keys::idempotency_key.eq(key_use.key));
    diesel::delete(this.filter(keys::created_at.lt(key_use.expired_before))).execute(conn)?;
    let insert = diesel::insert_into(keys::table)
        .values((
            keys::user_id.eq(key_use.user_id),
            keys::idempotency_key.eq(key_use.key),
            keys::fingerprint.eq(key_use.fingerprint),
            keys::created_at.eq(key_use.now),
        ))
        .on_conflict_do_nothing();
    if on_backend!(conn, |c| insert.execute(c))? == 1 {
        return Ok(Claim::Run);
    }
    let (fingerprint, created_at, status, headers, body): KeyRow = this
        .select((
            keys::fingerprint,
            keys::created_at,
            keys::status,
            keys::headers,
            keys::body,
        ))
        .first(conn)?;
    if fingerprint != key_use.fingerprint {
        return Ok(Claim::Mismatch);
    }
    match status {
        Some(status) => Ok(Claim::Replay(StoredResponse {
            status,
            headers: headers.unwrap_or_else(|| "{}".to_owned()),
            body: body.unwrap_or_default(),
        })),
        None if created_at < key_use.abandoned_before => {
            let taken_over = diesel::update(
                this.filter(keys::created_at.eq(created_at))
                    .filter(keys::status.is_null()),
            )
            .set(keys::created_at.eq(key_use.now))
            .execute(conn)?;
            Ok(if taken_over == 1 {
                Claim::Run
            } else {
                Claim::InFlight
            })
        }
        None => Ok(Claim::InFlight),
    }
}

/// Keeps the answer of the request that took the key.
pub async fn complete(
    db: &Database,
    user_id: i64,
    key: &str,
    response: StoredResponse,
) -> DbResult<()> {
    let key = key.to_owned();
    db.write(move |conn| complete_in(conn, user_id, &key, &response))
        .await
}

fn complete_in(
    conn: &mut AnyConnection,
    user_id: i64,
    key: &str,
    response: &StoredResponse,
) -> DbResult<()> {
    diesel::update(
        keys::table
            .filter(keys::user_id.eq(user_id))
            .filter(keys::idempotency_key.eq(key)),
    )
    .set((
        keys::status.eq(Some(response.status)),
        keys::headers.eq(Some(&response.headers)),
        keys::body.eq(Some(&response.body)),
    ))
    .execute(conn)?;
    Ok(())
}

/// Gives the key up: the request failed in a way a retry may not (a 5xx).
pub async fn release(db: &Database, user_id: i64, key: &str) -> DbResult<()> {
    let key = key.to_owned();
    db.write(move |conn| release_in(conn, user_id, &key)).await
}

fn release_in(conn: &mut AnyConnection, user_id: i64, key: &str) -> DbResult<()> {
    diesel::delete(
        keys::table
            .filter(keys::user_id.eq(user_id))
            .filter(keys::idempotency_key.eq(key))
            .filter(keys::status.is_null()),
    )
    .execute(conn)?;
    Ok(())
}

/// Forgets every key older than [`KEY_LIFETIME_MICROS`]; returns how many.
pub async fn purge(db: &Database) -> DbResult<usize> {
    db.write(|conn| {
        let expired_before = clock::now_micros() - KEY_LIFETIME_MICROS;
        Ok(
            diesel::delete(keys::table.filter(keys::created_at.lt(expired_before)))
                .execute(conn)?,
        )
    })
    .await
}
