//! Open Hours (PRODUCT.md, "Open Hours"): applicants book a seat in a short
//! weekday talk, the desk sees each day's bookings, marks who came and turns
//! a booking into a case; admins set the rules, close slots and keep the
//! holidays. The rules of slots are `domain::open_hours`; the seat count is
//! the database's (`db::open_hours::take_seat`).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, TimeZone};

use super::cases::{CaseSnapshot, DESK_STAFF, NewIntake, insert_case, reserve_number};
use super::{Desk, DeskError};
use crate::clock;
use crate::db::open_hours::{self as store, BookingRow, NewBooking, SlotRow};
use crate::db::{AnyConnection, DbError, cases as case_store, organizations, users};
use crate::domain::calendar::BusinessCalendar;
use crate::domain::case::{Intake, desk_date, desk_offset};
use crate::domain::open_hours::{
    self as rules, BookingRequest, BookingStatus, PlannedSlot, RulesForm, Slot, SlotRules,
    SlotState,
};
use crate::domain::role::{Caller, Role};
use crate::domain::validation::Invalid;
use crate::domain::vocabulary::{Category, Lang, OrganizationKind, ProductType, Stage};

/// Who book: applicants, for their organisation.
pub const BOOKERS: &[Role] = &[Role::Applicant];
/// Who read and cancel bookings: applicants (their organisation's) and the
/// desk.
pub const BOOKING_READERS: &[Role] = &[Role::Applicant, Role::Supporter, Role::Admin];
/// Who change slots, the rules and the holidays.
pub const SLOT_ADMINS: &[Role] = &[Role::Admin];
/// The longest range of dates one listing covers.
pub const MAX_LISTED_DAYS: u64 = 366;
/// The most bookings one listing returns.
pub const MAX_LISTED_BOOKINGS: i64 = 1_000;
/// How long an instance trusts the holidays and rules it read: another
/// instance's change reaches it within this time; its own at once.
const SETUP_FRESH_FOR: Duration = Duration::from_secs(5);

/// The rules and the calendar, read together.
#[derive(Debug, Clone)]
pub struct Setup {
    pub rules: SlotRules,
    pub calendar: BusinessCalendar,
    /// `(date, name)` of every holiday.
    pub holidays: Vec<(NaiveDate, String)>,
}

/// The last [`Setup`] read, shared by the interfaces and workers of one
/// instance (the queue page's ages and the triage reminders use its
/// calendar on every request).
#[derive(Default)]
pub struct SetupCache(RwLock<Option<(Instant, Arc<Setup>)>>);

impl SetupCache {
    fn fresh(&self) -> Option<Arc<Setup>> {
        let held = self.0.read().unwrap_or_else(|e| e.into_inner());
        held.as_ref()
            .filter(|(read_at, _)| read_at.elapsed() < SETUP_FRESH_FOR)
            .map(|(_, setup)| setup.clone())
    }

    fn keep(&self, setup: Arc<Setup>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), setup));
    }

    fn forget(&self) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Reads the rules and holidays inside a transaction.
pub(crate) fn read_setup(conn: &mut AnyConnection) -> Result<Setup, DeskError> {
    let rules = match store::rules(conn)? {
        Some((times, duration, capacities, horizon)) => {
            SlotRules::from_stored(&times, duration, &capacities, horizon)
                .map_err(|e| DeskError::internal(anyhow::anyhow!("stored Open Hours rules: {e}")))?
        }
        None => SlotRules::default(),
    };
    let holidays: Vec<(NaiveDate, String)> = store::holidays(conn)?
        .into_iter()
        .filter_map(|(day, name)| day.parse().ok().map(|d| (d, name)))
        .collect();
    Ok(Setup {
        rules,
        calendar: BusinessCalendar::new(holidays.iter().map(|(d, _)| *d)),
        holidays,
    })
}

impl Desk {
    /// The Open Hours rules and the desk's holidays, from this instance's
    /// cache when fresh.
    pub async fn setup(&self) -> Result<Arc<Setup>, DeskError> {
        if let Some(setup) = self.setup.fresh() {
            return Ok(setup);
        }
        let setup = Arc::new(self.read(read_setup).await?);
        self.setup.keep(setup.clone());
        Ok(setup)
    }

    /// The desk's business calendar (weekends and holidays are not).
    pub async fn calendar(&self) -> Result<BusinessCalendar, DeskError> {
        Ok(self.setup().await?.calendar.clone())
    }
}

