//! Open Hours (API.md, "Open Hours"): slots and their seats, bookings, the
//! desk's attendance and cases from bookings, and the admins' rules, slot
//! changes and holidays. Requests are parsed into the commands of
//! `crate::desk::open_hours`; its results are shaped as JSON here.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::cases::{CaseResponse, with_etag};
use super::extract::{AuthUser, Json, OptionalJson, body};
use super::problem::ApiError;
use super::schema::{IsoDate, Title};
use crate::clock;
use crate::desk::accounts;
use crate::desk::open_hours::{self as desk, Booking, SlotChange};
use crate::domain::account::Locale;
use crate::domain::open_hours::{
    BookingForm, MAX_CAPACITY, NOTE_MAX_CHARS, REASON_MAX_CHARS, Slot, SlotRules,
};
use crate::domain::role::Role;
use crate::domain::statistics::parse_date;
use crate::domain::validation::Problems;
use crate::domain::vocabulary::{Category, Lang, ProductType};

// ---------------------------------------------------------------- slots

/// A slot and its seats: `booked + available = capacity` always.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotResponse {
    /// Opaque; the same slot keeps its id before and after bookings.
    pub id: i64,
    #[schema(format = DateTime, example = "2026-12-07T10:00:00+09:00")]
    pub starts_at: String,
    #[schema(format = DateTime, example = "2026-12-07T10:45:00+09:00")]
    pub ends_at: String,
    #[schema(minimum = 0, maximum = 50)]
    pub capacity: u32,
    #[schema(minimum = 0)]
    pub booked: u32,
    #[schema(minimum = 0, maximum = 50)]
    pub available: u32,
    /// A closed slot takes no booking (its bookings stay).
    pub closed: bool,
    /// Why an admin closed it.
    #[schema(required)]
    pub closed_reason: Option<String>,
}

/// Times in the desk's time zone (Asia/Tokyo), with their offset.
fn desk_rfc3339(at: chrono::DateTime<chrono::FixedOffset>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn slot_response(slot: Slot) -> SlotResponse {
    SlotResponse {
        id: slot.planned.id,
        starts_at: desk_rfc3339(slot.planned.starts_at),
        ends_at: desk_rfc3339(slot.planned.ends_at),
        capacity: slot.capacity(),
        booked: slot.booked(),
        available: slot.available(),
        closed: slot.state.closed,
        closed_reason: slot.state.closed_reason,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotList {
    pub items: Vec<SlotResponse>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SlotQuery {
    /// First date (desk calendar, inclusive); today when absent.
    #[param(value_type = IsoDate, required = false)]
    pub from: Option<String>,
    /// Last date (inclusive); the booking horizon when absent. Not before
    /// `from`, at most 366 days after it (422).
    #[param(value_type = IsoDate, required = false)]
    pub to: Option<String>,
}

/// An optional date parameter; `Some(None)` when absent.
fn optional_date(
    problems: &mut Problems,
    field: &str,
    raw: Option<&str>,
) -> Option<Option<chrono::NaiveDate>> {
    match raw {
        None => Some(None),
        Some(raw) => problems.check(field, parse_date(raw)).map(Some),
    }
}

/// The Open Hours slots of a range of dates, in time order, with their
/// seats; weekends and the desk's holidays have none.
#[utoipa::path(
    tag = "open-hours",
    security(("bearer" = [])),
    params(SlotQuery),
    responses(
        (status = 200, body = SlotList),
        (status = 422, description = "`from` or `to` is not a date, `to` is before `from` or more than 366 days after it"),
    )
)]
#[get("/api/v1/open-hours/slots")]
pub async fn list_slots(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<SlotQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Problems::default();
    let from = optional_date(&mut problems, "from", query.from.as_deref());
    let to = optional_date(&mut problems, "to", query.to.as_deref());
    let (from, to) = problems.finish(|| Some((from?, to?)))?;
    let slots = desk::slots(&state.desk, caller, from, to).await?;
    Ok(HttpResponse::Ok().json(SlotList {
        items: slots.into_iter().map(slot_response).collect(),
    }))
}

/// `Some(value)` whenever the field is present, `Some(None)` for null.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<i64>>, D::Error> {
    body::optional_integer(deserializer).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SlotChangeRequest {
    /// Seats of this slot alone; null goes back to the weekday's default;
    /// absent leaves it. Fewer than are booked is a 409.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 50)]
    pub capacity: Option<Option<i64>>,
    /// true closes the slot to new bookings (its bookings stay); false
    /// opens it again.
    pub closed: Option<bool>,
    /// Why it is closed (shown with the slot); blank is none.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// Change one slot: its seats, or close it with a reason (admins).
#[utoipa::path(
    tag = "open-hours",
    request_body = SlotChangeRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "A slot's id, as the slot list gives it")),
    responses(
        (status = 200, body = SlotResponse),
        (status = 403, description = "admins only"),
        (status = 404, description = "no such slot"),
        (status = 409, description = "more seats are booked than the new capacity"),
        (status = 422, description = "capacity below 0 or above 50, a reason too long"),
    )
)]
#[put("/api/v1/open-hours/slots/{id}")]
pub async fn change_slot(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Json<SlotChangeRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::SLOT_ADMINS)?;
    let body = body.into_inner();
    let mut problems = Problems::default();
    let capacity = match body.capacity {
        None => Some(None),
        Some(None) => Some(Some(None)),
        Some(Some(c)) => match u32::try_from(c).ok().filter(|c| *c <= MAX_CAPACITY) {
            Some(c) => Some(Some(Some(c))),
            None => {
                problems.push("capacity", format!("must be from 0 to {MAX_CAPACITY}"));
                None
            }
        },
    };
    let reason = match body.reason.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(r) if r.chars().count() > REASON_MAX_CHARS => {
            problems.push(
                "reason",
                format!("must be at most {REASON_MAX_CHARS} characters"),
            );
            None
        }
        Some(r) => Some(Some(r.to_owned())),
    };
    let change = problems.finish(|| {
        Some(SlotChange {
            capacity: capacity?,
            closed: body.closed,
            reason: reason?,
        })
    })?;
    let slot = desk::change_slot(&state.desk, caller, id.into_inner(), change).await?;
    Ok(HttpResponse::Ok().json(slot_response(slot)))
}

