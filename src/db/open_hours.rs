//! Open Hours: the desk's holidays, the slot rules, the rows of slots that
//! were booked or changed, and bookings. The seat count is the database's:
//! [`take_seat`] is one conditional UPDATE, so two bookings of the last seat
//! cannot both succeed, on SQLite (one writer) as on PostgreSQL (the row's
//! lock, the condition re-checked after it), whichever instance runs them.

use diesel::prelude::*;

use super::schema::{
    holidays, open_hours_bookings, open_hours_settings, open_hours_slots, organizations, users,
};
use super::{AnyConnection, DbResult};

// ---------------------------------------------------------------- holidays

/// Every holiday, `(YYYY-MM-DD, name)`, in date order.
pub fn holidays(conn: &mut AnyConnection) -> DbResult<Vec<(String, String)>> {
    Ok(holidays::table
        .select((holidays::day, holidays::name))
        .order(holidays::day.asc())
        .load(conn)?)
}

/// Adds holidays that are not there yet (the `MEDESK_HOLIDAYS` seed never
/// overwrites a name an admin gave).
pub fn seed_holidays(conn: &mut AnyConnection, days: &[String], now: i64) -> DbResult<()> {
    for day in days {
        let insert = diesel::insert_into(holidays::table)
            .values((
                holidays::day.eq(day),
                holidays::name.eq(""),
                holidays::created_at.eq(now),
            ))
            .on_conflict_do_nothing();
        on_backend!(conn, |c| insert.execute(c))?;
    }
    Ok(())
}

