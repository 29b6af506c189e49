//! Closing a case as a duplicate of another (issue 16): the link on both
//! cases and in both timelines, every refusal changing nothing, what other
//! organisations and experts never see, reopening, the statistics with and
//! without duplicates, and the import's refusal.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::expert_helpers::Expert;
use crate::helpers::{
    Backend, TestApp, User, error_fields, intake, json_body, kinds, problem, random_suffix,
};

on_both_backends!(
    closing_as_a_duplicate_links_both_cases_and_both_timelines,
    every_refused_duplicate_close_changes_nothing,
    links_stay_one_step_deep,
    another_organisation_and_an_unassigned_expert_see_no_trace,
    reopening_a_duplicate_clears_its_link_and_keeps_the_history,
    statistics_leave_duplicates_out_unless_asked,
    statistics_refuse_a_bad_include_duplicates,
    the_import_refuses_duplicates_by_line,
    the_vocabulary_and_the_document_know_duplicates,
);

// ---------------------------------------------------------------- helpers

/// `{status: closed, outcome: duplicate, duplicate_of}` as the request body.
fn duplicate_of(original: &Value) -> Value {
    json!({"status": "closed", "outcome": "duplicate", "duplicate_of": original["id"], "reason": "same request twice"})
}

/// A case filed by `applicant` with this product type and categories.
async fn filed(app: &TestApp, applicant: &User, product_type: &str, categories: &[&str]) -> Value {
    let mut body = intake();
    body["product_type"] = json!(product_type);
    body["categories"] = json!(categories);
    app.new_case_with(&applicant.token, &body).await
}

/// `{id, number}` of a case, as a link shows it.
fn link(case: &Value) -> Value {
    json!({"id": case["id"], "number": case["number"]})
}

/// The timeline events of `kind`.
fn of_kind(events: &[Value], kind: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

/// `GET /api/v1/stats/verify` as the start-up admin: consistent, with no
/// differing cell.
async fn assert_rollups_exact(app: &TestApp) {
    let admin = app.admin_token().await;
    let check = json_body(
        app.get("/api/v1/stats/verify", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(check["differences"], json!([]), "{check}");
    assert_eq!(check["consistent"], true);
}

/// A statistics answer (JSON) for `path?query` as `token`.
async fn stats(app: &TestApp, token: &str, path: &str, query: &str) -> Value {
    json_body(
        app.get(&format!("/api/v1/stats/{path}?{query}"), Some(token))
            .await,
        StatusCode::OK,
    )
    .await
}

fn row<'a>(table: &'a Value, product_type: &str) -> &'a Value {
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["product_type"] == product_type)
        .expect("every product type has a row")
}

/// Everything `token` can read of a case, as text: the case, its timeline.
async fn readable_text(app: &TestApp, token: &str, id: &Value) -> String {
    let case = app.case(token, id).await;
    let events = app.event_items(token, id).await;
    format!("{case} {}", Value::Array(events))
}

// ---------------------------------------------------------------- linking

