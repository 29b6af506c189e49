//! Open Hours (PRODUCT.md, "Open Hours"): short weekday talks at fixed times
//! (10:00 and 11:00 Asia/Tokyo unless an admin changes them), never on a
//! desk holiday, each with a number of seats.
//!
//! Slots are not stored ahead: [`SlotRules`] and the [`BusinessCalendar`]
//! say which exist, and a slot's id is its start in minutes since the epoch,
//! so an id names the same slot before and after anyone books it. Only a
//! slot someone booked or an admin changed has a row, which holds its seat
//! count (the database takes seats, see `db::open_hours`).

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveTime, TimeZone, Weekday};

use super::calendar::BusinessCalendar;
use super::case::{desk_offset, parse_title};
use super::validation::{Code, Invalid, Problems, Refusal};
use super::vocabulary::{Category, Lang, ProductType};

/// The longest a booking's topic may be, in characters.
pub const TOPIC_MAX_CHARS: usize = 200;
/// The longest attendance note, in characters.
pub const NOTE_MAX_CHARS: usize = 2_000;
/// The longest reason for closing a slot, in characters.
pub const REASON_MAX_CHARS: usize = 500;
/// Seats a slot may have at most (a talk, not a seminar).
pub const MAX_CAPACITY: u32 = 50;
/// How far ahead slots can be booked at most, in days.
pub const MAX_HORIZON_DAYS: u32 = 366;

/// When slots are held and how many seats they have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRules {
    /// Start times each business day, Asia/Tokyo, in order.
    pub times: Vec<NaiveTime>,
    pub duration_minutes: u32,
    /// Seats by weekday, Monday to Friday.
    pub weekday_capacities: [u32; 5],
    /// Slots can be booked from now up to this many days ahead.
    pub horizon_days: u32,
}

impl Default for SlotRules {
    fn default() -> Self {
        SlotRules {
            times: vec![
                NaiveTime::from_hms_opt(10, 0, 0).expect("valid time"),
                NaiveTime::from_hms_opt(11, 0, 0).expect("valid time"),
            ],
            duration_minutes: 45,
            weekday_capacities: [1; 5],
            // Eight weeks.
            horizon_days: 56,
        }
    }
}

/// The rules as typed by an admin (or stored): every field checked at once.
#[derive(Debug, Default, Clone)]
pub struct RulesForm<'a> {
    /// `HH:MM` each.
    pub times: Option<&'a [String]>,
    pub duration_minutes: Option<i64>,
    pub weekday_capacities: Option<&'a [i64]>,
    pub horizon_days: Option<i64>,
}

impl RulesForm<'_> {
    /// The rules with the given fields changed from `current`.
    pub fn apply(&self, current: &SlotRules) -> Result<SlotRules, Vec<Invalid>> {
        let mut problems = Problems::default();
        let mut rules = current.clone();
        if let Some(times) = self.times
            && let Some(parsed) = problems.check("times", parse_times(times))
        {
            rules.times = parsed;
        }
        if let Some(minutes) = self.duration_minutes {
            match u32::try_from(minutes) {
                Ok(m @ 5..=240) => rules.duration_minutes = m,
                _ => problems.push("duration_minutes", "must be between 5 and 240"),
            }
        }
        if let Some(capacities) = self.weekday_capacities {
            let parsed: Option<Vec<u32>> = capacities
                .iter()
                .map(|&c| u32::try_from(c).ok().filter(|c| *c <= MAX_CAPACITY))
                .collect();
            match parsed.and_then(|v| <[u32; 5]>::try_from(v).ok()) {
                Some(parsed) => rules.weekday_capacities = parsed,
                None => problems.push(
                    "weekday_capacities",
                    format!("must be five numbers (Monday to Friday) from 0 to {MAX_CAPACITY}"),
                ),
            }
        }
        if let Some(days) = self.horizon_days {
            match u32::try_from(days) {
                Ok(d @ 1..=MAX_HORIZON_DAYS) => rules.horizon_days = d,
                _ => problems.push(
                    "horizon_days",
                    format!("must be between 1 and {MAX_HORIZON_DAYS}"),
                ),
            }
        }
        problems.into_result()?;
        if let Some(overlap) = rules.overlapping_start() {
            return Err(vec![Invalid::new(
                "times",
                format!(
                    "{} starts before the slot before it ends ({} minutes each)",
                    overlap.format("%H:%M"),
                    rules.duration_minutes
                ),
            )]);
        }
        Ok(rules)
    }
}