// ---------------------------------------------------------------- rules

/// When slots are held and how many seats they have.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulesResponse {
    /// Start times each business day, Asia/Tokyo, in order.
    #[schema(example = json!(["10:00", "11:00"]))]
    pub times: Vec<String>,
    #[schema(minimum = 5, maximum = 240)]
    pub duration_minutes: u32,
    /// Default seats of a slot, Monday to Friday.
    #[schema(min_items = 5, max_items = 5, example = json!([1, 1, 1, 1, 1]))]
    pub weekday_capacities: Vec<u32>,
    /// Slots can be booked from now up to this many days ahead.
    #[schema(minimum = 1, maximum = 366)]
    pub horizon_days: u32,
}

fn rules_response(rules: SlotRules) -> RulesResponse {
    RulesResponse {
        times: rules
            .times
            .iter()
            .map(|t| t.format("%H:%M").to_string())
            .collect(),
        duration_minutes: rules.duration_minutes,
        weekday_capacities: rules.weekday_capacities.to_vec(),
        horizon_days: rules.horizon_days,
    }
}

/// The Open Hours rules in force (admins).
#[utoipa::path(
    tag = "open-hours",
    security(("bearer" = [])),
    responses(
        (status = 200, body = RulesResponse),
        (status = 403, description = "admins only"),
    )
)]
#[get("/api/v1/open-hours/rules")]
pub async fn get_rules(
    state: web::Data<AppState>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let rules = desk::rules(&state.desk, caller).await?;
    Ok(HttpResponse::Ok().json(rules_response(rules)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RulesRequest {
    /// `HH:MM` start times, 1 to 12, none twice, no slot starting before
    /// the one before it ends (422).
    #[schema(value_type = Option<Vec<String>>, min_items = 1, max_items = 12, example = json!(["10:00", "11:00"]))]
    pub times: Option<Vec<String>>,
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(value_type = Option<i64>, minimum = 5, maximum = 240)]
    pub duration_minutes: Option<i64>,
    /// Five numbers from 0 to 50, Monday to Friday.
    #[schema(value_type = Option<Vec<i64>>, min_items = 5, max_items = 5, example = json!([1, 1, 1, 1, 1]))]
    pub weekday_capacities: Option<Vec<i64>>,
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 366)]
    pub horizon_days: Option<i64>,
}