async fn closing_as_a_duplicate_links_both_cases_and_both_timelines(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let supporter = app.staff("supporter").await;
    let original = app.new_case(&applicant.token).await;
    let copy = app.new_case(&applicant.token).await;

    let closed = app
        .moved(&supporter.token, &copy["id"], duplicate_of(&original))
        .await;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["outcome"], "duplicate");
    assert_eq!(closed["duplicate_of"], link(&original));
    assert_eq!(closed["duplicates"], json!([]));

    let now = app.case(&supporter.token, &original["id"]).await;
    assert_eq!(now["duplicate_of"], Value::Null);
    assert_eq!(now["duplicates"], json!([link(&copy)]));
    assert_eq!(now["status"], "submitted", "the original stays as it was");
    assert!(
        now["version"].as_i64() > original["version"].as_i64(),
        "the original changed: {now}"
    );

    // Both timelines, for the desk.
    let events = app.event_items(&supporter.token, &copy["id"]).await;
    let close = of_kind(&events, "closed");
    assert_eq!(close.len(), 1);
    assert_eq!(close[0]["detail"]["outcome"], "duplicate");
    assert_eq!(close[0]["detail"]["duplicate_of"], link(&original));
    assert_eq!(close[0]["detail"]["reason"], "same request twice");
    let events = app.event_items(&supporter.token, &original["id"]).await;
    let linked = of_kind(&events, "duplicate_linked");
    assert_eq!(linked.len(), 1, "{events:?}");
    assert_eq!(linked[0]["detail"]["duplicate"], link(&copy));
    assert_eq!(linked[0]["actor"]["id"], supporter.id);

    // The applicant reads both cases (their organisation's): both links.
    let theirs = app.case(&applicant.token, &copy["id"]).await;
    assert_eq!(theirs["duplicate_of"], link(&original));
    let theirs = app.case(&applicant.token, &original["id"]).await;
    assert_eq!(theirs["duplicates"], json!([link(&copy)]));
    let events = app.event_items(&applicant.token, &original["id"]).await;
    assert_eq!(of_kind(&events, "duplicate_linked").len(), 1);

    // Listings carry the links too.
    let page = json_body(
        app.list_cases(&supporter.token, "limit=10").await,
        StatusCode::OK,
    )
    .await;
    let listed = |id: &Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| &c["id"] == id)
            .cloned()
            .expect("listed")
    };
    assert_eq!(listed(&copy["id"])["duplicate_of"], link(&original));
    assert_eq!(listed(&original["id"])["duplicates"], json!([link(&copy)]));

    // Two categories and two duplicates: the one statement that reads a
    // case joins a row per pair, and each appears once.
    let second = app.new_case(&applicant.token).await;
    app.moved(&supporter.token, &second["id"], duplicate_of(&original))
        .await;
    let both = app.case(&supporter.token, &original["id"]).await;
    assert_eq!(both["duplicates"], json!([link(&copy), link(&second)]));
    assert_eq!(both["categories"], original["categories"]);
    assert_eq!(
        original["categories"].as_array().map(Vec::len),
        Some(2),
        "{original}"
    );
    assert_rollups_exact(&app).await;
}

/// The case, its timeline and the original's, as the desk sees them.
async fn state_of(app: &TestApp, token: &str, case: &Value, original: &Value) -> Value {
    json!({
        "case": app.case(token, &case["id"]).await,
        "events": app.event_items(token, &case["id"]).await,
        "original": app.case(token, &original["id"]).await,
        "original_events": app.event_items(token, &original["id"]).await,
    })
}

async fn every_refused_duplicate_close_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let supporter = app.staff("supporter").await;
    let original = app.new_case(&applicant.token).await;
    let case = app.new_case(&applicant.token).await;
    let before = state_of(&app, &supporter.token, &case, &original).await;
    let table_before = stats(&app, &supporter.token, "categories", "").await;

    let refusals: Vec<(Value, &str)> = vec![
        (
            json!({"status": "closed", "outcome": "duplicate"}),
            "is required when the outcome is duplicate",
        ),
        (
            json!({"status": "closed", "outcome": "duplicate", "duplicate_of": null}),
            "is required when the outcome is duplicate",
        ),
        (
            json!({"status": "closed", "outcome": "duplicate", "duplicate_of": case["id"]}),
            "cannot duplicate itself",
        ),
        (
            json!({"status": "closed", "outcome": "duplicate", "duplicate_of": 987_654_321}),
            "names no case you can see",
        ),
        (
            json!({"status": "closed", "outcome": "resolved", "duplicate_of": original["id"]}),
            "is only for closing with the outcome duplicate",
        ),
        (
            json!({"status": "closed", "outcome": "withdrawn", "duplicate_of": original["id"]}),
            "is only for closing with the outcome duplicate",
        ),
        (
            json!({"status": "triage", "duplicate_of": original["id"]}),
            "is only for closing with the outcome duplicate",
        ),
    ];
    for (body, message) in refusals {
        let response = app
            .set_status(&supporter.token, &case["id"], &body, None)
            .await;
        let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_fields(&refused), ["duplicate_of"], "{body}");
        let said = refused["errors"][0]["message"].as_str().unwrap();
        assert!(said.contains(message), "{body}: {said}");
    }

    // An applicant may withdraw, not close as a duplicate (409, as for
    // every outcome but withdrawn).
    let response = app
        .set_status(
            &applicant.token,
            &case["id"],
            &duplicate_of(&original),
            None,
        )
        .await;
    problem(response, StatusCode::CONFLICT).await;

    assert_eq!(
        state_of(&app, &supporter.token, &case, &original).await,
        before
    );
    assert_eq!(
        stats(&app, &supporter.token, "categories", "").await,
        table_before
    );
    assert_rollups_exact(&app).await;
}