/// `HH:MM` times, at least one, none twice, none ending after midnight;
/// sorted.
pub fn parse_times(raw: &[String]) -> Result<Vec<NaiveTime>, Refusal> {
    if raw.is_empty() || raw.len() > 12 {
        return Err("must list from 1 to 12 times".to_owned().into());
    }
    let mut times = Vec::with_capacity(raw.len());
    for text in raw {
        let time = NaiveTime::parse_from_str(text.trim(), "%H:%M")
            .map_err(|_| format!("{text:?} is not a time like 10:00"))?;
        if times.contains(&time) {
            return Err(Refusal::new(Code::Twice, format!("lists {text:?} twice")));
        }
        times.push(time);
    }
    times.sort();
    Ok(times)
}

impl SlotRules {
    /// The stored form: `10:00,11:00`.
    pub fn times_text(&self) -> String {
        self.times
            .iter()
            .map(|t| t.format("%H:%M").to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The stored form: `1,1,1,1,1`.
    pub fn capacities_text(&self) -> String {
        self.weekday_capacities
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Rules read back from their stored form.
    pub fn from_stored(
        times: &str,
        duration_minutes: i32,
        capacities: &str,
        horizon_days: i32,
    ) -> Result<Self, String> {
        let times: Vec<String> = times.split(',').map(str::to_owned).collect();
        let capacities: Vec<i64> = capacities
            .split(',')
            .map(|c| c.trim().parse::<i64>().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        RulesForm {
            times: Some(&times),
            duration_minutes: Some(i64::from(duration_minutes)),
            weekday_capacities: Some(&capacities),
            horizon_days: Some(i64::from(horizon_days)),
        }
        .apply(&SlotRules::default())
        .map_err(|problems| format!("{problems:?}"))
    }

    /// A start time that begins before the previous slot ends, if any.
    fn overlapping_start(&self) -> Option<NaiveTime> {
        let duration = chrono::Duration::minutes(i64::from(self.duration_minutes));
        self.times.windows(2).find_map(|pair| {
            let (ends, _) = pair[0].overflowing_add_signed(duration);
            (ends > pair[1]).then_some(pair[1])
        })
    }

    /// The default seats of a slot on `date` (0 at weekends).
    pub fn capacity_on(&self, date: NaiveDate) -> u32 {
        match date.weekday().num_days_from_monday() {
            day @ 0..=4 => self.weekday_capacities[day as usize],
            _ => 0,
        }
    }

    /// The last date that can be booked, seen on `today`.
    pub fn horizon(&self, today: NaiveDate) -> NaiveDate {
        today + Days::new(u64::from(self.horizon_days))
    }

    /// The slots the rules hold from `from` to `to` (inclusive), in time
    /// order: business days only.
    pub fn slots_between(
        &self,
        calendar: &BusinessCalendar,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<PlannedSlot> {
        let mut slots = Vec::new();
        let mut date = from;
        while date <= to {
            if calendar.is_business_day(date) {
                for &time in &self.times {
                    slots.push(self.slot_at(date, time));
                }
            }
            date = date + Days::new(1);
        }
        slots
    }

    fn slot_at(&self, date: NaiveDate, time: NaiveTime) -> PlannedSlot {
        let starts_at = desk_offset()
            .from_local_datetime(&date.and_time(time))
            .single()
            .expect("a fixed offset has no gaps");
        let ends_at = starts_at + chrono::Duration::minutes(i64::from(self.duration_minutes));
        PlannedSlot {
            id: slot_id(starts_at),
            starts_at,
            ends_at,
            capacity: self.capacity_on(date),
        }
    }

    /// The slot `id` names, when the rules hold one then: at one of the
    /// times, on a business day.
    pub fn planned(&self, calendar: &BusinessCalendar, id: i64) -> Option<PlannedSlot> {
        let starts_at = slot_start(id)?;
        let date = starts_at.date_naive();
        let time = starts_at.time();
        (calendar.is_business_day(date) && self.times.contains(&time))
            .then(|| self.slot_at(date, time))
    }
}

/// A slot's id: its start in minutes since the epoch.
pub fn slot_id(starts_at: DateTime<FixedOffset>) -> i64 {
    starts_at.timestamp() / 60
}

/// When the slot `id` starts, in the desk's time zone (`None` for an id
/// no slot can have).
pub fn slot_start(id: i64) -> Option<DateTime<FixedOffset>> {
    let seconds = id.checked_mul(60)?;
    DateTime::from_timestamp(seconds, 0).map(|utc| utc.with_timezone(&desk_offset()))
}

/// A slot as the rules hold it, before any booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSlot {
    pub id: i64,
    pub starts_at: DateTime<FixedOffset>,
    pub ends_at: DateTime<FixedOffset>,
    /// The weekday's default seats.
    pub capacity: u32,
}

impl PlannedSlot {
    pub fn starts_at_micros(&self) -> i64 {
        self.starts_at.timestamp_micros()
    }

    pub fn ends_at_micros(&self) -> i64 {
        self.ends_at.timestamp_micros()
    }
}

/// What an admin changed on one slot, or the seats it holds (its row).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotState {
    /// Seats set for this slot alone (`None`: the weekday's default).
    pub capacity: Option<u32>,
    pub booked: u32,
    pub closed: bool,
    pub closed_reason: Option<String>,
}

/// A slot as listed: planned, with its row's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub planned: PlannedSlot,
    pub state: SlotState,
}

impl Slot {
    pub fn capacity(&self) -> u32 {
        self.state.capacity.unwrap_or(self.planned.capacity)
    }

    pub fn booked(&self) -> u32 {
        self.state.booked
    }

    /// `booked + available = capacity` (a closed slot keeps its count; its
    /// `closed` says it takes no booking).
    pub fn available(&self) -> u32 {
        self.capacity().saturating_sub(self.booked())
    }

    /// Why no booking can be made now, if one cannot (apart from seats,
    /// which only the database's count decides).
    pub fn refuses_booking(&self, now_micros: i64) -> Option<Refusal> {
        if self.planned.starts_at_micros() <= now_micros {
            Some("is a slot that has already started".to_owned().into())
        } else if self.state.closed {
            Some(match &self.state.closed_reason {
                Some(reason) => format!("is a closed slot ({reason})").into(),
                None => "is a closed slot".to_owned().into(),
            })
        } else {
            None
        }
    }
}

/// A booking's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingStatus {
    Booked,
    Cancelled,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Booked => "booked",
            BookingStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "booked" => Some(BookingStatus::Booked),
            "cancelled" => Some(BookingStatus::Cancelled),
            _ => None,
        }
    }
}