/// Adds the holidays of `MEDESK_HOLIDAYS` that are not stored yet.
pub async fn seed_holidays(desk: &Desk, days: &[NaiveDate]) -> Result<(), DeskError> {
    let days: Vec<String> = days.iter().map(NaiveDate::to_string).collect();
    desk.write(move |conn| Ok(store::seed_holidays(conn, &days, clock::now_micros())?))
        .await?;
    desk.setup.forget();
    Ok(())
}

// ---------------------------------------------------------------- slots

fn slot_of(planned: PlannedSlot, row: Option<&SlotRow>) -> Slot {
    let state = row.map_or_else(SlotState::default, |row| SlotState {
        capacity: row.capacity.map(|c| c.max(0) as u32),
        booked: row.booked.max(0) as u32,
        closed: row.closed,
        closed_reason: row.closed_reason.clone(),
    });
    Slot { planned, state }
}

/// A slot that has a row but that the rules no longer hold (the times
/// changed, or the day became a holiday after someone booked it): listed
/// with its own capacity, or its bookings as capacity.
fn unplanned_slot(row: &SlotRow) -> Slot {
    let offset = desk_offset();
    let planned = PlannedSlot {
        id: row.id,
        starts_at: offset.timestamp_micros(row.starts_at).unwrap(),
        ends_at: offset.timestamp_micros(row.ends_at).unwrap(),
        capacity: row.booked.max(0) as u32,
    };
    slot_of(planned, Some(row))
}

fn day_start(date: NaiveDate) -> i64 {
    desk_offset()
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("a fixed offset has no gaps")
        .timestamp_micros()
}

/// `from ..= to` checked: not reversed, not longer than a year.
fn checked_range(from: NaiveDate, to: NaiveDate) -> Result<(), DeskError> {
    if to < from {
        return Err(DeskError::field("to", "must not be before from"));
    }
    if to > from + Days::new(MAX_LISTED_DAYS) {
        return Err(DeskError::field(
            "to",
            format!("must be at most {MAX_LISTED_DAYS} days after from"),
        ));
    }
    Ok(())
}

