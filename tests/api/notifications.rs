//! Mail that tells people what happened (issue 16): who hears of a new
//! message and when (at once after a quiet quarter hour, the rest gathered
//! into one counted mail when it ends; `domain::notice`), staff choosing
//! who reads a message, every mail linking to a page rather than to the
//! API, and times on the desk's clock in the reader's language. Mails go
//! to the real SMTP server of `smtp.rs`; the app's clock is moved forward
//! instead of waiting a quarter hour.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::expert_helpers::meeting_body;
use crate::helpers::{
    Backend, PASSWORD, TestApp, User, error_fields, items, json_body, problem, random_suffix,
    triage_body,
};
use crate::smtp::{ReceivedMail, SmtpServer};

on_both_backends!(
    a_burst_of_messages_is_one_mail_at_once_and_one_counted_mail_after_the_quarter_hour,
    only_the_other_side_who_may_read_a_message_hears_of_it,
    messages_posted_at_the_same_time_still_make_one_mail_per_person,
    staff_must_say_who_reads_a_message_and_a_refused_one_changes_nothing,
    every_mail_links_to_a_page_and_never_to_the_api,
    an_invitation_links_to_registration_and_shows_its_expiry_in_the_inviters_language,
);

const WAIT: Duration = Duration::from_secs(30);
const QUARTER_HOUR: Duration = Duration::from_secs(15 * 60);
/// Message text that must never appear in a mail.
const SECRET: &str = "未公開の特許出願 PCT/JP2026/000123";

// ------------------------------------------------------------------ helpers

async fn smtp_app(backend: Backend) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(backend, &[("MEDESK_SMTP_URL", smtp.url().as_str())]).await;
    (app, smtp)
}

/// The whole outbox as the admin lists it, oldest first.
async fn outbox(app: &TestApp, admin: &str) -> Vec<Value> {
    let mut rows = items(
        json_body(
            app.get("/api/v1/admin/outbox?limit=500", Some(admin)).await,
            StatusCode::OK,
        )
        .await,
    );
    rows.reverse();
    rows
}

/// The message notices in the outbox, oldest first.
async fn notices(app: &TestApp, admin: &str) -> Vec<Value> {
    outbox(app, admin)
        .await
        .into_iter()
        .filter(|row| row["kind"] == "message_posted")
        .collect()
}

/// Polls the outbox until `done` holds, for up to `WAIT`; returns it.
async fn outbox_until(
    app: &TestApp,
    admin: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rows = outbox(app, admin).await;
        if done(&rows) {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox never showed {what}: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every mail due now is sent; returns how many mails are
/// sent. Only gathered message notices wait for a later time.
async fn settled(app: &TestApp, admin: &str) -> usize {
    let rows = outbox_until(app, admin, "every due mail sent", |rows| {
        rows.iter().all(|r| r["state"] == "sent" || waiting(r))
    })
    .await;
    rows.iter().filter(|r| r["state"] == "sent").count()
}

/// Waits until every mail is sent (after the clock passed the gathered
/// notices' time); returns how many there are.
async fn all_sent(app: &TestApp, admin: &str) -> usize {
    outbox_until(app, admin, "every mail sent", |rows| {
        rows.iter().all(|r| r["state"] == "sent")
    })
    .await
    .len()
}

/// A pending row that is not due: its time is after its creation.
fn waiting(row: &Value) -> bool {
    row["state"] == "pending" && at(&row["next_attempt_at"]) > at(&row["created_at"])
}

fn at(value: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time")).expect("RFC 3339")
}

fn recipients(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r["recipient"].as_str().unwrap().to_owned())
        .collect()
}

/// Posts `body` as `token`, asserting 201.
async fn post(app: &TestApp, token: &str, id: &Value, body: Value) -> Value {
    json_body(
        app.post_message(token, id, &body, None).await,
        StatusCode::CREATED,
    )
    .await
}

fn number_of(case: &Value) -> String {
    case["number"].as_str().unwrap().to_owned()
}

/// The subject of a notice of `count` messages in `locale`.
fn notice_subject(number: &str, locale: &str, count: usize) -> String {
    match (locale, count) {
        ("ja", 1) => format!("[{number}] 新しいメッセージがあります"),
        ("ja", n) => format!("[{number}] 新しいメッセージが {n} 件あります"),
        (_, 1) => format!("[{number}] A new message"),
        (_, n) => format!("[{number}] {n} new messages"),
    }
}

fn mails_to<'a>(mails: &'a [ReceivedMail], user: &User) -> Vec<&'a ReceivedMail> {
    mails.iter().filter(|m| m.is_for(&user.email)).collect()
}

