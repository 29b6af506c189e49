//! The Open Hours pages: a founder books and cancels from the coming weeks,
//! the desk marks attendance and turns a booking into a case, the admin
//! keeps the holidays. A real browser for the stories, plain HTTP for what
//! a browser would never send.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::COOKIE;

use crate::browser::Browser;
use crate::helpers::*;
use crate::pages::{csrf_in, signed_in_cookie};
use crate::smtp::{ReceivedMail, SmtpServer};

pages_on_backends!(
    both: a_founder_books_ten_oclock_and_the_desk_turns_it_into_a_case;
    sqlite:
        a_founder_cancels_one_of_two_bookings,
        a_slot_filled_meanwhile_says_so_and_keeps_the_typed_topic,
        applicants_get_no_desk_or_admin_page,
        the_admin_adds_a_holiday_and_its_slots_disappear,
        forged_open_hours_forms_change_nothing,
        a_case_routed_to_open_hours_offers_a_booking_for_it,
        a_supporter_cancels_a_booking_from_the_day_view,
);

/// Signs `email` in on the browser's sign-in page, going on to `next`.
async fn sign_in(browser: &Browser, email: &str, password: &str, next: &str) {
    browser.goto(&format!("/login?next={next}")).await;
    browser.fill("#email", email).await;
    browser.fill("#password", password).await;
    browser.click_through("form.card button[type=submit]").await;
}

async fn sign_out(browser: &Browser) {
    browser.click_through("form[action='/logout'] button").await;
}

/// GET `path` as `cookie`, asking for HTML: status and body.
async fn page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let response = app
        .client
        .get(app.url(path))
        .header(COOKIE, cookie)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// POST a form as `cookie`.
