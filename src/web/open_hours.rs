//! Open Hours pages (PRODUCT.md, "Open Hours"): the applicant's list of the
//! coming weeks with booking and cancelling, the desk's day view with
//! attendance and "turn into a case", the admin's rules, holidays and
//! per-slot changes. Every form calls `desk::open_hours`, as the API does.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};

use super::auth::see_other;
use super::form::{Form, errors_by_field};
use super::i18n;
use super::page::{
    choices, desk_error, local_time, path_id, signed_in, signed_in_form, signed_in_form_on,
};
use super::render::Viewer;
use super::session;
use crate::desk::cases;
use crate::desk::open_hours::{self, Booking, SlotChange};
use crate::desk::{Caller, Desk, DeskError};
use crate::domain::account::Locale;
use crate::domain::case::{desk_date, parse_text};
use crate::domain::open_hours::{
    BookingForm, BookingStatus, MAX_CAPACITY, REASON_MAX_CHARS, Slot, slot_start,
};
use crate::domain::statistics::parse_date;
use crate::domain::validation::{Code, Invalid, Problems, Refusal};
use crate::domain::vocabulary::{Category, Lang, ProductType};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(applicant_page)
        .service(book_page)
        .service(book_submit)
        .service(cancel_booking)
        .service(day_page)
        .service(record_attendance)
        .service(turn_into_case)
        .service(admin_page)
        .service(rules_submit)
        .service(holiday_add)
        .service(holiday_delete)
        .service(slot_submit);
}

/// How many days ahead the admin's page lists slots to change.
const ADMIN_SLOT_DAYS: u64 = 14;

// ---------------------------------------------------------------- dates

const WEEKDAYS_JA: [&str; 7] = ["月", "火", "水", "木", "金", "土", "日"];

/// `2026年12月7日` / `7 Dec 2026`.
fn date_text(locale: Locale, date: NaiveDate) -> String {
    match locale {
        Locale::Ja => format!("{}年{}月{}日", date.year(), date.month(), date.day()),
        Locale::En => date.format("%-d %b %Y").to_string(),
    }
}

/// `12月7日(月)` / `Mon 7 Dec`.
fn day_text(locale: Locale, date: NaiveDate) -> String {
    match locale {
        Locale::Ja => format!(
            "{}月{}日({})",
            date.month(),
            date.day(),
            WEEKDAYS_JA[date.weekday().num_days_from_monday() as usize]
        ),
        Locale::En => date.format("%a %-d %b").to_string(),
    }
}

/// `2026年12月7日(月)` / `Mon 7 Dec 2026`.
fn full_day_text(locale: Locale, date: NaiveDate) -> String {
    match locale {
        Locale::Ja => format!("{}年{}", date.year(), day_text(locale, date)),
        Locale::En => date.format("%a %-d %b %Y").to_string(),
    }
}

fn now(req: &HttpRequest) -> i64 {
    session::state(req).desk.clock.now_micros()
}

fn desk_of(req: &HttpRequest) -> &Desk {
    &session::state(req).desk
}

/// `{n}` of a label filled in.
fn with_count(viewer: &Viewer, key: &str, n: u32) -> String {
    viewer.text(key).replace("{n}", &n.to_string())
}

// ---------------------------------------------------------------- slots as shown

#[derive(Serialize)]
struct SlotView {
    id: i64,
    /// `10:00`.
    start: String,
    /// `10:00–10:45`.
    time: String,
    date: String,
    day: String,
    capacity: u32,
    booked: u32,
    available: u32,
    /// `open`, `full`, `closed`, `past` or `mine` (the organisation holds a
    /// seat).
    state: &'static str,
    /// What the slot says about its seats, in the viewer's language.
    seats: String,
    closed_reason: Option<String>,
    /// The seats set for this slot alone (blank: the weekday's).
    capacity_override: String,
}