/// Change the Open Hours rules: only the fields given (admins). Slots
/// already booked keep their bookings.
#[utoipa::path(
    tag = "open-hours",
    request_body = RulesRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = RulesResponse),
        (status = 403, description = "admins only"),
        (status = 422, description = "a time that is not `HH:MM`, a time twice, overlapping slots, or a number out of range"),
    )
)]
#[put("/api/v1/open-hours/rules")]
pub async fn change_rules(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: Json<RulesRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::SLOT_ADMINS)?;
    let body = body.into_inner();
    let rules = desk::change_rules(
        &state.desk,
        caller,
        body.times,
        body.duration_minutes,
        body.weekday_capacities,
        body.horizon_days,
    )
    .await?;
    Ok(HttpResponse::Ok().json(rules_response(rules)))
}

// ---------------------------------------------------------------- holidays

/// A day the desk is closed: no slots, not a business day.
#[derive(Debug, Serialize, ToSchema)]
pub struct HolidayResponse {
    #[schema(format = Date, example = "2026-12-29")]
    pub date: String,
    /// Blank when none was given.
    #[schema(example = "年末年始")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HolidayList {
    pub items: Vec<HolidayResponse>,
}

/// The desk's holidays, in date order (any signed-in user).
#[utoipa::path(
    tag = "open-hours",
    security(("bearer" = [])),
    responses((status = 200, body = HolidayList))
)]
#[get("/api/v1/holidays")]
pub async fn list_holidays(
    state: web::Data<AppState>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let holidays = desk::holidays(&state.desk, caller).await?;
    let items = holidays
        .into_iter()
        .map(|(date, name)| HolidayResponse {
            date: date.to_string(),
            name,
        })
        .collect();
    Ok(HttpResponse::Ok().json(HolidayList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct HolidayRequest {
    /// Blank or absent: none.
    #[schema(max_length = 100)]
    pub name: Option<String>,
}

/// A path date; one that is no date names nothing (404).
fn path_date(raw: &str) -> Result<chrono::NaiveDate, ApiError> {
    parse_date(raw).map_err(|_| ApiError::NotFound)
}

/// Make a day a holiday, or rename it (admins). Slots booked on that day
/// keep their bookings.
#[utoipa::path(
    tag = "open-hours",
    request_body(content = Option<HolidayRequest>, description = "optional: no body, or null, is a holiday without a name"),
    security(("bearer" = [])),
    params(("date" = IsoDate, Path, description = "A date that is no date is 404")),
    responses(
        (status = 200, body = HolidayResponse, description = "renamed"),
        (status = 201, body = HolidayResponse, description = "added"),
        (status = 400, description = "the body is not UTF-8 encoded or not well-formed JSON"),
        (status = 403, description = "admins only"),
        (status = 413, description = "the body is larger than this operation takes"),
        (status = 415, description = "the body is not application/json in UTF-8"),
        (status = 422, description = "the name is longer than 100 characters, or the body is not an object"),
    )
)]
#[put("/api/v1/holidays/{date}")]
pub async fn put_holiday(
    state: web::Data<AppState>,
    caller: AuthUser,
    date: web::Path<String>,
    body: OptionalJson<HolidayRequest>,
) -> Result<HttpResponse, ApiError> {
    let date = path_date(&date)?;
    caller.require(desk::SLOT_ADMINS)?;
    let name = body.0.and_then(|b| b.name).unwrap_or_default();
    let name = name.trim().to_owned();
    let added = desk::put_holiday(&state.desk, caller, date, name.clone()).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(HolidayResponse {
        date: date.to_string(),
        name,
    }))
}

/// Make a holiday a business day again (admins).
#[utoipa::path(
    tag = "open-hours",
    security(("bearer" = [])),
    params(("date" = IsoDate, Path)),
    responses(
        (status = 204, description = "removed"),
        (status = 403, description = "admins only"),
        (status = 404, description = "the day is no holiday"),
    )
)]
#[delete("/api/v1/holidays/{date}")]
pub async fn delete_holiday(
    state: web::Data<AppState>,
    caller: AuthUser,
    date: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let date = path_date(&date)?;
    desk::delete_holiday(&state.desk, caller, date).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------- bookings

/// A booking as its reader may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingResponse {
    pub id: i64,
    pub slot_id: i64,
    #[schema(format = DateTime, example = "2026-12-07T10:00:00+09:00")]
    pub starts_at: String,
    #[schema(format = DateTime, example = "2026-12-07T10:45:00+09:00")]
    pub ends_at: String,
    /// `booked`, or `cancelled` (the seat is free again).
    #[schema(example = "booked")]
    pub status: &'static str,
    pub topic: String,
    #[schema(required, value_type = Option<ProductType>)]
    pub product_type: Option<String>,
    #[schema(value_type = Vec<Category>)]
    pub categories: Vec<String>,
    #[schema(value_type = Lang)]
    pub language: String,
    /// The case the booking is linked to (given when booking, or opened by
    /// the desk from it).
    #[schema(required)]
    pub case_id: Option<i64>,
    pub organization_id: i64,
    /// Whether the applicant came, once the desk said.
    #[schema(required)]
    pub attended: Option<bool>,
    /// The desk's note on the talk.
    #[schema(required)]
    pub note: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required, format = DateTime)]
    pub cancelled_at: Option<String>,
    /// Desk staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// Desk staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applicant_name: Option<String>,
}