/// A booking as typed by an applicant.
#[derive(Debug, Default, Clone)]
pub struct BookingForm<'a> {
    pub slot_id: Option<i64>,
    pub topic: Option<&'a str>,
    pub product_type: Option<&'a str>,
    pub categories: Option<&'a [String]>,
    pub language: Option<&'a str>,
    pub case_id: Option<i64>,
}

/// A checked booking request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    pub slot_id: i64,
    pub topic: String,
    pub product_type: Option<ProductType>,
    pub categories: Vec<Category>,
    pub language: Lang,
    pub case_id: Option<i64>,
}

impl BookingForm<'_> {
    /// Every field checked at once; `default_language` when none is given.
    pub fn validate(&self, default_language: Lang) -> Result<BookingRequest, Vec<Invalid>> {
        let mut problems = Problems::default();
        if self.slot_id.is_none() {
            problems.push("slot_id", Refusal::new(Code::Required, "is required"));
        }
        let topic = problems
            .required("topic", self.topic)
            .and_then(|t| problems.check("topic", parse_topic(t)));
        let product_type = match self.product_type {
            None | Some("") => Some(None),
            Some(p) => problems
                .check("product_type", p.parse::<ProductType>())
                .map(Some),
        };
        let categories = match self.categories {
            None => Some(Vec::new()),
            Some([]) => Some(Vec::new()),
            Some(raw) => problems.check("categories", super::case::parse_categories(raw)),
        };
        let language = match self.language {
            None | Some("") => Some(default_language),
            Some(l) => problems.check("language", l.parse::<Lang>()),
        };
        problems.finish(|| {
            Some(BookingRequest {
                slot_id: self.slot_id?,
                topic: topic?,
                product_type: product_type?,
                categories: categories?,
                language: language?,
                case_id: self.case_id,
            })
        })
    }
}

