//! Meetings as issue 16 asks for them: scheduling needs a future start (and
//! mails an invitation, with the video-call link in the text and the
//! .ics), a meeting that took place is recorded without any mail, and a
//! bad time says what is wrong with it.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::expert_helpers::{Expert, meeting_body};
use crate::helpers::{
    Backend, TestApp, User, case_path, error_fields, items, json_body, kinds, problem,
};
use crate::smtp::{ReceivedMail, SmtpServer};

on_both_backends!(
    a_start_in_the_past_is_refused_and_mails_nobody,
    a_meeting_that_took_place_is_recorded_listed_and_mails_nobody,
    recording_is_for_the_desk_and_the_meetings_expert_only,
    the_video_link_is_in_the_invitation_and_its_calendar_file,
    a_video_link_must_be_https_and_at_most_2000_characters,
    a_time_that_cannot_be_read_says_what_is_wrong,
);

const WAIT: Duration = Duration::from_secs(30);
const VIDEO: &str = "https://meet.example.com/abc-defg-hij?pwd=Xy";

/// A desk whose mails go to a test SMTP server, a case in matching and an
/// expert who accepted it.
struct Scene {
    app: TestApp,
    smtp: SmtpServer,
    admin: String,
    supporter: User,
    applicant: User,
    expert: Expert,
    case: Value,
}

async fn scene(backend: Backend) -> Scene {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(backend, &[("MEDESK_SMTP_URL", url.as_str())]).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let expert = app.expert_named(&admin, "Meeting Expert").await;
    app.engaged(&supporter, &case["id"], &expert).await;
    Scene {
        app,
        smtp,
        admin,
        supporter,
        applicant,
        expert,
        case,
    }
}

impl Scene {
    fn id(&self) -> &Value {
        &self.case["id"]
    }

    async fn record(&self, token: &str, body: &Value) -> Response {
        self.app
            .post(
                &case_path(self.id(), "/meetings/records"),
                Some(token),
                body,
            )
            .await
    }

    async fn schedule(&self, token: &str, body: &Value) -> Response {
        self.app.create_meeting(token, self.id(), body).await
    }

    async fn listed(&self) -> Vec<Value> {
        items(
            json_body(
                self.app.meetings(&self.supporter.token, self.id()).await,
                StatusCode::OK,
            )
            .await,
        )
    }

    /// The kinds of every mail in the outbox (queued or sent).
    async fn outbox_kinds(&self) -> Vec<String> {
        items(
            json_body(
                self.app
                    .get("/api/v1/admin/outbox?limit=500", Some(&self.admin))
                    .await,
                StatusCode::OK,
            )
            .await,
        )
        .iter()
        .map(|row| row["kind"].as_str().expect("kind").to_owned())
        .collect()
    }

    /// The meeting mails the SMTP server received once `count` mails in all
    /// arrived.
    async fn meeting_mails(&self, count: usize) -> Vec<ReceivedMail> {
        let number = self.case["number"].as_str().expect("number");
        self.smtp
            .wait_for(count, WAIT)
            .await
            .into_iter()
            .filter(|m| m.subject.starts_with(&format!("[{number}]")))
            .filter(|m| !m.attachments.is_empty())
            .collect()
    }
}

/// `meeting_body` with `change` applied.
fn meeting(expert: &Expert, change: Value) -> Value {
    let mut body = meeting_body(&expert.id);
    for (key, value) in change.as_object().expect("an object") {
        body[key] = value.clone();
    }
    body
}

/// A body for the record call: 60 minutes online on 2026-11-20 at 10:00
/// JST, with `change` applied.
fn record_body(expert: &Expert, change: Value) -> Value {
    let mut body = meeting(expert, json!({"starts_at": "2026-11-20T10:00:00+09:00"}));
    for (key, value) in change.as_object().expect("an object") {
        body[key] = value.clone();
    }
    body
}

/// The one message of a one-field 422 for `field`.
async fn refused_field(response: Response, field: &str) -> String {
    let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&refused), vec![field], "{refused}");
    refused["errors"][0]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

