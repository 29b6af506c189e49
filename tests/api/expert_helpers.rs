//! Helpers for the expert tests (tests/api/experts/) and the other files that
//! meet experts: one method per endpoint of the expert registry, matching,
//! assignments, meetings and support plans, and the scenario shortcuts the
//! expert tests share.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, TestApp, User, case_path, ids, json_body, random_suffix, triage_body,
};

/// A registered expert who has signed in.
#[derive(Debug, Clone)]
pub struct Expert {
    /// The registry id: `expert_id` in suggestions, assignments and meetings.
    pub id: Value,
    /// The expert's user account (its `id` is the user id).
    pub user: User,
}

/// `{prefix}/{id}{suffix}`; ids are opaque JSON values (number or string).
fn path(prefix: &str, id: &Value, suffix: &str) -> String {
    let id = match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("{prefix}/{id}{suffix}")
}

/// A valid registry entry named `name` with a fresh e-mail address and a
/// password: regulatory at level 2, medical devices, Japanese, capacity 3,
/// no conflicts. Tests change the fields they are about.
pub fn expert_profile(name: &str) -> Value {
    let slug: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    json!({
        "email": format!("{slug}-{}@experts.example", random_suffix()),
        "password": PASSWORD,
        "name": name,
        "affiliation": "Tokyo Regulatory Partners",
        "expertise": [{"category": "regulatory", "level": 2}],
        "product_types": ["medical_device"],
        "languages": ["ja"],
        "capacity": 3,
        "conflicts": [],
    })
}

/// A meeting body for `expert_id`; tests change the fields they are about.
pub fn meeting_body(expert_id: &Value) -> Value {
    json!({
        "expert_id": expert_id,
        "starts_at": "2037-12-03T10:00:00+09:00",
        "duration_minutes": 60,
        "mode": "online",
    })
}