fn slot_view(viewer: &Viewer, slot: &Slot, now: i64, mine: bool) -> SlotView {
    let starts = slot.planned.starts_at;
    let date = starts.date_naive();
    let available = slot.available();
    let (state, seats) = if mine {
        ("mine", viewer.text("open_hours_state_mine"))
    } else if slot.planned.starts_at_micros() <= now {
        ("past", viewer.text("open_hours_state_past"))
    } else if slot.state.closed {
        ("closed", viewer.text("open_hours_state_closed"))
    } else if available == 0 {
        ("full", viewer.text("open_hours_state_full"))
    } else if available == 1 {
        ("open", with_count(viewer, "open_hours_seats_left_one", 1))
    } else {
        (
            "open",
            with_count(viewer, "open_hours_seats_left", available),
        )
    };
    SlotView {
        id: slot.planned.id,
        start: starts.format("%H:%M").to_string(),
        time: format!(
            "{}–{}",
            starts.format("%H:%M"),
            slot.planned.ends_at.format("%H:%M")
        ),
        date: date.to_string(),
        day: day_text(viewer.locale, date),
        capacity: slot.capacity(),
        booked: slot.booked(),
        available,
        state,
        seats,
        closed_reason: slot.state.closed_reason.clone(),
        capacity_override: slot
            .state
            .capacity
            .map_or_else(String::new, |c| c.to_string()),
    }
}

#[derive(Serialize)]
struct DayView {
    date: String,
    /// 0 (Monday) to 6.
    weekday: u32,
    label: String,
    slots: Vec<SlotView>,
}

#[derive(Serialize)]
struct WeekView {
    label: String,
    days: Vec<DayView>,
}

/// Slots (in time order) grouped by week (from Monday) and day.
fn weeks(viewer: &Viewer, slots: Vec<SlotView>) -> Vec<WeekView> {
    let mut weeks: Vec<(NaiveDate, WeekView)> = Vec::new();
    for slot in slots {
        let date: NaiveDate = slot.date.parse().expect("a date we formatted");
        let monday = date - Days::new(u64::from(date.weekday().num_days_from_monday()));
        if weeks.last().is_none_or(|(m, _)| *m != monday) {
            let label = viewer
                .text("open_hours_week_of")
                .replace("{date}", &date_text(viewer.locale, monday));
            weeks.push((
                monday,
                WeekView {
                    label,
                    days: Vec::new(),
                },
            ));
        }
        let week = &mut weeks.last_mut().expect("pushed").1;
        if week.days.last().is_none_or(|d| d.date != slot.date) {
            week.days.push(DayView {
                date: slot.date.clone(),
                weekday: date.weekday().num_days_from_monday(),
                label: day_text(viewer.locale, date),
                slots: Vec::new(),
            });
        }
        week.days.last_mut().expect("pushed").slots.push(slot);
    }
    weeks.into_iter().map(|(_, w)| w).collect()
}

fn is_booked(booking: &Booking) -> bool {
    booking.status() == BookingStatus::Booked
}

// ---------------------------------------------------------------- applicant

#[derive(Serialize)]
struct OwnBooking {
    id: i64,
    when: String,
    topic: String,
    can_cancel: bool,
}

#[get("/open-hours")]
pub async fn applicant_page(
    req: HttpRequest,
    viewer: Viewer,
    query: web::Query<CaseQuery>,
) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let desk = desk_of(&req);
    let booker = caller.is_one_of(open_hours::BOOKERS);
    let own = if booker {
        match open_hours::bookings(desk, caller, None).await {
            Ok(own) => own,
            Err(error) => return desk_error(&viewer, error),
        }
    } else {
        Vec::new()
    };
    let slots = match open_hours::slots(desk, caller, None, None).await {
        Ok(slots) => slots,
        Err(error) => return desk_error(&viewer, error),
    };
    let now = now(&req);
    let held: Vec<i64> = own
        .iter()
        .filter(|b| is_booked(b))
        .map(|b| b.row.slot_id)
        .collect();
    let views: Vec<SlotView> = slots
        .iter()
        .map(|s| slot_view(&viewer, s, now, held.contains(&s.planned.id)))
        .collect();
    let bookings: Vec<OwnBooking> = own
        .into_iter()
        .filter(is_booked)
        .map(|b| OwnBooking {
            id: b.row.id,
            when: local_time(viewer.locale, b.row.starts_at),
            topic: b.row.topic,
            can_cancel: b.row.starts_at > now,
        })
        .collect();
    viewer.render(
        StatusCode::OK,
        "open_hours.html",
        minijinja::context! {
            weeks => weeks(&viewer, views),
            bookings,
            booker,
            staff => caller.role.is_desk_staff(),
            // From a case the desk routed to Open Hours: its booking links
            // to it.
            case_id => query.case_id,
        },
    )
}

