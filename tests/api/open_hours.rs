//! Open Hours, as API.md's "Open Hours" section pins it: slots and their
//! seats, bookings and their refusals, the desk's side, the admins' rules,
//! slot changes and holidays; the seat count under 100 simultaneous
//! bookings; the booking, cancellation and reminder mails.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, TimeZone, Weekday};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, User, error_fields, items, json_body, problem};
use crate::mail::{WAIT, applicant_in, property, smtp_app, staff_in, subjects, unfolded};
use crate::smtp::ReceivedMail;

on_both_backends!(
    slots_are_weekdays_at_ten_and_eleven_with_stable_ids_and_seats,
    slot_lists_refuse_bad_dates_naming_the_field,
    an_applicant_books_and_reads_the_booking_and_the_desk_sees_it,
    bookings_of_past_closed_holiday_and_unknown_slots_are_refused,
    a_full_slot_and_a_second_booking_of_an_organisation_are_conflicts,
    bad_booking_fields_are_refused_all_at_once,
    cancelling_frees_the_seat_and_only_until_the_start,
    others_cannot_see_or_cancel_a_booking,
    experts_and_managers_are_refused,
    the_desk_records_attendance_and_opens_one_case_from_a_booking,
    admins_change_a_slot_within_its_bookings,
    admins_change_the_rules_field_by_field,
    admins_keep_the_holidays,
    holidays_are_seeded_from_the_environment,
    one_seat_taken_by_a_hundred_at_once_gives_one_booking,
    three_seats_taken_by_a_hundred_at_once_give_three_bookings,
    booking_and_cancelling_mail_the_applicant_a_calendar_entry_and_the_desk,
    the_reminder_goes_once_the_business_day_before_and_never_when_cancelled,
);

const SLOTS: &str = "/api/v1/open-hours/slots";
const BOOKINGS: &str = "/api/v1/open-hours/bookings";

// ------------------------------------------------------------------ helpers

fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).unwrap()
}

fn starts(slot: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(slot["starts_at"].as_str().expect("starts_at")).unwrap()
}

/// The app's time now (its clock may have been moved on).
fn app_now(app: &TestApp) -> DateTime<FixedOffset> {
    DateTime::from_timestamp_micros(app.clock.now_micros())
        .unwrap()
        .with_timezone(&jst())
}

async fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    app.client
        .put(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

async fn delete(app: &TestApp, path: &str, token: &str) -> Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent")
}

/// Every slot keeps `booked + available = capacity`.
fn assert_seats(slots: &[Value]) {
    for slot in slots {
        let seats = |k: &str| slot[k].as_u64().unwrap_or_else(|| panic!("{k}: {slot}"));
        assert_eq!(
            seats("booked") + seats("available"),
            seats("capacity"),
            "{slot}"
        );
    }
}

/// The slots listed for `query` (raw, without `?`), seats checked.
async fn slots(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let listed = items(
        json_body(
            app.get(&format!("{SLOTS}?{query}"), Some(token)).await,
            StatusCode::OK,
        )
        .await,
    );
    assert_seats(&listed);
    listed
}

/// The slots from today to the horizon that start later than `after` from
/// now.
async fn slots_after(app: &TestApp, token: &str, after: chrono::Duration) -> Vec<Value> {
    let now = app_now(app);
    slots(app, token, "")
        .await
        .into_iter()
        .filter(|s| starts(s) > now + after)
        .collect()
}

/// The next slot that starts at least an hour from now.
async fn next_slot(app: &TestApp, token: &str) -> Value {
    slots_after(app, token, chrono::Duration::hours(1))
        .await
        .remove(0)
}

/// The slot `id` as listed now.
async fn slot(app: &TestApp, token: &str, slot: &Value) -> Value {
    let day = starts(slot).date_naive();
    slots(app, token, &format!("from={day}&to={day}"))
        .await
        .into_iter()
        .find(|s| s["id"] == slot["id"])
        .unwrap_or_else(|| panic!("slot {} is listed on {day}", slot["id"]))
}

fn booking_body(slot: &Value) -> Value {
    json!({"slot_id": slot["id"], "topic": "薬機法の相談", "language": "ja"})
}

async fn book(app: &TestApp, user: &User, body: &Value) -> Response {
    app.post(BOOKINGS, Some(&user.token), body).await
}

/// Books `slot` as `user`, asserting 201; returns the booking.
async fn booked(app: &TestApp, user: &User, slot: &Value) -> Value {
    json_body(
        book(app, user, &booking_body(slot)).await,
        StatusCode::CREATED,
    )
    .await
}

fn booking_path(booking: &Value, suffix: &str) -> String {
    format!("{BOOKINGS}/{}{suffix}", booking["id"])
}

async fn cancel(app: &TestApp, token: &str, booking: &Value) -> Response {
    app.post(&booking_path(booking, "/cancel"), Some(token), &json!({}))
        .await
}

async fn set_slot(app: &TestApp, admin: &str, slot: &Value, body: Value) -> Response {
    put(app, &format!("{SLOTS}/{}", slot["id"]), admin, &body).await
}