/// Adds a holiday or renames it; true when it is new.
pub fn put_holiday(conn: &mut AnyConnection, day: &str, name: &str, now: i64) -> DbResult<bool> {
    let renamed = diesel::update(holidays::table.find(day))
        .set(holidays::name.eq(name))
        .execute(conn)?;
    if renamed == 1 {
        return Ok(false);
    }
    diesel::insert_into(holidays::table)
        .values((
            holidays::day.eq(day),
            holidays::name.eq(name),
            holidays::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Removes a holiday; false when there was none.
pub fn delete_holiday(conn: &mut AnyConnection, day: &str) -> DbResult<bool> {
    Ok(diesel::delete(holidays::table.find(day)).execute(conn)? == 1)
}

// ---------------------------------------------------------------- rules

/// The stored rules: times, duration, weekday capacities, horizon.
pub type StoredRules = (String, i32, String, i32);

pub fn rules(conn: &mut AnyConnection) -> DbResult<Option<StoredRules>> {
    Ok(open_hours_settings::table
        .find(1)
        .select((
            open_hours_settings::times,
            open_hours_settings::duration_minutes,
            open_hours_settings::weekday_capacities,
            open_hours_settings::horizon_days,
        ))
        .first(conn)
        .optional()?)
}

pub fn write_rules(conn: &mut AnyConnection, rules: &StoredRules, now: i64) -> DbResult<()> {
    let (times, duration, capacities, horizon) = rules;
    let changed = diesel::update(open_hours_settings::table.find(1))
        .set((
            open_hours_settings::times.eq(times),
            open_hours_settings::duration_minutes.eq(duration),
            open_hours_settings::weekday_capacities.eq(capacities),
            open_hours_settings::horizon_days.eq(horizon),
            open_hours_settings::updated_at.eq(now),
        ))
        .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(open_hours_settings::table)
            .values((
                open_hours_settings::id.eq(1),
                open_hours_settings::times.eq(times),
                open_hours_settings::duration_minutes.eq(duration),
                open_hours_settings::weekday_capacities.eq(capacities),
                open_hours_settings::horizon_days.eq(horizon),
                open_hours_settings::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- slots

#[derive(Debug, Clone, Queryable)]
pub struct SlotRow {
    pub id: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    pub capacity: Option<i32>,
    pub booked: i32,
    pub closed: bool,
    pub closed_reason: Option<String>,
    pub updated_at: i64,
}

/// Rows of slots starting from `from` to before `until` (microseconds).
pub fn slots_between(conn: &mut AnyConnection, from: i64, until: i64) -> DbResult<Vec<SlotRow>> {
    Ok(open_hours_slots::table
        .filter(open_hours_slots::starts_at.ge(from))
        .filter(open_hours_slots::starts_at.lt(until))
        .order(open_hours_slots::starts_at.asc())
        .select(open_hours_slots::all_columns)
        .load(conn)?)
}

pub fn find_slot(conn: &mut AnyConnection, id: i64) -> DbResult<Option<SlotRow>> {
    Ok(open_hours_slots::table
        .find(id)
        .select(open_hours_slots::all_columns)
        .first(conn)
        .optional()?)
}

/// Gives a planned slot its row, if it has none yet.
pub fn ensure_slot(
    conn: &mut AnyConnection,
    id: i64,
    starts_at: i64,
    ends_at: i64,
    now: i64,
) -> DbResult<()> {
    let insert = diesel::insert_into(open_hours_slots::table)
        .values((
            open_hours_slots::id.eq(id),
            open_hours_slots::starts_at.eq(starts_at),
            open_hours_slots::ends_at.eq(ends_at),
            open_hours_slots::booked.eq(0),
            open_hours_slots::closed.eq(false),
            open_hours_slots::updated_at.eq(now),
        ))
        .on_conflict_do_nothing();
    on_backend!(conn, |c| insert.execute(c))?;
    Ok(())
}

/// Takes one seat of an open slot that has one left (its own capacity, or
/// `default_capacity` when it follows its weekday's); false when none is
/// left or the slot is closed. One statement: the check and the count are
/// the same write.
pub fn take_seat(conn: &mut AnyConnection, id: i64, default_capacity: i32) -> DbResult<bool> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Bool, Integer};
    let has_a_seat = sql::<Bool>("booked < COALESCE(capacity, ")
        .bind::<Integer, _>(default_capacity)
        .sql(")");
    Ok(diesel::update(
        open_hours_slots::table
            .find(id)
            .filter(open_hours_slots::closed.eq(false))
            .filter(has_a_seat),
    )
    .set(open_hours_slots::booked.eq(open_hours_slots::booked + 1))
    .execute(conn)?
        == 1)
}

/// Gives a seat back (a cancelled booking).
pub fn free_seat(conn: &mut AnyConnection, id: i64) -> DbResult<()> {
    diesel::update(
        open_hours_slots::table
            .find(id)
            .filter(open_hours_slots::booked.gt(0)),
    )
    .set(open_hours_slots::booked.eq(open_hours_slots::booked - 1))
    .execute(conn)?;
    Ok(())
}

/// Sets a slot's own capacity, unless more seats than that are taken
/// (false then): one conditional statement, so no booking slips in between.
pub fn set_capacity(
    conn: &mut AnyConnection,
    id: i64,
    capacity: Option<i32>,
    now: i64,
) -> DbResult<bool> {
    let target = open_hours_slots::table.find(id);
    let changed = match capacity {
        Some(capacity) => diesel::update(target.filter(open_hours_slots::booked.le(capacity)))
            .set((
                open_hours_slots::capacity.eq(Some(capacity)),
                open_hours_slots::updated_at.eq(now),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set((
                open_hours_slots::capacity.eq(None::<i32>),
                open_hours_slots::updated_at.eq(now),
            ))
            .execute(conn)?,
    };
    Ok(changed == 1)
}

pub fn set_closed(
    conn: &mut AnyConnection,
    id: i64,
    closed: bool,
    reason: Option<&str>,
    now: i64,
) -> DbResult<()> {
    diesel::update(open_hours_slots::table.find(id))
        .set((
            open_hours_slots::closed.eq(closed),
            open_hours_slots::closed_reason.eq(reason),
            open_hours_slots::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------- bookings

#[derive(Debug, Clone, Queryable)]
pub struct BookingRow {
    pub id: i64,
    pub slot_id: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    pub organization_id: i64,
    pub applicant_id: i64,
    pub topic: String,
    pub product_type: Option<String>,
    /// Category codes, comma-separated (empty: none given).
    pub categories: String,
    pub language: String,
    pub status: String,
    pub case_id: Option<i64>,
    pub attended: Option<bool>,
    pub note: Option<String>,
    pub reminder_mail_id: Option<i64>,
    pub created_at: i64,
    pub cancelled_at: Option<i64>,
    pub updated_at: i64,
}

impl BookingRow {
    pub fn category_codes(&self) -> Vec<&str> {
        self.categories
            .split(',')
            .filter(|c| !c.is_empty())
            .collect()
    }
}

pub struct NewBooking<'a> {
    pub slot_id: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    pub organization_id: i64,
    pub applicant_id: i64,
    pub topic: &'a str,
    pub product_type: Option<&'a str>,
    pub categories: &'a str,
    pub language: &'a str,
    pub case_id: Option<i64>,
    pub now: i64,
}

/// Inserts a live booking; a second live booking of the organisation in the
/// slot is `UniqueViolation` (the partial unique index).
pub fn insert_booking(conn: &mut AnyConnection, new: &NewBooking) -> DbResult<BookingRow> {
    Ok(diesel::insert_into(open_hours_bookings::table)
        .values((
            open_hours_bookings::slot_id.eq(new.slot_id),
            open_hours_bookings::starts_at.eq(new.starts_at),
            open_hours_bookings::ends_at.eq(new.ends_at),
            open_hours_bookings::organization_id.eq(new.organization_id),
            open_hours_bookings::applicant_id.eq(new.applicant_id),
            open_hours_bookings::topic.eq(new.topic),
            open_hours_bookings::product_type.eq(new.product_type),
            open_hours_bookings::categories.eq(new.categories),
            open_hours_bookings::language.eq(new.language),
            open_hours_bookings::status.eq("booked"),
            open_hours_bookings::case_id.eq(new.case_id),
            open_hours_bookings::created_at.eq(new.now),
            open_hours_bookings::updated_at.eq(new.now),
        ))
        .returning(open_hours_bookings::all_columns)
        .get_result(conn)?)
}

pub fn find_booking(conn: &mut AnyConnection, id: i64) -> DbResult<Option<BookingRow>> {
    Ok(open_hours_bookings::table
        .find(id)
        .select(open_hours_bookings::all_columns)
        .first(conn)
        .optional()?)
}

/// Bookings starting from `from` to before `until`, of one organisation or
/// of all, in time order (then the order they were made), each with its
/// organisation's and its applicant's name (one query, not one per row).
pub fn bookings(
    conn: &mut AnyConnection,
    organization_id: Option<i64>,
    from: i64,
    until: i64,
    limit: i64,
) -> DbResult<Vec<(BookingRow, String, String)>> {
    let mut query = open_hours_bookings::table
        .inner_join(organizations::table)
        .inner_join(users::table)
        .filter(open_hours_bookings::starts_at.ge(from))
        .filter(open_hours_bookings::starts_at.lt(until))
        .select((
            open_hours_bookings::all_columns,
            organizations::name,
            users::name,
        ))
        .order((
            open_hours_bookings::starts_at.asc(),
            open_hours_bookings::id.asc(),
        ))
        .limit(limit)
        .into_boxed();
    if let Some(organization_id) = organization_id {
        query = query.filter(open_hours_bookings::organization_id.eq(organization_id));
    }
    Ok(query.load(conn)?)
}

/// The live booking linked to a case, if any.
pub fn booking_of_case(conn: &mut AnyConnection, case_id: i64) -> DbResult<Option<BookingRow>> {
    Ok(open_hours_bookings::table
        .filter(open_hours_bookings::case_id.eq(case_id))
        .select(open_hours_bookings::all_columns)
        .order(open_hours_bookings::id.desc())
        .first(conn)
        .optional()?)
}

/// Cancels a live booking; false when it was not live (any more).
pub fn cancel_booking(conn: &mut AnyConnection, id: i64, now: i64) -> DbResult<bool> {
    Ok(diesel::update(
        open_hours_bookings::table
            .find(id)
            .filter(open_hours_bookings::status.eq("booked")),
    )
    .set((
        open_hours_bookings::status.eq("cancelled"),
        open_hours_bookings::cancelled_at.eq(Some(now)),
        open_hours_bookings::updated_at.eq(now),
    ))
    .execute(conn)?
        == 1)
}

pub fn set_reminder(conn: &mut AnyConnection, id: i64, mail_id: i64) -> DbResult<()> {
    diesel::update(open_hours_bookings::table.find(id))
        .set(open_hours_bookings::reminder_mail_id.eq(Some(mail_id)))
        .execute(conn)?;
    Ok(())
}

pub fn set_attendance(
    conn: &mut AnyConnection,
    id: i64,
    attended: bool,
    note: Option<&str>,
    now: i64,
) -> DbResult<()> {
    diesel::update(open_hours_bookings::table.find(id))
        .set((
            open_hours_bookings::attended.eq(Some(attended)),
            open_hours_bookings::note.eq(note),
            open_hours_bookings::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Links a booking to a case, unless it is linked already (false then).
pub fn link_case(conn: &mut AnyConnection, id: i64, case_id: i64, now: i64) -> DbResult<bool> {
    Ok(diesel::update(
        open_hours_bookings::table
            .find(id)
            .filter(open_hours_bookings::case_id.is_null()),
    )
    .set((
        open_hours_bookings::case_id.eq(Some(case_id)),
        open_hours_bookings::updated_at.eq(now),
    ))
    .execute(conn)?
        == 1)
}

/// What the statistics read of a booking: `(starts_at, categories,
/// attended, case_id)`.
pub type StatisticsRow = (i64, String, Option<bool>, Option<i64>);

/// Bookings made (not cancelled) with a start from `from` to before
/// `until`, for the statistics.
pub fn bookings_for_statistics(
    conn: &mut AnyConnection,
    from: i64,
    until: i64,
) -> DbResult<Vec<StatisticsRow>> {
    Ok(open_hours_bookings::table
        .filter(open_hours_bookings::starts_at.ge(from))
        .filter(open_hours_bookings::starts_at.lt(until))
        .filter(open_hours_bookings::status.eq("booked"))
        .select((
            open_hours_bookings::starts_at,
            open_hours_bookings::categories,
            open_hours_bookings::attended,
            open_hours_bookings::case_id,
        ))
        .load(conn)?)
}

/// The first and the last start of a live booking (for a statistics
/// range's defaults); None when there is none.
pub fn live_booking_span(conn: &mut AnyConnection) -> DbResult<(Option<i64>, Option<i64>)> {
    use diesel::dsl::{max, min};
    Ok(open_hours_bookings::table
        .filter(open_hours_bookings::status.eq("booked"))
        .select((
            min(open_hours_bookings::starts_at),
            max(open_hours_bookings::starts_at),
        ))
        .first(conn)?)
}
