//! What each role, in each assignment state, learns of a case's experts:
//! the role × assignment state × endpoint matrix of PRODUCT.md's roles table.
//! A proposed expert sees their own assignment and the case summary; an
//! accepted expert sees the experts working beside them, never an expert's
//! decline reason; only desk staff see everything.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::expert_helpers::{Expert, expert_profile, meeting_body};
use crate::helpers::{Backend, TestApp, User, case_path, items, json_body};

on_both_backends!(
    every_role_and_assignment_state_sees_only_what_it_may,
    managers_are_refused_meeting_changes_with_403,
);

/// A decline reason no one but the desk and its author may read.
const DECLINE_REASON: &str = "SECRET-REASON: I advise a competitor of this startup";

/// One case with an expert in every assignment state, and every kind of caller.
struct Scene {
    app: TestApp,
    case_id: Value,
    supporter: User,
    admin: User,
    manager: User,
    member: User,
    outsider: User,
    accepted: Expert,
    proposed: Expert,
    declined: Expert,
    withdrawn: Expert,
    completed: Expert,
    unassigned: Expert,
}

async fn scene(backend: Backend) -> Scene {
    let app = TestApp::spawn(backend).await;
    let admin_token = app.admin_token().await;
    let admin = app.staff("admin").await;
    let supporter = app.staff("supporter").await;
    let manager = app.staff("manager").await;
    let member = app.applicant("株式会社メドテック").await;
    let outsider = app.applicant("他社株式会社").await;
    let case = app
        .matching_case(&supporter, &member, &["regulatory"])
        .await;
    let case_id = case["id"].clone();
    let mut experts = Vec::new();
    for name in [
        "Accepted",
        "Proposed",
        "Declined",
        "Withdrawn",
        "Completed",
        "Unassigned",
    ] {
        experts.push(
            app.registered_expert(&admin_token, expert_profile(name))
                .await,
        );
    }
    let [
        accepted,
        proposed,
        declined,
        withdrawn,
        completed,
        unassigned,
    ] = <[Expert; 6]>::try_from(experts).expect("six experts");

    let to_decline = app.proposed(&supporter, &case_id, &declined).await;
    app.declined(&declined, &to_decline, DECLINE_REASON).await;
    app.engaged(&supporter, &case_id, &accepted).await;
    app.proposed(&supporter, &case_id, &proposed).await;
    let to_withdraw = app.proposed(&supporter, &case_id, &withdrawn).await;
    json_body(
        app.withdraw_assignment(&supporter.token, &to_withdraw["id"])
            .await,
        StatusCode::OK,
    )
    .await;
    let to_complete = app.engaged(&supporter, &case_id, &completed).await;
    json_body(
        app.complete_assignment(&completed.user.token, &to_complete["id"])
            .await,
        StatusCode::OK,
    )
    .await;
    Scene {
        app,
        case_id,
        supporter,
        admin,
        manager,
        member,
        outsider,
        accepted,
        proposed,
        declined,
        withdrawn,
        completed,
        unassigned,
    }
}

/// What one caller got from one endpoint.
struct Seen {
    status: StatusCode,
    body: String,
}

async fn seen(app: &TestApp, token: &str, path: &str) -> Seen {
    let response = app.get(path, Some(token)).await;
    let status = response.status();
    let body = response.text().await.expect("a body");
    Seen { status, body }
}

/// The expert ids and statuses in a `GET /cases/{id}/assignments` answer.
fn listed_assignments(body: &str) -> Vec<(Value, String)> {
    let document: Value = serde_json::from_str(body).expect("JSON");
    items(document)
        .into_iter()
        .map(|item| {
            (
                item["assignment"]["expert_id"].clone(),
                item["assignment"]["status"]
                    .as_str()
                    .expect("status")
                    .to_owned(),
            )
        })
        .collect()
}

fn pair(expert: &Expert, status: &str) -> (Value, String) {
    (expert.id.clone(), status.to_owned())
}