/// The slots from `from` to `to` (desk dates, inclusive; default today and
/// the booking horizon), in time order, with their seats.
pub async fn slots(
    desk: &Desk,
    _caller: Caller,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<Slot>, DeskError> {
    let today = desk_date(desk.clock.now_micros());
    desk.read(move |conn| {
        let setup = read_setup(conn)?;
        let from = from.unwrap_or(today);
        let to = to.unwrap_or_else(|| setup.rules.horizon(today));
        checked_range(from, to)?;
        let until = day_start(to + Days::new(1));
        let rows = store::slots_between(conn, day_start(from), until)?;
        let mut slots: Vec<Slot> = setup
            .rules
            .slots_between(&setup.calendar, from, to)
            .into_iter()
            .map(|planned| {
                let row = rows.iter().find(|r| r.id == planned.id);
                slot_of(planned, row)
            })
            .collect();
        for row in &rows {
            if row.booked > 0 && !slots.iter().any(|s| s.planned.id == row.id) {
                slots.push(unplanned_slot(row));
            }
        }
        slots.sort_by_key(|s| s.planned.starts_at);
        Ok(slots)
    })
    .await
}

/// The slot `id` names, planned or with a row; `NotFound` otherwise.
fn slot_in(conn: &mut AnyConnection, setup: &Setup, id: i64) -> Result<Slot, DeskError> {
    let row = store::find_slot(conn, id)?;
    match (setup.rules.planned(&setup.calendar, id), row) {
        (Some(planned), row) => Ok(slot_of(planned, row.as_ref())),
        (None, Some(row)) => Ok(unplanned_slot(&row)),
        (None, None) => Err(DeskError::NotFound),
    }
}

/// An admin's change of one slot.
#[derive(Debug, Clone, Default)]
pub struct SlotChange {
    /// `Some(None)`: back to the weekday's default.
    pub capacity: Option<Option<u32>>,
    pub closed: Option<bool>,
    pub reason: Option<String>,
}

/// Changes one slot's seats or closes it; fewer seats than are taken is a
/// conflict.
pub async fn change_slot(
    desk: &Desk,
    caller: Caller,
    id: i64,
    change: SlotChange,
) -> Result<Slot, DeskError> {
    caller.require(SLOT_ADMINS)?;
    let slot = desk
        .write(move |conn| {
            let setup = read_setup(conn)?;
            let slot = slot_in(conn, &setup, id)?;
            let now = clock::now_micros();
            store::ensure_slot(
                conn,
                id,
                slot.planned.starts_at_micros(),
                slot.planned.ends_at_micros(),
                now,
            )?;
            if let Some(capacity) = change.capacity {
                let capacity = capacity.map(|c| c as i32);
                if !store::set_capacity(conn, id, capacity, now)? {
                    return Err(DeskError::conflict(format!(
                        "{} seats of this slot are taken: the capacity cannot be lower",
                        slot.booked()
                    )));
                }
            }
            if change.closed.is_some() || change.reason.is_some() {
                let closed = change.closed.unwrap_or(slot.state.closed);
                let reason = if closed {
                    change.reason.clone().or(slot.state.closed_reason.clone())
                } else {
                    None
                };
                store::set_closed(conn, id, closed, reason.as_deref(), now)?;
            }
            slot_in(conn, &setup, id)
        })
        .await?;
    Ok(slot)
}

// ---------------------------------------------------------------- rules and holidays

/// The rules in force.
pub async fn rules(desk: &Desk, caller: Caller) -> Result<SlotRules, DeskError> {
    caller.require(SLOT_ADMINS)?;
    Ok(desk.read(read_setup).await?.rules)
}

/// Changes the rules (only the fields given); slots already booked keep
/// their bookings.
pub async fn change_rules(
    desk: &Desk,
    caller: Caller,
    times: Option<Vec<String>>,
    duration_minutes: Option<i64>,
    weekday_capacities: Option<Vec<i64>>,
    horizon_days: Option<i64>,
) -> Result<SlotRules, DeskError> {
    caller.require(SLOT_ADMINS)?;
    let changed = desk
        .write(move |conn| {
            let current = read_setup(conn)?.rules;
            let changed = RulesForm {
                times: times.as_deref(),
                duration_minutes,
                weekday_capacities: weekday_capacities.as_deref(),
                horizon_days,
            }
            .apply(&current)?;
            store::write_rules(
                conn,
                &(
                    changed.times_text(),
                    changed.duration_minutes as i32,
                    changed.capacities_text(),
                    changed.horizon_days as i32,
                ),
                clock::now_micros(),
            )?;
            Ok(changed)
        })
        .await?;
    desk.setup.forget();
    Ok(changed)
}

/// The desk's holidays, in date order (any signed-in user: they say when
/// the desk is closed).
pub async fn holidays(desk: &Desk, _caller: Caller) -> Result<Vec<(NaiveDate, String)>, DeskError> {
    Ok(desk.read(read_setup).await?.holidays)
}

/// Adds or renames a holiday; true when it is new. Slots already booked on
/// that day keep their bookings (the desk tells those applicants).
pub async fn put_holiday(
    desk: &Desk,
    caller: Caller,
    day: NaiveDate,
    name: String,
) -> Result<bool, DeskError> {
    caller.require(SLOT_ADMINS)?;
    let name = name.trim().to_owned();
    if name.chars().count() > 100 {
        return Err(DeskError::field("name", "must be at most 100 characters"));
    }
    let added = desk
        .write(move |conn| {
            Ok(store::put_holiday(
                conn,
                &day.to_string(),
                &name,
                clock::now_micros(),
            )?)
        })
        .await?;
    desk.setup.forget();
    Ok(added)
}

/// Removes a holiday; `NotFound` when the day is none.
pub async fn delete_holiday(desk: &Desk, caller: Caller, day: NaiveDate) -> Result<(), DeskError> {
    caller.require(SLOT_ADMINS)?;
    let removed = desk
        .write(move |conn| Ok(store::delete_holiday(conn, &day.to_string())?))
        .await?;
    desk.setup.forget();
    if removed {
        Ok(())
    } else {
        Err(DeskError::NotFound)
    }
}

// ---------------------------------------------------------------- bookings

/// A booking with the names the desk reads beside it.
#[derive(Debug, Clone)]
pub struct Booking {
    pub row: BookingRow,
    pub organization_name: String,
    pub applicant_name: String,
}

impl Booking {
    pub fn status(&self) -> BookingStatus {
        BookingStatus::parse(&self.row.status).unwrap_or(BookingStatus::Cancelled)
    }
}

fn booking_of(conn: &mut AnyConnection, row: BookingRow) -> Result<Booking, DeskError> {
    let organization_name = organizations::find(conn, row.organization_id)?
        .map(|o| o.name)
        .unwrap_or_default();
    let applicant_name = users::find_by_id(conn, row.applicant_id)?
        .map(|u| u.name)
        .unwrap_or_default();
    Ok(Booking {
        row,
        organization_name,
        applicant_name,
    })
}

/// The booking `id` if the caller may know it: the desk every booking, an
/// applicant their organisation's; `NotFound` for anyone else.
fn visible_booking(
    conn: &mut AnyConnection,
    caller: &Caller,
    id: i64,
) -> Result<BookingRow, DeskError> {
    let row = store::find_booking(conn, id)?.ok_or(DeskError::NotFound)?;
    let visible = match caller.role {
        Role::Supporter | Role::Admin => true,
        Role::Applicant => caller.organization_id == Some(row.organization_id),
        _ => false,
    };
    if visible {
        Ok(row)
    } else {
        Err(DeskError::NotFound)
    }
}

/// Books a seat for the caller's organisation. The seat is taken by the
/// database in the same transaction as the booking, its mails and its
/// reminder: the last seat taken twice at once gives one booking and one
/// [`DeskError::SlotFull`].
pub async fn book(
    desk: &Desk,
    caller: Caller,
    request: BookingRequest,
) -> Result<Booking, DeskError> {
    caller.require(BOOKERS)?;
    let organization_id = caller
        .organization_id
        .ok_or(DeskError::Forbidden("your account has no organisation"))?;
    let notifier = desk.notifier.clone();
    let now = desk.clock.now_micros();
    let booking = desk
        .write_and_mail(move |conn| {
            let setup = read_setup(conn)?;
            let slot = match setup.rules.planned(&setup.calendar, request.slot_id) {
                Some(planned) => {
                    let row = store::find_slot(conn, planned.id)?;
                    slot_of(planned, row.as_ref())
                }
                None => {
                    return Err(DeskError::field(
                        "slot_id",
                        "is not an Open Hours slot (unknown, at a weekend or on a holiday)",
                    ));
                }
            };
            if let Some(refusal) = slot.refuses_booking(now) {
                return Err(DeskError::Invalid(vec![Invalid::refused(
                    "slot_id", refusal,
                )]));
            }
            let horizon = setup.rules.horizon(desk_date(now));
            if slot.planned.starts_at.date_naive() > horizon {
                return Err(DeskError::field(
                    "slot_id",
                    format!("is beyond the booking horizon ({horizon})"),
                ));
            }
            if let Some(case_id) = request.case_id {
                let case = case_store::find(conn, case_id)?;
                if case.is_none_or(|c| c.organization_id != organization_id) {
                    return Err(DeskError::field(
                        "case_id",
                        "is not a case of your organisation",
                    ));
                }
            }
            store::ensure_slot(
                conn,
                slot.planned.id,
                slot.planned.starts_at_micros(),
                slot.planned.ends_at_micros(),
                now,
            )?;
            let categories: Vec<&str> = request.categories.iter().map(|c| c.as_str()).collect();
            let inserted = store::insert_booking(
                conn,
                &NewBooking {
                    slot_id: slot.planned.id,
                    starts_at: slot.planned.starts_at_micros(),
                    ends_at: slot.planned.ends_at_micros(),
                    organization_id,
                    applicant_id: caller.id,
                    topic: &request.topic,
                    product_type: request.product_type.map(|p| p.as_str()),
                    categories: &categories.join(","),
                    language: request.language.as_str(),
                    case_id: request.case_id,
                    now,
                },
            );
            let row = match inserted {
                Ok(row) => row,
                Err(DbError::UniqueViolation(_)) => {
                    return Err(DeskError::conflict(
                        "your organisation already holds a booking in this slot",
                    ));
                }
                Err(other) => return Err(other.into()),
            };
            if !store::take_seat(conn, slot.planned.id, slot.planned.capacity as i32)? {
                // Closed since it was read, or the last seat went first.
                return Err(DeskError::SlotFull);
            }
            record_link(conn, &row, caller.id, now)?;
            let booking = booking_of(conn, row)?;
            notifier.open_hours_booked(conn, &booking, now)?;
            if let Some(due) = rules::reminder_at(&setup.calendar, slot.planned.starts_at, now) {
                let mail_id = notifier.open_hours_reminder(conn, &booking, now, due)?;
                store::set_reminder(conn, booking.row.id, mail_id)?;
            }
            Ok(booking)
        })
        .await?;
    tracing::info!(
        booking_id = booking.row.id,
        slot_id = booking.row.slot_id,
        "open hours booked"
    );
    Ok(booking)
}

/// Bookings the caller may read: the desk every organisation's, an
/// applicant their own; of one day (`date`), or from today on.
pub async fn bookings(
    desk: &Desk,
    caller: Caller,
    date: Option<NaiveDate>,
) -> Result<Vec<Booking>, DeskError> {
    caller.require(BOOKING_READERS)?;
    let organization = match caller.role {
        Role::Applicant => Some(
            caller
                .organization_id
                .ok_or(DeskError::Forbidden("your account has no organisation"))?,
        ),
        _ => None,
    };
    let today = desk_date(desk.clock.now_micros());
    let (from, until) = match date {
        Some(date) => (day_start(date), day_start(date + Days::new(1))),
        None => (day_start(today), i64::MAX),
    };
    desk.read(move |conn| {
        Ok(
            store::bookings(conn, organization, from, until, MAX_LISTED_BOOKINGS)?
                .into_iter()
                .map(|(row, organization_name, applicant_name)| Booking {
                    row,
                    organization_name,
                    applicant_name,
                })
                .collect(),
        )
    })
    .await
}

/// The desk's view of one day: every organisation's bookings of `date`,
/// cancelled ones included, for supporters and admins only (an applicant
/// reads their own with [`bookings`]).
pub async fn day_bookings(
    desk: &Desk,
    caller: Caller,
    date: NaiveDate,
) -> Result<Vec<Booking>, DeskError> {
    caller.require(DESK_STAFF)?;
    bookings(desk, caller, Some(date)).await
}

/// One booking the caller may read.
pub async fn booking(desk: &Desk, caller: Caller, id: i64) -> Result<Booking, DeskError> {
    caller.require(BOOKING_READERS)?;
    desk.read(move |conn| {
        let row = visible_booking(conn, &caller, id)?;
        booking_of(conn, row)
    })
    .await
}

/// Cancels a booking until its slot starts: the seat is freed, the
/// reminder taken back, the applicant gets the calendar's cancellation
/// and the desk is told. Cancelling a cancelled booking changes nothing.
pub async fn cancel(desk: &Desk, caller: Caller, id: i64) -> Result<Booking, DeskError> {
    caller.require(BOOKING_READERS)?;
    let notifier = desk.notifier.clone();
    let now = desk.clock.now_micros();
    desk.write_and_mail(move |conn| {
        let row = visible_booking(conn, &caller, id)?;
        if row.status != BookingStatus::Booked.as_str() {
            return booking_of(conn, row);
        }
        if !rules::may_cancel(row.starts_at, now) {
            return Err(DeskError::conflict(
                "the slot has started: the booking can no longer be cancelled",
            ));
        }
        if !store::cancel_booking(conn, id, now)? {
            let row = store::find_booking(conn, id)?.ok_or(DeskError::NotFound)?;
            return booking_of(conn, row);
        }
        store::free_seat(conn, row.slot_id)?;
        if let Some(mail_id) = row.reminder_mail_id {
            notifier.withdraw_open_hours_reminder(conn, mail_id)?;
        }
        let row = store::find_booking(conn, id)?.ok_or(DeskError::NotFound)?;
        let booking = booking_of(conn, row)?;
        notifier.open_hours_cancelled(conn, &booking, now)?;
        Ok(booking)
    })
    .await
}

/// The desk marks whether the applicant came, with a short note.
pub async fn record_attendance(
    desk: &Desk,
    caller: Caller,
    id: i64,
    attended: bool,
    note: Option<String>,
) -> Result<Booking, DeskError> {
    caller.require(DESK_STAFF)?;
    let note = match note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) {
        Some(note) if note.chars().count() > rules::NOTE_MAX_CHARS => {
            return Err(DeskError::field(
                "note",
                format!("must be at most {} characters", rules::NOTE_MAX_CHARS),
            ));
        }
        note => note,
    };
    desk.write(move |conn| {
        let row = visible_booking(conn, &caller, id)?;
        if row.status != BookingStatus::Booked.as_str() {
            return Err(DeskError::conflict("the booking was cancelled"));
        }
        store::set_attendance(conn, id, attended, note.as_deref(), clock::now_micros())?;
        let row = store::find_booking(conn, id)?.ok_or(DeskError::NotFound)?;
        booking_of(conn, row)
    })
    .await
}

