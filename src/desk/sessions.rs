//! Browser sessions: how the pages recognise a signed-in person.
//!
//! Signing in on a page checks the same account, password hash and attempt
//! limits as the JSON API ([`accounts::check_credentials`]); instead of
//! tokens the browser gets a random session token in a cookie. Only its
//! hash is stored, next to the session's CSRF token. A session ends at
//! sign-out, after [`SessionPolicy::idle`] without a request, or at
//! [`SessionPolicy::lifetime`] after sign-in, whatever happens.

use std::time::Duration;

use super::accounts::{self, Account, Credentials, SignIn};
use super::{Desk, DeskError};
use crate::auth::password::PasswordHasher;
use crate::auth::rate_limit::LoginLimiter;
use crate::auth::tokens;
use crate::clock;
use crate::db::browser_sessions::{self, NewBrowserSession};
use crate::domain::role::Caller;

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// A session unused this long has ended.
    pub idle: Duration,
    /// A session ends this long after sign-in, however active.
    pub lifetime: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: Duration::from_secs(30 * 60),
            lifetime: Duration::from_secs(12 * 3600),
        }
    }
}

/// Activity is written back at most this often, so that reading pages does
/// not turn every request into a write.
const TOUCH_EVERY_MICROS: i64 = 60 * 1_000_000;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    pub account: Account,
    /// Every state-changing form of this session carries it.
    pub csrf_token: String,
}

impl BrowserSession {
    pub fn caller(&self) -> Caller {
        Caller {
            id: self.account.id,
            role: self.account.role,
            organization_id: self.account.organization_id,
        }
    }
}

/// How a sign-in on a page ended.
#[derive(Debug)]
pub enum BrowserSignIn {
    /// The cookie's token (shown once) and the session.
    SignedIn {
        token: String,
        session: BrowserSession,
    },
    Refused,
    Throttled {
        retry_after: Duration,
    },
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Checks the address and password and opens a session.
pub async fn open_browser_session(
    desk: &Desk,
    hasher: &PasswordHasher,
    limiter: &LoginLimiter,
    policy: SessionPolicy,
    command: SignIn,
) -> Result<BrowserSignIn, DeskError> {
    let account = match accounts::check_credentials(desk, hasher, limiter, command).await? {
        Credentials::Valid(account) => account,
        Credentials::Refused => return Ok(BrowserSignIn::Refused),
        Credentials::Throttled { retry_after } => {
            return Ok(BrowserSignIn::Throttled { retry_after });
        }
    };
    let token = tokens::new_refresh_token();
    let csrf_token = tokens::new_refresh_token();
    let token_hash = tokens::hash_refresh_token(&token);
    let user_id = account.id;
    let csrf = csrf_token.clone();
    desk.write(move |conn| {
        let now = clock::now_micros();
        browser_sessions::insert(
            conn,
            &NewBrowserSession {
                token_hash: &token_hash,
                user_id,
                csrf_token: &csrf,
                now,
                expires_at: now.saturating_add(micros(policy.lifetime)),
            },
        )?;
        Ok(())
    })
    .await?;
    tracing::info!(user_id, "browser sign-in");
    Ok(BrowserSignIn::SignedIn {
        token,
        session: BrowserSession {
            account,
            csrf_token,
        },
    })
}

/// The live session a cookie's token opens, if any; records the activity
/// unless the request is not the person's (`activity` false: a page
/// refreshing itself in the background keeps no session alive).
pub async fn browser_session(
    desk: &Desk,
    policy: SessionPolicy,
    token: String,
    activity: bool,
) -> Result<Option<BrowserSession>, DeskError> {
    let token_hash = tokens::hash_refresh_token(&token);
    let now = clock::now_micros();
    let idle_since = now.saturating_sub(micros(policy.idle));
    let lookup_hash = token_hash.clone();
    let Some(live) = desk
        .read(move |conn| {
            Ok(browser_sessions::find_live(
                conn,
                &lookup_hash,
                now,
                idle_since,
            )?)
        })
        .await?
    else {
        return Ok(None);
    };
    if activity && now - live.last_seen_at >= TOUCH_EVERY_MICROS {
        desk.write(move |conn| Ok(browser_sessions::touch(conn, &token_hash, now)?))
            .await?;
    }
    Ok(Some(BrowserSession {
        account: accounts::account(live.user)?,
        csrf_token: live.csrf_token,
    }))
}

/// Signs a browser out: its token stops working at once.
pub async fn close_browser_session(desk: &Desk, token: String) -> Result<(), DeskError> {
    let token_hash = tokens::hash_refresh_token(&token);
    desk.write(move |conn| Ok(browser_sessions::delete(conn, &token_hash)?))
        .await
}

/// Forgets sessions that ended (run now and then by the server).
pub async fn purge_browser_sessions(
    desk: &Desk,
    policy: SessionPolicy,
) -> Result<usize, DeskError> {
    let now = clock::now_micros();
    let idle_since = now.saturating_sub(micros(policy.idle));
    desk.write(move |conn| Ok(browser_sessions::purge(conn, now, idle_since)?))
        .await
}