/// The slot `id` as listed now, if the rules still hold it or it has
/// bookings.
async fn find_slot(desk: &Desk, caller: Caller, id: i64) -> Result<Option<Slot>, DeskError> {
    let Some(starts) = slot_start(id) else {
        return Ok(None);
    };
    let date = starts.date_naive();
    let slots = open_hours::slots(desk, caller, Some(date), Some(date)).await?;
    Ok(slots.into_iter().find(|s| s.planned.id == id))
}

/// `?case_id=`: the booking is for a case routed to Open Hours.
#[derive(Deserialize)]
struct CaseQuery {
    case_id: Option<i64>,
}

/// The booking form: the slot, what was typed, and why it was refused.
struct BookForm<'a> {
    slot_id: Option<i64>,
    form: Option<&'a Form>,
    errors: BTreeMap<String, Vec<String>>,
    problem: Option<String>,
}

async fn book_view(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    status: StatusCode,
    shown: BookForm<'_>,
) -> HttpResponse {
    let desk = desk_of(req);
    let slot = match shown.slot_id {
        Some(id) => match find_slot(desk, caller, id).await {
            Ok(slot) => slot,
            Err(error) => return desk_error(viewer, error),
        },
        None => None,
    };
    let slot = slot.map(|s| {
        let view = slot_view(viewer, &s, now(req), false);
        minijinja::context! {
            id => view.id, time => view.time, seats => view.seats, state => view.state,
            day => full_day_text(viewer.locale, s.planned.starts_at.date_naive()),
        }
    });
    let lang = i18n::lang(viewer.locale);
    let form = shown.form;
    let get = |name: &str| form.and_then(|f| f.get(name)).unwrap_or("").to_owned();
    let values = minijinja::context! {
        topic => get("topic"),
        product_type => get("product_type"),
        categories => form.map(|f| f.all("categories")).unwrap_or_default(),
        language => form.map_or_else(|| lang.as_str().to_owned(), |_| get("language")),
        case_id => form.map_or_else(
            || {
                web::Query::<CaseQuery>::from_query(req.query_string())
                    .ok()
                    .and_then(|q| q.into_inner().case_id)
                    .map_or_else(String::new, |id| id.to_string())
            },
            |_| get("case_id"),
        ),
    };
    viewer.render(
        status,
        "open_hours_book.html",
        minijinja::context! {
            slot,
            slot_id => shown.slot_id,
            form => values,
            errors => shown.errors,
            problem => shown.problem,
            product_types => choices(&ProductType::ALL, ProductType::as_str, ProductType::label, lang),
            categories => choices(&Category::ALL, Category::as_str, Category::label, lang),
            languages => choices(&Lang::ALL, Lang::as_str, Lang::label, lang),
        },
    )
}

#[get("/open-hours/slots/{id}/book")]
pub async fn book_page(req: HttpRequest, viewer: Viewer, id: web::Path<String>) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let id = match path_id(&viewer, &id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    match find_slot(desk_of(&req), caller, id).await {
        Ok(Some(_)) => {}
        Ok(None) => return desk_error(&viewer, DeskError::NotFound),
        Err(error) => return desk_error(&viewer, error),
    }
    let shown = BookForm {
        slot_id: Some(id),
        form: None,
        errors: BTreeMap::new(),
        problem: None,
    };
    book_view(&req, &viewer, caller, StatusCode::OK, shown).await
}