/// One line: a title's rules ([`parse_title`]) and no line break.
pub fn parse_topic(raw: &str) -> Result<String, Refusal> {
    let topic = raw.trim();
    if topic.contains(['\n', '\r']) {
        return Err(Refusal::new(Code::ControlCharacters, "must be one line"));
    }
    if topic.chars().count() > TOPIC_MAX_CHARS {
        return Err(Refusal::new(
            Code::TooLong {
                max: TOPIC_MAX_CHARS,
            },
            format!("must be at most {TOPIC_MAX_CHARS} characters"),
        ));
    }
    parse_title(topic)
}

/// Whether a booking of a slot starting at `starts_at` can still be
/// cancelled at `now` (until the slot starts).
pub fn may_cancel(starts_at_micros: i64, now_micros: i64) -> bool {
    now_micros < starts_at_micros
}

/// When the reminder of a slot goes: 10:00 Asia/Tokyo on the business day
/// before the slot's day; `None` when that moment is already past at
/// `booked_at` (the booking's own mail is fresh enough).
pub fn reminder_at(
    calendar: &BusinessCalendar,
    starts_at: DateTime<FixedOffset>,
    booked_at_micros: i64,
) -> Option<i64> {
    let mut day = starts_at.date_naive().pred_opt()?;
    while !calendar.is_business_day(day) {
        day = day.pred_opt()?;
    }
    let at = desk_offset()
        .from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(10, 0, 0)?))
        .single()?
        .timestamp_micros();
    (at > booked_at_micros).then_some(at)
}