fn booking_response(booking: Booking, desk_view: bool) -> BookingResponse {
    let status = booking.status().as_str();
    let Booking {
        row,
        organization_name,
        applicant_name,
    } = booking;
    let offset = crate::domain::case::desk_offset();
    let at = |micros: i64| {
        clock::to_datetime(micros)
            .with_timezone(&offset)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    };
    BookingResponse {
        id: row.id,
        slot_id: row.slot_id,
        starts_at: at(row.starts_at),
        ends_at: at(row.ends_at),
        status,
        categories: row
            .category_codes()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        topic: row.topic,
        product_type: row.product_type,
        language: row.language,
        case_id: row.case_id,
        organization_id: row.organization_id,
        attended: row.attended,
        note: row.note,
        created_at: clock::to_rfc3339(row.created_at),
        cancelled_at: row.cancelled_at.map(clock::to_rfc3339),
        organization_name: desk_view.then_some(organization_name),
        applicant_name: desk_view.then_some(applicant_name),
    }
}

fn is_desk(caller: &AuthUser) -> bool {
    matches!(caller.role, Role::Supporter | Role::Admin)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingList {
    pub items: Vec<BookingResponse>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BookingRequest {
    /// A slot's id from the slot list: open, in the future, within the
    /// horizon, not on a holiday (422 otherwise).
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(value_type = i64, required)]
    pub slot_id: Option<i64>,
    /// What the talk is about, one line.
    #[schema(value_type = Title)]
    pub topic: Option<String>,
    #[schema(value_type = Option<ProductType>)]
    pub product_type: Option<String>,
    /// Codes, none twice.
    #[schema(value_type = Option<Vec<Category>>)]
    pub categories: Option<Vec<String>>,
    /// The language of the talk; the account's language when absent.
    #[schema(value_type = Option<Lang>)]
    pub language: Option<String>,
    /// A case of your organisation this talk is about (its triage route
    /// `open_hours`); 422 for any other.
    #[serde(default, deserialize_with = "body::optional_integer")]
    pub case_id: Option<i64>,
}

/// Book a seat in a slot for your organisation (applicants). The applicant
/// is mailed the booking with a calendar invitation; the desk is told.
#[utoipa::path(
    tag = "open-hours",
    request_body = BookingRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = BookingResponse),
        (status = 403, description = "applicants only (with an organisation)"),
        (status = 409, description = "no seat is left (`type` ending in `slot_full`), or your organisation holds a booking in this slot already"),
        (status = 422, description = "a slot that has started, is closed, is on a holiday, beyond the horizon or unknown; a topic that is blank or not one line; an unknown product type, category or language; a case not of your organisation"),
    )
)]
#[post("/api/v1/open-hours/bookings")]
pub async fn book(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: Json<BookingRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::BOOKERS)?;
    let body = body.into_inner();
    let form = BookingForm {
        slot_id: body.slot_id,
        topic: body.topic.as_deref(),
        product_type: body.product_type.as_deref(),
        categories: body.categories.as_deref(),
        language: body.language.as_deref(),
        case_id: body.case_id,
    };
    let default_language = match body.language.as_deref().map(str::trim) {
        None | Some("") => match accounts::my_account(&state.desk, caller).await? {
            Some(account) if account.locale == Locale::En => Lang::En,
            _ => Lang::Ja,
        },
        Some(_) => Lang::Ja,
    };
    let request = form.validate(default_language)?;
    let booking = desk::book(&state.desk, caller, request).await?;
    Ok(HttpResponse::Created().json(booking_response(booking, false)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct BookingQuery {
    /// One day's bookings (desk calendar); from today on when absent.
    #[param(value_type = IsoDate, required = false)]
    pub date: Option<String>,
}

/// Bookings in time order, cancelled ones included: an applicant's
/// organisation's, or every organisation's for the desk.
#[utoipa::path(
    tag = "open-hours",
    security(("bearer" = [])),
    params(BookingQuery),
    responses(
        (status = 200, body = BookingList),
        (status = 403, description = "experts and managers"),
        (status = 422, description = "`date` is not a date"),
    )
)]
#[get("/api/v1/open-hours/bookings")]
pub async fn list_bookings(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<BookingQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::BOOKING_READERS)?;
    let mut problems = Problems::default();
    let date = optional_date(&mut problems, "date", query.date.as_deref());
    let date = problems.finish(|| date)?;
    let desk_view = is_desk(&caller);
    let bookings = desk::bookings(&state.desk, caller, date).await?;
    Ok(HttpResponse::Ok().json(BookingList {
        items: bookings
            .into_iter()
            .map(|b| booking_response(b, desk_view))
            .collect(),
    }))
}

