//! The supporter's pages: triage, next steps, expert suggestions and
//! assignment on the case page, the filters of `/cases` and `/queue`. A real
//! browser for the supporter's day, plain HTTP for the forms a browser would
//! not send (stale, invalid, from the wrong person).

use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::helpers::*;
use crate::pages::{csrf_in, signed_in_cookie};

pages_on_backends!(
    both: a_supporter_triages_to_an_expert_assigns_a_lead_and_closes_the_case;
    sqlite:
        a_stale_triage_form_changes_nothing_and_shows_the_case_as_it_is,
        an_invalid_triage_form_keeps_what_was_typed_with_the_error_by_the_field,
        an_applicant_cannot_post_the_desks_forms,
        a_step_the_lifecycle_does_not_allow_is_not_offered_and_is_refused,
        the_case_list_and_the_queue_filter_by_what_the_supporter_chooses,
        a_supporters_message_says_who_sees_it_and_notes_are_kept_apart,
);

fn id_of(case: &Value) -> String {
    case["id"].to_string().trim_matches('"').to_owned()
}

/// The case page as the holder of `cookie` sees it: status and HTML.
async fn page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let response = app
        .client
        .get(app.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Posts `fields` (plus the page's CSRF token) to `path` as the holder of
/// `cookie`: status and HTML.
async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let (_, html) = page(app, cookie, "/cases").await;
    let csrf = csrf_in(&html);
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let response = app
        .client
        .post(app.url(path))
        .header(COOKIE, cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn a_supporter_triages_to_an_expert_assigns_a_lead_and_closes_the_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let founder = app.applicant("Cardio Devices KK").await;
    // Medical device, regulatory and reimbursement, in Japanese.
    let case = app.new_case(&founder.token).await;
    let id = id_of(&case);
    let admin = app.admin_token().await;
    let expert = app.expert_named(&admin, "Sato Regulatory").await;
    let supporter = app.staff("supporter").await;

    let browser = Browser::open(&app.address, "en").await;
    browser.goto("/login?next=/queue").await;
    browser.fill("#email", &supporter.email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_through("form.card button[type=submit]").await;
    assert_eq!(browser.path().await, "/queue");
    browser
        .click_through(&format!("form[action='/cases/{id}/claim'] button"))
        .await;
    assert_eq!(browser.path().await, format!("/cases/{id}"));
    assert_eq!(
        app.case(&supporter.token, &case["id"]).await["status"],
        "triage"
    );

    // The applicant's choice is shown beside the confirmed one.
    let categories = browser.text("#categories").await;
    assert!(categories.contains("The applicant chose"), "{categories}");
    assert!(categories.contains("Regulatory"), "{categories}");
    browser.screenshot(&format!("{backend:?}-desk-case")).await;
    browser
        .screenshot_of(
            "section[aria-labelledby=triage-title]",
            &format!("{backend:?}-desk-triage"),
        )
        .await;

    browser.select("#priority", "high").await;
    // Confirmed: regulatory only (the applicant also chose reimbursement).
    browser
        .click("#categories input[value=reimbursement]")
        .await;
    browser.click("#route input[value=expert]").await;
    browser
        .fill("#note", "Needs a device regulatory expert")
        .await;
    browser
        .click_through("#triage-form button[type=submit]")
        .await;
    assert_eq!(browser.path().await, format!("/cases/{id}"));
    assert!(browser.text(".notice").await.contains("Triage recorded"));
    let triaged = app.case(&supporter.token, &case["id"]).await;
    assert_eq!(triaged["status"], "matching");
    assert_eq!(triaged["priority"], "high");
    assert_eq!(triaged["route"], "expert");
    assert_eq!(triaged["confirmed_categories"], json!(["regulatory"]));
    assert_eq!(
        triaged["categories"],
        json!(["regulatory", "reimbursement"])
    );

    // The expert is suggested, with the reasons.
    let suggestions = browser.text(".suggestions").await;
    assert!(suggestions.contains("Sato Regulatory"), "{suggestions}");
    assert!(suggestions.contains("score"), "{suggestions}");
    browser
        .screenshot_of(
            "section[aria-labelledby=experts-title]",
            &format!("{backend:?}-desk-suggestions"),
        )
        .await;

    let expert_id = expert.id.to_string();
    browser.select(&format!("#role-{expert_id}"), "lead").await;
    browser
        .click_through(&format!(
            "form.assign:has(input[name=expert_id][value='{expert_id}']) button"
        ))
        .await;
    assert!(browser.text(".notice").await.contains("proposed"));
    let assignments = items(
        json_body(
            app.case_assignments(&supporter.token, &case["id"]).await,
            StatusCode::OK,
        )
        .await,
    );
    assert_eq!(assignments.len(), 1, "{assignments:?}");
    assert_eq!(assignments[0]["assignment"]["expert_id"], expert.id);
    assert_eq!(assignments[0]["assignment"]["role"], "lead");
    assert_eq!(assignments[0]["assignment"]["status"], "proposed");
    let assigned = browser.text("table.assignments").await;
    assert!(assigned.contains("Sato Regulatory"), "{assigned}");
    assert!(assigned.contains("Lead"), "{assigned}");

    // Later the desk closes the case with an outcome.
    browser.select("#outcome", "resolved").await;
    browser
        .fill("#reason-close", "Answered by the expert")
        .await;
    browser.click_through(".step-close button").await;
    assert!(browser.text(".notice").await.contains("closed"));
    let closed = app.case(&supporter.token, &case["id"]).await;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["outcome"], "resolved");
    // A closed case offers reopening, and no triage.
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css(".step-reopen"))
            .await
            .is_ok()
    );
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css("#triage-form"))
            .await
            .is_err()
    );

    // The filtered list finds it.
    browser
        .goto("/cases?status=closed&product_type=medical_device&q=%E6%89%BF%E8%AA%8D")
        .await;
    let listed = browser.text("table.cases tbody").await;
    assert!(
        listed.contains(case["number"].as_str().unwrap()),
        "{listed}"
    );
    assert_eq!(browser.value("#filter-status").await, "closed");
    browser
        .screenshot(&format!("{backend:?}-desk-cases-filtered"))
        .await;
    browser.close().await;
}