async fn every_role_and_assignment_state_sees_only_what_it_may(backend: Backend) {
    let s = scene(backend).await;
    let app = &s.app;
    let id = &s.case_id;
    let endpoints = [
        ("assignments", case_path(id, "/assignments")),
        ("events", case_path(id, "/events")),
        ("case", case_path(id, "")),
        ("messages", case_path(id, "/messages")),
        ("meetings", case_path(id, "/meetings")),
        ("support plan", case_path(id, "/support-plan")),
        ("suggestions", case_path(id, "/suggestions")),
        ("registry", "/api/v1/experts".to_owned()),
        (
            "registry entry",
            format!("/api/v1/experts/{}", s.declined.id),
        ),
    ];
    use StatusCode as S;
    const OK: S = S::OK;
    const FORBIDDEN: S = S::FORBIDDEN;
    const HIDDEN: S = S::NOT_FOUND;
    // An expert whose assignment ended, or who never had one: the case is
    // not there, and the registry is the desk's.
    const NO_ACCESS: [S; 9] = [
        HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN,
    ];
    // Per caller, the status of each endpoint above, in that order.
    let expected: [(&str, &User, [S; 9]); 11] = [
        ("supporter", &s.supporter, [OK; 9]),
        ("admin", &s.admin, [OK; 9]),
        ("manager", &s.manager, [FORBIDDEN; 9]),
        (
            "member applicant",
            &s.member,
            // The startup reads the current support plan (issue 16).
            [
                FORBIDDEN, OK, OK, OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN,
            ],
        ),
        (
            "other applicant",
            &s.outsider,
            [
                FORBIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN,
            ],
        ),
        (
            "accepted expert",
            &s.accepted.user,
            [OK, OK, OK, OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN],
        ),
        (
            "proposed expert",
            &s.proposed.user,
            [
                OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN,
            ],
        ),
        ("declined expert", &s.declined.user, NO_ACCESS),
        ("withdrawn expert", &s.withdrawn.user, NO_ACCESS),
        ("completed expert", &s.completed.user, NO_ACCESS),
        ("unassigned expert", &s.unassigned.user, NO_ACCESS),
    ];

    let mut answers = std::collections::HashMap::new();
    for (caller, user, statuses) in &expected {
        let desk = matches!(*caller, "supporter" | "admin");
        for ((endpoint, path), want) in endpoints.iter().zip(statuses) {
            let got = seen(app, &user.token, path).await;
            assert_eq!(got.status, *want, "{caller} GET {endpoint}: {}", got.body);
            if !desk {
                assert!(
                    !got.body.contains("SECRET-REASON"),
                    "{caller} GET {endpoint} shows a decline reason: {}",
                    got.body
                );
            }
            answers.insert((*caller, *endpoint), got);
        }
    }

    // Desk staff see every assignment, the decline reason with it.
    let all = vec![
        pair(&s.declined, "declined"),
        pair(&s.accepted, "accepted"),
        pair(&s.proposed, "proposed"),
        pair(&s.withdrawn, "withdrawn"),
        pair(&s.completed, "completed"),
    ];
    for caller in ["supporter", "admin"] {
        let answer = &answers[&(caller, "assignments")];
        assert_eq!(listed_assignments(&answer.body), all, "{caller}");
        assert!(answer.body.contains(DECLINE_REASON), "{caller}");
        assert!(answers[&(caller, "events")].body.contains(DECLINE_REASON));
    }
    // An accepted expert sees the experts working beside them.
    assert_eq!(
        listed_assignments(&answers[&("accepted expert", "assignments")].body),
        vec![
            pair(&s.accepted, "accepted"),
            pair(&s.completed, "completed")
        ]
    );
    // A proposed expert sees their own assignment only.
    let own_only = &answers[&("proposed expert", "assignments")].body;
    assert_eq!(
        listed_assignments(own_only),
        vec![pair(&s.proposed, "proposed")]
    );
    assert!(!own_only.contains("Accepted"), "{own_only}");

    // The expert who declined still reads their own answer in their queue.
    let queue = seen(
        app,
        &s.declined.user.token,
        "/api/v1/assignments?status=all",
    )
    .await;
    assert_eq!(queue.status, StatusCode::OK);
    assert!(queue.body.contains(DECLINE_REASON), "{}", queue.body);
    for expert in [&s.accepted, &s.proposed, &s.completed] {
        let queue = seen(app, &expert.user.token, "/api/v1/assignments?status=all").await;
        assert_eq!(queue.status, StatusCode::OK);
        assert!(!queue.body.contains("SECRET-REASON"), "{}", queue.body);
    }
}

async fn managers_are_refused_meeting_changes_with_403(backend: Backend) {
    let s = scene(backend).await;
    let app = &s.app;
    let meeting = json_body(
        app.create_meeting(
            &s.accepted.user.token,
            &s.case_id,
            &meeting_body(&s.accepted.id),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let meeting_id = &meeting["id"];
    for (caller, token, want) in [
        ("manager", &s.manager.token, StatusCode::FORBIDDEN),
        ("member applicant", &s.member.token, StatusCode::FORBIDDEN),
        (
            "proposed expert",
            &s.proposed.user.token,
            StatusCode::FORBIDDEN,
        ),
        (
            "unassigned expert",
            &s.unassigned.user.token,
            StatusCode::NOT_FOUND,
        ),
        ("other applicant", &s.outsider.token, StatusCode::NOT_FOUND),
    ] {
        let response = app.record_advice(token, meeting_id, "advice").await;
        assert_eq!(response.status(), want, "{caller}");
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{caller}"
        );
    }
    // Nothing was recorded by any of them.
    let meetings = json_body(
        app.meetings(&s.supporter.token, &s.case_id).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(items(meetings)[0]["advice_summary"], json!(null));
}