/// The weekday's name in English (for the admin's rules).
pub fn weekday_name(index: usize) -> &'static str {
    [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ]
    .get(index)
    .map_or("", |day| match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        _ => "Friday",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn two_slots_each_weekday_none_at_weekends_or_holidays() {
        let rules = SlotRules::default();
        // Mon 7 Dec 2026 .. Sun 13 Dec; Wed 9 is a holiday.
        let calendar = BusinessCalendar::new([date(2026, 12, 9)]);
        let slots = rules.slots_between(&calendar, date(2026, 12, 7), date(2026, 12, 13));
        assert_eq!(slots.len(), 8);
        assert_eq!(slots[0].starts_at.to_rfc3339(), "2026-12-07T10:00:00+09:00");
        assert_eq!(slots[1].starts_at.to_rfc3339(), "2026-12-07T11:00:00+09:00");
        assert_eq!(slots[0].ends_at.to_rfc3339(), "2026-12-07T10:45:00+09:00");
        assert!(
            slots
                .iter()
                .all(|s| s.starts_at.date_naive() != date(2026, 12, 9))
        );
        assert!(slots.windows(2).all(|w| w[0].starts_at < w[1].starts_at));
    }

    #[test]
    fn a_slot_id_names_its_start_and_only_planned_ones_exist() {
        let rules = SlotRules::default();
        let calendar = BusinessCalendar::new([date(2026, 12, 9)]);
        let slot = &rules.slots_between(&calendar, date(2026, 12, 7), date(2026, 12, 7))[0];
        assert_eq!(rules.planned(&calendar, slot.id).as_ref(), Some(slot));
        assert_eq!(slot_start(slot.id), Some(slot.starts_at));
        // 10:01, a Saturday 10:00, a holiday 10:00: no slot.
        assert_eq!(rules.planned(&calendar, slot.id + 1), None);
        let saturday = slot_id(slot.starts_at + chrono::Duration::days(5));
        assert_eq!(rules.planned(&calendar, saturday), None);
        let holiday = slot_id(slot.starts_at + chrono::Duration::days(2));
        assert_eq!(rules.planned(&calendar, holiday), None);
        assert_eq!(rules.planned(&calendar, i64::MAX), None);
    }

    #[test]
    fn seats_follow_the_weekday_unless_the_slot_sets_its_own() {
        let rules = SlotRules {
            weekday_capacities: [1, 2, 3, 4, 5],
            ..SlotRules::default()
        };
        let calendar = BusinessCalendar::default();
        let friday = &rules.slots_between(&calendar, date(2026, 12, 11), date(2026, 12, 11))[0];
        assert_eq!(friday.capacity, 5);
        let mut slot = Slot {
            planned: friday.clone(),
            state: SlotState {
                booked: 2,
                ..SlotState::default()
            },
        };
        assert_eq!((slot.capacity(), slot.available()), (5, 3));
        slot.state.capacity = Some(2);
        assert_eq!((slot.capacity(), slot.available()), (2, 0));
        assert_eq!(slot.booked() + slot.available(), slot.capacity());
    }

    #[test]
    fn past_and_closed_slots_refuse_bookings() {
        let rules = SlotRules::default();
        let planned = rules
            .slots_between(
                &BusinessCalendar::default(),
                date(2026, 12, 7),
                date(2026, 12, 7),
            )
            .remove(0);
        let starts = planned.starts_at_micros();
        let mut slot = Slot {
            planned,
            state: SlotState::default(),
        };
        assert_eq!(slot.refuses_booking(starts - 1), None);
        assert!(slot.refuses_booking(starts).is_some());
        slot.state.closed = true;
        slot.state.closed_reason = Some("staff training".into());
        let refusal = slot.refuses_booking(starts - 1).unwrap();
        assert!(refusal.message.contains("staff training"));
        assert!(may_cancel(starts, starts - 1));
        assert!(!may_cancel(starts, starts));
    }

    #[test]
    fn rules_refuse_bad_values_all_at_once_and_overlaps() {
        let times = vec!["10:00".to_owned(), "25:00".to_owned()];
        let problems = RulesForm {
            times: Some(&times),
            duration_minutes: Some(0),
            weekday_capacities: Some(&[1, 1, 1]),
            horizon_days: Some(0),
        }
        .apply(&SlotRules::default())
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "times",
                "duration_minutes",
                "weekday_capacities",
                "horizon_days"
            ]
        );
        let times = vec!["10:00".to_owned(), "10:30".to_owned()];
        let overlap = RulesForm {
            times: Some(&times),
            ..RulesForm::default()
        }
        .apply(&SlotRules::default())
        .unwrap_err();
        assert!(overlap[0].message.contains("10:30"));
        let stored = SlotRules::default();
        let back = SlotRules::from_stored(
            &stored.times_text(),
            stored.duration_minutes as i32,
            &stored.capacities_text(),
            stored.horizon_days as i32,
        )
        .unwrap();
        assert_eq!(back, stored);
    }

    #[test]
    fn a_booking_needs_a_slot_and_a_one_line_topic() {
        let problems = BookingForm {
            topic: Some("first line\nsecond"),
            product_type: Some("spaceship"),
            ..BookingForm::default()
        }
        .validate(Lang::Ja)
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["slot_id", "topic", "product_type"]);
        let ok = BookingForm {
            slot_id: Some(1),
            topic: Some(" 薬機法の相談 "),
            ..BookingForm::default()
        }
        .validate(Lang::En)
        .unwrap();
        assert_eq!(ok.topic, "薬機法の相談");
        assert_eq!(ok.language, Lang::En);
        assert!(ok.categories.is_empty());
    }

    #[test]
    fn the_reminder_goes_the_business_day_before_unless_already_past() {
        let calendar = BusinessCalendar::new([date(2026, 12, 11)]);
        // A Monday slot: the Friday before is a holiday, so Thursday.
        let monday = desk_offset()
            .with_ymd_and_hms(2026, 12, 14, 10, 0, 0)
            .unwrap();
        let booked = desk_offset()
            .with_ymd_and_hms(2026, 12, 1, 18, 0, 0)
            .unwrap()
            .timestamp_micros();
        let at = reminder_at(&calendar, monday, booked).unwrap();
        let expected = desk_offset()
            .with_ymd_and_hms(2026, 12, 10, 10, 0, 0)
            .unwrap()
            .timestamp_micros();
        assert_eq!(at, expected);
        assert_eq!(reminder_at(&calendar, monday, expected + 1), None);
    }
}
