//! Assignments: who may be assigned when, accepting and declining, load
//! and capacity; and the desk's list of one expert's cases.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{FAR_FUTURE, desk_with_applicant, instant, profile, reason_of, suggested};
use crate::helpers::{Backend, TestApp, User, error_fields, items, json_body, kinds, problem};

on_both_backends!(
    conflicted_paused_or_full_experts_cannot_be_assigned,
    experts_are_assigned_only_while_matching_or_in_consultation,
    a_case_has_at_most_one_active_lead,
    accepting_starts_the_consultation_and_records_the_terms,
    only_the_proposed_expert_accepts_and_only_once,
    declining_needs_a_reason_and_the_case_stays_matching,
    answering_an_assignment_no_longer_proposed_is_a_conflict,
    a_decline_returns_a_case_without_accepted_experts_to_matching,
    capacity_counts_proposed_and_accepted_assignments_only,
    the_desk_lists_the_cases_of_one_expert,
);

async fn case_status(app: &TestApp, supporter: &User, id: &Value) -> String {
    app.case(&supporter.token, id).await["status"]
        .as_str()
        .expect("status")
        .to_owned()
}

/// The expert ids of a case's assignments, with their status, as the desk sees them.
async fn assignments_on(app: &TestApp, supporter: &User, id: &Value) -> Vec<(Value, String)> {
    let list = json_body(
        app.case_assignments(&supporter.token, id).await,
        StatusCode::OK,
    )
    .await;
    items(list)
        .into_iter()
        .map(|item| {
            let assignment = &item["assignment"];
            (
                assignment["expert_id"].clone(),
                assignment["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

async fn conflicted_paused_or_full_experts_cannot_be_assigned(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let elsewhere = app.regulatory_case(&supporter, &applicant).await;
    let conflicted = app
        .registered_expert(
            &admin,
            profile("Conflicted", json!({"conflicts": ["ﾒﾄﾞﾃｯｸ(株)"]})),
        )
        .await;
    let paused = app
        .registered_expert(
            &admin,
            profile("Paused", json!({ "paused_until": FAR_FUTURE })),
        )
        .await;
    let full = app
        .registered_expert(&admin, profile("Full", json!({"capacity": 1})))
        .await;
    let [decliner, proposed] = app.experts_named(&admin, ["Decliner", "Proposed"]).await;
    app.proposed(&supporter, &elsewhere["id"], &full).await;
    let declined = app.proposed(&supporter, id, &decliner).await;
    app.declined(&decliner, &declined, "conflict with a client")
        .await;
    app.proposed(&supporter, id, &proposed).await;

    for (expert, reason) in [
        (&conflicted, "conflict_of_interest"),
        (&paused, "paused"),
        (&full, "at_capacity"),
        (&decliner, "declined_before"),
        (&proposed, "already_assigned"),
    ] {
        for role in ["member", "lead"] {
            let refused = problem(
                app.assign(&supporter.token, id, &expert.id, role).await,
                StatusCode::CONFLICT,
            )
            .await;
            assert_eq!(refused["reason"], reason, "{}", expert.user.email);
        }
    }

    // Nothing was assigned beyond the two assignments made above.
    let mut on_case = assignments_on(&app, &supporter, id).await;
    on_case.sort_by_key(|(expert, _)| expert.to_string());
    let mut expected = vec![
        (decliner.id.clone(), "declined".to_owned()),
        (proposed.id.clone(), "proposed".to_owned()),
    ];
    expected.sort_by_key(|(expert, _)| expert.to_string());
    assert_eq!(on_case, expected);

    // Malformed requests name the field.
    let unknown = problem(
        app.assign(&supporter.token, id, &json!(999_999), "member")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&unknown), vec!["expert_id"]);
    let bad_role = problem(
        app.assign(&supporter.token, id, &paused.id, "boss").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&bad_role), vec!["role"]);
    // Only the desk assigns.
    problem(
        app.assign(&applicant.token, id, &paused.id, "member").await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn experts_are_assigned_only_while_matching_or_in_consultation(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let expert = app.expert_named(&admin, "Available").await;

    let submitted = app.new_case(&applicant.token).await;
    let claimed = app.new_case(&applicant.token).await;
    app.claimed(&supporter.token, &claimed["id"]).await;
    let closed = app.regulatory_case(&supporter, &applicant).await;
    app.moved(
        &supporter.token,
        &closed["id"],
        json!({"status": "closed", "outcome": "resolved"}),
    )
    .await;
    for (case, status) in [
        (&submitted, "submitted"),
        (&claimed, "triage"),
        (&closed, "closed"),
    ] {
        let refused = problem(
            app.assign(&supporter.token, &case["id"], &expert.id, "member")
                .await,
            StatusCode::CONFLICT,
        )
        .await;
        let detail = refused["detail"].as_str().unwrap();
        assert!(
            detail.contains("matching") && detail.contains(status),
            "{detail}"
        );
        assert!(
            assignments_on(&app, &supporter, &case["id"])
                .await
                .is_empty()
        );
    }

    // Handled directly (in consultation), an expert may still be brought in.
    let direct = app.new_case(&applicant.token).await;
    let direct = app.triaged(&supporter.token, &direct["id"], "direct").await;
    assert_eq!(direct["status"], "in_consultation");
    let assignment = app.proposed(&supporter, &direct["id"], &expert).await;
    assert_eq!(assignment["status"], "proposed");
}

async fn a_case_has_at_most_one_active_lead(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let [lead, second, third] = &app.experts_named(&admin, ["Lead", "Second", "Third"]).await;

    let first_lead = json_body(
        app.assign(&supporter.token, id, &lead.id, "lead").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(first_lead["role"], "lead");
    let refused = problem(
        app.assign(&supporter.token, id, &second.id, "lead").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("lead"));
    let member = json_body(
        app.assign(&supporter.token, id, &second.id, "member").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(member["role"], "member");

    // Once the lead declines, another expert may lead.
    app.declined(lead, &first_lead, "travelling").await;
    let new_lead = json_body(
        app.assign(&supporter.token, id, &third.id, "lead").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(new_lead["role"], "lead");
}

async fn accepting_starts_the_consultation_and_records_the_terms(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let expert = app.expert_named(&admin, "Accepting").await;

    let proposal = json_body(
        app.assign(&supporter.token, id, &expert.id, "lead").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(proposal["status"], "proposed");
    assert_eq!(proposal["expert_id"], expert.id);
    assert_eq!(proposal["case_id"], *id);
    assert!(proposal["terms_version"].is_null());
    assert!(proposal["acknowledged_at"].is_null());
    assert_eq!(case_status(&app, &supporter, id).await, "matching");

    let accepted = app.accepted(&expert, &proposal).await;
    assert_eq!(accepted["id"], proposal["id"]);
    assert_eq!(accepted["status"], "accepted");
    assert!(
        accepted["terms_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    let acknowledged = instant(&accepted["acknowledged_at"]);
    assert!(instant(&accepted["created_at"]) <= acknowledged);

    assert_eq!(case_status(&app, &supporter, id).await, "in_consultation");
    let events = app.event_items(&supporter.token, id).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "expert_accepted");
    assert_eq!(last["from"], "matching");
    assert_eq!(last["to"], "in_consultation");
    assert!(kinds(&events).contains(&"expert_assigned".to_owned()));

    // The desk sees the acknowledgement on the case's assignments.
    let listed = items(
        json_body(
            app.case_assignments(&supporter.token, id).await,
            StatusCode::OK,
        )
        .await,
    );
    assert_eq!(
        listed[0]["assignment"]["terms_version"],
        accepted["terms_version"]
    );
    assert_eq!(
        listed[0]["assignment"]["acknowledged_at"],
        accepted["acknowledged_at"]
    );
}

async fn only_the_proposed_expert_accepts_and_only_once(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let [expert, colleague] = app.experts_named(&admin, ["Proposed", "Colleague"]).await;
    let assignment = app.proposed(&supporter, id, &expert).await;
    let assignment_id = &assignment["id"];

    // Someone else's assignment is not found; staff do not accept.
    problem(
        app.accept_assignment(&colleague.user.token, assignment_id)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.decline_assignment(
            &colleague.user.token,
            assignment_id,
            &json!({"reason": "not mine"}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.accept_assignment(&supporter.token, assignment_id).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.accept_assignment(&expert.user.token, &json!(999_999))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Other confidentiality terms than the current ones are not accepted.
    problem(
        app.post(
            &format!("/api/v1/assignments/{assignment_id}/accept"),
            Some(&expert.user.token),
            &json!({"terms_version": "1999-01"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        assignments_on(&app, &supporter, id).await,
        vec![(expert.id.clone(), "proposed".to_owned())]
    );
    assert_eq!(case_status(&app, &supporter, id).await, "matching");

    app.accepted(&expert, &assignment).await;
    problem(
        app.accept_assignment(&expert.user.token, assignment_id)
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    problem(
        app.decline_assignment(
            &expert.user.token,
            assignment_id,
            &json!({"reason": "changed my mind"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        assignments_on(&app, &supporter, id).await,
        vec![(expert.id.clone(), "accepted".to_owned())]
    );
}

async fn declining_needs_a_reason_and_the_case_stays_matching(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let expert = app.expert_named(&admin, "Decliner").await;
    let assignment = app.proposed(&supporter, id, &expert).await;

    for body in [json!({}), json!({"reason": "   "})] {
        let refused = problem(
            app.decline_assignment(&expert.user.token, &assignment["id"], &body)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec!["reason"], "{body}");
    }
    assert_eq!(
        assignments_on(&app, &supporter, id).await,
        vec![(expert.id.clone(), "proposed".to_owned())]
    );

    let declined = app
        .declined(&expert, &assignment, "顧問先と競合します")
        .await;
    assert_eq!(declined["status"], "declined");
    assert_eq!(declined["decline_reason"], "顧問先と競合します");
    assert_eq!(case_status(&app, &supporter, id).await, "matching");
    let events = app.event_items(&supporter.token, id).await;
    assert_eq!(events.last().unwrap()["kind"], "expert_declined");

    // Declined before: excluded from the suggestions for this case.
    let ranking = app.ranking(&supporter, id).await;
    assert_eq!(
        reason_of(&ranking, &expert).as_deref(),
        Some("declined_before")
    );
    assert!(suggested(&ranking).is_empty());
}

/// The decline endpoint documents 409 for an assignment that is no longer
/// proposed, as accept answers; it must not depend on whether the case is
/// still visible to the expert.
async fn answering_an_assignment_no_longer_proposed_is_a_conflict(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let [decliner, pulled] = app.experts_named(&admin, ["Decliner", "Pulled"]).await;
    let declined = app.proposed(&supporter, id, &decliner).await;
    app.declined(&decliner, &declined, "no time").await;
    let withdrawn = app.proposed(&supporter, id, &pulled).await;
    app.withdrawn(&supporter, &withdrawn).await;

    for (expert, assignment, status) in [
        (&decliner, &declined, "declined"),
        (&pulled, &withdrawn, "withdrawn"),
    ] {
        let token = &expert.user.token;
        let accept = problem(
            app.accept_assignment(token, &assignment["id"]).await,
            StatusCode::CONFLICT,
        )
        .await;
        assert!(accept["detail"].as_str().unwrap().contains(status));
        let decline = problem(
            app.decline_assignment(token, &assignment["id"], &json!({"reason": "again"}))
                .await,
            StatusCode::CONFLICT,
        )
        .await;
        assert!(decline["detail"].as_str().unwrap().contains(status));
    }
    let mut on_case = assignments_on(&app, &supporter, id).await;
    on_case.sort_by_key(|(expert, _)| expert.to_string());
    let mut expected = vec![
        (decliner.id.clone(), "declined".to_owned()),
        (pulled.id.clone(), "withdrawn".to_owned()),
    ];
    expected.sort_by_key(|(expert, _)| expert.to_string());
    assert_eq!(on_case, expected);
}

async fn a_decline_returns_a_case_without_accepted_experts_to_matching(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let [expert, engaged] = app.experts_named(&admin, ["Decliner", "Engaged"]).await;

    // In consultation with the desk alone: a decline sends it to matching.
    let direct = app.new_case(&applicant.token).await;
    let direct_id = &direct["id"];
    app.triaged(&supporter.token, direct_id, "direct").await;
    let assignment = app.proposed(&supporter, direct_id, &expert).await;
    app.declined(&expert, &assignment, "outside my field").await;
    assert_eq!(case_status(&app, &supporter, direct_id).await, "matching");
    let events = app.event_items(&supporter.token, direct_id).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "expert_declined");
    assert_eq!(last["from"], "in_consultation");
    assert_eq!(last["to"], "matching");

    // With an accepted expert on it, the case stays in consultation.
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    app.engaged(&supporter, id, &engaged).await;
    let assignment = app.proposed(&supporter, id, &expert).await;
    app.declined(&expert, &assignment, "one expert is enough")
        .await;
    assert_eq!(case_status(&app, &supporter, id).await, "in_consultation");
}

async fn capacity_counts_proposed_and_accepted_assignments_only(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let mut cases = Vec::new();
    for _ in 0..3 {
        cases.push(app.regulatory_case(&supporter, &applicant).await["id"].clone());
    }
    let expert = app
        .registered_expert(&admin, profile("Single Seat", json!({"capacity": 1})))
        .await;
    let load = || async { app.expert_record(&admin, &expert).await["active_load"].clone() };
    let refuse = |case: Value| {
        let (app, supporter, expert) = (&app, &supporter, &expert);
        async move {
            let refused = problem(
                app.assign(&supporter.token, &case, &expert.id, "member")
                    .await,
                StatusCode::CONFLICT,
            )
            .await;
            assert_eq!(refused["reason"], "at_capacity");
        }
    };

    // Proposed counts.
    let first = app.proposed(&supporter, &cases[0], &expert).await;
    assert_eq!(load().await, 1);
    refuse(cases[1].clone()).await;

    // Withdrawn does not.
    let withdrawn = app.withdrawn(&supporter, &first).await;
    assert_eq!(withdrawn["status"], "withdrawn");
    assert!(withdrawn["ended_at"].is_string());
    assert_eq!(load().await, 0);

    // Accepted counts; completed does not.
    let second = app.engaged(&supporter, &cases[1], &expert).await;
    assert_eq!(load().await, 1);
    refuse(cases[2].clone()).await;
    let completed = app.completed(&expert, &second).await;
    assert_eq!(completed["status"], "completed");
    assert_eq!(load().await, 0);
    app.proposed(&supporter, &cases[2], &expert).await;
    assert_eq!(load().await, 1);
}

async fn the_desk_lists_the_cases_of_one_expert(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let first = app.regulatory_case(&supporter, &applicant).await;
    let second = app.regulatory_case(&supporter, &applicant).await;
    let expert = app.expert_named(&admin, "Listed").await;
    app.proposed(&supporter, &first["id"], &expert).await;

    let listed = app
        .listed_ids(&supporter.token, &format!("expert_id={}", expert.id))
        .await;
    assert_eq!(listed, vec![first["id"].clone()]);
    assert!(!listed.contains(&second["id"]));
    let nobody = app.listed_ids(&supporter.token, "expert_id=987654").await;
    assert!(nobody.is_empty());

    let refused = problem(
        app.list_cases(&applicant.token, &format!("expert_id={}", expert.id))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["expert_id"]);
}