/// Turns a booking into a case of its organisation, filed by the desk on
/// the applicant's behalf and pre-filled from the booking; the booking
/// links to it (once: a second attempt is a conflict naming the case).
pub async fn open_case(desk: &Desk, caller: Caller, id: i64) -> Result<CaseSnapshot, DeskError> {
    caller.require(DESK_STAFF)?;
    let now = clock::now_micros();
    let notifier = desk.notifier.clone();
    desk.write_and_mail_after(reserve_number(now), move |conn, reserved| {
        let row = visible_booking(conn, &caller, id)?;
        if let Some(case_id) = row.case_id {
            let number = case_store::find(conn, case_id)?.map(|c| c.number);
            return Err(DeskError::Conflict {
                detail: format!(
                    "the booking is linked to case {} already",
                    number.unwrap_or_else(|| case_id.to_string())
                ),
                context: Some(serde_json::Map::from_iter([(
                    "case_id".to_owned(),
                    case_id.into(),
                )])),
            });
        }
        if row.status != BookingStatus::Booked.as_str() {
            return Err(DeskError::conflict("the booking was cancelled"));
        }
        let intake = intake_from(&row);
        let snapshot = insert_case(
            conn,
            &notifier,
            NewIntake {
                caller,
                on_behalf: Some(row.applicant_id),
                intake: &intake,
                reserved,
                now,
            },
        )?;
        if !store::link_case(conn, id, snapshot.row.id, now)? {
            return Err(DeskError::conflict(
                "the booking is linked to a case already",
            ));
        }
        let linked = BookingRow {
            case_id: Some(snapshot.row.id),
            ..row
        };
        record_link(conn, &linked, caller.id, now)?;
        Ok(snapshot)
    })
    .await
}

