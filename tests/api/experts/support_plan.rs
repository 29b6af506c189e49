//! Support plans: the desk writes the plan, accepted experts propose text,
//! the startup reads the current plan.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{desk, desk_with_applicant, instant};
use crate::helpers::{Backend, error_fields, json_body, kinds, problem};

on_both_backends!(
    supporters_write_plan_revisions_read_newest_first,
    the_startup_reads_the_current_plan_and_accepted_experts_propose,
);

async fn supporters_write_plan_revisions_read_newest_first(backend: Backend) {
    let (app, _admin, supporter) = desk(backend).await;
    let colleague = app.staff("supporter").await;
    let applicant = app.applicant("株式会社メドテック").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];
    app.triaged(&supporter.token, id, "direct").await;

    let empty = json_body(app.support_plan(&supporter.token, id).await, StatusCode::OK).await;
    assert!(empty["current"].is_null());
    assert_eq!(empty["revisions"], json!([]));

    let first = json_body(
        app.write_plan(&supporter.token, id, "1. 薬事戦略の整理")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["current"]["revision"], 1);
    assert_eq!(first["current"]["body"], "1. 薬事戦略の整理");
    json_body(
        app.write_plan(&colleague.token, id, "1. 薬事戦略の整理\n2. 保険収載の検討")
            .await,
        StatusCode::OK,
    )
    .await;

    let plan = json_body(app.support_plan(&supporter.token, id).await, StatusCode::OK).await;
    assert_eq!(plan["current"]["revision"], 2);
    assert_eq!(
        plan["current"]["body"],
        "1. 薬事戦略の整理\n2. 保険収載の検討"
    );
    assert_eq!(plan["current"]["author_id"], colleague.id);
    let revisions = plan["revisions"].as_array().unwrap();
    let numbers: Vec<&Value> = revisions.iter().map(|r| &r["revision"]).collect();
    assert_eq!(numbers, vec![&json!(2), &json!(1)]);
    assert_eq!(revisions[1]["body"], "1. 薬事戦略の整理");
    assert_eq!(revisions[1]["author_id"], supporter.id);
    assert!(instant(&revisions[1]["at"]) <= instant(&revisions[0]["at"]));

    // Revisions are desk-side events: the applicant's timeline does not show them.
    let desk_kinds = kinds(&app.event_items(&supporter.token, id).await);
    assert_eq!(
        desk_kinds
            .iter()
            .filter(|k| *k == "support_plan_revised")
            .count(),
        2
    );
    assert!(
        !kinds(&app.event_items(&applicant.token, id).await)
            .contains(&"support_plan_revised".to_owned())
    );

    let refused = problem(
        app.write_plan(&supporter.token, id, "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["body"]);
}

async fn the_startup_reads_the_current_plan_and_accepted_experts_propose(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let [accepted, proposed, outsider] = app
        .experts_named(&admin, ["Accepted", "Proposed", "Outsider"])
        .await;
    app.engaged(&supporter, id, &accepted).await;
    app.proposed(&supporter, id, &proposed).await;

    // Before any plan the startup reads an empty one.
    let empty = json_body(app.support_plan(&applicant.token, id).await, StatusCode::OK).await;
    assert!(empty["current"].is_null());
    assert_eq!(empty["revisions"], json!([]));

    json_body(
        app.write_plan(&supporter.token, id, "draft plan").await,
        StatusCode::OK,
    )
    .await;
    json_body(
        app.write_plan(&supporter.token, id, "desk plan").await,
        StatusCode::OK,
    )
    .await;
    // An accepted expert proposes text: a revision of its own kind, which
    // does not become the current plan.
    let proposal = json_body(
        app.write_plan(&accepted.user.token, id, "expert proposal")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(proposal["revisions"][0]["kind"], "proposal");
    assert_eq!(proposal["revisions"][0]["body"], "expert proposal");
    assert_eq!(proposal["current"]["body"], "desk plan");
    assert_eq!(proposal["current"]["kind"], "plan");

    // The startup reads the current plan alone: no proposal, no draft.
    let read = json_body(app.support_plan(&applicant.token, id).await, StatusCode::OK).await;
    assert_eq!(read["current"]["body"], "desk plan");
    assert_eq!(read["revisions"].as_array().unwrap().len(), 1, "{read}");
    assert!(!read.to_string().contains("expert proposal"));
    assert!(!read.to_string().contains("draft plan"));

    // Nobody else writes: the startup, an expert who has not accepted, an
    // outsider (who learns nothing).
    problem(
        app.write_plan(&applicant.token, id, "our plan").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.write_plan(&proposed.user.token, id, "proposal").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.support_plan(&proposed.user.token, id).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.write_plan(&outsider.user.token, id, "proposal").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.support_plan(&outsider.user.token, id).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let competitor = app.applicant("Competitor KK").await;
    problem(
        app.support_plan(&competitor.token, id).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // The desk sees every revision with its kind; the proposal is a
    // desk-side event.
    let plan = json_body(app.support_plan(&supporter.token, id).await, StatusCode::OK).await;
    let kinds_and_bodies: Vec<(String, String)> = plan["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds_and_bodies,
        vec![
            ("proposal".to_owned(), "expert proposal".to_owned()),
            ("plan".to_owned(), "desk plan".to_owned()),
            ("plan".to_owned(), "draft plan".to_owned()),
        ]
    );
    assert!(
        kinds(&app.event_items(&supporter.token, id).await)
            .contains(&"support_plan_proposed".to_owned())
    );
    assert!(
        !kinds(&app.event_items(&applicant.token, id).await)
            .contains(&"support_plan_proposed".to_owned())
    );
}
