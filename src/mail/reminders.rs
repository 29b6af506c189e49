//! The triage reminder: a case not triaged within N business days is
//! reported to the supporters, once per case (however many instances run).

use std::time::Duration;

use crate::clock;
use crate::db::{Database, DbError, cases};
use crate::domain::calendar::BusinessCalendar;
use crate::domain::case::desk_date;

use super::MailSignal;
use super::notify::Notifier;

pub struct ReminderPolicy {
    pub days: u32,
    pub calendar: BusinessCalendar,
}

impl ReminderPolicy {
    /// When a case received at `received_at` becomes overdue: the same time
    /// of day, `days` business days later on the desk calendar.
    pub fn due_at(&self, received_at: i64) -> i64 {
        let received_on = desk_date(received_at);
        let due_on = self.calendar.add_business_days(received_on, self.days);
        let shift = (due_on - received_on).num_days();
        received_at + shift * 24 * 3600 * 1_000_000
    }
}

/// One pass: queue reminders for cases that became overdue. Returns how many.
pub async fn remind_overdue(
    db: &Database,
    notifier: &Notifier,
    policy: &ReminderPolicy,
) -> Result<usize, DbError> {
    let now = clock::now_micros();
    let days = policy.days;
    let due: Vec<i64> = db
        .read(move |conn| cases::overdue_candidates(conn, now, 500))
        .await?
        .into_iter()
        .filter(|case| policy.due_at(case.received_at) <= now)
        .map(|case| case.id)
        .collect();
    let mut sent = 0;
    for id in due {
        let notifier = notifier.clone();
        let queued = db
            .write(move |conn| {
                if !cases::mark_overdue_notified(conn, id, now)? {
                    return Ok(false);
                }
                let Some(case) = cases::find(conn, id)? else {
                    return Ok(false);
                };
                notifier.triage_overdue(conn, &case, days, now)?;
                Ok::<_, DbError>(true)
            })
            .await?;
        sent += usize::from(queued);
    }
    Ok(sent)
}

/// Every `every`, queues the reminders of cases that became overdue, on the
/// desk's calendar as it is then (admins change the holidays).
pub fn spawn(
    desk: crate::desk::Desk,
    notifier: Notifier,
    days: u32,
    every: Duration,
    signal: MailSignal,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let calendar = match desk.calendar().await {
                Ok(calendar) => calendar,
                Err(e) => {
                    tracing::error!(error = %e, "triage reminders: the desk calendar");
                    continue;
                }
            };
            let policy = ReminderPolicy { days, calendar };
            match remind_overdue(desk.database(), &notifier, &policy).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(cases = n, "triage reminders queued");
                    signal.queued();
                }
                Err(e) => tracing::error!(error = %e, "triage reminders"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn due_three_business_days_later_skipping_weekends_and_holidays() {
        let policy = ReminderPolicy {
            days: 3,
            calendar: BusinessCalendar::new(["2026-12-01".parse().unwrap()]),
        };
        // Thursday 10:00 JST + 3 business days (Fri, Mon, [Tue holiday], Wed).
        let received = micros("2026-11-26T10:00:00+09:00");
        assert_eq!(policy.due_at(received), micros("2026-12-02T10:00:00+09:00"));
    }

    #[test]
    fn zero_days_is_due_at_once() {
        let policy = ReminderPolicy {
            days: 0,
            calendar: BusinessCalendar::default(),
        };
        let received = micros("2026-11-28T23:00:00+09:00");
        assert_eq!(policy.due_at(received), received);
    }
}