/// Sets the slot's capacity as the admin, asserting 200.
async fn with_capacity(app: &TestApp, admin: &str, slot: &Value, capacity: u64) -> Value {
    let changed = json_body(
        set_slot(app, admin, slot, json!({"capacity": capacity})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["capacity"], capacity);
    changed
}

fn problem_type(problem: &Value) -> &str {
    problem["type"].as_str().unwrap()
}

/// A booking request's refusal: 422 naming `slot_id`.
async fn refused_slot(app: &TestApp, user: &User, slot_id: &Value) -> Value {
    let refused = problem(
        book(app, user, &json!({"slot_id": slot_id, "topic": "相談"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["slot_id"], "{refused}");
    refused
}

// ------------------------------------------------------------------ slots

async fn slots_are_weekdays_at_ten_and_eleven_with_stable_ids_and_seats(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let expert = app.staff("expert").await;
    let listed = slots(&app, &applicant.token, "").await;
    let today = app_now(&app).date_naive();
    // Eight weeks: 40 weekdays at least, two slots each.
    assert!(listed.len() >= 78, "{} slots", listed.len());
    for slot in &listed {
        let at = starts(slot);
        assert!(
            !matches!(at.weekday(), Weekday::Sat | Weekday::Sun),
            "{slot}"
        );
        assert!(
            matches!(at.format("%H:%M").to_string().as_str(), "10:00" | "11:00"),
            "{slot}"
        );
        let ends = DateTime::parse_from_rfc3339(slot["ends_at"].as_str().unwrap()).unwrap();
        assert_eq!(ends - at, chrono::Duration::minutes(45), "{slot}");
        assert!(at.date_naive() >= today && at.date_naive() <= today + Days::new(56));
        assert_eq!((&slot["capacity"], &slot["booked"]), (&json!(1), &json!(0)));
        assert_eq!(slot["closed"], false);
        assert!(slot["closed_reason"].is_null());
    }
    assert!(listed.windows(2).all(|w| starts(&w[0]) < starts(&w[1])));
    // Any signed-in user reads them; the ids do not change with a booking.
    assert_eq!(slots(&app, &expert.token, "").await, listed);
    let target = next_slot(&app, &applicant.token).await;
    let booking = booked(&app, &applicant, &target).await;
    assert_eq!(booking["slot_id"], target["id"]);
    let after = slots(&app, &applicant.token, "").await;
    let ids = |list: &[Value]| list.iter().map(|s| s["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&after), ids(&listed));
    let now = slot(&app, &applicant.token, &target).await;
    assert_eq!((&now["booked"], &now["available"]), (&json!(1), &json!(0)));
    assert_eq!(now["starts_at"], target["starts_at"]);
    // Unsigned: 401.
    problem(app.get(SLOTS, None).await, StatusCode::UNAUTHORIZED).await;
}

async fn slot_lists_refuse_bad_dates_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    for (query, field) in [
        ("from=2026-13-01", "from"),
        ("to=2026-02-30", "to"),
        ("from=tomorrow", "from"),
        ("from=2027-01-10&to=2027-01-09", "to"),
        ("from=2027-01-01&to=2029-01-01", "to"),
    ] {
        let refused = problem(
            app.get(&format!("{SLOTS}?{query}"), Some(&applicant.token))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), [field], "{query}: {refused}");
    }
    // One chosen week: Mon 4 .. Sun 10 January 2027, ten slots.
    let week = slots(&app, &applicant.token, "from=2027-01-04&to=2027-01-10").await;
    assert_eq!(week.len(), 10);
    assert_eq!(week[0]["starts_at"], "2027-01-04T10:00:00+09:00");
    assert_eq!(week[9]["starts_at"], "2027-01-08T11:00:00+09:00");
    let refused = problem(
        app.get(
            &format!("{BOOKINGS}?date=2027-02-30"),
            Some(&applicant.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["date"]);
}

// ------------------------------------------------------------------ bookings

async fn an_applicant_books_and_reads_the_booking_and_the_desk_sees_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let supporter = app.staff("supporter").await;
    let admin = app.staff("admin").await;
    let target = next_slot(&app, &applicant.token).await;
    let body = json!({
        "slot_id": target["id"], "topic": "  クラスII医療機器の臨床試験  ",
        "product_type": "medical_device", "categories": ["regulatory", "fundraising"],
    });
    let booking = json_body(book(&app, &applicant, &body).await, StatusCode::CREATED).await;
    assert_eq!(booking["status"], "booked");
    assert_eq!(booking["slot_id"], target["id"]);
    assert_eq!(booking["starts_at"], target["starts_at"]);
    assert_eq!(booking["ends_at"], target["ends_at"]);
    assert_eq!(booking["topic"], "クラスII医療機器の臨床試験");
    assert_eq!(booking["product_type"], "medical_device");
    assert_eq!(booking["categories"], json!(["regulatory", "fundraising"]));
    // The account's language when none is given (registered in Japanese).
    assert_eq!(booking["language"], "ja");
    assert!(booking["case_id"].is_null());
    assert_eq!(booking["organization_id"], applicant.organization_id);
    assert!(booking["attended"].is_null() && booking["note"].is_null());
    assert!(booking["cancelled_at"].is_null());
    assert!(booking.get("organization_name").is_none(), "{booking}");

    // The applicant reads it alone and in the list.
    let read = json_body(
        app.get(&booking_path(&booking, ""), Some(&applicant.token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(read, booking);
    let mine = items(
        json_body(
            app.get(BOOKINGS, Some(&applicant.token)).await,
            StatusCode::OK,
        )
        .await,
    );
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0], booking);

    // The desk sees it on its day, with the names.
    let day = starts(&target).date_naive();
    for desk in [&supporter, &admin] {
        let of_day = items(
            json_body(
                app.get(&format!("{BOOKINGS}?date={day}"), Some(&desk.token))
                    .await,
                StatusCode::OK,
            )
            .await,
        );
        assert_eq!(of_day.len(), 1);
        assert_eq!(of_day[0]["id"], booking["id"]);
        assert_eq!(of_day[0]["organization_name"], "株式会社メドテック");
        assert_eq!(of_day[0]["applicant_name"], "Founder");
    }
    let other_day = day + Days::new(1);
    let none = items(
        json_body(
            app.get(
                &format!("{BOOKINGS}?date={other_day}"),
                Some(&supporter.token),
            )
            .await,
            StatusCode::OK,
        )
        .await,
    );
    assert!(none.is_empty());

    // An English account's booking is in English unless it says otherwise.
    let english = applicant_in(&app, "en", "Jane Doe", "MedTech Inc.").await;
    let english_booking = json_body(
        book(
            &app,
            &english,
            &json!({"slot_id": slots_after(&app, &english.token, chrono::Duration::hours(1)).await[1]["id"], "topic": "Reimbursement"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(english_booking["language"], "en");
}

async fn bookings_of_past_closed_holiday_and_unknown_slots_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let applicant = app.applicant("株式会社メドテック").await;

    // A slot of last week has started.
    let today = app_now(&app).date_naive();
    let past = slots(
        &app,
        &applicant.token,
        &format!("from={}&to={}", today - Days::new(8), today - Days::new(1)),
    )
    .await;
    assert!(!past.is_empty());
    let refused = refused_slot(&app, &applicant, &past[0]["id"]).await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("started"),
        "{refused}"
    );

    // A closed slot, with its reason.
    let future = slots_after(&app, &applicant.token, chrono::Duration::hours(1)).await;
    let closed = json_body(
        set_slot(
            &app,
            &admin,
            &future[0],
            json!({"closed": true, "reason": "staff training"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (&closed["closed"], &closed["closed_reason"]),
        (&json!(true), &json!("staff training"))
    );
    let refused = refused_slot(&app, &applicant, &future[0]["id"]).await;
    assert!(refused.to_string().contains("staff training"), "{refused}");
    // Opened again, it takes the booking.
    json_body(
        set_slot(&app, &admin, &future[0], json!({"closed": false})).await,
        StatusCode::OK,
    )
    .await;
    booked(&app, &applicant, &future[0]).await;

    // A holiday: its slots are no longer listed, nor bookable.
    let day = starts(&future[2]).date_naive();
    json_body(
        put(
            &app,
            &format!("/api/v1/holidays/{day}"),
            &admin,
            &json!({"name": "臨時休業"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let listed = slots(&app, &applicant.token, "").await;
    assert!(listed.iter().all(|s| starts(s).date_naive() != day));
    refused_slot(&app, &applicant, &future[2]["id"]).await;

    // Unknown: a minute past a slot, a Saturday, beyond the horizon.
    let id = future[1]["id"].as_i64().unwrap();
    refused_slot(&app, &applicant, &json!(id + 1)).await;
    let saturday = (1..=7)
        .map(|d| today + Days::new(d))
        .find(|d| d.weekday() == Weekday::Sat)
        .unwrap();
    let saturday_ten = jst()
        .from_local_datetime(&saturday.and_hms_opt(10, 0, 0).unwrap())
        .unwrap();
    refused_slot(&app, &applicant, &json!(saturday_ten.timestamp() / 60)).await;
    let far = slots(&app, &applicant.token, "from=2036-01-07&to=2036-01-07").await;
    assert_eq!(far.len(), 2);
    let refused = refused_slot(&app, &applicant, &far[0]["id"]).await;
    assert!(refused.to_string().contains("horizon"), "{refused}");
    // Nothing of these took a seat.
    assert_seats(&slots(&app, &applicant.token, "").await);
}

async fn a_full_slot_and_a_second_booking_of_an_organisation_are_conflicts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let first = app.applicant("株式会社メドテック").await;
    let second = app.applicant("Second Bio").await;
    let target = next_slot(&app, &first.token).await;
    booked(&app, &first, &target).await;
    let full = problem(
        book(&app, &second, &booking_body(&target)).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(problem_type(&full).ends_with("slot_full"), "{full}");
    let now = slot(&app, &first.token, &target).await;
    assert_eq!((&now["booked"], &now["available"]), (&json!(1), &json!(0)));

    // With seats left, the same organisation still books once per slot.
    with_capacity(&app, &admin, &target, 3).await;
    let twice = problem(
        book(&app, &first, &booking_body(&target)).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(!problem_type(&twice).ends_with("slot_full"), "{twice}");
    assert!(twice["detail"].as_str().unwrap().contains("already"));
    booked(&app, &second, &target).await;
    let now = slot(&app, &first.token, &target).await;
    assert_eq!((&now["booked"], &now["available"]), (&json!(2), &json!(1)));
}

async fn bad_booking_fields_are_refused_all_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let other = app.applicant("Other Inc.").await;
    let target = next_slot(&app, &applicant.token).await;
    let refused = problem(
        book(
            &app,
            &applicant,
            &json!({"topic": "two\nlines", "product_type": "spaceship",
                    "categories": ["regulatory", "nonsense"], "language": "fr"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        error_fields(&refused),
        ["slot_id", "topic", "product_type", "categories", "language"]
    );
    let refused = problem(
        book(
            &app,
            &applicant,
            &json!({"slot_id": target["id"], "topic": "   "}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["topic"]);
    let refused = problem(
        book(&app, &applicant, &json!({"slot_id": "soon", "topic": "x"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["slot_id"]);
    // A case of another organisation.
    let case = app.new_case(&other.token).await;
    let mut body = booking_body(&target);
    body["case_id"] = case["id"].clone();
    let refused = problem(
        book(&app, &applicant, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["case_id"]);
    // Its own case links.
    let own = app.new_case(&applicant.token).await;
    body["case_id"] = own["id"].clone();
    let linked = json_body(book(&app, &applicant, &body).await, StatusCode::CREATED).await;
    assert_eq!(linked["case_id"], own["id"]);
    // Not JSON: 400; not an object: 422.
    let response = app
        .post_raw(BOOKINGS, "application/json", b"{".to_vec())
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .client
        .post(app.url(BOOKINGS))
        .bearer_auth(&applicant.token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::BAD_REQUEST).await;
    problem(
        book(&app, &applicant, &json!([1, 2])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

async fn cancelling_frees_the_seat_and_only_until_the_start(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.applicant("株式会社メドテック").await;
    let second = app.applicant("Second Bio").await;
    let supporter = app.staff("supporter").await;
    let target = next_slot(&app, &first.token).await;
    let booking = booked(&app, &first, &target).await;
    let cancelled = json_body(cancel(&app, &first.token, &booking).await, StatusCode::OK).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());
    let now = slot(&app, &first.token, &target).await;
    assert_eq!((&now["booked"], &now["available"]), (&json!(0), &json!(1)));
    // Cancelling again changes nothing.
    let again = json_body(cancel(&app, &first.token, &booking).await, StatusCode::OK).await;
    assert_eq!(again, cancelled);
    assert_eq!(slot(&app, &first.token, &target).await["booked"], 0);
    // The seat is free for another organisation, and for the same again.
    let taken = booked(&app, &second, &target).await;
    // The desk cancels too.
    json_body(cancel(&app, &supporter.token, &taken).await, StatusCode::OK).await;
    let rebooked = booked(&app, &first, &target).await;
    assert_ne!(rebooked["id"], booking["id"]);

    // Once the slot has started: 409, and the seat stays taken.
    let wait = starts(&target) - app_now(&app) + chrono::Duration::minutes(1);
    app.clock.advance(wait.to_std().unwrap());
    let late = problem(
        cancel(&app, &first.token, &rebooked).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        late["detail"].as_str().unwrap().contains("started"),
        "{late}"
    );
    let late = problem(
        cancel(&app, &supporter.token, &rebooked).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(late["status"], 409);
    let day = starts(&target).date_naive();
    let now = slots(&app, &first.token, &format!("from={day}&to={day}"))
        .await
        .into_iter()
        .find(|s| s["id"] == target["id"])
        .unwrap();
    assert_eq!(now["booked"], 1);
    // Nor can the started slot be booked.
    refused_slot(&app, &second, &target["id"]).await;
}

async fn others_cannot_see_or_cancel_a_booking(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.applicant("株式会社メドテック").await;
    let stranger = app.applicant("Other Inc.").await;
    let target = next_slot(&app, &owner.token).await;
    let booking = booked(&app, &owner, &target).await;
    problem(
        app.get(&booking_path(&booking, ""), Some(&stranger.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        cancel(&app, &stranger.token, &booking).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let theirs = items(
        json_body(
            app.get(BOOKINGS, Some(&stranger.token)).await,
            StatusCode::OK,
        )
        .await,
    );
    assert!(theirs.is_empty());
    let unknown = json!({"id": 987_654_321});
    problem(
        app.get(&booking_path(&unknown, ""), Some(&owner.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        cancel(&app, &owner.token, &unknown).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Still booked.
    let read = json_body(
        app.get(&booking_path(&booking, ""), Some(&owner.token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(read["status"], "booked");
}

async fn experts_and_managers_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let supporter = app.staff("supporter").await;
    let target = next_slot(&app, &applicant.token).await;
    let booking = booked(&app, &applicant, &target).await;
    for role in ["expert", "manager"] {
        let user = app.staff(role).await;
        let token = user.token.as_str();
        problem(
            app.post(BOOKINGS, Some(token), &booking_body(&target))
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(app.get(BOOKINGS, Some(token)).await, StatusCode::FORBIDDEN).await;
        problem(
            app.get(&booking_path(&booking, ""), Some(token)).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(cancel(&app, token, &booking).await, StatusCode::FORBIDDEN).await;
        problem(
            app.post(
                &booking_path(&booking, "/attendance"),
                Some(token),
                &json!({"attended": true}),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(
            app.post(&booking_path(&booking, "/case"), Some(token), &json!({}))
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        // They read the slots and the holidays.
        slots(&app, token, "").await;
        json_body(
            app.get("/api/v1/holidays", Some(token)).await,
            StatusCode::OK,
        )
        .await;
    }
    // Supporters do not book, nor change slots, rules or holidays.
    problem(
        app.post(BOOKINGS, Some(&supporter.token), &booking_body(&target))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        set_slot(&app, &supporter.token, &target, json!({"capacity": 2})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.get("/api/v1/open-hours/rules", Some(&supporter.token))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        put(
            &app,
            "/api/v1/open-hours/rules",
            &supporter.token,
            &json!({"horizon_days": 7}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        put(
            &app,
            "/api/v1/holidays/2027-01-04",
            &applicant.token,
            &json!({}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        delete(&app, "/api/v1/holidays/2027-01-04", &supporter.token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn the_desk_records_attendance_and_opens_one_case_from_a_booking(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let supporter = app.staff("supporter").await;
    let target = next_slot(&app, &applicant.token).await;
    let body = json!({"slot_id": target["id"], "topic": "保険償還の相談",
                      "product_type": "drug", "categories": ["reimbursement"], "language": "en"});
    let booking = json_body(book(&app, &applicant, &body).await, StatusCode::CREATED).await;

    // Attendance: the desk only, `attended` required, a note kept.
    let path = booking_path(&booking, "/attendance");
    problem(
        app.post(&path, Some(&applicant.token), &json!({"attended": true}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let refused = problem(
        app.post(&path, Some(&supporter.token), &json!({"note": "x"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["attended"]);
    let refused = problem(
        app.post(
            &path,
            Some(&supporter.token),
            &json!({"attended": true, "note": "x".repeat(2001)}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["note"]);
    let marked = json_body(
        app.post(
            &path,
            Some(&supporter.token),
            &json!({"attended": true, "note": "治験の設計を次回相談"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(marked["attended"], true);
    assert_eq!(marked["note"], "治験の設計を次回相談");
    let unknown = json!({"id": 987_654_321});
    problem(
        app.post(
            &booking_path(&unknown, "/attendance"),
            Some(&supporter.token),
            &json!({"attended": false}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // A case from the booking, linked both ways, once.
    let case_path = booking_path(&booking, "/case");
    problem(
        app.post(&case_path, Some(&applicant.token), &json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let case = json_body(
        app.post(&case_path, Some(&supporter.token), &json!({}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(case["title"], "保険償還の相談");
    assert_eq!(case["product_type"], "drug");
    assert_eq!(case["categories"], json!(["reimbursement"]));
    assert_eq!(case["language"], "en");
    assert_eq!(case["organization"]["id"], applicant.organization_id);
    assert!(
        case["description"]
            .as_str()
            .unwrap()
            .contains("治験の設計を次回相談")
    );
    // The same JSON as the case's own resource.
    let read = app.case(&supporter.token, &case["id"]).await;
    assert_eq!(read, case);
    // The applicant's organisation owns it.
    app.case(&applicant.token, &case["id"]).await;
    let linked = json_body(
        app.get(&booking_path(&booking, ""), Some(&applicant.token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(linked["case_id"], case["id"]);
    // The case's timeline names its booking, for the applicant too.
    let events = app.event_items(&applicant.token, &case["id"]).await;
    let link = events
        .iter()
        .find(|e| e["kind"] == "open_hours_linked")
        .expect("the case's timeline names its booking");
    assert_eq!(link["detail"]["booking_id"], booking["id"], "{link}");
    let twice = problem(
        app.post(&case_path, Some(&supporter.token), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(twice["case_id"], case["id"], "{twice}");

    // A cancelled booking takes no attendance and opens no case.
    let other = applicant_in(&app, "ja", "山田 花子", "Other Bio").await;
    let later = slots_after(&app, &other.token, chrono::Duration::hours(1)).await;
    let gone = booked(&app, &other, &later[1]).await;
    json_body(cancel(&app, &other.token, &gone).await, StatusCode::OK).await;
    problem(
        app.post(
            &booking_path(&gone, "/attendance"),
            Some(&supporter.token),
            &json!({"attended": false}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    problem(
        app.post(
            &booking_path(&gone, "/case"),
            Some(&supporter.token),
            &json!({}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
}

// ------------------------------------------------------------------ admins

async fn admins_change_a_slot_within_its_bookings(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let first = app.applicant("株式会社メドテック").await;
    let second = app.applicant("Second Bio").await;
    let target = next_slot(&app, &first.token).await;
    let changed = with_capacity(&app, &admin, &target, 2).await;
    assert_eq!(
        (&changed["booked"], &changed["available"]),
        (&json!(0), &json!(2))
    );
    assert_eq!(changed["id"], target["id"]);
    booked(&app, &first, &target).await;
    booked(&app, &second, &target).await;
    // Below the seats taken: 409, nothing changed.
    let refused = problem(
        set_slot(&app, &admin, &target, json!({"capacity": 1})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains('2'),
        "{refused}"
    );
    let now = slot(&app, &first.token, &target).await;
    assert_eq!((&now["capacity"], &now["booked"]), (&json!(2), &json!(2)));
    // Out of range: 422 naming the field.
    for capacity in [json!(51), json!(-1), json!(1.5)] {
        let refused = problem(
            set_slot(&app, &admin, &target, json!({"capacity": capacity})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), ["capacity"], "{capacity}");
    }
    let refused = problem(
        set_slot(&app, &admin, &target, json!({"reason": "r".repeat(501)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["reason"]);
    // Closing keeps the bookings; null capacity follows the weekday again.
    let closed = json_body(
        set_slot(&app, &admin, &target, json!({"closed": true})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (&closed["closed"], &closed["booked"]),
        (&json!(true), &json!(2))
    );
    let other = slots_after(&app, &admin, chrono::Duration::hours(1)).await[1].clone();
    with_capacity(&app, &admin, &other, 5).await;
    let back = json_body(
        set_slot(&app, &admin, &other, json!({"capacity": null})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(back["capacity"], 1);
    // No such slot: 404.
    let nowhere = json!({"id": 1});
    problem(
        set_slot(&app, &admin, &nowhere, json!({"capacity": 2})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn admins_change_the_rules_field_by_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let rules = "/api/v1/open-hours/rules";
    let defaults = json_body(app.get(rules, Some(&admin)).await, StatusCode::OK).await;
    assert_eq!(
        defaults,
        json!({"times": ["10:00", "11:00"], "duration_minutes": 45,
               "weekday_capacities": [1, 1, 1, 1, 1], "horizon_days": 56})
    );
    let changed = json_body(
        put(
            &app,
            rules,
            &admin,
            &json!({"weekday_capacities": [2, 2, 2, 2, 3]}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["weekday_capacities"], json!([2, 2, 2, 2, 3]));
    assert_eq!(changed["times"], defaults["times"]);
    assert_eq!(changed["horizon_days"], 56);
    // Slots follow at once: Friday 8 January 2027 has three seats.
    let friday = slots(&app, &admin, "from=2027-01-08&to=2027-01-08").await;
    assert!(friday.iter().all(|s| s["capacity"] == 3), "{friday:?}");
    let changed = json_body(
        put(
            &app,
            rules,
            &admin,
            &json!({"times": ["14:00", "09:30"], "duration_minutes": 30}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["times"], json!(["09:30", "14:00"]));
    let monday = slots(&app, &admin, "from=2027-01-04&to=2027-01-04").await;
    let times: Vec<&str> = monday
        .iter()
        .map(|s| s["starts_at"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        ["2027-01-04T09:30:00+09:00", "2027-01-04T14:00:00+09:00"]
    );
    assert_eq!(monday[0]["ends_at"], "2027-01-04T10:00:00+09:00");
    let refused = problem(
        put(
            &app,
            rules,
            &admin,
            &json!({"times": ["25:00"], "duration_minutes": 1,
                    "weekday_capacities": [1, 1], "horizon_days": 0}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        error_fields(&refused),
        [
            "times",
            "duration_minutes",
            "weekday_capacities",
            "horizon_days"
        ]
    );
    let overlap = problem(
        put(&app, rules, &admin, &json!({"times": ["10:00", "10:15"]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&overlap), ["times"]);
    // Refusals changed nothing.
    let now = json_body(app.get(rules, Some(&admin)).await, StatusCode::OK).await;
    assert_eq!(now["times"], json!(["09:30", "14:00"]));
    let horizon = json_body(
        put(&app, rules, &admin, &json!({"horizon_days": 7})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(horizon["horizon_days"], 7);
    let today = app_now(&app).date_naive();
    let listed = slots(&app, &admin, "").await;
    assert!(
        listed
            .iter()
            .all(|s| starts(s).date_naive() <= today + Days::new(7))
    );
}

async fn admins_keep_the_holidays(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let applicant = app.applicant("株式会社メドテック").await;
    let path = "/api/v1/holidays/2027-01-04";
    let added = json_body(
        put(&app, path, &admin, &json!({"name": "年始休業"})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(added, json!({"date": "2027-01-04", "name": "年始休業"}));
    let renamed = json_body(
        put(&app, path, &admin, &json!({"name": " 年始 "})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["name"], "年始");
    // No body at all: a holiday without a name.
    let bare = app
        .client
        .put(app.url("/api/v1/holidays/2027-01-05"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_body(bare, StatusCode::CREATED).await,
        json!({"date": "2027-01-05", "name": ""})
    );
    let listed = items(
        json_body(
            app.get("/api/v1/holidays", Some(&applicant.token)).await,
            StatusCode::OK,
        )
        .await,
    );
    assert_eq!(
        listed,
        [
            json!({"date": "2027-01-04", "name": "年始"}),
            json!({"date": "2027-01-05", "name": ""})
        ]
    );
    // Those days have no slots.
    let week = slots(&app, &applicant.token, "from=2027-01-04&to=2027-01-08").await;
    assert_eq!(week.len(), 6);
    assert_eq!(week[0]["starts_at"], "2027-01-06T10:00:00+09:00");
    let refused = problem(
        put(&app, path, &admin, &json!({"name": "x".repeat(101)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["name"]);
    problem(
        put(&app, "/api/v1/holidays/2027-02-30", &admin, &json!({})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Removed: a business day again.
    let removed = delete(&app, path, &admin).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    problem(delete(&app, path, &admin).await, StatusCode::NOT_FOUND).await;
    let week = slots(&app, &applicant.token, "from=2027-01-04&to=2027-01-08").await;
    assert_eq!(week.len(), 8);
}

async fn holidays_are_seeded_from_the_environment(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("MEDESK_HOLIDAYS", "2027-01-07,2027-01-08")]).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let listed = items(
        json_body(
            app.get("/api/v1/holidays", Some(&applicant.token)).await,
            StatusCode::OK,
        )
        .await,
    );
    let dates: Vec<&str> = listed.iter().map(|h| h["date"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2027-01-07", "2027-01-08"]);
    let week = slots(&app, &applicant.token, "from=2027-01-04&to=2027-01-10").await;
    assert_eq!(week.len(), 6);
    // A seeded holiday's slot cannot be booked.
    let thursday_ten = jst().with_ymd_and_hms(2027, 1, 7, 10, 0, 0).unwrap();
    refused_slot(&app, &applicant, &json!(thursday_ten.timestamp() / 60)).await;
}

// ------------------------------------------------------------------ the race

/// `count` applicants of distinct organisations, signed in.
async fn applicants(app: &TestApp, count: usize) -> Vec<User> {
    let signing_up = (0..count).map(|i| async move { app.applicant(&format!("Racer {i}")).await });
    futures_util::future::join_all(signing_up).await
}

/// Every applicant books `slot` at the same moment; the statuses and
/// problem types in the order of the applicants.
async fn race(app: &TestApp, racers: &[User], slot: &Value) -> Vec<(StatusCode, Value)> {
    race_on(&[app.url(BOOKINGS)], racers, slot).await
}

/// [`race`] with the racers spread over the instances whose booking URLs
/// are `urls`, in turn.
async fn race_on(urls: &[String], racers: &[User], slot: &Value) -> Vec<(StatusCode, Value)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(racers.len()));
    // A client of its own: the app's has connections that sat idle while
    // the racers signed up, and a server closing one for idleness just as
    // a racer sends on it fails that request (hyper's IncompleteMessage),
    // which says nothing about the booking.
    let racing_client = reqwest::Client::new();
    let tasks: Vec<_> = racers
        .iter()
        .enumerate()
        .map(|(i, racer)| {
            let barrier = barrier.clone();
            let client = racing_client.clone();
            let url = urls[i % urls.len()].clone();
            let token = racer.token.clone();
            let body = booking_body(slot);
            tokio::spawn(async move {
                barrier.wait().await;
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .expect("request sent");
                let status = response.status();
                (status, response.json::<Value>().await.expect("a JSON body"))
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("racer"));
    }
    results
}

/// Exactly `seats` of the hundred get the slot, the others `slot_full`,
/// and the slot counts `seats` bookings.
async fn hundred_race_for(backend: Backend, seats: u64) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("MEDESK_LOGIN_PER_ADDRESS_PER_MINUTE", "100000"),
            ("MEDESK_DB_POOL_SIZE", "8"),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    let racers = applicants(&app, 100).await;
    let target = next_slot(&app, &admin).await;
    if seats != 1 {
        with_capacity(&app, &admin, &target, seats).await;
    }
    let results = race(&app, &racers, &target).await;
    let won: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b)
        .collect();
    let lost: Vec<&(StatusCode, Value)> = results
        .iter()
        .filter(|(s, _)| *s != StatusCode::CREATED)
        .collect();
    assert_eq!(won.len() as u64, seats, "{lost:?}");
    assert_eq!(lost.len() as u64, 100 - seats);
    for (status, body) in &lost {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        assert!(problem_type(body).ends_with("slot_full"), "{body}");
    }
    let now = slot(&app, &admin, &target).await;
    assert_eq!(now["booked"], seats, "{now}");
    assert_eq!(now["available"], 0);
    // The desk's list of the day holds exactly the winners.
    let day = starts(&target).date_naive();
    let of_day = items(
        json_body(
            app.get(&format!("{BOOKINGS}?date={day}"), Some(&admin))
                .await,
            StatusCode::OK,
        )
        .await,
    );
    let mut listed: Vec<&Value> = of_day
        .iter()
        .filter(|b| b["slot_id"] == target["id"] && b["status"] == "booked")
        .map(|b| &b["id"])
        .collect();
    let mut winners: Vec<&Value> = won.iter().map(|b| &b["id"]).collect();
    listed.sort_by_key(|v| v.as_i64());
    winners.sort_by_key(|v| v.as_i64());
    assert_eq!(listed, winners);
}

/// Two instances on one PostgreSQL database (the deployment that outgrows
/// one machine), sixty applicants racing for three seats through both at
/// once: three bookings, the slot counts three, on either instance.
#[tokio::test]
async fn two_instances_on_one_postgres_database_never_overbook() {
    let app = TestApp::spawn_with(
        Backend::Postgres,
        &[
            ("MEDESK_LOGIN_PER_ADDRESS_PER_MINUTE", "100000"),
            ("MEDESK_DB_POOL_SIZE", "8"),
        ],
    )
    .await;
    let other = app.another_instance().await;
    let admin = app.admin_token().await;
    let racers = applicants(&app, 60).await;
    let target = next_slot(&app, &admin).await;
    with_capacity(&app, &admin, &target, 3).await;
    let urls = [app.url(BOOKINGS), other.url(BOOKINGS)];
    let results = race_on(&urls, &racers, &target).await;
    let won = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(won, 3, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        assert!(problem_type(body).ends_with("slot_full"), "{body}");
    }
    // Both instances read the same count.
    assert_eq!(slot(&app, &admin, &target).await["booked"], 3);
    let on_other = app
        .client
        .get(other.url(&format!(
            "/api/v1/open-hours/slots?from={day}&to={day}",
            day = starts(&target).date_naive()
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let listed = items(json_body(on_other, StatusCode::OK).await);
    let seen = listed
        .iter()
        .find(|s| s["id"] == target["id"])
        .expect("the slot on the other instance");
    assert_eq!(seen["booked"], 3, "{seen}");
}

async fn one_seat_taken_by_a_hundred_at_once_gives_one_booking(backend: Backend) {
    hundred_race_for(backend, 1).await;
}

async fn three_seats_taken_by_a_hundred_at_once_give_three_bookings(backend: Backend) {
    hundred_race_for(backend, 3).await;
}

// ------------------------------------------------------------------ mail

fn open_hours_mails<'a>(mails: &'a [ReceivedMail], address: &str) -> Vec<&'a ReceivedMail> {
    mails.iter().filter(|m| m.is_for(address)).collect()
}

/// The one calendar attachment of a mail, unfolded.
fn calendar_of(mail: &ReceivedMail) -> Vec<String> {
    assert_eq!(mail.attachments.len(), 1, "{mail:#?}");
    let invite = &mail.attachments[0];
    assert_eq!(invite.mime, "text/calendar", "{invite:#?}");
    unfolded(&invite.content)
}

async fn booking_and_cancelling_mail_the_applicant_a_calendar_entry_and_the_desk(backend: Backend) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let desk_ja = staff_in(&app, &admin, "supporter", "ja").await;
    let desk_en = staff_in(&app, &admin, "supporter", "en").await;
    let applicant = applicant_in(&app, "en", "Jane Doe", "MedTech Inc.").await;
    let target = next_slot(&app, &applicant.token).await;
    let booking = booked(&app, &applicant, &target).await;

    let mails = smtp.wait_for(3, WAIT).await;
    let to_applicant = open_hours_mails(&mails, &applicant.email);
    assert_eq!(to_applicant.len(), 1, "{:#?}", subjects(&mails));
    let invitation = to_applicant[0];
    assert!(
        invitation
            .subject
            .starts_with("MEDISO Open Hours booked for"),
        "{}",
        invitation.subject
    );
    let lines = calendar_of(invitation);
    assert_eq!(property(&lines, "METHOD"), ["METHOD:REQUEST"]);
    let uid = property(&lines, "UID");
    assert_eq!(
        uid,
        [format!("UID:open-hours-{}@medesk", booking["id"]).as_str()]
    );
    let start = starts(&target).with_timezone(&chrono::Utc);
    assert_eq!(
        property(&lines, "DTSTART"),
        [format!("DTSTART:{}", start.format("%Y%m%dT%H%M%SZ")).as_str()]
    );
    for (desk, subject) in [
        (&desk_ja, "オープンアワー予約"),
        (&desk_en, "Open Hours booked"),
    ] {
        let told = open_hours_mails(&mails, &desk.email);
        assert_eq!(told.len(), 1, "{:#?}", subjects(&mails));
        assert!(told[0].subject.starts_with(subject), "{}", told[0].subject);
        assert!(told[0].text().contains("MedTech Inc."));
        assert!(told[0].text().contains("薬機法の相談"));
    }

    json_body(
        cancel(&app, &applicant.token, &booking).await,
        StatusCode::OK,
    )
    .await;
    let mails = smtp.wait_for(6, WAIT).await;
    let to_applicant = open_hours_mails(&mails, &applicant.email);
    assert_eq!(to_applicant.len(), 2, "{:#?}", subjects(&mails));
    let cancellation = to_applicant
        .iter()
        .find(|m| m.subject.starts_with("MEDISO Open Hours cancelled"))
        .expect("a cancellation");
    let lines = calendar_of(cancellation);
    assert_eq!(property(&lines, "METHOD"), ["METHOD:CANCEL"]);
    assert_eq!(property(&lines, "UID"), uid);
    assert_eq!(property(&lines, "STATUS"), ["STATUS:CANCELLED"]);
    for (desk, subject) in [
        (&desk_ja, "オープンアワー取消"),
        (&desk_en, "Open Hours cancelled"),
    ] {
        let told = open_hours_mails(&mails, &desk.email);
        assert_eq!(told.len(), 2, "{:#?}", subjects(&mails));
        assert!(
            told.iter().any(|m| m.subject.starts_with(subject)),
            "{:#?}",
            subjects(&mails)
        );
    }
}

/// 10:00 Asia/Tokyo on the weekday before `day` (no holidays are set).
fn reminder_due(day: NaiveDate) -> DateTime<FixedOffset> {
    let mut before = day.pred_opt().unwrap();
    while matches!(before.weekday(), Weekday::Sat | Weekday::Sun) {
        before = before.pred_opt().unwrap();
    }
    jst()
        .from_local_datetime(&before.and_hms_opt(10, 0, 0).unwrap())
        .unwrap()
}

fn reminders<'a>(mails: &'a [ReceivedMail], address: &str) -> Vec<&'a ReceivedMail> {
    open_hours_mails(mails, address)
        .into_iter()
        .filter(|m| m.subject.starts_with("Reminder: MEDISO Open Hours"))
        .collect()
}

async fn the_reminder_goes_once_the_business_day_before_and_never_when_cancelled(backend: Backend) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    staff_in(&app, &admin, "supporter", "en").await;
    let kept = applicant_in(&app, "en", "Jane Doe", "MedTech Inc.").await;
    let dropped = applicant_in(&app, "en", "John Roe", "Other Bio").await;
    // A slot far enough ahead for its reminder to be in the future.
    let target = slots_after(&app, &admin, chrono::Duration::days(4))
        .await
        .remove(0);
    with_capacity(&app, &admin, &target, 2).await;
    booked(&app, &kept, &target).await;
    let gone = booked(&app, &dropped, &target).await;
    json_body(cancel(&app, &dropped.token, &gone).await, StatusCode::OK).await;
    // Two bookings and one cancellation, each to the applicant and the desk.
    smtp.wait_for(6, WAIT).await;

    // Just before it is due: nothing.
    let due = reminder_due(starts(&target).date_naive());
    let wait = due - app_now(&app) - chrono::Duration::minutes(1);
    app.clock.advance(wait.to_std().unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(reminders(&smtp.mails(), &kept.email).is_empty());

    // Due: the kept booking's reminder goes, once; the cancelled one's never.
    app.clock.advance(Duration::from_secs(120));
    let mails = smtp.wait_for(7, WAIT).await;
    let sent = reminders(&mails, &kept.email);
    assert_eq!(sent.len(), 1, "{:#?}", subjects(&mails));
    assert!(sent[0].text().contains("Jane Doe"));
    app.clock.advance(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 7, "{:#?}", subjects(&mails));
    assert_eq!(reminders(&mails, &kept.email).len(), 1);
    assert!(reminders(&mails, &dropped.email).is_empty());
}