#[post("/open-hours/bookings")]
pub async fn book_submit(req: HttpRequest, viewer: Viewer, form: Form) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let slot_id = form
        .get("slot_id")
        .and_then(|v| v.trim().parse::<i64>().ok());
    let categories = form.all("categories");
    let checked = BookingForm {
        slot_id,
        topic: form.filled("topic"),
        product_type: form.get("product_type"),
        categories: Some(&categories),
        language: form.get("language"),
        case_id: form.filled("case_id").and_then(|v| v.trim().parse().ok()),
    }
    .validate(i18n::lang(viewer.locale));
    let refused = |status: StatusCode, problems: Vec<Invalid>, problem: Option<String>| {
        // A refusal of the slot itself (started, closed, gone) or of the
        // linked case is said above the form, in the viewer's language.
        let (general, by_field): (Vec<Invalid>, Vec<Invalid>) = problems
            .into_iter()
            .partition(|p| p.field == "slot_id" || p.field == "case_id");
        let problem = problem.or_else(|| {
            general.first().map(|p| {
                viewer.text(if p.field == "case_id" {
                    "open_hours_case_not_yours"
                } else {
                    "open_hours_slot_unavailable"
                })
            })
        });
        let shown = BookForm {
            slot_id,
            form: Some(&form),
            errors: errors_by_field(viewer.locale, &by_field),
            problem,
        };
        book_view(&req, &viewer, caller, status, shown)
    };
    let request = match checked {
        Ok(request) => request,
        Err(problems) => return refused(StatusCode::UNPROCESSABLE_ENTITY, problems, None).await,
    };
    match open_hours::book(desk_of(&req), caller, request).await {
        Ok(_) => see_other("/open-hours?notice=notice_open_hours_booked"),
        Err(DeskError::SlotFull) => {
            let full = viewer.text("open_hours_slot_full");
            refused(StatusCode::CONFLICT, Vec::new(), Some(full)).await
        }
        Err(DeskError::Conflict { .. }) => {
            let twice = viewer.text("open_hours_already_booked");
            refused(StatusCode::CONFLICT, Vec::new(), Some(twice)).await
        }
        Err(DeskError::Invalid(problems)) => {
            refused(StatusCode::UNPROCESSABLE_ENTITY, problems, None).await
        }
        Err(error) => desk_error(&viewer, error),
    }
}

#[post("/open-hours/bookings/{id}/cancel")]
pub async fn cancel_booking(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let (caller, id) = match signed_in_form_on(&req, &viewer, &form, &id) {
        Ok(found) => found,
        Err(response) => return response,
    };
    match open_hours::cancel(desk_of(&req), caller, id).await {
        Ok(booking) if caller.role.is_desk_staff() => see_other(&format!(
            "/desk/open-hours?date={}&notice=notice_open_hours_cancelled",
            desk_date(booking.row.starts_at)
        )),
        Ok(_) => see_other("/open-hours?notice=notice_open_hours_cancelled"),
        Err(error) => desk_error(&viewer, error),
    }
}

// ---------------------------------------------------------------- the desk's day

#[derive(Deserialize)]
struct DayQuery {
    date: Option<String>,
}

#[derive(Serialize)]
struct DeskBooking {
    id: i64,
    time: String,
    organization: String,
    applicant: String,
    topic: String,
    categories: Vec<&'static str>,
    product_type: Option<&'static str>,
    language: &'static str,
    cancelled: bool,
    /// Booked and not started: the desk may cancel it for the applicant.
    can_cancel: bool,
    /// `attended`, `no_show` or `unrecorded`.
    attendance: &'static str,
    note: Option<String>,
    case_id: Option<i64>,
    case_number: Option<String>,
    /// The note field's text: as typed when refused, else the note.
    typed_note: String,
    note_error: Option<String>,
}

/// A refused attendance form: the booking, the typed note, why.
type RefusedNote = (i64, String, String);