/// A notice mail: number and link to the case page, never message text.
fn assert_notice(mail: &ReceivedMail, app: &TestApp, case: &Value, subject: &str) {
    let context = format!("{mail:#?}");
    assert_eq!(mail.subject, subject, "{context}");
    let page = format!("{}/cases/{}", app.address, case["id"]);
    assert!(mail.text().lines().any(|l| l == page), "{context}");
    assert!(!mail.text().contains(SECRET), "{context}");
    assert!(!mail.html().contains("PCT"), "{context}");
    assert!(!mail.text().contains("/api/"), "{context}");
}

/// A case of `applicant`'s that `supporter` claimed and triaged to experts,
/// with `expert` accepted on it; every mail so far sent.
async fn engaged_case(
    app: &TestApp,
    admin: &str,
    supporter: &User,
    applicant: &User,
    expert: &crate::expert_helpers::Expert,
) -> Value {
    let case = app.regulatory_case(supporter, applicant).await;
    app.engaged(supporter, &case["id"], expert).await;
    settled(app, admin).await;
    case
}

// ------------------------------------------------------------------- tests

async fn a_burst_of_messages_is_one_mail_at_once_and_one_counted_mail_after_the_quarter_hour(
    backend: Backend,
) {
    let (app, smtp) = smtp_app(backend).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await; // English
    let bystander = app.staff("supporter").await;
    let applicant = app.applicant("株式会社メドテック").await;
    let expert = app.expert_named(&admin, "Notified Expert").await; // Japanese
    let case = engaged_case(&app, &admin, &supporter, &applicant, &expert).await;
    let (id, number) = (&case["id"], number_of(&case));
    let before = smtp.wait_for(settled(&app, &admin).await, WAIT).await.len();

    // Five messages in a row from the applicant.
    for n in 1..=5 {
        post(
            &app,
            &applicant.token,
            id,
            json!({"body": format!("{SECRET} ({n})")}),
        )
        .await;
    }

    // The supporter in charge and the accepted expert get one mail each at
    // once; the four later messages wait in one mail each, due a quarter
    // hour after the first.
    let rows = outbox_until(&app, &admin, "the first notices sent", |rows| {
        rows.iter()
            .filter(|r| r["kind"] == "message_posted" && r["state"] == "sent")
            .count()
            == 2
    })
    .await;
    let rows: Vec<Value> = rows
        .into_iter()
        .filter(|r| r["kind"] == "message_posted")
        .collect();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let (sent, gathered): (Vec<Value>, Vec<Value>) =
        rows.into_iter().partition(|r| r["state"] == "sent");
    let desk_side: BTreeSet<String> = [supporter.email.clone(), expert.user.email.clone()].into();
    assert_eq!(recipients(&sent), desk_side);
    assert_eq!(recipients(&gathered), desk_side);
    for waiting in &gathered {
        let first = sent
            .iter()
            .find(|r| r["recipient"] == waiting["recipient"])
            .unwrap();
        assert_eq!(
            at(&waiting["next_attempt_at"]) - at(&first["next_attempt_at"]),
            chrono::Duration::minutes(15),
            "{waiting:#?}"
        );
    }
    let mails = smtp.wait_for(before + 2, WAIT).await;
    let now = &mails[before..];
    assert_eq!(now.len(), 2, "{now:#?}");
    let to_supporter = mails_to(now, &supporter);
    assert_eq!(to_supporter.len(), 1, "{now:#?}");
    assert_notice(
        to_supporter[0],
        &app,
        &case,
        &notice_subject(&number, "en", 1),
    );
    let to_expert = mails_to(now, &expert.user);
    assert_eq!(to_expert.len(), 1, "{now:#?}");
    assert_notice(to_expert[0], &app, &case, &notice_subject(&number, "ja", 1));
    assert!(to_expert[0].text().contains("新しいメッセージがあります"));

    // A quarter hour later the gathered mail says how many arrived.
    app.clock.advance(QUARTER_HOUR);
    let mails = smtp.wait_for(before + 4, WAIT).await;
    let later = &mails[before + 2..];
    assert_eq!(later.len(), 2, "{later:#?}");
    let to_supporter = mails_to(later, &supporter);
    assert_eq!(to_supporter.len(), 1, "{later:#?}");
    assert_notice(
        to_supporter[0],
        &app,
        &case,
        &notice_subject(&number, "en", 4),
    );
    assert!(
        to_supporter[0]
            .text()
            .contains(&format!("4 new messages arrived on case {number}")),
        "{}",
        to_supporter[0].text()
    );
    let to_expert = mails_to(later, &expert.user);
    assert_eq!(to_expert.len(), 1, "{later:#?}");
    assert_notice(to_expert[0], &app, &case, &notice_subject(&number, "ja", 4));

    // After another quiet quarter hour, the next message goes at once.
    app.clock.advance(QUARTER_HOUR);
    post(&app, &applicant.token, id, json!({"body": SECRET})).await;
    let mails = smtp.wait_for(before + 6, WAIT).await;
    let again = &mails[before + 4..];
    assert_eq!(mails_to(again, &supporter).len(), 1, "{again:#?}");
    assert_eq!(mails_to(again, &expert.user).len(), 1, "{again:#?}");
    for mail in mails_to(again, &supporter) {
        assert_notice(mail, &app, &case, &notice_subject(&number, "en", 1));
    }

    // Each notice went once; the author and the other supporter heard nothing.
    all_sent(&app, &admin).await;
    let notices = notices(&app, &admin).await;
    assert_eq!(notices.len(), 6, "{notices:#?}");
    assert!(notices.iter().all(|r| r["state"] == "sent"));
    let mails = smtp.mails();
    assert_eq!(mails.len(), before + 6);
    assert!(mails_to(&mails[before..], &applicant).is_empty());
    // (The new case's announcement names both supporters.)
    let to_bystander: Vec<_> = mails.iter().filter(|m| m.names(&bystander.email)).collect();
    assert_eq!(
        to_bystander.len(),
        1,
        "only the new case: {to_bystander:#?}"
    );
}

