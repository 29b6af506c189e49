//! The desk's business calendar: weekdays that are not configured holidays.

use std::collections::BTreeSet;

use chrono::{Datelike, Days, NaiveDate, Weekday};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusinessCalendar {
    holidays: BTreeSet<NaiveDate>,
}

impl BusinessCalendar {
    pub fn new(holidays: impl IntoIterator<Item = NaiveDate>) -> Self {
        Self {
            holidays: holidays.into_iter().collect(),
        }
    }

    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&date)
    }

    /// The date `days` business days after `start` (`start` itself when 0).
    pub fn add_business_days(&self, start: NaiveDate, days: u32) -> NaiveDate {
        let mut date = start;
        let mut left = days;
        while left > 0 {
            date = date + Days::new(1);
            if self.is_business_day(date) {
                left -= 1;
            }
        }
        date
    }

    /// How many business days passed from `start` to `end`: the business
    /// days after `start` up to and including `end` (0 when `end` is not
    /// after `start`). A case received on Friday is 1 business day old on
    /// Monday.
    pub fn business_days_between(&self, start: NaiveDate, end: NaiveDate) -> u32 {
        let mut date = start;
        let mut days = 0;
        while date < end {
            date = date + Days::new(1);
            if self.is_business_day(date) {
                days += 1;
            }
        }
        days
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_days_between_skip_weekends_and_holidays() {
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let calendar = BusinessCalendar::new([date("2026-12-02")]);
        // Friday 2026-11-27 → Monday 11-30: one business day.
        assert_eq!(
            calendar.business_days_between(date("2026-11-27"), date("2026-11-30")),
            1
        );
        // … → Thursday 12-03, with Wednesday a holiday: three.
        assert_eq!(
            calendar.business_days_between(date("2026-11-27"), date("2026-12-03")),
            3
        );
        assert_eq!(
            calendar.business_days_between(date("2026-11-30"), date("2026-11-30")),
            0
        );
        assert_eq!(
            calendar.business_days_between(date("2026-12-01"), date("2026-11-30")),
            0
        );
        for days in 0..10 {
            let start = date("2026-11-26");
            assert_eq!(
                calendar.business_days_between(start, calendar.add_business_days(start, days)),
                days
            );
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn weekends_are_skipped() {
        let calendar = BusinessCalendar::default();
        // Thursday + 3 business days = Tuesday.
        assert_eq!(
            calendar.add_business_days(day("2026-11-26"), 3),
            day("2026-12-01")
        );
        // Friday + 1 = Monday.
        assert_eq!(
            calendar.add_business_days(day("2026-11-27"), 1),
            day("2026-11-30")
        );
        // A case received on Saturday: Monday is the first business day after.
        assert_eq!(
            calendar.add_business_days(day("2026-11-28"), 1),
            day("2026-11-30")
        );
        assert_eq!(
            calendar.add_business_days(day("2026-11-28"), 0),
            day("2026-11-28")
        );
    }

    #[test]
    fn holidays_are_skipped() {
        let calendar = BusinessCalendar::new([day("2026-12-31"), day("2027-01-01")]);
        assert!(!calendar.is_business_day(day("2027-01-01")));
        // Wed 30 Dec + 2: Thu 31 and Fri 1 are holidays → Mon 4, Tue 5.
        assert_eq!(
            calendar.add_business_days(day("2026-12-30"), 2),
            day("2027-01-05")
        );
    }
}