async fn day_view(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    status: StatusCode,
    typed_date: String,
    refused: Option<RefusedNote>,
) -> HttpResponse {
    let desk = desk_of(req);
    let today = desk_date(now(req));
    let (date, date_error) = match typed_date.trim() {
        "" => (today, None),
        raw => match parse_date(raw) {
            Ok(date) => (date, None),
            Err(_) => (today, Some(viewer.text("open_hours_bad_date"))),
        },
    };
    let found = match open_hours::day_bookings(desk, caller, date).await {
        // A date that could not be read lists nothing (but is still the
        // desk's page only).
        Ok(_) if date_error.is_some() => Vec::new(),
        Ok(found) => found,
        Err(error) => return desk_error(viewer, error),
    };
    let calendar = match desk.calendar().await {
        Ok(calendar) => calendar,
        Err(error) => return desk_error(viewer, error),
    };
    let step = |forward: bool| {
        let mut day = date;
        for _ in 0..31 {
            day = if forward {
                day + Days::new(1)
            } else {
                day - Days::new(1)
            };
            if calendar.is_business_day(day) {
                break;
            }
        }
        day.to_string()
    };
    let lang = i18n::lang(viewer.locale);
    let mut bookings = Vec::with_capacity(found.len());
    for b in found {
        let case_number = match b.row.case_id {
            Some(case_id) => cases::read_case(desk, caller, case_id)
                .await
                .ok()
                .map(|c| c.row.number),
            None => None,
        };
        let (typed_note, note_error) = match &refused {
            Some((id, typed, error)) if *id == b.row.id => (typed.clone(), Some(error.clone())),
            _ => (b.row.note.clone().unwrap_or_default(), None),
        };
        bookings.push(DeskBooking {
            id: b.row.id,
            time: desk_time(b.row.starts_at),
            organization: b.organization_name.clone(),
            applicant: b.applicant_name.clone(),
            categories: b
                .row
                .category_codes()
                .iter()
                .filter_map(|c| c.parse::<Category>().ok())
                .map(|c| c.label(lang))
                .collect(),
            product_type: b
                .row
                .product_type
                .as_deref()
                .and_then(|p| p.parse::<ProductType>().ok())
                .map(|p| p.label(lang)),
            language: b.row.language.parse::<Lang>().map_or("", |l| l.label(lang)),
            cancelled: !is_booked(&b),
            can_cancel: is_booked(&b) && b.row.starts_at > now(req),
            attendance: match b.row.attended {
                Some(true) => "attended",
                Some(false) => "no_show",
                None => "unrecorded",
            },
            topic: b.row.topic,
            note: b.row.note,
            case_id: b.row.case_id,
            case_number,
            typed_note,
            note_error,
        });
    }
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(error) = date_error {
        errors.insert("date".to_owned(), vec![error]);
    }
    viewer.render(
        status,
        "open_hours_desk.html",
        minijinja::context! {
            date => date.to_string(),
            typed_date => if typed_date.trim().is_empty() { date.to_string() } else { typed_date },
            day => full_day_text(viewer.locale, date),
            today => date == today,
            previous => step(false),
            next => step(true),
            bookings,
            errors,
        },
    )
}

/// `10:00`, Japan time.
fn desk_time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .with_timezone(&crate::domain::case::desk_offset())
        .format("%H:%M")
        .to_string()
}

#[get("/desk/open-hours")]
pub async fn day_page(
    req: HttpRequest,
    viewer: Viewer,
    query: web::Query<DayQuery>,
) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let typed = query.into_inner().date.unwrap_or_default();
    let status = if typed.trim().is_empty() || parse_date(typed.trim()).is_ok() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    day_view(&req, &viewer, caller, status, typed, None).await
}