/// One booking: the desk's, or your organisation's.
#[utoipa::path(
    tag = "open-hours",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = BookingResponse),
        (status = 403, description = "experts and managers"),
        (status = 404, description = "no such booking, or not your organisation's"),
    )
)]
#[get("/api/v1/open-hours/bookings/{id}")]
pub async fn get_booking(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let desk_view = is_desk(&caller);
    let booking = desk::booking(&state.desk, caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(booking_response(booking, desk_view)))
}

/// Cancel a booking until its slot starts: the seat is free again, the
/// reminder is taken back, the applicant gets the calendar's cancellation
/// and the desk is told. Cancelling a cancelled booking changes nothing.
#[utoipa::path(
    tag = "open-hours",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = BookingResponse),
        (status = 403, description = "experts and managers"),
        (status = 404, description = "no such booking, or not your organisation's"),
        (status = 409, description = "the slot has started"),
    )
)]
#[post("/api/v1/open-hours/bookings/{id}/cancel")]
pub async fn cancel_booking(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let desk_view = is_desk(&caller);
    let booking = desk::cancel(&state.desk, caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(booking_response(booking, desk_view)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AttendanceRequest {
    /// true: came; false: no-show.
    #[schema(value_type = bool, required)]
    pub attended: Option<bool>,
    /// A short note on the talk; blank is none.
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

/// Record whether the applicant came, with a short note (desk staff).
#[utoipa::path(
    tag = "open-hours",
    request_body = AttendanceRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = BookingResponse),
        (status = 403, description = "desk staff only"),
        (status = 409, description = "the booking was cancelled"),
        (status = 422, description = "`attended` missing, or the note longer than 2,000 characters"),
    )
)]
#[post("/api/v1/open-hours/bookings/{id}/attendance")]
pub async fn record_attendance(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Json<AttendanceRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(crate::desk::cases::DESK_STAFF)?;
    let body = body.into_inner();
    let mut problems = Problems::default();
    if body.attended.is_none() {
        problems.push("attended", "is required");
    }
    if body
        .note
        .as_deref()
        .is_some_and(|n| n.trim().chars().count() > NOTE_MAX_CHARS)
    {
        problems.push(
            "note",
            format!("must be at most {NOTE_MAX_CHARS} characters"),
        );
    }
    let attended = problems.finish(|| body.attended)?;
    let booking =
        desk::record_attendance(&state.desk, caller, id.into_inner(), attended, body.note).await?;
    Ok(HttpResponse::Ok().json(booking_response(booking, true)))
}

/// Turn a booking into a case of its organisation, filed by the desk on
/// the applicant's behalf and pre-filled from the booking (topic, product
/// type, categories, language, the desk's note); the booking links to it.
#[utoipa::path(
    tag = "open-hours",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 201, body = CaseResponse, headers(("ETag" = String, description = "The case's version, for `If-Match`"))),
        (status = 403, description = "desk staff only"),
        (status = 404, description = "no such booking"),
        (status = 409, description = "the booking is linked to a case already (`case_id` names it), or was cancelled"),
    )
)]
#[post("/api/v1/open-hours/bookings/{id}/case")]
pub async fn open_case(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let snapshot = desk::open_case(&state.desk, caller, id.into_inner()).await?;
    Ok(with_etag(snapshot, StatusCode::CREATED))
}
