//! Experts, as API.md's "Experts and matching", PRODUCT.md's "Expert registry
//! and matching" and docs/matching.md pin them: the registry, explained
//! suggestions, assignments, what an expert sees of a case, meetings and
//! support plans.
//!
//! One module a section; what more than one section uses is here, and the
//! endpoint methods and scenario shortcuts are in `crate::expert_helpers`.

mod assignments;
mod meetings;
mod registry;
mod suggestions;
mod support_plan;
mod visibility;

use chrono::DateTime;
use serde_json::Value;

use crate::expert_helpers::{Expert, expert_profile};
use crate::helpers::{Backend, TestApp, User};

/// Far enough ahead that "today" never reaches it.
const FAR_FUTURE: &str = "2999-12-31";

/// A fresh app, an admin token and a signed-in supporter.
async fn desk(backend: Backend) -> (TestApp, String, User) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let supporter = app.staff("supporter").await;
    (app, admin, supporter)
}

/// What most expert tests start from: [`desk`] and a signed-in applicant of
/// 株式会社メドテック.
async fn desk_with_applicant(backend: Backend) -> (TestApp, String, User, User) {
    let (app, admin, supporter) = desk(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    (app, admin, supporter, applicant)
}

/// `base` with the top-level fields of `change` replaced.
fn with(mut base: Value, change: Value) -> Value {
    let base_fields = base.as_object_mut().expect("an object");
    for (key, value) in change.as_object().expect("an object") {
        base_fields.insert(key.clone(), value.clone());
    }
    base
}

/// The default profile named `name`, with `change` applied.
fn profile(name: &str, change: Value) -> Value {
    with(expert_profile(name), change)
}

/// The suggested expert ids, best first.
fn suggested(ranking: &Value) -> Vec<Value> {
    ranking["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["expert_id"].clone())
        .collect()
}

/// The `excluded` entry of `expert`, if any.
fn exclusion<'a>(ranking: &'a Value, expert: &Expert) -> Option<&'a Value> {
    ranking["excluded"]
        .as_array()
        .expect("excluded")
        .iter()
        .find(|e| e["expert_id"] == expert.id)
}

/// The exclusion reason code of `expert`, if excluded.
fn reason_of(ranking: &Value, expert: &Expert) -> Option<String> {
    exclusion(ranking, expert).map(|e| e["reason"].as_str().expect("reason").to_owned())
}

fn instant(text: &Value) -> DateTime<chrono::FixedOffset> {
    let text = text.as_str().expect("a time");
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text} is not RFC 3339: {e}"))
}