#[post("/desk/open-hours/bookings/{id}/attendance")]
pub async fn record_attendance(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let (caller, id) = match signed_in_form_on(&req, &viewer, &form, &id) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let desk = desk_of(&req);
    let typed = form.get("note").unwrap_or("").to_owned();
    let attended = match form.get("attended") {
        Some("yes") => Ok(true),
        Some("no") => Ok(false),
        _ => Err(vec![Invalid::refused(
            "attended",
            Refusal::new(Code::Required, "is required"),
        )]),
    };
    let result = match attended {
        Ok(attended) => {
            let note = Some(typed.clone()).filter(|n| !n.trim().is_empty());
            open_hours::record_attendance(desk, caller, id, attended, note).await
        }
        Err(problems) => Err(DeskError::Invalid(problems)),
    };
    match result {
        Ok(booking) => see_other(&format!(
            "/desk/open-hours?date={}&notice=notice_open_hours_attendance",
            desk_date(booking.row.starts_at)
        )),
        Err(DeskError::Invalid(problems)) => {
            let booking = match open_hours::booking(desk, caller, id).await {
                Ok(booking) => booking,
                Err(error) => return desk_error(&viewer, error),
            };
            let error = problems
                .iter()
                .map(|p| match p.field.as_str() {
                    "attended" => viewer.text("open_hours_attendance_missing"),
                    _ => i18n::problem(viewer.locale, p.code, &p.message),
                })
                .collect::<Vec<_>>()
                .join(" ");
            let date = desk_date(booking.row.starts_at).to_string();
            day_view(
                &req,
                &viewer,
                caller,
                StatusCode::UNPROCESSABLE_ENTITY,
                date,
                Some((id, typed, error)),
            )
            .await
        }
        Err(error) => desk_error(&viewer, error),
    }
}

#[post("/desk/open-hours/bookings/{id}/case")]
pub async fn turn_into_case(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let (caller, id) = match signed_in_form_on(&req, &viewer, &form, &id) {
        Ok(found) => found,
        Err(response) => return response,
    };
    match open_hours::open_case(desk_of(&req), caller, id).await {
        Ok(case) => see_other(&format!(
            "/cases/{}?notice=notice_open_hours_case_opened",
            case.row.id
        )),
        Err(error) => desk_error(&viewer, error),
    }
}

// ---------------------------------------------------------------- admin

/// A refused admin form: which (`rules`, `holiday`, or a slot's id), what
/// was typed, and why.
#[derive(Default)]
struct AdminRefused<'a> {
    which: String,
    form: Option<&'a Form>,
    errors: BTreeMap<String, Vec<String>>,
}

#[derive(Serialize)]
struct HolidayView {
    date: String,
    day: String,
    name: String,
}