async fn links_stay_one_step_deep(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let supporter = app.staff("supporter").await;
    let first = app.new_case(&applicant.token).await;
    let second = app.new_case(&applicant.token).await;
    let third = app.new_case(&applicant.token).await;
    app.moved(&supporter.token, &second["id"], duplicate_of(&first))
        .await;

    // A duplicate is no original: the answer names the one to use.
    let before = state_of(&app, &supporter.token, &third, &second).await;
    let response = app
        .set_status(&supporter.token, &third["id"], &duplicate_of(&second), None)
        .await;
    let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&refused), ["duplicate_of"]);
    let first_number = first["number"].as_str().unwrap();
    assert_eq!(
        refused["errors"][0]["message"],
        format!(
            "{} is itself closed as a duplicate of {first_number}: name {first_number} instead",
            second["number"].as_str().unwrap()
        )
    );
    assert_eq!(
        state_of(&app, &supporter.token, &third, &second).await,
        before
    );

    // A case others duplicate is not closed as a duplicate itself.
    let before = state_of(&app, &supporter.token, &first, &third).await;
    let response = app
        .set_status(&supporter.token, &first["id"], &duplicate_of(&third), None)
        .await;
    let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&refused), ["duplicate_of"]);
    let said = refused["errors"][0]["message"].as_str().unwrap();
    assert!(
        said.starts_with(&format!(
            "{first_number} is the original of {}",
            second["number"].as_str().unwrap()
        )),
        "{said}"
    );
    assert_eq!(
        state_of(&app, &supporter.token, &first, &third).await,
        before
    );

    // Naming the first is fine: both duplicates point at it.
    let closed = app
        .moved(&supporter.token, &third["id"], duplicate_of(&first))
        .await;
    assert_eq!(closed["duplicate_of"], link(&first));
    let first_now = app.case(&supporter.token, &first["id"]).await;
    assert_eq!(
        first_now["duplicates"],
        json!([link(&second), link(&third)])
    );
    assert_rollups_exact(&app).await;
}

// ---------------------------------------------------------------- confidentiality