async fn only_the_other_side_who_may_read_a_message_hears_of_it(backend: Backend) {
    let (app, smtp) = smtp_app(backend).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    let bystander = app.staff("supporter").await;
    let applicant = app.applicant("Org").await;
    let accepted = app.expert_named(&admin, "Accepted Expert").await;
    let proposed = app.expert_named(&admin, "Proposed Expert").await;
    let case = engaged_case(&app, &admin, &supporter, &applicant, &accepted).await;
    let (id, number) = (&case["id"], number_of(&case));
    app.proposed(&supporter, id, &proposed).await;
    settled(&app, &admin).await;

    // Who is told of each message, in turn: (author, visibility, told).
    let steps: [(&User, Option<&str>, Vec<&User>); 5] = [
        (&supporter, Some("internal"), vec![&accepted.user]),
        (&supporter, Some("applicant"), vec![&applicant]),
        (&accepted.user, Some("internal"), vec![&supporter]),
        (&accepted.user, Some("applicant"), vec![&applicant]),
        (&applicant, None, vec![&supporter, &accepted.user]),
    ];
    let mut seen = notices(&app, &admin).await.len();
    for (n, (author, visibility, told)) in steps.into_iter().enumerate() {
        let mut body = json!({"body": SECRET});
        if let Some(visibility) = visibility {
            body["visibility"] = json!(visibility);
        }
        post(&app, &author.token, id, body).await;
        let rows = notices(&app, &admin).await;
        let new = &rows[seen..];
        let expected: BTreeSet<String> = told.iter().map(|u| u.email.clone()).collect();
        assert_eq!(recipients(new), expected, "message {n}: {new:#?}");
        assert!(!recipients(new).contains(&author.email), "message {n}");
        seen = rows.len();
    }
    // Internal messages never reach the applicant, nor anything reach the
    // expert who has not accepted, the supporter not in charge or the admin.
    let rows = notices(&app, &admin).await;
    let all = recipients(&rows);
    for nobody in [&proposed.user.email, &bystander.email] {
        assert!(!all.contains(nobody), "{nobody}: {rows:#?}");
    }
    assert!(!all.contains(crate::helpers::ADMIN_EMAIL));
    let to_applicant: Vec<_> = rows
        .iter()
        .filter(|r| r["recipient"] == applicant.email.as_str())
        .collect();
    assert_eq!(to_applicant.len(), 2, "the two public messages: {rows:#?}");

    // The applicant's first notice, in Japanese, with the case page.
    let sent = settled(&app, &admin).await;
    let mails = smtp.wait_for(sent, WAIT).await;
    let to_applicant: Vec<_> = mails
        .iter()
        .filter(|m| m.is_for(&applicant.email) && m.subject.contains("メッセージ"))
        .collect();
    assert_eq!(to_applicant.len(), 1, "the second waits: {to_applicant:#?}");
    assert_notice(
        to_applicant[0],
        &app,
        &case,
        &notice_subject(&number, "ja", 1),
    );
}