async fn admin_view(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    status: StatusCode,
    refused: AdminRefused<'_>,
) -> HttpResponse {
    let desk = desk_of(req);
    let rules = match open_hours::rules(desk, caller).await {
        Ok(rules) => rules,
        Err(error) => return desk_error(viewer, error),
    };
    let holidays = match open_hours::holidays(desk, caller).await {
        Ok(holidays) => holidays,
        Err(error) => return desk_error(viewer, error),
    };
    let now = now(req);
    let today = desk_date(now);
    let until = today + Days::new(ADMIN_SLOT_DAYS - 1);
    let slots = match open_hours::slots(desk, caller, Some(today), Some(until)).await {
        Ok(slots) => slots,
        Err(error) => return desk_error(viewer, error),
    };
    let typed = |which: &str| refused.form.filter(|_| refused.which == which);
    let errors_of = |which: &str| {
        if refused.which == which {
            refused.errors.clone()
        } else {
            BTreeMap::new()
        }
    };
    let rules_form = match typed("rules") {
        Some(form) => minijinja::context! {
            times => form.get("times").unwrap_or(""),
            duration_minutes => form.get("duration_minutes").unwrap_or(""),
            weekday_capacities => form.all("weekday_capacities"),
            horizon_days => form.get("horizon_days").unwrap_or(""),
        },
        None => minijinja::context! {
            times => rules.times.iter().map(|t| t.format("%H:%M").to_string()).collect::<Vec<_>>().join(", "),
            duration_minutes => rules.duration_minutes.to_string(),
            weekday_capacities => rules.weekday_capacities.iter().map(u32::to_string).collect::<Vec<_>>(),
            horizon_days => rules.horizon_days.to_string(),
        },
    };
    let holiday_form = typed("holiday");
    let holiday_form = minijinja::context! {
        date => holiday_form.and_then(|f| f.get("date")).unwrap_or(""),
        name => holiday_form.and_then(|f| f.get("name")).unwrap_or(""),
    };
    let weekdays: Vec<String> = (0..5)
        .map(|i| viewer.text(&format!("open_hours_weekday_{i}")))
        .collect();
    let slot_lines: Vec<minijinja::Value> = slots
        .iter()
        .filter(|s| s.planned.starts_at_micros() > now)
        .map(|s| {
            let view = slot_view(viewer, s, now, false);
            let which = view.id.to_string();
            let (capacity, closed, reason) = match typed(&which) {
                Some(form) => (
                    form.get("capacity").unwrap_or("").to_owned(),
                    form.get("closed").is_some(),
                    form.get("reason").unwrap_or("").to_owned(),
                ),
                None => (
                    view.capacity_override.clone(),
                    s.state.closed,
                    s.state.closed_reason.clone().unwrap_or_default(),
                ),
            };
            minijinja::context! {
                slot => view,
                capacity, closed, reason,
                default_capacity => s.planned.capacity,
                errors => errors_of(&which),
            }
        })
        .collect();
    let holidays: Vec<HolidayView> = holidays
        .into_iter()
        .filter(|(date, _)| *date >= today - Days::new(31))
        .map(|(date, name)| HolidayView {
            date: date.to_string(),
            day: full_day_text(viewer.locale, date),
            name,
        })
        .collect();
    viewer.render(
        status,
        "open_hours_admin.html",
        minijinja::context! {
            rules => rules_form,
            rules_errors => errors_of("rules"),
            weekdays,
            max_capacity => MAX_CAPACITY,
            holidays,
            holiday => holiday_form,
            holiday_errors => errors_of("holiday"),
            slots => slot_lines,
            slot_days => ADMIN_SLOT_DAYS,
        },
    )
}

#[get("/admin/open-hours")]
pub async fn admin_page(req: HttpRequest, viewer: Viewer) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    admin_view(
        &req,
        &viewer,
        caller,
        StatusCode::OK,
        AdminRefused::default(),
    )
    .await
}

/// What an admin form leads to: the page with `notice`, the page again
/// with the form's errors, or the error page.
async fn after_admin<T>(
    req: &HttpRequest,
    viewer: &Viewer,
    caller: Caller,
    which: String,
    form: &Form,
    notice: &str,
    result: Result<T, DeskError>,
) -> HttpResponse {
    let (status, problems) = match result {
        Ok(_) => return see_other(&format!("/admin/open-hours?notice={notice}")),
        Err(DeskError::Invalid(problems)) => (StatusCode::UNPROCESSABLE_ENTITY, problems),
        Err(DeskError::Conflict { .. }) if which != "rules" && which != "holiday" => (
            StatusCode::CONFLICT,
            vec![Invalid::new(
                "capacity",
                viewer.text("open_hours_capacity_below_booked"),
            )],
        ),
        Err(error) => return desk_error(viewer, error),
    };
    let refused = AdminRefused {
        which,
        form: Some(form),
        errors: errors_by_field(viewer.locale, &problems),
    };
    admin_view(req, viewer, caller, status, refused).await
}

/// A whole number typed in `field`.
fn number(problems: &mut Problems, field: &str, raw: Option<&str>) -> Option<i64> {
    problems
        .required(field, raw.filter(|v| !v.trim().is_empty()))
        .and_then(|v| {
            problems.check(
                field,
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| Refusal::new(Code::NotANumber, "must be a whole number")),
            )
        })
}

