//! Attempt limits per account and per client address (GCRA via governor):
//! signing in, and asking for a password reset.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{LoginLimits, ResetLimits};

#[derive(Clone)]
pub struct LoginLimiter {
    per_account: Arc<DefaultKeyedRateLimiter<String>>,
    per_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        Self::with_quotas(
            Quota::per_minute(limits.per_account_per_minute),
            Quota::per_minute(limits.per_address_per_minute),
        )
    }

    /// The budgets of password-reset requests (per hour).
    pub fn for_resets(limits: ResetLimits) -> Self {
        Self::with_quotas(
            Quota::per_hour(limits.per_account_per_hour),
            Quota::per_hour(limits.per_address_per_hour),
        )
    }

    fn with_quotas(per_account: Quota, per_address: Quota) -> Self {
        Self {
            per_account: Arc::new(RateLimiter::keyed(per_account)),
            per_address: Arc::new(RateLimiter::keyed(per_address)),
        }
    }

    /// Counts one attempt; `Err(wait)` when either budget is spent.
    pub fn check(&self, account: &str, address: IpAddr) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        let by_address = self.per_address.check_key(&address);
        let by_account = self.per_account.check_key(&account.to_owned());
        let waits = [by_address.err(), by_account.err()]
            .into_iter()
            .flatten()
            .map(|not_until| not_until.wait_time_from(now));
        match waits.max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Drops state for keys that are back to a full budget (called periodically).
    pub fn forget_idle(&self) {
        self.per_account.retain_recent();
        self.per_address.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn limiter(account: u32, address: u32) -> LoginLimiter {
        LoginLimiter::new(LoginLimits {
            per_account_per_minute: NonZeroU32::new(account).unwrap(),
            per_address_per_minute: NonZeroU32::new(address).unwrap(),
        })
    }

    #[test]
    fn account_budget_is_per_account() {
        let limiter = limiter(3, 100);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check("a@example.org", ip).is_ok());
        }
        let wait = limiter.check("a@example.org", ip).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20));
        assert!(limiter.check("b@example.org", ip).is_ok());
    }

    #[test]
    fn reset_budgets_are_per_hour() {
        let limiter = LoginLimiter::for_resets(ResetLimits {
            per_account_per_hour: NonZeroU32::new(2).unwrap(),
            per_address_per_hour: NonZeroU32::new(100).unwrap(),
        });
        let ip: IpAddr = "10.0.0.3".parse().unwrap();
        assert!(limiter.check("a@example.org", ip).is_ok());
        assert!(limiter.check("a@example.org", ip).is_ok());
        // Two an hour: the next one frees up in half an hour, not seconds.
        let wait = limiter.check("a@example.org", ip).unwrap_err();
        assert!(wait > Duration::from_secs(25 * 60) && wait <= Duration::from_secs(30 * 60));
    }

    #[test]
    fn address_budget_spans_accounts() {
        let limiter = limiter(100, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(limiter.check("a@example.org", ip).is_ok());
        assert!(limiter.check("b@example.org", ip).is_ok());
        assert!(limiter.check("c@example.org", ip).is_err());
        assert!(
            limiter
                .check("c@example.org", "10.0.0.2".parse().unwrap())
                .is_ok()
        );
    }
}
