//! Meetings: accepted experts (and the desk) record them and their advice.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{desk_with_applicant, instant, with};
use crate::expert_helpers::meeting_body;
use crate::helpers::{Backend, error_fields, items, json_body, kinds, problem};

on_both_backends!(
    an_accepted_expert_records_a_meeting_and_its_advice,
    only_accepted_experts_record_their_own_meetings,
    meeting_validation_names_each_bad_field,
);

/// The ids of the items of a list document.
fn item_ids(list: Value) -> Vec<Value> {
    items(list)
        .into_iter()
        .map(|item| item["id"].clone())
        .collect()
}

async fn an_accepted_expert_records_a_meeting_and_its_advice(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let expert = app.expert_named(&admin, "Meeting Expert").await;
    app.engaged(&supporter, id, &expert).await;

    let meeting = json_body(
        app.create_meeting(&expert.user.token, id, &meeting_body(&expert.id))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(meeting["expert_id"], expert.id);
    assert_eq!(meeting["case_id"], *id);
    assert_eq!(meeting["expert_name"], "Meeting Expert");
    assert_eq!(
        instant(&meeting["starts_at"]),
        instant(&json!("2037-12-03T10:00:00+09:00"))
    );
    assert_eq!(meeting["duration_minutes"], 60);
    assert_eq!(meeting["mode"], "online");
    assert!(meeting["advice_summary"].is_null());

    // The desk records an earlier onsite meeting for the expert.
    let earlier = json_body(
        app.create_meeting(
            &supporter.token,
            id,
            &with(
                meeting_body(&expert.id),
                json!({"starts_at": "2037-12-01T14:30:00+09:00", "duration_minutes": 90, "mode": "onsite"}),
            ),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(earlier["mode"], "onsite");

    // Listed in time order, and in the timeline.
    let listed =
        item_ids(json_body(app.meetings(&supporter.token, id).await, StatusCode::OK).await);
    assert_eq!(listed, vec![earlier["id"].clone(), meeting["id"].clone()]);
    let events = app.event_items(&supporter.token, id).await;
    let scheduled: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "meeting_scheduled")
        .collect();
    assert_eq!(scheduled.len(), 2);
    assert_eq!(scheduled[0]["detail"]["meeting_id"], meeting["id"]);
    assert_eq!(scheduled[0]["detail"]["mode"], "online");
    assert_eq!(scheduled[0]["detail"]["duration_minutes"], 60);
    assert_eq!(scheduled[0]["actor"]["id"], expert.user.id);

    // The advice is recorded afterwards.
    let advised = json_body(
        app.record_advice(&expert.user.token, &meeting["id"], "クラス分類の確認を推奨")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(advised["advice_summary"], "クラス分類の確認を推奨");
    let listed = items(json_body(app.meetings(&expert.user.token, id).await, StatusCode::OK).await);
    let stored = listed
        .iter()
        .find(|m| m["id"] == meeting["id"])
        .expect("the meeting");
    assert_eq!(stored["advice_summary"], "クラス分類の確認を推奨");
    assert!(
        kinds(&app.event_items(&supporter.token, id).await).contains(&"advice_recorded".to_owned())
    );
}

async fn only_accepted_experts_record_their_own_meetings(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let [accepted, colleague, proposed, outsider] = &app
        .experts_named(&admin, ["Accepted", "Colleague", "Proposed", "Outsider"])
        .await;
    app.engaged(&supporter, id, accepted).await;
    app.engaged(&supporter, id, colleague).await;
    app.proposed(&supporter, id, proposed).await;

    // Not yet accepted: refused, as is another expert's meeting or an outsider.
    let body = meeting_body(&proposed.id);
    problem(
        app.create_meeting(&proposed.user.token, id, &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.create_meeting(&outsider.user.token, id, &meeting_body(&outsider.id))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.create_meeting(&colleague.user.token, id, &meeting_body(&accepted.id))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // The desk cannot record one for an expert who has not accepted.
    problem(
        app.create_meeting(&supporter.token, id, &body).await,
        StatusCode::CONFLICT,
    )
    .await;
    problem(
        app.create_meeting(&applicant.token, id, &meeting_body(&accepted.id))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let meeting = json_body(
        app.create_meeting(&accepted.user.token, id, &meeting_body(&accepted.id))
            .await,
        StatusCode::CREATED,
    )
    .await;
    // Only that meeting's expert (or the desk) records its advice.
    problem(
        app.record_advice(&colleague.user.token, &meeting["id"], "not mine")
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.record_advice(&outsider.user.token, &meeting["id"], "not mine")
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.record_advice(&applicant.token, &meeting["id"], "not mine")
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    json_body(
        app.record_advice(&supporter.token, &meeting["id"], "desk note")
            .await,
        StatusCode::OK,
    )
    .await;

    // A closed case takes no more meetings, and closing ended the experts'
    // assignments: their access to the case ends with it.
    app.moved(
        &supporter.token,
        id,
        json!({"status": "closed", "outcome": "resolved"}),
    )
    .await;
    problem(
        app.create_meeting(&supporter.token, id, &meeting_body(&accepted.id))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    problem(
        app.create_meeting(&accepted.user.token, id, &meeting_body(&accepted.id))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get_case(&accepted.user.token, id).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let listed = items(json_body(app.meetings(&supporter.token, id).await, StatusCode::OK).await);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["advice_summary"], "desk note");
}

async fn meeting_validation_names_each_bad_field(backend: Backend) {
    let (app, admin, supporter, applicant) = desk_with_applicant(backend).await;
    let case = app.regulatory_case(&supporter, &applicant).await;
    let id = &case["id"];
    let expert = app.expert_named(&admin, "Validated").await;
    app.engaged(&supporter, id, &expert).await;
    let token = &expert.user.token;

    for (change, field) in [
        (json!({"starts_at": "next tuesday"}), "starts_at"),
        (json!({"starts_at": "2037-12-03T10:00:00"}), "starts_at"),
        (json!({"starts_at": null}), "starts_at"),
        (json!({"duration_minutes": 0}), "duration_minutes"),
        (json!({"duration_minutes": 481}), "duration_minutes"),
        (json!({"mode": "phone"}), "mode"),
        (json!({"mode": null}), "mode"),
        (json!({"expert_id": null}), "expert_id"),
    ] {
        let body = with(meeting_body(&expert.id), change.clone());
        let refused = problem(
            app.create_meeting(token, id, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec![field], "{change}");
    }
    let everything = with(
        meeting_body(&expert.id),
        json!({"starts_at": "soon", "duration_minutes": 0, "mode": "phone"}),
    );
    let refused = problem(
        app.create_meeting(token, id, &everything).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mut fields = error_fields(&refused);
    fields.sort();
    assert_eq!(fields, vec!["duration_minutes", "mode", "starts_at"]);
    let listed = json_body(app.meetings(token, id).await, StatusCode::OK).await;
    assert_eq!(listed["items"], json!([]));

    // Advice must say something.
    let meeting = json_body(
        app.create_meeting(token, id, &meeting_body(&expert.id))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let refused = problem(
        app.record_advice(token, &meeting["id"], "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["advice_summary"]);
}