#[post("/admin/open-hours/rules")]
pub async fn rules_submit(req: HttpRequest, viewer: Viewer, form: Form) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let mut problems = Problems::default();
    let times: Vec<String> = form
        .get("times")
        .unwrap_or("")
        .split([',', '、', ' ', '\u{3000}'])
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().to_owned())
        .collect();
    let duration = number(
        &mut problems,
        "duration_minutes",
        form.get("duration_minutes"),
    );
    let capacities: Option<Vec<i64>> = {
        let typed = form.all("weekday_capacities");
        let parsed: Option<Vec<i64>> = typed.iter().map(|c| c.trim().parse().ok()).collect();
        match parsed {
            Some(parsed) if parsed.len() == 5 => Some(parsed),
            _ => {
                problems.push(
                    "weekday_capacities",
                    Refusal::new(Code::NotANumber, "must be five whole numbers"),
                );
                None
            }
        }
    };
    let horizon = number(&mut problems, "horizon_days", form.get("horizon_days"));
    let result = match problems.finish(|| Some((duration?, capacities?, horizon?))) {
        Ok((duration, capacities, horizon)) => {
            open_hours::change_rules(
                desk_of(&req),
                caller,
                Some(times),
                Some(duration),
                Some(capacities),
                Some(horizon),
            )
            .await
        }
        Err(problems) => Err(DeskError::Invalid(problems)),
    };
    after_admin(
        &req,
        &viewer,
        caller,
        "rules".to_owned(),
        &form,
        "notice_open_hours_rules",
        result,
    )
    .await
}

#[post("/admin/holidays")]
pub async fn holiday_add(req: HttpRequest, viewer: Viewer, form: Form) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let mut problems = Problems::default();
    let date = problems
        .required("date", form.filled("date"))
        .and_then(|d| problems.check("date", parse_date(d.trim())));
    let name = problems.required("name", form.filled("name"));
    let result = match problems.finish(|| Some((date?, name?))) {
        Ok((date, name)) => {
            open_hours::put_holiday(desk_of(&req), caller, date, name.to_owned()).await
        }
        Err(problems) => Err(DeskError::Invalid(problems)),
    };
    after_admin(
        &req,
        &viewer,
        caller,
        "holiday".to_owned(),
        &form,
        "notice_open_hours_holiday_added",
        result,
    )
    .await
}

#[post("/admin/holidays/{date}/delete")]
pub async fn holiday_delete(
    req: HttpRequest,
    viewer: Viewer,
    date: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let caller = match signed_in_form(&req, &viewer, form.get("csrf")) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Ok(date) = parse_date(&date) else {
        return desk_error(&viewer, DeskError::NotFound);
    };
    match open_hours::delete_holiday(desk_of(&req), caller, date).await {
        Ok(()) => see_other("/admin/open-hours?notice=notice_open_hours_holiday_removed"),
        Err(error) => desk_error(&viewer, error),
    }
}

#[post("/admin/open-hours/slots/{id}")]
pub async fn slot_submit(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let (caller, id) = match signed_in_form_on(&req, &viewer, &form, &id) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut problems = Problems::default();
    let capacity = match form.filled("capacity") {
        None => Some(None),
        Some(raw) => problems
            .check(
                "capacity",
                raw.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|c| *c <= MAX_CAPACITY)
                    .ok_or_else(|| format!("must be a number from 0 to {MAX_CAPACITY}")),
            )
            .map(Some),
    };
    let closed = form.get("closed").is_some();
    let reason = match form.filled("reason") {
        None => Some(None),
        Some(raw) => problems
            .check("reason", parse_text(raw.trim(), REASON_MAX_CHARS))
            .map(Some),
    };
    let result = match problems.finish(|| Some((capacity?, reason?))) {
        Ok((capacity, reason)) => {
            let change = SlotChange {
                capacity: Some(capacity),
                closed: Some(closed),
                reason: reason.filter(|_| closed),
            };
            open_hours::change_slot(desk_of(&req), caller, id, change).await
        }
        Err(problems) => Err(DeskError::Invalid(problems)),
    };
    after_admin(
        &req,
        &viewer,
        caller,
        id.to_string(),
        &form,
        "notice_open_hours_slot_changed",
        result,
    )
    .await
}