async fn another_organisation_and_an_unassigned_expert_see_no_trace(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    let owner = app
        .applicant(&format!("Original Inc {}", random_suffix()))
        .await;
    let other = app
        .applicant(&format!("Other KK {}", random_suffix()))
        .await;
    let mut secret = intake();
    secret["title"] = json!("極秘の新規デバイス");
    let original = app.new_case_with(&owner.token, &secret).await;
    // The original goes to an expert, who accepts.
    app.claimed(&supporter.token, &original["id"]).await;
    let mut triage = crate::helpers::triage_body("expert");
    triage["categories"] = json!(["regulatory"]);
    json_body(
        app.triage(&supporter.token, &original["id"], &triage, None)
            .await,
        StatusCode::OK,
    )
    .await;
    let expert: Expert = app.expert_named(&admin, "Dr. Sato").await;
    app.engaged(&supporter, &original["id"], &expert).await;

    let mut copy_body = intake();
    copy_body["title"] = json!("他社の同じ相談");
    let copy = app.new_case_with(&other.token, &copy_body).await;
    app.moved(&supporter.token, &copy["id"], duplicate_of(&original))
        .await;

    // The desk sees both ends.
    let seen = app.case(&supporter.token, &copy["id"]).await;
    assert_eq!(seen["duplicate_of"], link(&original));
    let seen = app.case(&supporter.token, &original["id"]).await;
    assert_eq!(seen["duplicates"], json!([link(&copy)]));

    // The other organisation: its case is closed as a duplicate, of nothing
    // it may know of.
    let theirs = app.case(&other.token, &copy["id"]).await;
    assert_eq!(theirs["outcome"], "duplicate");
    assert_eq!(theirs["duplicate_of"], Value::Null);
    let events = app.event_items(&other.token, &copy["id"]).await;
    let close = of_kind(&events, "closed");
    assert_eq!(
        close[0]["detail"],
        json!({"outcome": "duplicate", "reason": "same request twice"})
    );
    let text = readable_text(&app, &other.token, &copy["id"]).await;
    for secret in [original["number"].as_str().unwrap(), "極秘の新規デバイス"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let page = json_body(app.list_cases(&other.token, "").await, StatusCode::OK).await;
    assert_eq!(page["items"][0]["duplicate_of"], Value::Null);
    assert!(
        !page
            .to_string()
            .contains(original["number"].as_str().unwrap())
    );
    // … and the original itself is still not found for them.
    problem(
        app.get_case(&other.token, &original["id"]).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // The original's organisation learns nothing of the other case.
    for reader in [&owner.token, &expert.user.token] {
        let mine = app.case(reader, &original["id"]).await;
        assert_eq!(mine["duplicates"], json!([]), "{mine}");
        let events = app.event_items(reader, &original["id"]).await;
        assert!(
            !kinds(&events).contains(&"duplicate_linked".to_owned()),
            "{events:?}"
        );
        let text = readable_text(&app, reader, &original["id"]).await;
        assert!(!text.contains(copy["number"].as_str().unwrap()), "{text}");
        assert!(!text.contains("他社の同じ相談"), "{text}");
    }
    let page = json_body(app.list_cases(&owner.token, "").await, StatusCode::OK).await;
    assert!(!page.to_string().contains(copy["number"].as_str().unwrap()));

    // Reopened, the unlinking is no trace either.
    app.moved(
        &supporter.token,
        &copy["id"],
        json!({"status": "in_consultation"}),
    )
    .await;
    for reader in [&owner.token, &expert.user.token] {
        let events = app.event_items(reader, &original["id"]).await;
        let seen = kinds(&events);
        assert!(!seen.contains(&"duplicate_unlinked".to_owned()), "{seen:?}");
    }
    let events = app.event_items(&other.token, &copy["id"]).await;
    let reopened = of_kind(&events, "reopened");
    assert_eq!(reopened[0]["detail"], json!({}));
    let events = app.event_items(&supporter.token, &copy["id"]).await;
    assert_eq!(
        of_kind(&events, "reopened")[0]["detail"]["duplicate_of"],
        link(&original)
    );
}

// ---------------------------------------------------------------- reopening

async fn reopening_a_duplicate_clears_its_link_and_keeps_the_history(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let supporter = app.staff("supporter").await;
    let original = app.new_case(&applicant.token).await;
    let copy = app.new_case(&applicant.token).await;
    app.moved(&supporter.token, &copy["id"], duplicate_of(&original))
        .await;
    assert_rollups_exact(&app).await;

    let reopened = app
        .moved(
            &supporter.token,
            &copy["id"],
            json!({"status": "in_consultation", "reason": "not the same after all"}),
        )
        .await;
    assert_eq!(reopened["status"], "in_consultation");
    assert_eq!(reopened["outcome"], Value::Null);
    assert_eq!(reopened["duplicate_of"], Value::Null);
    let now = app.case(&supporter.token, &original["id"]).await;
    assert_eq!(now["duplicates"], json!([]));

    // The history stays: closed as a duplicate, then reopened, on both.
    let events = app.event_items(&supporter.token, &copy["id"]).await;
    assert_eq!(
        of_kind(&events, "closed")[0]["detail"]["duplicate_of"],
        link(&original)
    );
    assert_eq!(
        of_kind(&events, "reopened")[0]["detail"]["duplicate_of"],
        link(&original)
    );
    let events = app.event_items(&supporter.token, &original["id"]).await;
    let seen = kinds(&events);
    let linked = seen.iter().position(|k| k == "duplicate_linked");
    let unlinked = seen.iter().position(|k| k == "duplicate_unlinked");
    assert!(linked.is_some() && linked < unlinked, "{seen:?}");
    assert_eq!(
        of_kind(&events, "duplicate_unlinked")[0]["detail"]["duplicate"],
        link(&copy)
    );
    assert_rollups_exact(&app).await;

    // No longer an original's duplicate, the original may now be closed as
    // a duplicate of it.
    let closed = app
        .moved(&supporter.token, &original["id"], duplicate_of(&copy))
        .await;
    assert_eq!(closed["duplicate_of"], link(&copy));
    assert_rollups_exact(&app).await;
}

// ---------------------------------------------------------------- statistics

async fn statistics_leave_duplicates_out_unless_asked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let supporter = app.staff("supporter").await;
    let manager = app.staff("manager").await;
    let applicant = app.applicant("株式会社メドテック").await;
    let original = filed(&app, &applicant, "drug", &["regulatory", "fundraising"]).await;
    let copy = filed(&app, &applicant, "drug", &["regulatory"]).await;
    let withdrawn = filed(&app, &applicant, "medical_device", &["marketing"]).await;
    let resolved = filed(&app, &applicant, "other", &["other"]).await;
    // The copy is triaged (its confirmed categories count) before it is
    // found to be a duplicate.
    app.claimed(&supporter.token, &copy["id"]).await;
    json_body(
        app.triage(
            &supporter.token,
            &copy["id"],
            &json!({"priority": "normal", "product_type": "drug",
                    "categories": ["regulatory", "ip_strategy"], "route": "direct"}),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    app.moved(&supporter.token, &copy["id"], duplicate_of(&original))
        .await;
    app.moved(
        &applicant.token,
        &withdrawn["id"],
        json!({"status": "closed"}),
    )
    .await;
    app.moved(
        &supporter.token,
        &resolved["id"],
        json!({"status": "closed", "outcome": "resolved"}),
    )
    .await;
    assert_rollups_exact(&app).await;

    for token in [&manager.token, &supporter.token] {
        // The category table: the duplicate is left out, the withdrawn
        // case counts.
        for query in ["", "include_duplicates=false"] {
            let table = stats(&app, token, "categories", query).await;
            let drug = row(&table, "drug");
            assert_eq!(drug["cases"], 1, "{query}: {table}");
            assert_eq!(drug["counts"]["regulatory"], 1);
            assert_eq!(drug["counts"]["ip_strategy"], 0);
            assert_eq!(drug["percents"]["fundraising"], 100);
            assert_eq!(row(&table, "medical_device")["cases"], 1);
            assert_eq!(row(&table, "medical_device")["counts"]["marketing"], 1);
            assert_eq!(table["total"]["cases"], 3);
        }
        let table = stats(&app, token, "categories", "include_duplicates=true").await;
        let drug = row(&table, "drug");
        assert_eq!(drug["cases"], 2, "{table}");
        assert_eq!(drug["counts"]["regulatory"], 2);
        assert_eq!(drug["counts"]["ip_strategy"], 1);
        assert_eq!(drug["percents"]["fundraising"], 50);
        assert_eq!(table["total"]["cases"], 4);
    }

    // The CSV: the same tables.
    let csv = |query: &'static str| {
        let app = &app;
        let token = manager.token.clone();
        async move {
            let response = app
                .get(
                    &format!("/api/v1/stats/categories.csv?{query}"),
                    Some(&token),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.bytes().await.unwrap();
            let text = String::from_utf8(body[3..].to_vec()).unwrap();
            text.split("\r\n")
                .filter(|line| line.starts_with("drug,") || line.starts_with("total,"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        csv("").await,
        [
            "drug,1,1,100,0,0,0,0,1,100,0,0,0,0,0,0,0,0,0,0",
            "total,3,1,33,1,33,0,0,1,33,0,0,0,0,0,0,0,0,1,33",
        ]
    );
    assert_eq!(
        csv("include_duplicates=true").await,
        [
            "drug,2,2,100,0,0,0,0,1,50,0,0,1,50,0,0,0,0,0,0",
            "total,4,2,50,1,25,0,0,1,25,0,0,1,25,0,0,0,0,1,25",
        ]
    );

    // The trend: this month's cases.
    let month_total = |trend: Value| {
        let items = trend["items"].as_array().unwrap().clone();
        let last = items.last().expect("this month").clone();
        (last["cases"]["drug"].clone(), last["total"].clone())
    };
    assert_eq!(
        month_total(stats(&app, &manager.token, "trend", "interval=month").await),
        (json!(1), json!(3))
    );
    assert_eq!(
        month_total(
            stats(
                &app,
                &manager.token,
                "trend",
                "interval=year&include_duplicates=true"
            )
            .await
        ),
        (json!(2), json!(4))
    );

    // The pipeline's medians: the duplicate was triaged and closed.
    let pipeline = stats(&app, &manager.token, "pipeline", "").await;
    assert_eq!(pipeline["time_to_triage"]["cases"], 0, "{pipeline}");
    assert_eq!(pipeline["time_to_close"]["cases"], 2);
    assert_eq!(pipeline["open_total"], 1);
    let pipeline = stats(&app, &manager.token, "pipeline", "include_duplicates=true").await;
    assert_eq!(pipeline["time_to_triage"]["cases"], 1, "{pipeline}");
    assert_eq!(pipeline["time_to_close"]["cases"], 3);
    assert_eq!(pipeline["open_total"], 1);

    // Reopened, the copy counts again, under its confirmed categories.
    app.moved(
        &supporter.token,
        &copy["id"],
        json!({"status": "in_consultation"}),
    )
    .await;
    let table = stats(&app, &manager.token, "categories", "").await;
    assert_eq!(row(&table, "drug")["cases"], 2);
    assert_eq!(row(&table, "drug")["counts"]["ip_strategy"], 1);
    assert_eq!(
        table,
        stats(
            &app,
            &manager.token,
            "categories",
            "include_duplicates=true"
        )
        .await
    );
    assert_rollups_exact(&app).await;
}

async fn statistics_refuse_a_bad_include_duplicates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let manager = app.staff("manager").await;
    for path in ["categories", "categories.csv", "trend", "pipeline"] {
        for value in ["yes", "1", "TRUE", ""] {
            let response = app
                .get(
                    &format!("/api/v1/stats/{path}?include_duplicates={value}"),
                    Some(&manager.token),
                )
                .await;
            let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(
                error_fields(&refused),
                ["include_duplicates"],
                "{path} {value}"
            );
            assert_eq!(refused["errors"][0]["message"], "must be true or false");
        }
    }
    // Applicants still get no statistics, whatever they ask.
    let applicant = app.applicant("株式会社メドテック").await;
    let response = app
        .get(
            "/api/v1/stats/categories?include_duplicates=true",
            Some(&applicant.token),
        )
        .await;
    problem(response, StatusCode::FORBIDDEN).await;
}

// ---------------------------------------------------------------- import

async fn the_import_refuses_duplicates_by_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let body = "received_on,product_type,categories,organization,title,status,outcome\n\
                2018-02-05,drug,regulatory,Acme,fine,closed,resolved\n\
                2018-02-06,drug,regulatory,Acme,a duplicate,closed,duplicate\n\
                2018-02-07,医薬品,法規制対応,Acme,重複の記録,終了,重複\n";
    let response = app
        .client
        .post(app.url("/api/v1/import/cases"))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let errors: Vec<(Value, Value)> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(
                e["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("duplicate cannot be imported: a case closed as a duplicate names the case it duplicates"),
                "{e}"
            );
            (e["line"].clone(), e["field"].clone())
        })
        .collect();
    assert_eq!(
        errors,
        [(json!(3), json!("outcome")), (json!(4), json!("outcome"))]
    );
    // Nothing stored.
    let table = stats(&app, &admin, "categories", "include_duplicates=true").await;
    assert_eq!(table["total"]["cases"], 0);
    assert_rollups_exact(&app).await;
}

// ---------------------------------------------------------------- vocabulary and document

async fn the_vocabulary_and_the_document_know_duplicates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let vocabulary = json_body(app.get("/api/v1/vocabulary", None).await, StatusCode::OK).await;
    let outcomes = vocabulary["outcomes"].as_array().unwrap();
    assert_eq!(
        outcomes.last(),
        Some(&json!({"code": "duplicate", "ja": "重複", "en": "Duplicate"}))
    );

    let document = json_body(app.get("/api/openapi.json", None).await, StatusCode::OK).await;
    let schemas = &document["components"]["schemas"];
    let case = &schemas["CaseResponse"];
    let required: Vec<&str> = case["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(required.contains(&"duplicate_of") && required.contains(&"duplicates"));
    assert_eq!(schemas["CaseLink"]["required"], json!(["id", "number"]));
    assert!(schemas["StatusRequest"]["properties"]["duplicate_of"].is_object());
    let outcome_codes = schemas["Outcome"]["enum"].as_array().unwrap();
    assert!(
        outcome_codes.contains(&json!("duplicate")),
        "{outcome_codes:?}"
    );
    for path in [
        "/api/v1/stats/categories",
        "/api/v1/stats/categories.csv",
        "/api/v1/stats/trend",
        "/api/v1/stats/pipeline",
    ] {
        let parameters = document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap();
        let include = parameters
            .iter()
            .find(|p| p["name"] == "include_duplicates")
            .unwrap_or_else(|| panic!("{path} documents include_duplicates"));
        assert_eq!(include["in"], "query");
        assert_eq!(include["schema"]["type"], "boolean", "{path}");
    }
    let status = &document["paths"]["/api/v1/cases/{id}/status"]["post"]["responses"];
    assert!(status["422"].is_object());
}