async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let response = app
        .client
        .post(app.url(path))
        .header(COOKIE, cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The ids of the bookable slots at `time` on an applicant's Open Hours
/// page, in time order (from its "book" links).
fn bookable(html: &str, time: &str) -> Vec<String> {
    html.split("<li class=\"oh-slot ")
        .skip(1)
        .filter(|slot| slot.contains(&format!("data-time=\"{time}\"")))
        .filter_map(|slot| {
            let start = slot.find("href=\"/open-hours/slots/")? + 24;
            let end = start + slot[start..].find('/')?;
            Some(slot[start..end].to_owned())
        })
        .collect()
}

/// The item of `slot` on an Open Hours page.
fn slot_html(html: &str, slot: &str) -> String {
    let start = html
        .find(&format!("id=\"slot-{slot}\""))
        .unwrap_or_else(|| panic!("slot {slot} is not listed"));
    let item = &html[start..];
    item[..item.find("</li>").expect("the item's end")].to_owned()
}

/// The dates of the days listed on an Open Hours page.
fn listed_days(html: &str) -> Vec<String> {
    html.split("data-date=\"")
        .skip(1)
        .map(|rest| rest[..10].to_owned())
        .collect()
}

/// An applicant of a new organisation, signed in (API user and page cookie).
async fn founder(app: &TestApp, organization: &str) -> (User, String) {
    let user = app.applicant(organization).await;
    let cookie = signed_in_cookie(app, &user.email, PASSWORD).await;
    (user, cookie)
}

/// Books `slot` for the cookie's organisation through the form; returns
/// the answer's status.
async fn booked(app: &TestApp, cookie: &str, slot: &str, topic: &str) -> StatusCode {
    let (_, html) = page(app, cookie, &format!("/open-hours/slots/{slot}/book")).await;
    let token = csrf_in(&html);
    post_form(
        app,
        cookie,
        "/open-hours/bookings",
        &[
            ("csrf", &token),
            ("slot_id", slot),
            ("topic", topic),
            ("language", "ja"),
        ],
    )
    .await
    .0
}

/// The Open Hours mail to `address` with an `.ics` whose METHOD is
/// `method`, waiting up to 30 s for the outbox to send it.
async fn calendar_mail(smtp: &SmtpServer, address: &str, method: &str) -> ReceivedMail {
    for _ in 0..300 {
        if let Some(mail) = smtp.mails().into_iter().find(|m| {
            m.is_for(address)
                && m.attachments
                    .iter()
                    .any(|a| a.content.contains(&format!("METHOD:{method}")))
        }) {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {method} invitation reached {address}");
}

async fn a_founder_books_ten_oclock_and_the_desk_turns_it_into_a_case(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(backend, &[("MEDESK_SMTP_URL", smtp.url().as_str())]).await;
    let founder = app.applicant("Open Hours Medical KK").await;
    let supporter = app.staff("supporter").await;
    let topic = "家庭用血圧計アプリの医療機器該当性について";
    let browser = Browser::open(&app.address, "ja").await;

    sign_in(&browser, &founder.email, PASSWORD, "/cases").await;
    browser
        .click_through("header nav a[href='/open-hours']")
        .await;
    assert_eq!(browser.path().await, "/open-hours");
    assert_eq!(browser.text("h1").await, "オープンアワー");
    browser.assert_accessible().await;
    // Not today's 10:00 (it may start while the test runs): the next one.
    let link = browser
        .run(
            "const links = [...document.querySelectorAll(\".oh-slot.oh-open[data-time='10:00'] a.oh-book\")];
             return links[1].getAttribute('href');",
        )
        .await;
    let link = link
        .as_str()
        .expect("a second bookable 10:00 slot")
        .to_owned();
    let slot = link
        .trim_start_matches("/open-hours/slots/")
        .trim_end_matches("/book");
    let date = browser
        .run(&format!(
            "return document.querySelector('#slot-{slot}').closest('.oh-day').dataset.date"
        ))
        .await;
    let date = date.as_str().expect("the slot's day").to_owned();
    assert!(
        browser
            .text(&format!("#slot-{slot} .oh-seats"))
            .await
            .contains("残り1席")
    );
    browser.click_through(&format!("a[href='{link}']")).await;
    assert!(browser.text(".oh-chosen").await.contains("10:00–10:45"));
    browser.assert_accessible().await;
    browser.fill("#topic", topic).await;
    browser.select("#product_type", "medical_device").await;
    browser
        .click("input[name=categories][value=regulatory]")
        .await;
    browser
        .screenshot_of("main", &format!("{backend:?}-open-hours-book"))
        .await;
    browser
        .click_through("form[action='/open-hours/bookings'] button[type=submit]")
        .await;
    assert_eq!(browser.path().await, "/open-hours");
    assert!(browser.text(".notice").await.contains("予約しました"));
    let mine = browser.text(".oh-bookings").await;
    assert!(mine.contains(topic) && mine.contains("10:00"), "{mine}");
    assert!(
        browser
            .text(&format!("#slot-{slot}"))
            .await
            .contains("貴社が予約済み")
    );
    browser.screenshot(&format!("{backend:?}-open-hours")).await;
    let booking = browser
        .run(
            "return document.querySelector(\".oh-bookings form[action$='/cancel']\")
                 .getAttribute('action').split('/')[3]",
        )
        .await;
    let booking = booking.as_str().expect("the booking's id").to_owned();

    // The invitation: an .ics REQUEST for 10:00 Japan time (01:00 UTC).
    let mail = calendar_mail(&smtp, &founder.email, "REQUEST").await;
    let ics = &mail.attachments[0];
    assert_eq!(ics.mime, "text/calendar", "{ics:#?}");
    assert!(
        ics.content
            .contains(&format!("UID:open-hours-{booking}@medesk")),
        "{}",
        ics.content
    );
    let utc_day = date.replace('-', "");
    assert!(
        ics.content.contains(&format!("DTSTART:{utc_day}T010000Z")),
        "{}",
        ics.content
    );
    assert!(mail.text().contains("/open-hours"), "{}", mail.text());
    sign_out(&browser).await;

    // The desk's day view.
    sign_in(&browser, &supporter.email, PASSWORD, "/queue").await;
    browser
        .click_through("header nav a[href='/desk/open-hours']")
        .await;
    assert_eq!(browser.path().await, "/desk/open-hours");
    browser.goto(&format!("/desk/open-hours?date={date}")).await;
    let row = format!("#booking-{booking}");
    let listed = browser.text(&row).await;
    assert!(
        listed.contains("10:00")
            && listed.contains("Open Hours Medical KK")
            && listed.contains(topic),
        "{listed}"
    );
    assert!(listed.contains("Regulatory"), "{listed}");
    browser.assert_accessible().await;

    let note = "申請区分の整理が必要。次回は資料を持参。";
    browser.fill(&format!("#note-{booking}"), note).await;
    browser
        .click_through(&format!("{row} button[name=attended][value=yes]"))
        .await;
    assert!(
        browser
            .text(".notice")
            .await
            .contains("Attendance recorded")
    );
    assert!(browser.text(&row).await.contains("Attended"));
    assert_eq!(browser.value(&format!("#note-{booking}")).await, note);
    browser
        .screenshot(&format!("{backend:?}-desk-open-hours"))
        .await;
    // On a phone the table's rows are cards, each cell labelled.
    browser.resize(390, 844).await;
    let label = browser
        .run(&format!(
            "return getComputedStyle(document.querySelector('{row} td'), '::before').content"
        ))
        .await;
    assert_eq!(label, "\"Time\"");
    browser
        .screenshot(&format!("{backend:?}-desk-open-hours-phone"))
        .await;
    browser.resize(1200, 1000).await;

    browser
        .click_through(&format!(
            "form[action='/desk/open-hours/bookings/{booking}/case'] button"
        ))
        .await;
    let case_path = browser.path().await;
    assert!(case_path.starts_with("/cases/"), "{case_path}");
    assert!(browser.text("h1").await.contains(topic));
    assert!(browser.text(".notice").await.contains("Open Hours"));
    let case_id = case_path.trim_start_matches("/cases/").to_owned();
    let case = app
        .case(
            &supporter.token,
            &serde_json::json!(case_id.parse::<i64>().unwrap()),
        )
        .await;
    assert_eq!(case["title"], topic);
    assert_eq!(case["organization"]["id"], founder.organization_id);

    // The booking now links to its case, and offers no second one.
    browser.goto(&format!("/desk/open-hours?date={date}")).await;
    let linked = browser
        .run(&format!(
            "return document.querySelector('{row} a.oh-case-link').getAttribute('href')"
        ))
        .await;
    assert_eq!(linked, case_path.as_str());
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css(&format!(
                "form[action='/desk/open-hours/bookings/{booking}/case']"
            )))
            .await
            .is_err()
    );
    browser.close().await;
}

async fn a_founder_cancels_one_of_two_bookings(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, cookie) = founder(&app, "Two Bookings KK").await;
    let (_, html) = page(&app, &cookie, "/open-hours").await;
    let slots = bookable(&html, "11:00");
    let (keep, drop) = (&slots[1], &slots[2]);
    assert_eq!(
        booked(&app, &cookie, keep, "残す予約").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        booked(&app, &cookie, drop, "取り消す予約").await,
        StatusCode::SEE_OTHER
    );
    let browser = Browser::open(&app.address, "ja").await;

    sign_in(&browser, &user.email, PASSWORD, "/open-hours").await;
    assert!(
        browser
            .text(&format!("#slot-{drop}"))
            .await
            .contains("貴社が予約済み")
    );
    let mine = browser.text(".oh-bookings").await;
    assert!(
        mine.contains("残す予約") && mine.contains("取り消す予約"),
        "{mine}"
    );
    let cancel = browser
        .run(
            "const item = [...document.querySelectorAll('.oh-booking')]
                 .find(li => li.textContent.includes('取り消す予約'));
             return item.querySelector('form').getAttribute('action');",
        )
        .await;
    browser
        .click_through(&format!(
            "form[action='{}'] button",
            cancel.as_str().expect("a cancel form")
        ))
        .await;
    assert!(browser.text(".notice").await.contains("キャンセルしました"));
    let mine = browser.text(".oh-bookings").await;
    assert!(
        mine.contains("残す予約") && !mine.contains("取り消す予約"),
        "{mine}"
    );
    // The seat is free again.
    assert!(
        browser
            .text(&format!("#slot-{drop}"))
            .await
            .contains("残り1席")
    );
    assert!(
        browser
            .text(&format!("#slot-{keep}"))
            .await
            .contains("貴社が予約済み")
    );
    browser.close().await;
}