/// A submitted case and a supporter's page cookie.
async fn desk_case(app: &TestApp) -> (User, User, Value, String) {
    let founder = app.applicant("Desk Forms KK").await;
    let case = app.new_case(&founder.token).await;
    let supporter = app.staff("supporter").await;
    let cookie = signed_in_cookie(app, &supporter.email, PASSWORD).await;
    (founder, supporter, case, cookie)
}

const TRIAGE: [(&str, &str); 5] = [
    ("priority", "urgent"),
    ("product_type", "medical_device"),
    ("categories", "regulatory"),
    ("route", "direct"),
    ("note", "typed by the supporter"),
];

async fn a_stale_triage_form_changes_nothing_and_shows_the_case_as_it_is(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, supporter, case, cookie) = desk_case(&app).await;
    let id = id_of(&case);
    // The form was read at version 1; someone claims the case meanwhile.
    app.claimed(&supporter.token, &case["id"]).await;
    let mut fields = TRIAGE.to_vec();
    fields.push(("version", "1"));
    let (status, html) = post_form(&app, &cookie, &format!("/cases/{id}/triage"), &fields).await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(
        html.contains("Someone changed this case meanwhile"),
        "{html}"
    );
    let now = app.case(&supporter.token, &case["id"]).await;
    assert_eq!(now["status"], "triage");
    assert_eq!(now["version"], 2);
    assert_eq!(now["priority"], Value::Null);
    // The page shows the case as it is now: a triage form at version 2.
    assert!(html.contains("id=\"triage-form\""), "{html}");
    assert!(html.contains("name=\"version\" value=\"2\""));
}

async fn an_invalid_triage_form_keeps_what_was_typed_with_the_error_by_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, supporter, case, cookie) = desk_case(&app).await;
    let id = id_of(&case);
    app.claimed(&supporter.token, &case["id"]).await;
    let fields = [
        ("version", "2"),
        ("priority", "urgent"),
        ("product_type", "medical_device"),
        ("categories", "regulatory"),
        ("categories", "ip_strategy"),
        ("route", "refer"),
        ("refer_to", ""),
        ("note", "keep this note"),
    ];
    let (status, html) = post_form(&app, &cookie, &format!("/cases/{id}/triage"), &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("id=\"refer_to-error\""), "{html}");
    assert!(html.contains("keep this note"));
    assert!(html.contains("<option value=\"urgent\" selected>"));
    assert!(html.contains("value=\"ip_strategy\" checked"));
    assert!(html.contains("value=\"refer\" checked"));

    // A value no vocabulary has: the error is by that field.
    let mut fields = TRIAGE.to_vec();
    fields.retain(|(name, _)| *name != "route");
    fields.extend([("route", "teleport"), ("version", "2")]);
    let (status, html) = post_form(&app, &cookie, &format!("/cases/{id}/triage"), &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("id=\"route-error\""), "{html}");
    assert!(html.contains("typed by the supporter"));

    let now = app.case(&supporter.token, &case["id"]).await;
    assert_eq!(now["status"], "triage");
    assert_eq!(now["version"], 2);
}

async fn an_applicant_cannot_post_the_desks_forms(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (founder, supporter, case, _) = desk_case(&app).await;
    let id = id_of(&case);
    app.claimed(&supporter.token, &case["id"]).await;
    let cookie = signed_in_cookie(&app, &founder.email, PASSWORD).await;
    let (_, own_page) = page(&app, &cookie, &format!("/cases/{id}")).await;
    assert!(!own_page.contains("triage-form"));
    assert!(!own_page.contains("/steps/"));

    let mut fields = TRIAGE.to_vec();
    fields.push(("version", "2"));
    for (path, fields) in [
        (format!("/cases/{id}/triage"), fields.clone()),
        (
            format!("/cases/{id}/steps/close"),
            vec![("outcome", "resolved"), ("version", "2")],
        ),
        (
            format!("/cases/{id}/request-info"),
            vec![("question", "?"), ("version", "2")],
        ),
    ] {
        let (status, _) = post_form(&app, &cookie, &path, &fields).await;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
            "{path}: {status}"
        );
    }
    let now = app.case(&supporter.token, &case["id"]).await;
    assert_eq!(now["status"], "triage");
    assert_eq!(now["version"], 2);
}