async fn messages_posted_at_the_same_time_still_make_one_mail_per_person(backend: Backend) {
    let (app, smtp) = smtp_app(backend).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    let applicant = app.applicant("Org").await;
    let expert = app.expert_named(&admin, "Busy Expert").await;
    let case = engaged_case(&app, &admin, &supporter, &applicant, &expert).await;
    let (id, number) = (&case["id"], number_of(&case));
    let before = smtp.wait_for(settled(&app, &admin).await, WAIT).await.len();

    // Six messages at once, from both sides of the desk and the applicant.
    let writers = [
        (&applicant, None),
        (&supporter, Some("internal")),
        (&expert.user, Some("internal")),
        (&applicant, None),
        (&supporter, Some("internal")),
        (&expert.user, Some("internal")),
    ];
    let posts = writers.iter().map(|(user, visibility)| {
        let mut body = json!({"body": SECRET});
        if let Some(visibility) = visibility {
            body["visibility"] = json!(visibility);
        }
        let app = &app;
        async move {
            app.post_message(&user.token, id, &body, None)
                .await
                .status()
        }
    });
    for status in futures_util::future::join_all(posts).await {
        assert_eq!(status, StatusCode::CREATED);
    }

    // Whatever the order, each person has at most one notice now and one
    // waiting, and the waiting ones count every message they were told of.
    settled(&app, &admin).await;
    let rows = notices(&app, &admin).await;
    for person in [&supporter, &expert.user] {
        let theirs: Vec<_> = rows
            .iter()
            .filter(|r| r["recipient"] == person.email.as_str())
            .collect();
        let now = theirs.iter().filter(|r| r["state"] == "sent").count();
        let later = theirs.iter().filter(|r| waiting(r)).count();
        assert_eq!((now, later), (1, 1), "{}: {theirs:#?}", person.email);
    }
    assert!(
        rows.iter()
            .all(|r| r["recipient"] != applicant.email.as_str())
    );
    app.clock.advance(QUARTER_HOUR);
    let sent = all_sent(&app, &admin).await;
    let mails = smtp.wait_for(sent, WAIT).await;
    assert_eq!(mails.len(), before + 4, "{:#?}", &mails[before..]);
    // The supporter is told of 2 applicant + 2 expert messages, the expert
    // of 2 applicant + 2 supporter messages, in two mails each. (Which mail
    // counts how many depends on the order the writes committed: a message
    // that commits while the first mail still waits for the worker joins
    // it.)
    let later = &mails[before..];
    for (person, locale) in [(&supporter, "en"), (&expert.user, "ja")] {
        let theirs = mails_to(later, person);
        assert_eq!(theirs.len(), 2, "{theirs:#?}");
        let counted: usize = theirs
            .iter()
            .map(|m| {
                (1..=4)
                    .find(|n| m.subject == notice_subject(&number, locale, *n))
                    .unwrap_or_else(|| panic!("a notice: {}", m.subject))
            })
            .sum();
        assert_eq!(counted, 4, "{theirs:#?}");
    }
}