impl TestApp {
    pub async fn patch_json(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn put_json(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    // --- registry ------------------------------------------------------

    pub async fn create_expert(&self, token: &str, body: &Value) -> Response {
        self.post("/api/v1/experts", Some(token), body).await
    }

    pub async fn list_experts(&self, token: &str) -> Response {
        self.get("/api/v1/experts", Some(token)).await
    }

    pub async fn get_expert(&self, token: &str, id: &Value) -> Response {
        self.get(&path("/api/v1/experts", id, ""), Some(token))
            .await
    }

    pub async fn update_expert(&self, token: &str, id: &Value, body: &Value) -> Response {
        self.patch_json(&path("/api/v1/experts", id, ""), token, body)
            .await
    }

    /// `POST /api/v1/auth/password` with the mailed token.
    pub async fn set_password(&self, token: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/password",
            None,
            &json!({"token": token, "password": password}),
        )
        .await
    }

    // --- matching and assignments ---------------------------------------

    pub async fn suggestions(&self, token: &str, case_id: &Value) -> Response {
        self.get(&case_path(case_id, "/suggestions"), Some(token))
            .await
    }

    pub async fn assign(
        &self,
        token: &str,
        case_id: &Value,
        expert_id: &Value,
        role: &str,
    ) -> Response {
        self.post(
            &case_path(case_id, "/assignments"),
            Some(token),
            &json!({"expert_id": expert_id, "role": role}),
        )
        .await
    }

    pub async fn accept_assignment(&self, token: &str, assignment_id: &Value) -> Response {
        self.post(
            &path("/api/v1/assignments", assignment_id, "/accept"),
            Some(token),
            &json!({}),
        )
        .await
    }

    pub async fn decline_assignment(
        &self,
        token: &str,
        assignment_id: &Value,
        body: &Value,
    ) -> Response {
        self.post(
            &path("/api/v1/assignments", assignment_id, "/decline"),
            Some(token),
            body,
        )
        .await
    }

    pub async fn withdraw_assignment(&self, token: &str, assignment_id: &Value) -> Response {
        self.post(
            &path("/api/v1/assignments", assignment_id, "/withdraw"),
            Some(token),
            &json!({}),
        )
        .await
    }

    pub async fn complete_assignment(&self, token: &str, assignment_id: &Value) -> Response {
        self.post(
            &path("/api/v1/assignments", assignment_id, "/complete"),
            Some(token),
            &json!({}),
        )
        .await
    }

    /// The caller's queue; `query` is the raw query string without `?`.
    pub async fn my_assignments(&self, token: &str, query: &str) -> Response {
        self.get(&format!("/api/v1/assignments?{query}"), Some(token))
            .await
    }

    pub async fn case_assignments(&self, token: &str, case_id: &Value) -> Response {
        self.get(&case_path(case_id, "/assignments"), Some(token))
            .await
    }

    // --- meetings and support plans --------------------------------------

    pub async fn create_meeting(&self, token: &str, case_id: &Value, body: &Value) -> Response {
        self.post(&case_path(case_id, "/meetings"), Some(token), body)
            .await
    }

    pub async fn meetings(&self, token: &str, case_id: &Value) -> Response {
        self.get(&case_path(case_id, "/meetings"), Some(token))
            .await
    }

    pub async fn record_advice(&self, token: &str, meeting_id: &Value, advice: &str) -> Response {
        self.patch_json(
            &path("/api/v1/meetings", meeting_id, ""),
            token,
            &json!({ "advice_summary": advice }),
        )
        .await
    }

    pub async fn write_plan(&self, token: &str, case_id: &Value, body: &str) -> Response {
        self.put_json(
            &case_path(case_id, "/support-plan"),
            token,
            &json!({ "body": body }),
        )
        .await
    }

    pub async fn support_plan(&self, token: &str, case_id: &Value) -> Response {
        self.get(&case_path(case_id, "/support-plan"), Some(token))
            .await
    }

    // --- expert scenario shortcuts ---------------------------------------

    /// Registers `profile` (which must carry a password) as `admin`,
    /// asserting 201, and signs the expert in.
    pub async fn registered_expert(&self, admin: &str, profile: Value) -> Expert {
        let created = json_body(
            self.create_expert(admin, &profile).await,
            StatusCode::CREATED,
        )
        .await;
        let email = profile["email"]
            .as_str()
            .expect("profile e-mail")
            .to_owned();
        let password = profile["password"].as_str().expect("profile password");
        let token = self.tokens(&email, password).await.0;
        Expert {
            id: created["id"].clone(),
            user: User {
                email,
                token,
                id: created["user_id"].clone(),
                organization_id: Value::Null,
            },
        }
    }

    /// The expert as the registry shows it to `token` now (asserting 200).
    pub async fn expert_record(&self, token: &str, expert: &Expert) -> Value {
        json_body(self.get_expert(token, &expert.id).await, StatusCode::OK).await
    }

    /// Registers [`expert_profile`]`(name)` as `admin` and signs the expert in.
    pub async fn expert_named(&self, admin: &str, name: &str) -> Expert {
        self.registered_expert(admin, expert_profile(name)).await
    }

    /// [`Self::expert_named`] for each of `names`, in that order (so their
    /// registry ids ascend in that order too).
    pub async fn experts_named<const N: usize>(
        &self,
        admin: &str,
        names: [&str; N],
    ) -> [Expert; N] {
        let mut experts = Vec::with_capacity(N);
        for name in names {
            experts.push(self.expert_named(admin, name).await);
        }
        experts.try_into().expect("one expert a name")
    }

    /// The registry's expert ids as `token` lists them (asserting 200).
    pub async fn listed_expert_ids(&self, token: &str) -> Vec<Value> {
        let list = json_body(self.list_experts(token).await, StatusCode::OK).await;
        ids(&list["items"])
    }

    /// Files the default intake (medical device, Japanese) as `applicant`;
    /// `supporter` claims it and triages it to experts with the confirmed
    /// `categories`. Returns the case, now `matching`.
    pub async fn matching_case(
        &self,
        supporter: &User,
        applicant: &User,
        categories: &[&str],
    ) -> Value {
        let case = self.new_case(&applicant.token).await;
        self.claimed(&supporter.token, &case["id"]).await;
        let mut triage = triage_body("expert");
        triage["categories"] = json!(categories);
        let case = json_body(
            self.triage(&supporter.token, &case["id"], &triage, None)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(case["status"], "matching");
        case
    }

    /// [`Self::matching_case`] on the one category most expert tests need:
    /// the default intake, triaged to experts on `regulatory`.
    pub async fn regulatory_case(&self, supporter: &User, applicant: &User) -> Value {
        self.matching_case(supporter, applicant, &["regulatory"])
            .await
    }

    /// Proposes `expert` for the case as a member, asserting 201; returns the assignment.
    pub async fn proposed(&self, supporter: &User, case_id: &Value, expert: &Expert) -> Value {
        json_body(
            self.assign(&supporter.token, case_id, &expert.id, "member")
                .await,
            StatusCode::CREATED,
        )
        .await
    }

    /// `expert` accepts `assignment`, asserting 200; returns the assignment.
    pub async fn accepted(&self, expert: &Expert, assignment: &Value) -> Value {
        json_body(
            self.accept_assignment(&expert.user.token, &assignment["id"])
                .await,
            StatusCode::OK,
        )
        .await
    }

    /// `expert` declines `assignment` with `reason`, asserting 200; returns the assignment.
    pub async fn declined(&self, expert: &Expert, assignment: &Value, reason: &str) -> Value {
        json_body(
            self.decline_assignment(
                &expert.user.token,
                &assignment["id"],
                &json!({ "reason": reason }),
            )
            .await,
            StatusCode::OK,
        )
        .await
    }

    /// `supporter` withdraws `assignment`, asserting 200; returns the assignment.
    pub async fn withdrawn(&self, supporter: &User, assignment: &Value) -> Value {
        json_body(
            self.withdraw_assignment(&supporter.token, &assignment["id"])
                .await,
            StatusCode::OK,
        )
        .await
    }

    /// `expert` completes `assignment`, asserting 200; returns the assignment.
    pub async fn completed(&self, expert: &Expert, assignment: &Value) -> Value {
        json_body(
            self.complete_assignment(&expert.user.token, &assignment["id"])
                .await,
            StatusCode::OK,
        )
        .await
    }

    /// Proposes `expert` and lets them accept; returns the accepted assignment.
    pub async fn engaged(&self, supporter: &User, case_id: &Value, expert: &Expert) -> Value {
        let assignment = self.proposed(supporter, case_id, expert).await;
        self.accepted(expert, &assignment).await
    }

    /// The suggestions for the case as `supporter` sees them (asserting 200).
    pub async fn ranking(&self, supporter: &User, case_id: &Value) -> Value {
        json_body(
            self.suggestions(&supporter.token, case_id).await,
            StatusCode::OK,
        )
        .await
    }
}