async fn a_step_the_lifecycle_does_not_allow_is_not_offered_and_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, supporter, case, cookie) = desk_case(&app).await;
    let id = id_of(&case);
    app.claimed(&supporter.token, &case["id"]).await;
    let (status, html) = page(&app, &cookie, &format!("/cases/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"triage-form\""));
    assert!(html.contains(&format!("/cases/{id}/steps/close")));
    for step in ["reopen", "start_consultation"] {
        assert!(!html.contains(&format!("/steps/{step}")), "{step} offered");
    }
    let (status, html) = post_form(
        &app,
        &cookie,
        &format!("/cases/{id}/steps/reopen"),
        &[("version", "2")],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    let now = app.case(&supporter.token, &case["id"]).await;
    assert_eq!(now["status"], "triage");
    assert_eq!(now["version"], 2);
}

async fn the_case_list_and_the_queue_filter_by_what_the_supporter_chooses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let founder = app.applicant("Filters KK").await;
    let filed = async |title: String, product_type: &str, category: &str| {
        let body = json!({"title": title, "description": "filter me", "product_type": product_type,
                          "categories": [category], "stage": "basic_research"});
        app.new_case_with(&founder.token, &body).await
    };
    filed("Alpha funding round".into(), "drug", "fundraising").await;
    let device = filed("Beta approval path".into(), "medical_device", "regulatory").await;
    let supporter = app.staff("supporter").await;
    app.claimed(&supporter.token, &device["id"]).await;
    let cookie = signed_in_cookie(&app, &supporter.email, PASSWORD).await;

    let cases = [
        ("/cases?product_type=drug", true, false),
        ("/cases?category=regulatory", false, true),
        ("/cases?status=triage", false, true),
        ("/cases?q=alpha", true, false),
        ("/cases?status=submitted&category=regulatory", false, false),
        ("/cases", true, true),
        ("/queue?category=fundraising", true, false),
        ("/queue?product_type=medical_device", false, true),
        ("/queue?unclaimed=1", true, false),
    ];
    for (path, alpha, beta) in cases {
        let (status, html) = page(&app, &cookie, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(html.contains("Alpha funding round"), alpha, "{path}");
        assert_eq!(html.contains("Beta approval path"), beta, "{path}");
    }
    // The filters stay in the form.
    let (_, html) = page(&app, &cookie, "/cases?status=triage&q=beta").await;
    assert!(
        html.contains("<option value=\"triage\" selected>"),
        "{html}"
    );
    assert!(html.contains("value=\"beta\""));

    // A second page keeps the filters: twenty more drug cases.
    for n in 0..20 {
        filed(format!("Gamma {n}"), "drug", "fundraising").await;
    }
    let (_, first) = page(&app, &cookie, "/cases?product_type=drug").await;
    let start = first
        .find("class=\"next-page\" href=\"")
        .expect("a next page")
        + 24;
    let next = first[start..start + first[start..].find('"').unwrap()].replace("&amp;", "&");
    assert!(
        next.starts_with("/cases?product_type=drug&cursor="),
        "{next}"
    );
    let (status, second) = page(&app, &cookie, &next).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        second.contains("Alpha funding round"),
        "the oldest drug case is on page two"
    );
    assert!(!second.contains("Beta approval path"));
    assert!(!first.contains("Alpha funding round"));
}

async fn a_supporters_message_says_who_sees_it_and_notes_are_kept_apart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (founder, supporter, case, cookie) = desk_case(&app).await;
    let id = id_of(&case);
    let path = format!("/cases/{id}/messages");
    // Without saying who sees it: refused, the text kept.
    let (status, html) = post_form(&app, &cookie, &path, &[("body", "first draft")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("first draft"));
    assert!(
        app.message_items(&supporter.token, &case["id"])
            .await
            .is_empty()
    );

    for (body, visibility) in [
        ("desk only remark", "internal"),
        ("hello applicant", "applicant"),
    ] {
        let (status, _) = post_form(
            &app,
            &cookie,
            &path,
            &[("body", body), ("visibility", visibility)],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{visibility}");
    }
    let (_, html) = page(&app, &cookie, &format!("/cases/{id}")).await;
    let notes = html
        .find("class=\"messages notes\"")
        .expect("the notes list");
    let remark = html.find("desk only remark").unwrap();
    let hello = html.find("hello applicant").unwrap();
    assert!(
        hello < notes && remark > notes,
        "notes apart from the messages"
    );
    let seen = app.message_items(&founder.token, &case["id"]).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["body"], "hello applicant");
}