async fn a_slot_filled_meanwhile_says_so_and_keeps_the_typed_topic(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, cookie) = founder(&app, "Late Comer KK").await;
    let (_, rival) = founder(&app, "Early Bird KK").await;
    let (_, html) = page(&app, &cookie, "/open-hours").await;
    let slot = bookable(&html, "10:00")[1].clone();
    let browser = Browser::open(&app.address, "ja").await;

    sign_in(
        &browser,
        &user.email,
        PASSWORD,
        &format!("/open-hours/slots/{slot}/book"),
    )
    .await;
    let topic = "滅菌バリデーションの進め方";
    browser.fill("#topic", topic).await;
    browser
        .click("input[name=categories][value=marketing]")
        .await;
    // Another organisation takes the only seat first.
    assert_eq!(
        booked(&app, &rival, &slot, "先着の相談").await,
        StatusCode::SEE_OTHER
    );
    browser
        .click_through("form[action='/open-hours/bookings'] button[type=submit]")
        .await;
    assert_eq!(browser.path().await, "/open-hours/bookings");
    assert!(
        browser.text("p.error").await.contains("満席になりました"),
        "{}",
        browser.page_text().await
    );
    assert_eq!(browser.value("#topic").await, topic);
    assert_eq!(
        browser
            .run("return document.querySelector('input[value=marketing]').checked")
            .await,
        true
    );
    browser.assert_accessible().await;
    browser.close().await;

    // As a plain request: 409, and the slot shows full.
    let (_, third) = founder(&app, "Third KK").await;
    assert_eq!(
        booked(&app, &third, &slot, "三番目").await,
        StatusCode::CONFLICT
    );
    let (_, html) = page(&app, &cookie, "/open-hours").await;
    assert!(!bookable(&html, "10:00").contains(&slot));
    let listed = slot_html(&html, &slot);
    assert!(listed.contains("満席"), "{listed}");
}