/// The case's timeline records the booking linked to it (the other half of
/// the link: the booking names its case).
fn record_link(
    conn: &mut AnyConnection,
    booking: &BookingRow,
    actor_id: i64,
    now: i64,
) -> Result<(), DeskError> {
    let Some(case_id) = booking.case_id else {
        return Ok(());
    };
    case_store::insert_event(
        conn,
        case_store::NewEvent {
            case_id,
            at: now,
            actor_id: Some(actor_id),
            kind: "open_hours_linked",
            from_status: None,
            to_status: None,
            detail: Some(
                serde_json::json!({
                    "booking_id": booking.id,
                    "starts_at": clock::to_rfc3339(booking.starts_at),
                })
                .to_string(),
            ),
            desk_only: false,
        },
    )?;
    Ok(())
}

/// A case's intake from a booking: its topic as title, what was said in
/// the talk as description; the desk corrects the rest at triage.
fn intake_from(row: &BookingRow) -> Intake {
    let starts = desk_offset()
        .timestamp_micros(row.starts_at)
        .unwrap()
        .format("%Y-%m-%d %H:%M");
    let mut description = format!("Open Hours {starts} (JST): {}", row.topic);
    if let Some(note) = row.note.as_deref().filter(|n| !n.is_empty()) {
        description.push_str("\n\n");
        description.push_str(note);
    }
    let mut categories: Vec<Category> = row
        .category_codes()
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    if categories.is_empty() {
        categories.push(Category::Other);
    }
    Intake {
        title: row.topic.clone(),
        description,
        product_type: row
            .product_type
            .as_deref()
            .and_then(|p| p.parse().ok())
            .unwrap_or(ProductType::Other),
        categories,
        stage: Stage::Idea,
        language: row.language.parse().unwrap_or(Lang::Ja),
        organization_name: None,
        organization_kind: None::<OrganizationKind>,
    }
}

/// The booking linked to a case, for the case's page (the desk and the
/// case's organisation).
pub async fn booking_of_case(
    desk: &Desk,
    caller: Caller,
    case_id: i64,
) -> Result<Option<Booking>, DeskError> {
    if !caller.is_one_of(BOOKING_READERS) {
        return Ok(None);
    }
    desk.read(move |conn| {
        let Some(row) = store::booking_of_case(conn, case_id)? else {
            return Ok(None);
        };
        if caller.role == Role::Applicant && caller.organization_id != Some(row.organization_id) {
            return Ok(None);
        }
        Ok(Some(booking_of(conn, row)?))
    })
    .await
}