/// The lines of an iCalendar document with folded lines joined (RFC 5545 §3.1).
fn unfolded(ics: &str) -> Vec<String> {
    ics.replace("\r\n", "\n")
        .replace("\n ", "")
        .replace("\n\t", "")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The values of property `name` (`NAME:value` or `NAME;params:value`),
/// with iCalendar's text escapes undone.
fn values(lines: &[String], name: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|line| {
            line.split([':', ';'])
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .filter_map(|line| line.split_once(':').map(|(_, v)| v))
        .map(|v| {
            v.replace("\\,", ",")
                .replace("\\;", ";")
                .replace("\\n", "\n")
                .replace("\\\\", "\\")
        })
        .collect()
}

async fn a_start_in_the_past_is_refused_and_mails_nobody(backend: Backend) {
    let s = scene(backend).await;
    let mails_before = s.outbox_kinds().await;

    for past in ["2020-01-06T10:00:00+09:00", "2026-11-30T23:59:59Z"] {
        let message = refused_field(
            s.schedule(
                &s.supporter.token,
                &meeting(&s.expert, json!({ "starts_at": past })),
            )
            .await,
            "starts_at",
        )
        .await;
        assert!(message.starts_with("must be in the future"), "{message}");
    }
    // Nothing stored, nothing queued, nothing in the timeline.
    assert_eq!(s.listed().await, Vec::<Value>::new());
    assert_eq!(s.outbox_kinds().await, mails_before);
    assert!(
        !kinds(&s.app.event_items(&s.supporter.token, s.id()).await)
            .contains(&"meeting_scheduled".to_owned())
    );
}

async fn a_meeting_that_took_place_is_recorded_listed_and_mails_nobody(backend: Backend) {
    let s = scene(backend).await;
    let mails_before = s.outbox_kinds().await;

    let recorded = json_body(
        s.record(
            &s.expert.user.token,
            &record_body(
                &s.expert,
                json!({"notes": "クラス分類について相談", "mode": "onsite", "duration_minutes": 45}),
            ),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(recorded["recorded"], true);
    assert_eq!(recorded["notes"], "クラス分類について相談");
    assert_eq!(recorded["mode"], "onsite");
    assert_eq!(recorded["duration_minutes"], 45);
    assert_eq!(recorded["expert_id"], s.expert.id);
    assert!(recorded["video_url"].is_null());
    assert_eq!(s.outbox_kinds().await, mails_before, "no invitation");

    // A start in the future is scheduled, not recorded.
    let message = refused_field(
        s.record(
            &s.supporter.token,
            &record_body(&s.expert, json!({"starts_at": "2037-12-03T10:00:00+09:00"})),
        )
        .await,
        "starts_at",
    )
    .await;
    assert!(message.starts_with("must be in the past"), "{message}");

    // Scheduled after it: listed in time order, each marked.
    let scheduled = json_body(
        s.schedule(&s.supporter.token, &meeting_body(&s.expert.id))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(scheduled["recorded"], false);
    let listed = s.listed().await;
    let marks: Vec<(Value, Value)> = listed
        .iter()
        .map(|m| (m["id"].clone(), m["recorded"].clone()))
        .collect();
    assert_eq!(
        marks,
        vec![
            (recorded["id"].clone(), json!(true)),
            (scheduled["id"].clone(), json!(false))
        ]
    );
    let events = kinds(&s.app.event_items(&s.supporter.token, s.id()).await);
    assert!(
        events.contains(&"meeting_recorded".to_owned()),
        "{events:?}"
    );

    // Only the scheduled meeting was mailed: two invitations, both for 2037.
    let mut after = s.outbox_kinds().await;
    for kind in &mails_before {
        let at = after.iter().position(|k| k == kind).expect("kept");
        after.remove(at);
    }
    assert_eq!(after, ["meeting_scheduled", "meeting_scheduled"]);
    let total = mails_before.len() + 2;
    let invitations = s.meeting_mails(total).await;
    assert_eq!(invitations.len(), 2, "{invitations:#?}");
    for mail in &invitations {
        let ics = unfolded(&mail.attachments[0].content);
        assert_eq!(values(&ics, "DTSTART"), ["20371203T010000Z"]);
    }
}

async fn recording_is_for_the_desk_and_the_meetings_expert_only(backend: Backend) {
    let s = scene(backend).await;
    let outsider = s.app.expert_named(&s.admin, "Outsider").await;
    let colleague = s.app.expert_named(&s.admin, "Colleague").await;
    s.app.engaged(&s.supporter, s.id(), &colleague).await;
    let mails_before = s.outbox_kinds().await;

    let body = record_body(&s.expert, json!({}));
    problem(
        s.record(&s.applicant.token, &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // Another case's expert learns nothing about this case.
    let hidden = problem(
        s.record(&outsider.user.token, &record_body(&outsider, json!({})))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(!hidden.to_string().contains("Meeting Expert"), "{hidden}");
    problem(
        s.record(&colleague.user.token, &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // An expert who never engaged on the case is not recorded by the desk.
    problem(
        s.record(&s.supporter.token, &record_body(&outsider, json!({})))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(s.listed().await, Vec::<Value>::new());
    assert_eq!(s.outbox_kinds().await, mails_before);
}

async fn the_video_link_is_in_the_invitation_and_its_calendar_file(backend: Backend) {
    let s = scene(backend).await;
    let before = s.outbox_kinds().await.len();
    let created = json_body(
        s.schedule(
            &s.supporter.token,
            &meeting(&s.expert, json!({ "video_url": VIDEO })),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["video_url"], VIDEO);
    assert_eq!(s.listed().await[0]["video_url"], VIDEO);

    let invitations = s.meeting_mails(before + 2).await;
    assert_eq!(invitations.len(), 2, "{invitations:#?}");
    let to_applicant = invitations
        .iter()
        .find(|m| m.is_for(&s.applicant.email))
        .expect("the applicant's invitation");
    // The applicant's locale is ja.
    assert!(
        to_applicant
            .text()
            .contains(&format!("ビデオ通話: {VIDEO}")),
        "{}",
        to_applicant.text()
    );
    for mail in &invitations {
        assert!(mail.text().contains(VIDEO), "{}", mail.text());
        let ics = unfolded(&mail.attachments[0].content);
        assert_eq!(values(&ics, "URL"), [VIDEO], "{ics:#?}");
        assert_eq!(values(&ics, "LOCATION"), [VIDEO], "{ics:#?}");
        let description = values(&ics, "DESCRIPTION");
        assert_eq!(description.len(), 1, "{ics:#?}");
        assert!(description[0].contains(VIDEO), "{ics:#?}");
    }

    // Without a link, neither the text nor the calendar file has one.
    let before = s.smtp.mails().len();
    json_body(
        s.schedule(&s.supporter.token, &meeting_body(&s.expert.id))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let all = s.smtp.wait_for(before + 2, WAIT).await;
    for mail in &all[before..] {
        assert!(!mail.text().contains("ビデオ通話"), "{}", mail.text());
        assert!(!mail.text().contains("Video call"), "{}", mail.text());
        let ics = unfolded(&mail.attachments[0].content);
        assert!(values(&ics, "URL").is_empty(), "{ics:#?}");
        assert_eq!(values(&ics, "LOCATION"), ["online"], "{ics:#?}");
    }
}

async fn a_video_link_must_be_https_and_at_most_2000_characters(backend: Backend) {
    let s = scene(backend).await;
    let mails_before = s.outbox_kinds().await;
    let too_long = format!("https://meet.example.com/{}", "a".repeat(2000));
    for (url, says) in [
        (
            "http://meet.example.com/x",
            "must be an https:// link (not http:)",
        ),
        (
            "javascript:alert(1)",
            "must be an https:// link (not javascript:)",
        ),
        ("meet.example.com/x", "must be an https:// link"),
        (
            "https://meet.example.com/a b",
            "must not contain spaces or control characters",
        ),
        (too_long.as_str(), "must be at most 2000 characters"),
    ] {
        let message = refused_field(
            s.schedule(
                &s.supporter.token,
                &meeting(&s.expert, json!({ "video_url": url })),
            )
            .await,
            "video_url",
        )
        .await;
        assert!(message.starts_with(says), "{url}: {message}");
    }
    assert_eq!(s.listed().await, Vec::<Value>::new());
    assert_eq!(s.outbox_kinds().await, mails_before);
}

async fn a_time_that_cannot_be_read_says_what_is_wrong(backend: Backend) {
    let s = scene(backend).await;
    let mails_before = s.outbox_kinds().await;
    for (starts_at, says) in [
        // The example: February 2026 has 28 days.
        (
            "2026-02-30T10:00+09:00",
            "names a day that does not exist: February 2026 has 28 days (2026-02-30)",
        ),
        (
            "2037-12-03T10:00:00",
            "has no offset: add Z for UTC or the offset from UTC, e.g. 2037-12-03T10:00:00+09:00",
        ),
        (
            "2037-13-01T10:00:00+09:00",
            "names month 13, which does not exist (months are 01 to 12)",
        ),
        (
            "2037-12-03T10:00+09:00",
            "has no seconds: write 10:00:00, not 10:00",
        ),
        (
            "2037-12-03T25:00:00+09:00",
            "names hour 25, which does not exist (hours are 00 to 23)",
        ),
        (
            "next tuesday",
            "must be a time in RFC 3339 with an offset, e.g. 2026-12-03T10:00:00+09:00",
        ),
    ] {
        let body = meeting(&s.expert, json!({ "starts_at": starts_at }));
        let scheduled =
            refused_field(s.schedule(&s.supporter.token, &body).await, "starts_at").await;
        assert_eq!(scheduled, says, "{starts_at}");
        let recorded = refused_field(s.record(&s.supporter.token, &body).await, "starts_at").await;
        assert_eq!(recorded, says, "{starts_at}");
    }
    assert_eq!(s.listed().await, Vec::<Value>::new());
    assert_eq!(s.outbox_kinds().await, mails_before);
}
