//! Mail, as PRODUCT.md's "Notifications" and issue 6 pin it: who gets which
//! mail in which language, over SMTP to a real server on 127.0.0.1 (see
//! `smtp.rs`); the outbox surviving a mail server that is down and a
//! restart and a server that stops answering with its connections open;
//! the admin outbox API; `.eml` files without SMTP; the triage reminder.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::expert_helpers::{Expert, expert_profile, meeting_body};
use crate::helpers::{
    ADMIN_EMAIL, Backend, PASSWORD, TestApp, User, intake, items, json_body, problem,
    random_suffix, triage_body,
};
use crate::mailbox::wait_for_mail;
use crate::smtp::{ReceivedMail, ReservedPort, SmtpServer, Stall};

on_both_backends!(
    // who gets what, in which language
    a_new_case_is_acknowledged_and_announced_in_each_recipients_language,
    a_title_with_a_line_break_keeps_the_subject_whole_and_the_body_intact,
    information_requests_replies_and_closing_reach_the_right_person,
    expert_proposals_carry_no_case_text_and_answers_reach_the_assigning_supporter,
    a_japanese_proposal_names_the_experts_role_in_japanese,
    a_meeting_mails_applicant_and_expert_an_icalendar_invitation,
    // delivery
    with_the_smtp_server_down_intake_succeeds_and_every_mail_arrives_later,
    after_a_restart_nothing_is_sent_twice,
    a_refused_recipient_holds_up_no_other_mail_and_admins_retry_failed_mails,
    supporters_of_one_language_share_one_mail_and_a_refused_one_is_split_off,
    a_server_that_never_greets_holds_up_the_next_mail_for_one_bound_only,
    a_message_the_server_never_confirms_is_sent_again_and_arrives_once,
    a_delivery_the_server_hangs_on_holds_up_no_other_mail,
    a_server_that_vanishes_with_connections_open_gets_the_mail_when_one_returns,
    without_smtp_mails_are_written_as_eml_files,
    deleting_an_outbox_row_finds_its_message_notices_through_an_index,
    // triage reminder
    an_untriaged_case_reminds_every_supporter_exactly_once,
    triaged_cases_are_never_reminded_and_a_restart_reminds_no_one_again,
);

const FROM: &str = "medesk@localhost";
pub(crate) const WAIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------ helpers

/// An app delivering over SMTP to a fresh test server, with `extra` settings.
pub(crate) async fn smtp_app(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let mut vars = vec![("MEDESK_SMTP_URL", url.as_str())];
    vars.extend_from_slice(extra);
    let app = TestApp::spawn_with(backend, &vars).await;
    (app, smtp)
}

/// Registers and signs in an applicant of a new organisation with `locale`.
pub(crate) async fn applicant_in(
    app: &TestApp,
    locale: &str,
    name: &str,
    organization: &str,
) -> User {
    applicant_at(app, locale, name, organization, &person_email("founder")).await
}

/// Registers and signs in an applicant with the e-mail address `email`.
async fn applicant_at(
    app: &TestApp,
    locale: &str,
    name: &str,
    organization: &str,
    email: &str,
) -> User {
    let user = json_body(
        app.register(&json!({
            "email": email, "password": PASSWORD, "name": name,
            "organization": organization, "locale": locale,
        }))
        .await,
        StatusCode::CREATED,
    )
    .await;
    User {
        email: email.to_owned(),
        token: app.tokens(email, PASSWORD).await.0,
        id: user["id"].clone(),
        organization_id: user["organization_id"].clone(),
    }
}

/// Creates (as the admin) and signs in desk staff of `role` with `locale`.
pub(crate) async fn staff_in(app: &TestApp, admin: &str, role: &str, locale: &str) -> User {
    staff_at(app, admin, role, locale, person_email(role)).await
}

