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
}

#[cfg(test)]
mod tests {
    use super::*;

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