async fn staff_must_say_who_reads_a_message_and_a_refused_one_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    let applicant = app.applicant("Org").await;
    let stranger = app.applicant("Other Org").await;
    let expert = app.expert_named(&admin, "Silent Expert").await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    app.engaged(&supporter, id, &expert).await;
    let case = app.case(&supporter.token, id).await;
    let events = app.event_items(&supporter.token, id).await;
    let queued = outbox(&app, &admin).await.len();

    // Desk staff and experts must choose; the problem names the field and
    // the values it takes.
    for writer in [&supporter, &expert.user] {
        let refused = problem(
            app.post_message(&writer.token, id, &json!({"body": SECRET}), None)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(refused["type"], "/problems/validation");
        assert_eq!(error_fields(&refused), ["visibility"]);
        let message = refused["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("required"), "{message}");
        assert!(
            message.contains("internal") && message.contains("applicant"),
            "{message}"
        );
    }
    // With other problems of the body, every one at once.
    let refused = problem(
        app.post_message(&supporter.token, id, &json!({"body": " "}), None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["body", "visibility"]);
    // An unknown value names the field too.
    let refused = problem(
        app.post_message(
            &supporter.token,
            id,
            &json!({"body": SECRET, "visibility": "public"}),
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), ["visibility"]);
    // Someone else's case is not found, visibility or not, and says nothing
    // of the case.
    for body in [
        json!({"body": SECRET}),
        json!({"body": SECRET, "visibility": "applicant"}),
    ] {
        let refused = problem(
            app.post_message(&stranger.token, id, &body, None).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert!(
            !refused.to_string().contains(&number_of(&case)),
            "{refused}"
        );
    }
    let unknown = json!(i64::MAX);
    problem(
        app.post_message(&supporter.token, &unknown, &json!({"body": SECRET}), None)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Nothing was stored: no message, no event, no new version, no mail.
    assert!(app.message_items(&supporter.token, id).await.is_empty());
    assert_eq!(app.event_items(&supporter.token, id).await, events);
    assert_eq!(
        app.case(&supporter.token, id).await["version"],
        case["version"]
    );
    assert_eq!(outbox(&app, &admin).await.len(), queued);

    // Applicants need not say: their messages are always `applicant`.
    let posted = post(&app, &applicant.token, id, json!({"body": "質問です"})).await;
    assert_eq!(posted["visibility"], "applicant");
    let chosen = post(
        &app,
        &supporter.token,
        id,
        json!({"body": "回答します", "visibility": "applicant"}),
    )
    .await;
    assert_eq!(chosen["visibility"], "applicant");
}

/// The pages mails may link to (docs/mail.md, "Links"): `(path prefix,
/// whether an id or token follows)`.
fn is_page(path: &str) -> bool {
    let hex64 = |s: &str| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit());
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    match path {
        "/"
        | "/login"
        | "/password/forgot"
        | "/cases"
        | "/queue"
        | "/assignments"
        | "/terms/confidentiality" => true,
        _ => {
            path.strip_prefix("/cases/").is_some_and(digits)
                || path.strip_prefix("/organizations/").is_some_and(digits)
                || path
                    .strip_prefix("/register?invitation=")
                    .is_some_and(hex64)
                || path
                    .strip_prefix("/password/reset?token=")
                    .is_some_and(hex64)
        }
    }
}

/// The `href` targets of an HTML document, with `&#x2f;` decoded.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| {
            href.replace("&#x2f;", "/")
                .replace("&#47;", "/")
                .replace("&#x3d;", "=")
                .replace("&amp;", "&")
        })
        .collect()
}

async fn every_mail_links_to_a_page_and_never_to_the_api(backend: Backend) {
    let (app, smtp) = smtp_app(backend).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    let applicant = app.applicant("Org").await;
    let expert = app.expert_named(&admin, "Linked Expert").await;

    // A case through every step that mails someone.
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];
    app.claimed(&supporter.token, id).await;
    app.moved(
        &supporter.token,
        id,
        json!({"status": "awaiting_info", "reason": "?"}),
    )
    .await;
    post(&app, &applicant.token, id, json!({"body": SECRET})).await;
    let mut triage = triage_body("expert");
    triage["categories"] = json!(["regulatory"]);
    json_body(
        app.triage(&supporter.token, id, &triage, None).await,
        StatusCode::OK,
    )
    .await;
    app.engaged(&supporter, id, &expert).await;
    json_body(
        app.create_meeting(&supporter.token, id, &meeting_body(&expert.id))
            .await,
        StatusCode::CREATED,
    )
    .await;
    post(
        &app,
        &supporter.token,
        id,
        json!({"body": SECRET, "visibility": "applicant"}),
    )
    .await;
    app.moved(
        &supporter.token,
        id,
        json!({"status": "closed", "outcome": "resolved", "reason": "done"}),
    )
    .await;
    json_body(
        app.post(
            &format!(
                "/api/v1/organizations/{}/invitations",
                applicant.organization_id
            ),
            Some(&applicant.token),
            &json!({"email": format!("mate-{}@startup.example", random_suffix())}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    let sent = settled(&app, &admin).await;
    let kinds: BTreeSet<String> = outbox(&app, &admin)
        .await
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "case_submitted_applicant",
        "case_submitted_desk",
        "info_requested",
        "applicant_replied",
        "expert_assigned",
        "assignment_accepted",
        "meeting_scheduled",
        "message_posted",
        "case_closed",
        "invitation",
    ] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }
    let mails = smtp.wait_for(sent, WAIT).await;
    for mail in &mails {
        let context = format!("{}: {}", mail.subject, mail.text());
        assert!(!mail.text().contains("/api/"), "{context}");
        let hrefs = links(mail.html());
        assert_eq!(hrefs.len(), 1, "one link a mail: {context}");
        let path = hrefs[0]
            .strip_prefix(&app.address)
            .unwrap_or_else(|| panic!("a link to medesk's pages: {context}"));
        assert!(is_page(path), "{path} is an agreed page: {context}");
        assert!(mail.text().contains(&hrefs[0]), "{context}");
    }
    // The expert's proposal leads to their assignments, the rest of the
    // case's mails to the case page.
    let page = format!("{}/cases/{id}", app.address);
    for mail in &mails {
        let href = &links(mail.html())[0];
        if mail.subject.contains("相談への参加のお願い") {
            assert_eq!(href, &format!("{}/assignments", app.address));
        } else if mail.subject.starts_with(&format!("[{}]", number_of(&case))) {
            assert_eq!(href, &page, "{}", mail.subject);
        }
    }
    // The meeting's time is on the desk's clock, in each reader's language.
    let meeting: Vec<_> = mails
        .iter()
        .filter(|m| m.subject.contains("Meeting") || m.subject.contains("面談"))
        .collect();
    assert_eq!(meeting.len(), 2, "applicant and expert");
    for mail in meeting {
        assert!(
            mail.subject.ends_with("2037年12月3日(木) 10:00 (日本時間)")
                || mail.subject.ends_with("Thu 3 Dec 2037, 10:00 (Japan time)"),
            "{}",
            mail.subject
        );
    }
}