async fn applicants_get_no_desk_or_admin_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, cookie) = founder(&app, "Curious KK").await;
    let (_, html) = page(&app, &cookie, "/open-hours").await;
    let token = csrf_in(&html);
    let slot = bookable(&html, "10:00")[1].clone();
    assert_eq!(
        booked(&app, &cookie, &slot, "自分の予約").await,
        StatusCode::SEE_OTHER
    );
    let (_, html) = page(&app, &cookie, "/open-hours").await;
    let booking = html
        .split("/open-hours/bookings/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the booking's cancel form")
        .to_owned();

    for path in [
        "/desk/open-hours",
        "/desk/open-hours?date=2030-01-07",
        "/admin/open-hours",
    ] {
        let (status, body) = page(&app, &cookie, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body.contains("403"), "{path}");
        assert!(!body.contains("自分の予約"), "{path}");
    }
    for (path, fields) in [
        (
            format!("/desk/open-hours/bookings/{booking}/attendance"),
            vec![("attended", "yes"), ("note", "forged")],
        ),
        (format!("/desk/open-hours/bookings/{booking}/case"), vec![]),
        (
            "/admin/holidays".to_owned(),
            vec![("date", "2030-01-07"), ("name", "forged")],
        ),
        (
            "/admin/open-hours/rules".to_owned(),
            vec![("times", "09:00"), ("duration_minutes", "30")],
        ),
        (
            format!("/admin/open-hours/slots/{slot}"),
            vec![("capacity", "5")],
        ),
    ] {
        let mut form = vec![("csrf", token.as_str())];
        form.extend(fields);
        let (status, _) = post_form(&app, &cookie, &path, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    // Nothing changed: the slot still has its one seat, taken, and no case.
    let (_, html) = page(&app, &cookie, "/open-hours").await;
    assert!(html.contains("貴社が予約済み"));
    let staff = app.staff("supporter").await;
    let desk = signed_in_cookie(&app, &staff.email, PASSWORD).await;
    let (status, _) = page(&app, &desk, "/admin/open-hours").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "supporters do not set the rules"
    );
    let day = slot_day(&app, &cookie, &slot).await;
    let (status, html) = page(&app, &desk, &format!("/desk/open-hours?date={day}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("自分の予約") && !html.contains("forged"));
    assert!(!html.contains("oh-case-link"));
}

/// The date of the day `slot` is listed under on `cookie`'s Open Hours page.
async fn slot_day(app: &TestApp, cookie: &str, slot: &str) -> String {
    let (_, html) = page(app, cookie, "/open-hours").await;
    let before = &html[..html.find(&format!("id=\"slot-{slot}\"")).unwrap()];
    listed_days(before).last().expect("a day").clone()
}

async fn the_admin_adds_a_holiday_and_its_slots_disappear(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, cookie) = founder(&app, "Holiday Watchers KK").await;
    let (_, html) = page(&app, &cookie, "/open-hours").await;
    let days = listed_days(&html);
    let holiday = days[3].clone();
    let closing = bookable(&html, "11:00")[1].clone();
    let browser = Browser::open(&app.address, "en").await;

    sign_in(&browser, ADMIN_EMAIL, ADMIN_PASSWORD, "/cases").await;
    browser
        .click_through("header nav a[href='/admin/open-hours']")
        .await;
    assert_eq!(browser.path().await, "/admin/open-hours");
    browser.assert_accessible().await;
    // A holiday without a name is refused beside the field, the date kept.
    browser
        .run(&format!(
            "document.querySelector('#holiday-date').value = '{holiday}'; return true"
        ))
        .await;
    browser
        .click_through("form[action='/admin/holidays'] button[type=submit]")
        .await;
    assert!(!browser.text("#holiday-name-error").await.is_empty());
    assert_eq!(browser.value("#holiday-date").await, holiday);
    browser.fill("#holiday-name", "Desk training day").await;
    browser
        .click_through("form[action='/admin/holidays'] button[type=submit]")
        .await;
    // The admin reads their account's language (Japanese).
    assert!(browser.text(".notice").await.contains("休日を保存しました"));
    assert!(
        browser
            .text(&format!("#holiday-{holiday}"))
            .await
            .contains("Desk training day")
    );
    browser
        .screenshot(&format!("{backend:?}-admin-open-hours"))
        .await;
    // One slot closed, with its reason.
    browser
        .fill(&format!("#reason-{closing}"), "窓口の研修のため")
        .await;
    browser
        .click(&format!("#slot-{closing} input[name=closed]"))
        .await;
    browser
        .click_through(&format!(
            "form[action='/admin/open-hours/slots/{closing}'] button"
        ))
        .await;
    assert!(browser.text(".notice").await.contains("枠を変更しました"));
    let slots = browser.text(".oh-admin-slots tbody").await;
    assert!(slots.contains("10:00–10:45"), "{slots}");
    browser
        .run("document.querySelector('.oh-admin-slots').scrollIntoView(); return true")
        .await;
    browser
        .screenshot_of(
            ".oh-admin-slots",
            &format!("{backend:?}-admin-open-hours-slots"),
        )
        .await;
    browser.close().await;

    let (_, html) = page(&app, &cookie, "/open-hours").await;
    let now_listed = listed_days(&html);
    assert!(!now_listed.contains(&holiday), "{now_listed:?}");
    assert!(now_listed.contains(&days[2]) && now_listed.contains(&days[4]));
    let closed = slot_html(&html, &closing);
    assert!(closed.contains("休止 (窓口の研修のため)"), "{}", closed);
    assert!(!bookable(&html, "11:00").contains(&closing));
}

async fn forged_open_hours_forms_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, cookie) = founder(&app, "Forged Forms KK").await;
    let (_, html) = page(&app, &cookie, "/open-hours").await;
    let slot = bookable(&html, "10:00")[1].clone();
    let day = slot_day(&app, &cookie, &slot).await;
    let admin = signed_in_cookie(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let (status, _) = post_form(
        &app,
        &cookie,
        "/open-hours/bookings",
        &[
            ("slot_id", &slot),
            ("topic", "forged booking"),
            ("language", "ja"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (path, fields) in [
        (
            "/admin/holidays".to_owned(),
            vec![("date", day.as_str()), ("name", "forged")],
        ),
        (
            format!("/admin/open-hours/slots/{slot}"),
            vec![("closed", "1"), ("reason", "forged")],
        ),
    ] {
        let mut with_wrong_token = fields.clone();
        with_wrong_token.push(("csrf", "0000"));
        for form in [fields, with_wrong_token] {
            let (status, _) = post_form(&app, &admin, &path, &form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
    }
    // Still bookable, still listed, no booking and no holiday.
    let (_, html) = page(&app, &cookie, "/open-hours").await;
    assert!(bookable(&html, "10:00").contains(&slot));
    assert!(listed_days(&html).contains(&day));
    assert!(!html.contains("forged"));
    let (_, html) = page(&app, &admin, "/admin/open-hours").await;
    assert!(!html.contains("forged"));
}

/// A case the desk routed to Open Hours offers its applicant a booking for
/// it; the booking made through that link is linked to the case. A case on
/// another route offers none.
async fn a_case_routed_to_open_hours_offers_a_booking_for_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (founder_user, cookie) = founder(&app, "Routed KK").await;
    let supporter = app.staff("supporter").await;
    let routed = app.new_case(&founder_user.token).await;
    app.triaged(&supporter.token, &routed["id"], "open_hours")
        .await;
    let direct = app.new_case(&founder_user.token).await;
    app.triaged(&supporter.token, &direct["id"], "direct").await;

    let link = format!("/open-hours?case_id={}", routed["id"]);
    let (status, html) = page(&app, &cookie, &format!("/cases/{}", routed["id"])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&link), "{html}");
    let (_, html) = page(&app, &cookie, &format!("/cases/{}", direct["id"])).await;
    assert!(!html.contains("/open-hours?case_id="), "{html}");

    let (_, html) = page(&app, &cookie, &link).await;
    let book_link = format!("/book?case_id={}", routed["id"]);
    assert!(html.contains(&book_link), "{html}");
    let slot = bookable(&html, "10:00")[0].clone();
    let (_, form) = page(
        &app,
        &cookie,
        &format!("/open-hours/slots/{slot}/book?case_id={}", routed["id"]),
    )
    .await;
    let csrf = csrf_in(&form);
    let case_id = routed["id"].to_string();
    let (status, _) = post_form(
        &app,
        &cookie,
        "/open-hours/bookings",
        &[
            ("csrf", &csrf),
            ("slot_id", &slot),
            ("topic", "承認経路の確認"),
            ("language", "ja"),
            ("case_id", &case_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mine = json_body(
        app.get("/api/v1/open-hours/bookings", Some(&founder_user.token))
            .await,
        StatusCode::OK,
    )
    .await;
    let booked = &items(mine)[0];
    assert_eq!(booked["case_id"], routed["id"], "{booked}");
}

/// A supporter cancels a booking from the day view for the applicant (who
/// phoned in): the booking is cancelled and the seat free again.
async fn a_supporter_cancels_a_booking_from_the_day_view(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, cookie) = founder(&app, "Phoned In KK").await;
    let (_, html) = page(&app, &cookie, "/open-hours").await;
    let slot = bookable(&html, "10:00")[0].clone();
    assert_eq!(
        booked(&app, &cookie, &slot, "電話で取消予定").await,
        StatusCode::SEE_OTHER
    );
    let day = slot_day(&app, &cookie, &slot).await;
    let supporter = app.staff("supporter").await;
    let desk = signed_in_cookie(&app, &supporter.email, PASSWORD).await;
    let mine = items(
        json_body(
            app.get("/api/v1/open-hours/bookings", Some(&user.token))
                .await,
            StatusCode::OK,
        )
        .await,
    );
    let booking = mine[0]["id"].to_string();
    let day_path = format!("/desk/open-hours?date={day}");
    let (_, html) = page(&app, &desk, &day_path).await;
    let action = format!("/open-hours/bookings/{booking}/cancel");
    assert!(html.contains(&action), "{html}");
    let token = csrf_in(&html);
    let (status, _) = post_form(&app, &desk, &action, &[("csrf", &token)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let now = json_body(
        app.get(
            &format!("/api/v1/open-hours/bookings/{booking}"),
            Some(&user.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(now["status"], "cancelled", "{now}");
    // Cancelled: no cancel button any more, and the slot is bookable again.
    let (_, html) = page(&app, &desk, &day_path).await;
    assert!(!html.contains(&action));
    let (_, html) = page(&app, &cookie, "/open-hours").await;
    assert!(bookable(&html, "10:00").contains(&slot));
}