/// Creates (as the admin) and signs in desk staff with the address `email`.
async fn staff_at(app: &TestApp, admin: &str, role: &str, locale: &str, email: String) -> User {
    let user = json_body(
        app.create_user(
            admin,
            &json!({"email": email, "password": PASSWORD, "name": format!("{role} {locale}"),
                    "role": role, "locale": locale}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    User {
        token: app.tokens(&email, PASSWORD).await.0,
        email,
        id: user["id"].clone(),
        organization_id: Value::Null,
    }
}

fn person_email(prefix: &str) -> String {
    format!("{prefix}-{}@mail.example", random_suffix())
}

/// Files `intake()` with `title`, asserting 201; returns the case.
async fn case_titled(app: &TestApp, applicant: &User, title: &str) -> Value {
    let mut body = intake();
    body["title"] = json!(title);
    app.new_case_with(&applicant.token, &body).await
}

fn case_number(case: &Value) -> String {
    case["number"].as_str().expect("a case number").to_owned()
}

/// The outbox as the admin lists it; `query` is appended to `limit=500`.
async fn outbox(app: &TestApp, admin: &str, query: &str) -> Vec<Value> {
    items(
        json_body(
            app.get(
                &format!("/api/v1/admin/outbox?limit=500{query}"),
                Some(admin),
            )
            .await,
            StatusCode::OK,
        )
        .await,
    )
}

/// Polls the outbox until `done` holds for its rows, for up to `timeout`.
async fn outbox_until(
    app: &TestApp,
    admin: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let rows = outbox(app, admin, "").await;
        if done(&rows) {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox never showed {what} within {timeout:?}: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until both mails of `case` (acknowledgement and one supporter's)
/// failed an attempt and wait for another.
async fn both_mails_failed(app: &TestApp, admin: &str, case: &Value, timeout: Duration) {
    outbox_until(
        app,
        admin,
        timeout,
        "both mails of the case failing",
        |rows| {
            let of_case: Vec<_> = rows.iter().filter(|r| r["case_id"] == case["id"]).collect();
            of_case.len() == 2
                && of_case.iter().all(|r| {
                    r["state"] == "pending"
                        && r["attempts"].as_i64().unwrap_or(0) >= 1
                        && r["last_error"].is_string()
                })
        },
    )
    .await;
}

/// Waits until every queued mail is sent; returns the outbox.
async fn settled(app: &TestApp, admin: &str) -> Vec<Value> {
    outbox_until(app, admin, WAIT, "every mail sent", |rows| {
        !rows.is_empty() && rows.iter().all(|r| r["state"] == "sent")
    })
    .await
}

/// The mails whose envelope and To header name `address`.
fn mails_to<'a>(mails: &'a [ReceivedMail], address: &str) -> Vec<&'a ReceivedMail> {
    mails.iter().filter(|m| m.is_for(address)).collect()
}

/// The one mail to `address` whose subject starts with `[number]`.
fn the_mail<'a>(mails: &'a [ReceivedMail], address: &str, number: &str) -> &'a ReceivedMail {
    let found: Vec<_> = mails_to(mails, address)
        .into_iter()
        .filter(|m| m.subject.starts_with(&format!("[{number}]")))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one mail on {number} to {address}; all mails: {:#?}",
        subjects(mails)
    );
    found[0]
}

pub(crate) fn subjects(mails: &[ReceivedMail]) -> Vec<String> {
    mails
        .iter()
        .map(|m| format!("{:?} -> {}", m.envelope_to, m.subject))
        .collect()
}

/// Every mail: sent by MEDESK_MAIL_FROM, with a Message-ID, plain text and
/// an HTML alternative of it, the case number in the subject and the text.
fn assert_well_formed(mail: &ReceivedMail, number: &str) {
    let context = format!("{mail:#?}");
    assert_eq!(mail.envelope_from, FROM, "{context}");
    assert_eq!(mail.from, [FROM], "{context}");
    assert!(!mail.message_id.is_empty(), "{context}");
    assert!(
        mail.alternative,
        "text/plain + text/html alternative: {context}"
    );
    assert!(
        mail.subject.starts_with(&format!("[{number}] ")),
        "{context}"
    );
    assert!(mail.text().contains(number), "{context}");
    assert!(mail.html().contains(number), "{context}");
}

/// Whether `text` holds hiragana or katakana (Japanese, not just kanji).
fn is_japanese(text: &str) -> bool {
    text.chars().any(|c| ('\u{3041}'..='\u{30ff}').contains(&c))
}

/// The lines of an iCalendar document with folded lines joined (RFC 5545 §3.1).
pub(crate) fn unfolded(ics: &str) -> Vec<String> {
    ics.replace("\r\n", "\n")
        .replace("\n ", "")
        .replace("\n\t", "")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The lines of property `name` (`NAME:…` or `NAME;params:…`).
pub(crate) fn property<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|line| {
            line.split([':', ';'])
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .map(String::as_str)
        .collect()
}

// ------------------------------------------------- who gets what, and how

async fn a_new_case_is_acknowledged_and_announced_in_each_recipients_language(backend: Backend) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let ja_desk = staff_in(&app, &admin, "supporter", "ja").await;
    let en_desk = staff_in(&app, &admin, "supporter", "en").await;
    let ja = applicant_in(&app, "ja", "山田 花子", "株式会社メドテック").await;
    let en = applicant_in(&app, "en", "Jane Doe", "MedTech Inc.").await;

    let markup = r#"<script>alert("x")</script> & <b>bold</b>"#;
    let ja_case = case_titled(&app, &ja, &format!("承認申請 {markup}")).await;
    let en_case = case_titled(&app, &en, "Approval of a class II device").await;
    let (ja_number, en_number) = (case_number(&ja_case), case_number(&en_case));

    // Two acknowledgements and two announcements per supporter, nothing else.
    let rows = settled(&app, &admin).await;
    assert_eq!(rows.len(), 6, "{rows:#?}");
    let mails = smtp.wait_for(6, WAIT).await;
    assert_eq!(mails.len(), 6, "{:#?}", subjects(&mails));
    assert!(
        mails_to(&mails, ADMIN_EMAIL).is_empty(),
        "admins get no desk mail"
    );

    // The acknowledgement, in the applicant's language, with the number.
    let ack = the_mail(&mails, &ja.email, &ja_number);
    assert_well_formed(ack, &ja_number);
    assert_eq!(ack.subject, format!("[{ja_number}] ご相談を受け付けました"));
    assert!(ack.text().contains("山田 花子 様"), "{}", ack.text());
    assert!(
        ack.text().contains(&format!("受付番号は {ja_number} です")),
        "{}",
        ack.text()
    );
    assert!(ack.html().contains(r#"<html lang="ja">"#), "{}", ack.html());
    let ack = the_mail(&mails, &en.email, &en_number);
    assert_well_formed(ack, &en_number);
    assert_eq!(
        ack.subject,
        format!("[{en_number}] We received your consultation request")
    );
    assert!(ack.text().starts_with("Dear Jane Doe,"), "{}", ack.text());
    assert!(
        ack.text()
            .contains(&format!("Its reference number is {en_number}.")),
        "{}",
        ack.text()
    );
    assert!(!is_japanese(ack.text()), "{}", ack.text());
    assert!(ack.html().contains(r#"<html lang="en">"#), "{}", ack.html());

    // The applicant's markup: verbatim in the plain text (the supporters'
    // mails carry the title in the subject), escaped in HTML.
    let ack = the_mail(&mails, &ja.email, &ja_number);
    assert!(ack.text().contains(markup), "{}", ack.text());
    for mail in [
        ack,
        the_mail(&mails, &ja_desk.email, &ja_number),
        the_mail(&mails, &en_desk.email, &ja_number),
    ] {
        assert!(
            mail.subject.contains(markup) || mail.text().contains(markup),
            "{mail:#?}"
        );
        let html = mail.html();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert("), "{html}");
        assert!(html.contains("&amp; &lt;b&gt;bold&lt;"), "{html}");
    }

    // Every supporter hears of both cases, each in their own language.
    for number in [&ja_number, &en_number] {
        let mail = the_mail(&mails, &ja_desk.email, number);
        assert_well_formed(mail, number);
        assert!(
            mail.subject
                .starts_with(&format!("[{number}] 新しい相談: ")),
            "{}",
            mail.subject
        );
        assert!(
            mail.text().starts_with("新しい相談が届きました。"),
            "{}",
            mail.text()
        );
        assert!(mail.text().contains(&format!("受付番号: {number}")));
        let mail = the_mail(&mails, &en_desk.email, number);
        assert_well_formed(mail, number);
        assert!(
            mail.subject.starts_with(&format!("[{number}] New case: ")),
            "{}",
            mail.subject
        );
        assert!(
            mail.text()
                .starts_with("A new consultation request arrived."),
            "{}",
            mail.text()
        );
        assert!(mail.text().contains(&format!("Number: {number}")));
    }
    let en_about_en = the_mail(&mails, &en_desk.email, &en_number);
    assert!(
        en_about_en
            .subject
            .ends_with("Approval of a class II device")
    );
    assert!(
        !is_japanese(&en_about_en.subject),
        "{}",
        en_about_en.subject
    );

    // Message-IDs are unique and are the outbox rows' ones.
    let received: HashSet<String> = mails.iter().map(|m| m.message_id.clone()).collect();
    let queued: HashSet<String> = rows
        .iter()
        .map(|r| bare(r["message_id"].as_str().unwrap()))
        .collect();
    assert_eq!(received.len(), 6);
    assert_eq!(received, queued);
}

/// A Message-ID without its angle brackets.
fn bare(message_id: &str) -> String {
    message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

async fn a_title_with_a_line_break_keeps_the_subject_whole_and_the_body_intact(backend: Backend) {
    // Titles are free text (1–200 chars) and may hold a line break. The
    // subject is one header line; the body must still be the template's,
    // and what the applicant typed must not turn into a link in a mail
    // the desk receives from medesk.
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let desk = staff_in(&app, &admin, "supporter", "en").await;
    let applicant = applicant_in(&app, "en", "Jane Doe", "MedTech Inc.").await;
    let title = "Approval strategy\nhttp://evil.example/login";
    let case = case_titled(&app, &applicant, title).await;
    let number = case_number(&case);
    assert_eq!(case["title"], title, "the title is stored as typed");

    let mails = smtp.wait_for(2, WAIT).await;
    let mail = the_mail(&mails, &desk.email, &number);
    let mut wrong = Vec::new();
    if !(mail.subject.contains("Approval strategy") && mail.subject.contains("evil.example/login"))
    {
        wrong.push(format!(
            "the subject lost the title's second line: {:?}",
            mail.subject
        ));
    }
    if !mail
        .text()
        .starts_with("A new consultation request arrived.")
    {
        wrong.push(format!(
            "the body starts with the rest of the title: {:?}",
            mail.text()
        ));
    }
    if links(mail.html())
        .iter()
        .any(|href| href.contains("evil.example"))
    {
        wrong.push(format!(
            "the applicant's text is a link in the desk's HTML mail: {}",
            mail.html()
        ));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The `href` targets of an HTML document, with `&#x2f;` and `&#47;` decoded.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&#x2f;", "/").replace("&#47;", "/"))
        .collect()
}

/// An information request with lines SMTP must dot-stuff.
const QUESTION: &str = "Please send your sales plan:\n.\n..and the budget.\n.";

async fn information_requests_replies_and_closing_reach_the_right_person(backend: Backend) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let first = staff_in(&app, &admin, "supporter", "en").await;
    let second = staff_in(&app, &admin, "supporter", "ja").await;
    let applicant = applicant_in(&app, "en", "Jane Doe", "MedTech Inc.").await;
    let case = case_titled(&app, &applicant, "Reimbursement path").await;
    let (id, number) = (&case["id"], case_number(&case));
    smtp.wait_for(3, WAIT).await; // acknowledgement + two announcements

    // The first supporter asks; the applicant is told, with the question.
    app.claimed(&first.token, id).await;
    app.moved(
        &first.token,
        id,
        json!({"status": "awaiting_info", "reason": QUESTION}),
    )
    .await;
    let mails = smtp.wait_for(4, WAIT).await;
    let asked = mails.last().unwrap();
    assert!(asked.is_for(&applicant.email), "{asked:#?}");
    assert_well_formed(asked, &number);
    assert_eq!(asked.subject, format!("[{number}] More information needed"));
    // Lines starting with a dot survive SMTP's dot-stuffing both ways.
    assert!(asked.text().contains(QUESTION), "{}", asked.text());
    let raw = String::from_utf8_lossy(&smtp.messages()[3].data).into_owned();
    assert!(raw.contains("\r\n.\r\n..and the budget.\r\n.\r\n"), "{raw}");

    // The applicant answers: the supporter who asked hears of it.
    json_body(
        app.post_message(&applicant.token, id, &json!({"body": "Attached."}), None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let mails = smtp.wait_for(5, WAIT).await;
    let answered = mails.last().unwrap();
    assert!(answered.is_for(&first.email), "{answered:#?}");
    assert_well_formed(answered, &number);
    assert_eq!(
        answered.subject,
        format!("[{number}] The applicant answered")
    );

    // Now the second supporter asks, and only they hear of the answer (in Japanese).
    app.moved(
        &second.token,
        id,
        json!({"status": "awaiting_info", "reason": "売上計画を教えてください"}),
    )
    .await;
    smtp.wait_for(6, WAIT).await;
    json_body(
        app.post_message(&applicant.token, id, &json!({"body": "Here it is."}), None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let mails = smtp.wait_for(8, WAIT).await;
    let answered = the_mail(&mails[6..], &second.email, &number);
    assert_eq!(
        answered.subject,
        format!("[{number}] 相談者から回答がありました")
    );
    // The supporter in charge of the case (who claimed it) is told of the
    // new message too (docs/mail.md, "Message notices").
    let told = the_mail(&mails[6..], &first.email, &number);
    assert_eq!(told.subject, format!("[{number}] A new message"));

    // Closing tells the applicant the outcome, in their language.
    app.moved(
        &first.token,
        id,
        json!({"status": "closed", "outcome": "resolved", "reason": "advice given"}),
    )
    .await;
    let mails = smtp.wait_for(9, WAIT).await;
    let closed = mails.last().unwrap();
    assert!(closed.is_for(&applicant.email), "{closed:#?}");
    assert_well_formed(closed, &number);
    assert_eq!(
        closed.subject,
        format!("[{number}] Your case is closed (Resolved)")
    );
    assert!(
        closed.text().contains("Outcome: Resolved"),
        "{}",
        closed.text()
    );

    // A referral names where the applicant is sent.
    let referred = case_titled(&app, &applicant, "Out of our scope").await;
    let referred_number = case_number(&referred);
    app.triaged(&first.token, &referred["id"], "refer").await;
    let rows = settled(&app, &admin).await;
    let mails = smtp.wait_for(rows.len(), WAIT).await;
    let closed = mails_to(&mails, &applicant.email)
        .into_iter()
        .find(|m| {
            m.subject
                .starts_with(&format!("[{referred_number}] Your case is closed"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no closing mail on {referred_number}: {:#?}",
                subjects(&mails)
            )
        });
    assert!(
        closed.text().contains("Outcome: Referred"),
        "{}",
        closed.text()
    );
    assert!(
        closed.text().contains("Referred to: PMDA 相談窓口"),
        "{}",
        closed.text()
    );

    // Nobody got a mail twice, nobody got one they should not.
    assert_eq!(mails.len(), rows.len());
    // The first supporter: two new cases, one answer, one message notice.
    assert_eq!(mails_to(&mails, &first.email).len(), 2 + 1 + 1);
    assert_eq!(mails_to(&mails, &second.email).len(), 2 + 1);
    assert_eq!(mails_to(&mails, &applicant.email).len(), 2 + 2 + 1 + 1);
}

async fn expert_proposals_carry_no_case_text_and_answers_reach_the_assigning_supporter(
    backend: Backend,
) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let triager = staff_in(&app, &admin, "supporter", "en").await;
    let assigner = staff_in(&app, &admin, "supporter", "ja").await;
    let applicant = applicant_in(&app, "ja", "山田 花子", "株式会社シークレット").await;
    let title = "極秘のステント開発計画";
    let description = "社外秘の臨床データ XQ-7731 を含む相談です。";
    let mut body = intake();
    body["title"] = json!(title);
    body["description"] = json!(description);
    let case = app.new_case_with(&applicant.token, &body).await;
    let (id, number) = (&case["id"], case_number(&case));
    app.claimed(&triager.token, id).await;
    let mut triage = triage_body("expert");
    triage["categories"] = json!(["regulatory"]);
    json_body(
        app.triage(&triager.token, id, &triage, None).await,
        StatusCode::OK,
    )
    .await;
    let alpha = app
        .registered_expert(&admin, expert_profile("Alpha Expert"))
        .await;
    let beta = app
        .registered_expert(&admin, expert_profile("Beta Expert"))
        .await;
    let before = settled(&app, &admin).await.len();

    let to_alpha = app.proposed(&assigner, id, &alpha).await;
    let to_beta = app.proposed(&assigner, id, &beta).await;
    let mails = smtp.wait_for(before + 2, WAIT).await;
    for expert in [&alpha, &beta] {
        let proposal = the_mail(&mails, &expert.user.email, &number);
        assert_well_formed(proposal, &number);
        // Experts are registered in Japanese.
        assert_eq!(proposal.subject, format!("[{number}] 相談への参加のお願い"));
        assert!(
            proposal
                .text()
                .lines()
                .any(|l| l == format!("{}/assignments", app.address)),
            "{}",
            proposal.text()
        );
        let everything = format!(
            "{}\n{}\n{}\n{:?}",
            proposal.subject,
            proposal.text(),
            proposal.html(),
            proposal.attachments
        );
        for secret in [
            title,
            "ステント",
            description,
            "XQ-7731",
            "株式会社シークレット",
        ] {
            assert!(
                !everything.contains(secret),
                "{secret:?} reached an expert who has not accepted: {everything}"
            );
        }
    }

    // Answers go to the supporter who proposed, not to the one who triaged.
    app.accepted(&alpha, &to_alpha).await;
    app.declined(&beta, &to_beta, "利益相反があります").await;
    let rows = settled(&app, &admin).await;
    assert_eq!(rows.len(), before + 4, "{rows:#?}");
    let mails = smtp.wait_for(before + 4, WAIT).await;
    let answers: Vec<_> = mails[before + 2..].iter().collect();
    assert!(
        answers.iter().all(|m| m.is_for(&assigner.email)),
        "{:#?}",
        subjects(&mails)
    );
    let accepted = answers
        .iter()
        .find(|m| m.subject == format!("[{number}] Alpha Expert さんが承諾しました"))
        .unwrap_or_else(|| panic!("no acceptance mail: {:#?}", subjects(&mails)));
    assert_well_formed(accepted, &number);
    let declined = answers
        .iter()
        .find(|m| m.subject == format!("[{number}] Beta Expert さんが辞退しました"))
        .unwrap_or_else(|| panic!("no refusal mail: {:#?}", subjects(&mails)));
    assert_well_formed(declined, &number);
    assert!(
        declined.text().contains("理由: 利益相反があります"),
        "{}",
        declined.text()
    );
    assert_eq!(
        mails_to(&mails, &triager.email).len(),
        1,
        "only the announcement"
    );
}

async fn a_japanese_proposal_names_the_experts_role_in_japanese(backend: Backend) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let supporter = staff_in(&app, &admin, "supporter", "ja").await;
    let applicant = applicant_in(&app, "ja", "山田 花子", "株式会社メドテック").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let number = case_number(&case);
    let mut wrong = Vec::new();
    for (role, name) in [("lead", "Alpha Expert"), ("member", "Beta Expert")] {
        let expert = app.registered_expert(&admin, expert_profile(name)).await;
        json_body(
            app.assign(&supporter.token, &case["id"], &expert.id, role)
                .await,
            StatusCode::CREATED,
        )
        .await;
        let rows = settled(&app, &admin).await;
        let mails = smtp.wait_for(rows.len(), WAIT).await;
        let proposal = the_mail(&mails, &expert.user.email, &number);
        assert_eq!(proposal.subject, format!("[{number}] 相談への参加のお願い"));
        if proposal.text().contains(role) {
            wrong.push(format!("the code {role:?} in: {}", proposal.text()));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

async fn a_meeting_mails_applicant_and_expert_an_icalendar_invitation(backend: Backend) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let supporter = staff_in(&app, &admin, "supporter", "en").await;
    let applicant = applicant_in(&app, "en", "Jane Doe", "MedTech Inc.").await;
    let case = app
        .matching_case(&supporter, &applicant, &["regulatory"])
        .await;
    let (id, number) = (&case["id"], case_number(&case));
    let expert: Expert = app
        .registered_expert(&admin, expert_profile("Meeting Expert"))
        .await;
    app.engaged(&supporter, id, &expert).await;
    let before = settled(&app, &admin).await.len();

    // 2037-12-03 10:00 JST for 60 minutes, online.
    json_body(
        app.create_meeting(&supporter.token, id, &meeting_body(&expert.id))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let rows = settled(&app, &admin).await;
    assert_eq!(rows.len(), before + 2, "{rows:#?}");
    let mails = smtp.wait_for(before + 2, WAIT).await;

    let to_applicant = the_mail(&mails[before..], &applicant.email, &number);
    assert_well_formed(to_applicant, &number);
    assert_eq!(
        to_applicant.subject,
        format!("[{number}] Meeting on Thu 3 Dec 2037, 10:00 (Japan time)")
    );
    assert!(to_applicant.text().contains("Expert: Meeting Expert"));
    let to_expert = the_mail(&mails[before..], &expert.user.email, &number);
    assert_well_formed(to_expert, &number);
    assert_eq!(
        to_expert.subject,
        format!("[{number}] 面談のご案内 2037年12月3日(木) 10:00 (日本時間)")
    );

    let mut uids = Vec::new();
    for mail in [to_applicant, to_expert] {
        assert_eq!(mail.attachments.len(), 1, "{mail:#?}");
        let invite = &mail.attachments[0];
        assert_eq!(invite.mime, "text/calendar", "{invite:#?}");
        assert!(
            invite.name.as_deref().is_some_and(|n| n.ends_with(".ics")),
            "{invite:#?}"
        );
        let lines = unfolded(&invite.content);
        let context = invite.content.clone();
        assert_eq!(
            lines.first().map(String::as_str),
            Some("BEGIN:VCALENDAR"),
            "{context}"
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some("END:VCALENDAR"),
            "{context}"
        );
        assert_eq!(
            property(&lines, "BEGIN"),
            ["BEGIN:VCALENDAR", "BEGIN:VEVENT"],
            "{context}"
        );
        assert!(
            property(&lines, "VERSION").contains(&"VERSION:2.0"),
            "{context}"
        );
        assert!(!property(&lines, "PRODID").is_empty(), "{context}");
        assert_eq!(property(&lines, "METHOD"), ["METHOD:REQUEST"], "{context}");
        let uid = property(&lines, "UID");
        assert_eq!(uid.len(), 1, "{context}");
        uids.push(uid[0].to_owned());
        assert_eq!(property(&lines, "DTSTAMP").len(), 1, "{context}");
        assert_eq!(
            property(&lines, "DTSTART"),
            ["DTSTART:20371203T010000Z"],
            "10:00 JST is 01:00 UTC: {context}"
        );
        assert_eq!(
            property(&lines, "DTEND"),
            ["DTEND:20371203T020000Z"],
            "{context}"
        );
        let organizer = property(&lines, "ORGANIZER");
        assert_eq!(organizer.len(), 1, "{context}");
        assert!(
            organizer[0]
                .to_ascii_lowercase()
                .ends_with(&format!(":mailto:{FROM}")),
            "{context}"
        );
        let attendees = property(&lines, "ATTENDEE");
        assert_eq!(attendees.len(), 2, "{context}");
        for person in [&applicant.email, &expert.user.email] {
            assert!(
                attendees.iter().any(|a| a
                    .to_ascii_lowercase()
                    .ends_with(&format!(":mailto:{person}"))),
                "{person} attends: {context}"
            );
        }
        assert!(
            !context.contains("医療機器の承認申請について"),
            "no case text in the invitation: {context}"
        );
    }
    assert_eq!(uids[0], uids[1], "one event, one UID");
}

// ---------------------------------------------------------------- delivery

async fn with_the_smtp_server_down_intake_succeeds_and_every_mail_arrives_later(backend: Backend) {
    let reserved = ReservedPort::new();
    let port = reserved.port();
    let url = format!("smtp://127.0.0.1:{port}");
    let app = TestApp::spawn_with(backend, &[("MEDESK_SMTP_URL", url.as_str())]).await;
    let admin = app.admin_token().await;
    let supporter = staff_in(&app, &admin, "supporter", "ja").await;
    let applicant = applicant_in(&app, "ja", "山田 花子", "株式会社メドテック").await;

    // Intake does not depend on the mail server.
    let case = app.new_case(&applicant.token).await;
    let number = case_number(&case);
    let rows = outbox_until(&app, &admin, WAIT, "two failed attempts", |rows| {
        rows.len() == 2
            && rows.iter().all(|r| {
                r["state"] == "pending"
                    && r["attempts"].as_i64().unwrap_or(0) >= 1
                    && r["last_error"].as_str().is_some_and(|e| !e.is_empty())
                    && r["sent_at"].is_null()
            })
    })
    .await;
    let recipients: HashSet<&str> = rows
        .iter()
        .map(|r| r["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(
        recipients,
        HashSet::from([applicant.email.as_str(), supporter.email.as_str()])
    );
    assert_eq!(
        app.case(&applicant.token, &case["id"]).await["number"],
        number
    );

    // The server comes up: every mail arrives, once.
    drop(reserved);
    let mut smtp = SmtpServer::start_on(port).await;
    assert_eq!(smtp.port(), port);
    let mails = smtp.wait_for(2, Duration::from_secs(60)).await;
    the_mail(&mails, &applicant.email, &number);
    the_mail(&mails, &supporter.email, &number);
    let rows = settled(&app, &admin).await;
    assert!(
        rows.iter()
            .all(|r| r["last_error"].is_null() && r["sent_at"].is_string()),
        "{rows:#?}"
    );

    // It goes away again (the app's pooled connection dies with it) and
    // comes back: the next mails wait for it, too.
    smtp.stop().await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "a stopped server refuses connections"
    );
    let second = app.new_case(&applicant.token).await;
    let second_number = case_number(&second);
    both_mails_failed(&app, &admin, &second, WAIT).await;
    smtp.resume().await;
    let mails = smtp.wait_for(4, Duration::from_secs(60)).await;
    the_mail(&mails, &applicant.email, &second_number);
    the_mail(&mails, &supporter.email, &second_number);
    let rows = settled(&app, &admin).await;
    assert_eq!(rows.len(), 4);
    let ids: HashSet<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 4, "{:#?}", subjects(&mails));
}

async fn after_a_restart_nothing_is_sent_twice(backend: Backend) {
    let (mut app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let supporter = staff_in(&app, &admin, "supporter", "en").await;
    let applicant = applicant_in(&app, "ja", "山田 花子", "株式会社メドテック").await;
    let case = app.new_case(&applicant.token).await;
    app.claimed(&supporter.token, &case["id"]).await;
    app.moved(
        &supporter.token,
        &case["id"],
        json!({"status": "awaiting_info", "reason": "売上計画を教えてください"}),
    )
    .await;
    let rows = settled(&app, &admin).await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    smtp.wait_for(3, WAIT).await;

    // Restarted on the same database, with nothing new to say: silence.
    app.restart_with(&[]).await;
    tokio::time::sleep(Duration::from_millis(2500)).await; // five worker ticks
    let mails = smtp.mails();
    assert_eq!(
        mails.len(),
        3,
        "re-sent after restart: {:#?}",
        subjects(&mails)
    );

    // Each mail carries its outbox row's Message-ID, once.
    let admin = app.admin_token().await;
    let rows = outbox(&app, &admin, "").await;
    let by_id: HashMap<String, &Value> = rows
        .iter()
        .map(|r| (bare(r["message_id"].as_str().unwrap()), r))
        .collect();
    assert_eq!(by_id.len(), 3);
    for mail in &mails {
        let row = by_id
            .get(&mail.message_id)
            .unwrap_or_else(|| panic!("{} is no outbox row's: {rows:#?}", mail.message_id));
        assert_eq!(row["state"], "sent");
        assert_eq!(row["attempts"], 1, "{row}");
        assert!(mail.is_for(row["recipient"].as_str().unwrap()), "{mail:#?}");
        assert_eq!(mail.subject, row["subject"].as_str().unwrap());
    }

    // The restarted worker delivers what is new, and only that.
    let second = app.new_case(&applicant.token).await;
    let rows = settled(&app, &admin).await;
    assert_eq!(rows.len(), 5);
    let mails = smtp.wait_for(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mails_now = smtp.mails();
    assert_eq!(mails_now.len(), 5, "{:#?}", subjects(&mails_now));
    let ids: HashSet<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 5);
    the_mail(&mails, &applicant.email, &case_number(&second));
}

async fn a_refused_recipient_holds_up_no_other_mail_and_admins_retry_failed_mails(
    backend: Backend,
) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let supporter = staff_in(&app, &admin, "supporter", "en").await;
    // The test server answers 550 to `reject…` mailboxes.
    let refused_address = person_email("reject");
    let applicant = applicant_at(
        &app,
        "ja",
        "山田 花子",
        "株式会社メドテック",
        &refused_address,
    )
    .await;
    let case = app.new_case(&applicant.token).await;
    let number = case_number(&case);

    // The supporter's mail goes out; the refused acknowledgement fails at once
    // (a 5xx answer does not change by retrying), with the reason.
    let mails = smtp.wait_for(1, WAIT).await;
    the_mail(&mails, &supporter.email, &number);
    // (The server has the supporter's mail a moment before its row is marked.)
    let rows = outbox_until(&app, &admin, WAIT, "the refusal recorded", |rows| {
        rows.iter().any(|r| {
            r["recipient"] == refused_address.as_str()
                && r["state"] == "failed"
                && r["attempts"].as_i64().unwrap_or(0) == 1
                && r["last_error"].as_str().is_some_and(|e| e.contains("550"))
        }) && rows
            .iter()
            .any(|r| r["recipient"] == supporter.email.as_str() && r["state"] == "sent")
    })
    .await;
    let refused = rows
        .iter()
        .find(|r| r["recipient"] == refused_address.as_str())
        .unwrap()
        .clone();
    let sent = rows
        .iter()
        .find(|r| r["recipient"] == supporter.email.as_str())
        .unwrap()
        .clone();
    assert_eq!(sent["state"], "sent");
    let retry = |id: &Value| format!("/api/v1/admin/outbox/{id}/retry");

    // Only admins see the outbox or retry, and only failed mails are retried.
    problem(
        app.get("/api/v1/admin/outbox", Some(&supporter.token))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.get("/api/v1/admin/outbox?state=lost", Some(&admin))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        app.post(&retry(&refused["id"]), Some(&supporter.token), &json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.post(&retry(&refused["id"]), Some(&applicant.token), &json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.post(&retry(&json!(987_654_321)), Some(&admin), &json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.post(&retry(&sent["id"]), Some(&admin), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    let failed = outbox(&app, &admin, "&state=failed").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["id"], refused["id"]);
    assert_eq!(failed[0]["state"], "failed");
    assert!(
        failed[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("550"))
    );
    let pending = outbox(&app, &admin, "&state=pending").await;
    assert!(pending.is_empty(), "{pending:#?}");

    // The mailbox exists now; the admin retries: it is due at once and goes out.
    smtp.set_refusing(false);
    let retried = json_body(
        app.post(&retry(&refused["id"]), Some(&admin), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(retried["id"], refused["id"]);
    assert_eq!(retried["state"], "pending");
    assert_eq!(retried["attempts"], 0);
    let mails = smtp.wait_for(2, WAIT).await;
    let ack = the_mail(&mails, &refused_address, &number);
    assert_eq!(
        ack.message_id,
        bare(refused["message_id"].as_str().unwrap())
    );
    let rows = settled(&app, &admin).await;
    let row = rows.iter().find(|r| r["id"] == refused["id"]).unwrap();
    assert_eq!(row["attempts"], 1, "{row}");
    assert!(row["last_error"].is_null(), "{row}");
    problem(
        app.post(&retry(&refused["id"]), Some(&admin), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
}

/// Sorted, to compare address lists whatever their order.
fn sorted(addresses: &[String]) -> Vec<String> {
    let mut addresses = addresses.to_vec();
    addresses.sort();
    addresses
}

async fn supporters_of_one_language_share_one_mail_and_a_refused_one_is_split_off(
    backend: Backend,
) {
    let (app, smtp) = smtp_app(backend, &[]).await;
    let admin = app.admin_token().await;
    let first = staff_in(&app, &admin, "supporter", "ja").await;
    let second = staff_in(&app, &admin, "supporter", "ja").await;
    let english = staff_in(&app, &admin, "supporter", "en").await;
    let applicant = applicant_in(&app, "ja", "山田 花子", "株式会社メドテック").await;
    let case = app.new_case(&applicant.token).await;
    let number = case_number(&case);

    // Three rows: the acknowledgement, one announcement in Japanese naming
    // both Japanese-reading supporters, one in English.
    let rows = settled(&app, &admin).await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let mails = smtp.wait_for(3, WAIT).await;
    assert_eq!(mails.len(), 3, "{:#?}", subjects(&mails));
    let both = sorted(&[first.email.clone(), second.email.clone()]);
    let shared: Vec<_> = mails.iter().filter(|m| sorted(&m.to) == both).collect();
    assert_eq!(shared.len(), 1, "{:#?}", subjects(&mails));
    let shared = shared[0];
    assert_eq!(sorted(&shared.envelope_to), both, "{shared:#?}");
    assert_well_formed(shared, &number);
    assert!(
        shared
            .subject
            .starts_with(&format!("[{number}] 新しい相談: ")),
        "{}",
        shared.subject
    );
    // Nobody else is named on it, and the others' mails are their own.
    the_mail(&mails, &english.email, &number);
    the_mail(&mails, &applicant.email, &number);
    let row = rows
        .iter()
        .find(|r| r["message_id"].as_str().map(bare) == Some(shared.message_id.clone()))
        .expect("the shared mail's row");
    let listed: Vec<String> = row["recipient"]
        .as_str()
        .unwrap()
        .split(", ")
        .map(str::to_owned)
        .collect();
    assert_eq!(sorted(&listed), both, "{row}");

    // A third Japanese supporter whose mailbox the server refuses: the
    // shared mail fails for all (a refused recipient stops the
    // transaction before its data), is split into one mail each, and the
    // two others get it once; the refused one fails on its own.
    let refused = staff_at(&app, &admin, "supporter", "ja", person_email("reject")).await;
    let case = app.new_case(&applicant.token).await;
    let number = case_number(&case);
    let rows = outbox_until(&app, &admin, WAIT, "the split mails settled", |rows| {
        rows.iter().any(|r| {
            r["recipient"] == refused.email.as_str()
                && r["state"] == "failed"
                && r["last_error"].as_str().is_some_and(|e| e.contains("550"))
        }) && [&first, &second].iter().all(|person| {
            rows.iter()
                .any(|r| r["recipient"] == person.email.as_str() && r["state"] == "sent")
        })
    })
    .await;
    let split: Vec<&Value> = rows.iter().filter(|r| r["case_id"] == case["id"]).collect();
    // The acknowledgement, the English one, and one row per Japanese supporter.
    assert_eq!(split.len(), 5, "{split:#?}");
    for row in split
        .iter()
        .filter(|r| r["recipient"] != applicant.email.as_str())
    {
        assert!(
            !row["recipient"].as_str().unwrap().contains(','),
            "one address per row after the split: {row}"
        );
    }
    let mails = smtp.wait_for(7, WAIT).await;
    for person in [&first, &second, &english, &applicant] {
        let mail = the_mail(&mails, &person.email, &number);
        assert_well_formed(mail, &number);
    }
    assert!(mails_to(&mails, &refused.email).is_empty());
    // Every Message-ID arrived once.
    let ids: HashSet<&String> = mails.iter().map(|m| &m.message_id).collect();
    assert_eq!(ids.len(), mails.len(), "{:#?}", subjects(&mails));
    assert_eq!(mails.len(), 7, "{:#?}", subjects(&mails));
}

// ------------------------------------------- a server that stops answering

/// A generous deadline for mails that wait out a stalled delivery and retries.
const STALL_WAIT: Duration = Duration::from_secs(60);

/// An app whose deliveries are bounded to 2 s, with a supporter and an
/// applicant: each case they file queues two mails.
async fn desk_with_short_bound(backend: Backend) -> (TestApp, SmtpServer, String, User) {
    let (app, smtp) = smtp_app(backend, &[("MEDESK_SMTP_TIMEOUT_SECONDS", "2")]).await;
    let admin = app.admin_token().await;
    staff_in(&app, &admin, "supporter", "en").await;
    let applicant = applicant_in(&app, "en", "Jane Doe", "MedTech Inc.").await;
    (app, smtp, admin, applicant)
}

/// The outbox rows of `cases`, once every one of them is sent.
async fn sent_rows_of(app: &TestApp, admin: &str, cases: &[&Value]) -> Vec<Value> {
    let ids: Vec<&Value> = cases.iter().map(|case| &case["id"]).collect();
    let rows = outbox_until(app, admin, STALL_WAIT, "the cases' mails sent", |rows| {
        let of_cases: Vec<_> = rows
            .iter()
            .filter(|r| ids.contains(&&r["case_id"]))
            .collect();
        of_cases.len() == 2 * ids.len() && of_cases.iter().all(|r| r["state"] == "sent")
    })
    .await;
    rows.into_iter()
        .filter(|r| ids.contains(&&r["case_id"]))
        .collect()
}

/// Where each row's mail is in `mails`, asserting it is there exactly once
/// (by Message-ID) and that nothing else is.
fn each_once(rows: &[Value], mails: &[ReceivedMail]) -> Vec<usize> {
    assert_eq!(mails.len(), rows.len(), "{:#?}", subjects(mails));
    rows.iter()
        .map(|row| {
            let id = bare(row["message_id"].as_str().unwrap());
            let at: Vec<usize> = (0..mails.len())
                .filter(|&i| mails[i].message_id == id)
                .collect();
            assert_eq!(at.len(), 1, "{id} arrived {} times: {row}", at.len());
            at[0]
        })
        .collect()
}

/// Of a case's two mails, one met the stalled server: it needed a second
/// attempt. The other went out on its first attempt, right after the
/// stalled one gave up, before the stalled one's retry. Returns the row of
/// the stalled one.
fn stalled_once(rows: &[Value], mails: &[ReceivedMail]) -> Value {
    let arrived = each_once(rows, mails);
    let attempts: Vec<i64> = rows
        .iter()
        .map(|r| r["attempts"].as_i64().unwrap())
        .collect();
    let mut by_attempts = attempts.clone();
    by_attempts.sort();
    assert_eq!(by_attempts, [1, 2], "{rows:#?}");
    let stalled = attempts.iter().position(|&a| a == 2).unwrap();
    let other = 1 - stalled;
    assert!(
        arrived[other] < arrived[stalled],
        "the other mail waited for the stalled one's retry: {:#?}",
        subjects(mails)
    );
    rows[stalled].clone()
}

async fn a_server_that_never_greets_holds_up_the_next_mail_for_one_bound_only(backend: Backend) {
    let (app, smtp, admin, applicant) = desk_with_short_bound(backend).await;
    // The next connection is accepted and never answered.
    smtp.stall(Stall::NoGreeting, 1);
    let case = app.new_case(&applicant.token).await;
    let rows = sent_rows_of(&app, &admin, &[&case]).await;
    stalled_once(&rows, &smtp.mails());
}

async fn a_message_the_server_never_confirms_is_sent_again_and_arrives_once(backend: Backend) {
    let (app, smtp, admin, applicant) = desk_with_short_bound(backend).await;
    // The next message is read after DATA and never confirmed with a 250.
    smtp.stall(Stall::AfterData, 1);
    let case = app.new_case(&applicant.token).await;
    let rows = sent_rows_of(&app, &admin, &[&case]).await;
    let stalled = stalled_once(&rows, &smtp.mails());
    // The stalled server had the message; it counts once, where it was confirmed.
    let unconfirmed: Vec<String> = smtp
        .unconfirmed()
        .iter()
        .map(|m| m.message_id.clone())
        .collect();
    assert_eq!(unconfirmed, [bare(stalled["message_id"].as_str().unwrap())]);
}

async fn a_delivery_the_server_hangs_on_holds_up_no_other_mail(backend: Backend) {
    // A bound far beyond the wait below: the other mail must not wait for it.
    let (app, smtp) = smtp_app(backend, &[("MEDESK_SMTP_TIMEOUT_SECONDS", "120")]).await;
    let admin = app.admin_token().await;
    staff_in(&app, &admin, "supporter", "en").await;
    let applicant = applicant_in(&app, "en", "Jane Doe", "MedTech Inc.").await;
    // Sequential warm-up: the mails of five cases reuse the same few
    // connections rather than opening one per mail.
    let mut cases = Vec::new();
    for _ in 0..5 {
        cases.push(app.new_case(&applicant.token).await);
        smtp.wait_for(2 * cases.len(), WAIT).await;
    }
    let connections = smtp.connections();
    assert!(
        connections <= 4,
        "{connections} connections for ten mails sent one case after another"
    );

    smtp.stall(Stall::AfterData, 1);
    let case = app.new_case(&applicant.token).await;
    // One of its two mails hangs after its data; the other arrives anyway.
    let mails = smtp.wait_for(2 * cases.len() + 1, WAIT).await;
    let stalled = smtp.unconfirmed();
    assert_eq!(stalled.len(), 1, "one message is held unconfirmed");
    let number = case_number(&case);
    let of_case: Vec<&ReceivedMail> = mails
        .iter()
        .filter(|m| m.subject.contains(&number))
        .collect();
    assert_eq!(of_case.len(), 1, "{:#?}", subjects(&mails));
    assert_ne!(of_case[0].message_id, stalled[0].message_id);
}

async fn a_server_that_vanishes_with_connections_open_gets_the_mail_when_one_returns(
    backend: Backend,
) {
    let (app, mut smtp, admin, applicant) = desk_with_short_bound(backend).await;
    let first = app.new_case(&applicant.token).await;
    smtp.wait_for(2, WAIT).await;
    sent_rows_of(&app, &admin, &[&first]).await;
    let connections = smtp.connections();
    assert!(
        (1..=2).contains(&connections),
        "{connections} connections for two mails: one per delivery at once"
    );

    // The server stalls with the app's connection open and stops listening;
    // a case is filed meanwhile. Its mails are tried (on the dead connection,
    // then on a refused one) and wait.
    smtp.vanish().await;
    let case = app.new_case(&applicant.token).await;
    both_mails_failed(&app, &admin, &case, STALL_WAIT).await;

    // A working server listens on the port again: the mails go, once each,
    // and so do later ones.
    smtp.resume().await;
    let later = app.new_case(&applicant.token).await;
    let rows = sent_rows_of(&app, &admin, &[&first, &case, &later]).await;
    each_once(&rows, &smtp.mails());
}

async fn without_smtp_mails_are_written_as_eml_files(backend: Backend) {
    // The default harness sets MEDESK_MAIL_DIR and no MEDESK_SMTP_URL.
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let supporter = staff_in(&app, &admin, "supporter", "en").await;
    let applicant = applicant_in(&app, "en", "Jane Doe", "MedTech Inc.").await;
    let case = app.new_case(&applicant.token).await;
    let number = case_number(&case);

    let ack = wait_for_mail(&app.mail_dir, &applicant.email, |m| {
        m.subject.starts_with(&format!("[{number}]"))
    })
    .await;
    assert_eq!(
        ack.subject,
        format!("[{number}] We received your consultation request")
    );
    assert!(
        ack.text
            .contains(&format!("Its reference number is {number}."))
    );
    wait_for_mail(&app.mail_dir, &supporter.email, |m| {
        m.subject.starts_with(&format!("[{number}] New case: "))
    })
    .await;

    // One complete .eml file per outbox row, named after nothing but it.
    let rows = settled(&app, &admin).await;
    let files: Vec<String> = std::fs::read_dir(&app.mail_dir)
        .expect("the mail folder exists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut files: Vec<String> = files;
    files.sort();
    let mut expected: Vec<String> = rows
        .iter()
        .map(|r| {
            let id: String = bare(r["message_id"].as_str().unwrap())
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
                .collect();
            format!("{id}.eml")
        })
        .collect();
    expected.sort();
    assert_eq!(files, expected);
}

// ----------------------------------------------------------- triage reminder

/// Whether `mail` is a triage reminder on case `number`.
fn is_reminder(mail: &ReceivedMail, number: &str) -> bool {
    mail.subject
        .starts_with(&format!("[{number}] Case not triaged after"))
        || mail
            .subject
            .starts_with(&format!("[{number}] 未トリアージの相談"))
}

async fn an_untriaged_case_reminds_every_supporter_exactly_once(backend: Backend) {
    let (app, smtp) = smtp_app(
        backend,
        &[
            ("MEDESK_TRIAGE_REMINDER_DAYS", "0"),
            ("MEDESK_REMINDER_INTERVAL_SECONDS", "1"),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    let ja_desk = staff_in(&app, &admin, "supporter", "ja").await;
    let en_desk = staff_in(&app, &admin, "supporter", "en").await;
    let applicant = applicant_in(&app, "ja", "山田 花子", "株式会社メドテック").await;
    let case = app.new_case(&applicant.token).await;
    let number = case_number(&case);

    // Acknowledgement, two announcements, two reminders.
    smtp.wait_for(5, WAIT).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // three more ticks
    let mails = smtp.mails();
    let reminders: Vec<_> = mails.iter().filter(|m| is_reminder(m, &number)).collect();
    assert_eq!(reminders.len(), 2, "{:#?}", subjects(&mails));
    assert_eq!(mails.len(), 5, "{:#?}", subjects(&mails));
    let ja = reminders
        .iter()
        .find(|m| m.is_for(&ja_desk.email))
        .expect("the Japanese supporter is reminded");
    assert_well_formed(ja, &number);
    assert_eq!(
        ja.subject,
        format!("[{number}] 未トリアージの相談（0 営業日経過）")
    );
    let en = reminders
        .iter()
        .find(|m| m.is_for(&en_desk.email))
        .expect("the English supporter is reminded");
    assert_well_formed(en, &number);
    assert_eq!(
        en.subject,
        format!("[{number}] Case not triaged after 0 business days")
    );
    assert!(
        en.text().contains("医療機器の承認申請について"),
        "{}",
        en.text()
    );
    assert!(
        mails_to(&mails, &applicant.email).len() == 1,
        "applicants get no reminder"
    );
}

async fn triaged_cases_are_never_reminded_and_a_restart_reminds_no_one_again(backend: Backend) {
    // One business day: nothing is due while the cases are filed and one
    // of them triaged, whatever the ticks do meanwhile.
    let (mut app, smtp) = smtp_app(
        backend,
        &[
            ("MEDESK_TRIAGE_REMINDER_DAYS", "1"),
            ("MEDESK_REMINDER_INTERVAL_SECONDS", "1"),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    let supporter = staff_in(&app, &admin, "supporter", "en").await;
    let applicant = applicant_in(&app, "ja", "山田 花子", "株式会社メドテック").await;
    let waiting = app.new_case(&applicant.token).await;
    let handled = app.new_case(&applicant.token).await;
    let in_triage = app.new_case(&applicant.token).await;
    app.triaged(&supporter.token, &handled["id"], "direct")
        .await;
    // Claimed is not triaged yet.
    app.claimed(&supporter.token, &in_triage["id"]).await;
    let before = settled(&app, &admin).await.len();
    assert_eq!(smtp.wait_for(before, WAIT).await.len(), before);

    // Zero days: the untriaged cases are overdue at once, the triaged one never.
    app.restart_with(&[("MEDESK_TRIAGE_REMINDER_DAYS", "0")])
        .await;
    smtp.wait_for(before + 2, WAIT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), before + 2, "{:#?}", subjects(&mails));
    for case in [&waiting, &in_triage] {
        let reminded: Vec<_> = mails
            .iter()
            .filter(|m| is_reminder(m, &case_number(case)))
            .collect();
        assert_eq!(reminded.len(), 1, "{:#?}", subjects(&mails));
        assert!(reminded[0].is_for(&supporter.email));
    }
    assert!(
        !mails.iter().any(|m| is_reminder(m, &case_number(&handled))),
        "a triaged case is reminded: {:#?}",
        subjects(&mails)
    );

    // Once per case, across restarts too.
    app.restart_with(&[]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), before + 2, "{:#?}", subjects(&mails));
}

/// The worker deletes an outbox row for every new case (its event, replaced
/// by its mails), and each delete sets the message notices that pointed to
/// the row to NULL (ON DELETE SET NULL). Without an index on
/// `message_notices.outbox_id` each delete scanned every notice ever
/// written (issue 19, twenty-fifth round: 1.4 s for 140 events at 200,000
/// notices on PostgreSQL).
async fn deleting_an_outbox_row_finds_its_message_notices_through_an_index(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let index = match backend {
        Backend::Sqlite => {
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' \
             AND name = 'message_notices_outbox' AND tbl_name = 'message_notices' \
             AND sql LIKE '%(outbox_id)'"
        }
        Backend::Postgres => {
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'message_notices_outbox' \
             AND tablename = 'message_notices' AND indexdef LIKE '%(outbox_id)'"
        }
    };
    assert_eq!(app.count_sql(index).await, 1);
}