/// `at` as the desk shows it in `locale`, written out independently of
/// medesk's own formatting.
fn desk_time(at: DateTime<FixedOffset>, locale: &str) -> String {
    let japan = at.with_timezone(&FixedOffset::east_opt(9 * 3600).unwrap());
    match locale {
        "ja" => {
            let weekday = ["月", "火", "水", "木", "金", "土", "日"]
                [japan.weekday().num_days_from_monday() as usize];
            format!(
                "{}年{}月{}日({weekday}) {} (日本時間)",
                japan.year(),
                japan.month(),
                japan.day(),
                japan.format("%H:%M")
            )
        }
        _ => japan.format("%a %-d %b %Y, %H:%M (Japan time)").to_string(),
    }
}

async fn an_invitation_links_to_registration_and_shows_its_expiry_in_the_inviters_language(
    backend: Backend,
) {
    let (app, smtp) = smtp_app(backend).await;
    for (n, locale) in ["ja", "en"].into_iter().enumerate() {
        let owner_email = format!("owner-{}@startup.example", random_suffix());
        let owner = json_body(
            app.register(&json!({
                "email": owner_email, "password": PASSWORD, "name": "Owner",
                "organization": format!("Startup {locale}"), "locale": locale,
            }))
            .await,
            StatusCode::CREATED,
        )
        .await;
        let token = app.tokens(&owner_email, PASSWORD).await.0;
        let invited = format!("mate-{}@startup.example", random_suffix());
        let invitation = json_body(
            app.post(
                &format!(
                    "/api/v1/organizations/{}/invitations",
                    owner["organization_id"]
                ),
                Some(&token),
                &json!({ "email": invited }),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let expires_at = at(&invitation["expires_at"]);

        let mails = smtp.wait_for(n + 1, WAIT).await;
        let mail = mails
            .iter()
            .find(|m| m.is_for(&invited))
            .expect("the invitation");
        let text = mail.text();
        let expiry = desk_time(expires_at, locale);
        assert!(text.contains(&expiry), "{expiry} in {text}");
        assert!(!text.contains(invitation["expires_at"].as_str().unwrap()));
        let opening = match locale {
            "ja" => "次のリンクを開いて登録してください",
            _ => "Open this link to register",
        };
        assert!(text.contains(opening), "{text}");

        // The link opens the registration page with the token; the token is
        // there for API clients too, and it registers.
        let prefix = format!("{}/register?invitation=", app.address);
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("a registration link in {text}"));
        let invitation_token = &line[prefix.len()..];
        assert_eq!(invitation_token.len(), 64, "{line}");
        assert!(text.lines().any(|l| l == invitation_token), "{text}");
        assert_eq!(links(mail.html()), [line]);
        let joined = json_body(
            app.register(&json!({
                "email": invited, "password": PASSWORD, "name": "Mate", "locale": locale,
                "invitation_token": invitation_token,
            }))
            .await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(joined["organization_id"], owner["organization_id"]);
    }
}
