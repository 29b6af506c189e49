//! The expert registry and explained suggestions for a case: requests parsed
//! into the commands of `crate::desk::experts`, its results shaped as JSON.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::{AuthUser, Json, body};
use super::problem::ApiError;
use super::schema::{
    Affiliation, Email, ExclusionReason, IsoDate, Languages, OrganizationName, Password,
    PersonName, ProductTypes, ReasonCode,
};
use crate::clock;
use crate::db::experts::ExpertRecord;
use crate::desk::experts::{
    self, Conflict, ExcludedExpert, Expertise as CheckedExpertise, ProfileChange, SuggestedExpert,
};
use crate::domain::account::{
    AFFILIATION_MAX_CHARS, EmailAddress, NAME_MAX_CHARS, NewPassword, ORGANIZATION_MAX_CHARS,
    parse_display_name,
};
use crate::domain::conflicts::normalize_organization_name;
use crate::domain::validation::{Problems, Refusal};
use crate::domain::vocabulary::{Category, Lang, ProductType};

#[derive(Debug, Serialize, Deserialize, ToSchema, Clone)]
pub struct Expertise {
    #[schema(value_type = Category)]
    pub category: String,
    /// 1 (basic) to 3 (leading).
    #[serde(deserialize_with = "body::integer")]
    #[schema(minimum = 1, maximum = 3, example = 3)]
    pub level: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpertResponse {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// Empty when none was given.
    pub affiliation: String,
    pub expertise: Vec<Expertise>,
    #[schema(value_type = Vec<ProductType>)]
    pub product_types: Vec<String>,
    #[schema(value_type = Vec<Lang>)]
    pub languages: Vec<String>,
    #[schema(minimum = 1, maximum = 50)]
    pub capacity: i32,
    /// Proposed and accepted assignments now.
    #[schema(minimum = 0)]
    pub active_load: i64,
    /// Paused until this date (exclusive); null when available.
    #[schema(required, format = Date)]
    pub paused_until: Option<String>,
    /// Organisation names the expert must not advise.
    pub conflicts: Vec<String>,
    #[schema(required, format = DateTime)]
    pub last_assigned_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpertList {
    pub items: Vec<ExpertResponse>,
}

fn expert_response(record: ExpertRecord) -> ExpertResponse {
    ExpertResponse {
        id: record.row.id,
        user_id: record.row.user_id,
        name: record.row.name,
        affiliation: record.row.affiliation,
        expertise: record
            .expertise
            .into_iter()
            .map(|(category, level)| Expertise { category, level })
            .collect(),
        product_types: record.product_types,
        languages: record.languages,
        capacity: record.row.capacity,
        active_load: record.active_load,
        paused_until: record.row.paused_until,
        conflicts: record.conflicts.into_iter().map(|(name, _)| name).collect(),
        last_assigned_at: record.row.last_assigned_at.map(clock::to_rfc3339),
    }
}

/// The profile fields shared by create and patch (patch: absent fields stay
/// as they are; a category is listed at most once in `expertise`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ProfileInput {
    #[schema(value_type = Option<PersonName>)]
    pub name: Option<String>,
    #[schema(value_type = Option<Affiliation>)]
    pub affiliation: Option<String>,
    #[serde(default, deserialize_with = "body::objects")]
    #[schema(min_items = 1)]
    pub expertise: Option<Vec<Expertise>>,
    #[schema(value_type = Option<ProductTypes>)]
    pub product_types: Option<Vec<String>>,
    #[schema(value_type = Option<Languages>)]
    pub languages: Option<Vec<String>>,
    /// Maximum concurrent active cases.
    #[serde(default, deserialize_with = "body::optional_integer")]
    #[schema(minimum = 1, maximum = 50)]
    pub capacity: Option<i32>,
    /// Organisation names the expert must not advise.
    #[schema(value_type = Option<Vec<OrganizationName>>, max_items = 200)]
    pub conflicts: Option<Vec<String>>,
    /// Pause until this date; null to make available.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<IsoDate>)]
    pub paused_until: Option<Option<String>>,
}

/// Distinguishes an absent field (None) from an explicit null (Some(None)).
fn double_option<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
pub struct CreateExpertRequest {
    pub email: Option<String>,
    /// Optional: without it the expert gets a mail to set one.
    pub password: Option<String>,
    /// The [`ProfileInput`] fields, read by [`super::extract::from_value`]
    /// so that a field of the wrong type is named by its path.
    #[serde(flatten)]
    pub profile: serde_json::Map<String, serde_json::Value>,
}

/// A new expert: the profile fields (`name` and `expertise` required here,
/// the rest defaulted) beside `email` and `password`. (The handler reads it
/// as `CreateExpertRequest`, a `ProfileInput` flattened beside the two.)
#[derive(ToSchema)]
#[schema(as = CreateExpertRequest)]
#[allow(dead_code)]
pub struct CreateExpertBody {
    /// The expert's sign-in address; an existing expert account is linked.
    #[schema(value_type = Email)]
    email: String,
    /// Without it the expert gets a mail to set one.
    #[schema(value_type = Option<Password>)]
    password: Option<String>,
    #[schema(value_type = PersonName)]
    name: String,
    /// Empty when absent.
    #[schema(value_type = Option<Affiliation>)]
    affiliation: Option<String>,
    /// A category at most once.
    #[schema(min_items = 1)]
    expertise: Vec<Expertise>,
    /// None when absent.
    #[schema(value_type = Option<ProductTypes>)]
    product_types: Option<Vec<String>>,
    /// `["ja"]` when absent.
    #[schema(value_type = Option<Languages>)]
    languages: Option<Vec<String>>,
    /// Maximum concurrent active cases; 3 when absent.
    #[schema(minimum = 1, maximum = 50)]
    capacity: Option<i32>,
    /// Organisation names the expert must not advise.
    #[schema(value_type = Option<Vec<OrganizationName>>, max_items = 200)]
    conflicts: Option<Vec<String>>,
    /// Pause until this date; null or absent: available.
    #[schema(value_type = Option<IsoDate>)]
    paused_until: Option<String>,
}

/// The codes of `raw`, each at most once.
fn unique_codes<T: std::str::FromStr + PartialEq + Copy>(
    problems: &mut Problems,
    field: &str,
    raw: &[String],
) -> Option<Vec<T>>
where
    T::Err: Into<Refusal>,
{
    let mut parsed = Vec::with_capacity(raw.len());
    for code in raw {
        let value = problems.check(field, code.parse::<T>())?;
        if parsed.contains(&value) {
            problems.push(field, format!("lists {code:?} twice"));
            return None;
        }
        parsed.push(value);
    }
    Some(parsed)
}

/// The fields `input` gives, checked; every problem goes to `problems`
/// (`None` for a field then). A new expert (`new`) must have a name and
/// expertise.
fn profile_change(
    problems: &mut Problems,
    input: &ProfileInput,
    new: bool,
) -> Option<ProfileChange> {
    let name = match &input.name {
        Some(n) => problems
            .check("name", parse_display_name(n, NAME_MAX_CHARS))
            .map(Some),
        None if new => problems.required("name", None).map(|n| Some(n.to_owned())),
        None => Some(None),
    };
    let affiliation = match &input.affiliation {
        Some(a) if a.trim().is_empty() => Some(Some(String::new())),
        Some(a) => problems
            .check("affiliation", parse_display_name(a, AFFILIATION_MAX_CHARS))
            .map(Some),
        None => Some(None),
    };
    let expertise = match &input.expertise {
        Some(list) => {
            let mut seen: Vec<Category> = Vec::new();
            let mut parsed: Vec<CheckedExpertise> = Vec::new();
            let mut valid = true;
            for item in list {
                match item.category.parse::<Category>() {
                    Ok(c) if seen.contains(&c) => {
                        problems.push("expertise", format!("lists {} twice", c.as_str()));
                        valid = false;
                    }
                    Ok(c) => {
                        seen.push(c);
                        match u8::try_from(item.level)
                            .ok()
                            .filter(|l| experts::LEVELS.contains(l))
                        {
                            Some(level) => parsed.push(CheckedExpertise { category: c, level }),
                            None => {
                                problems.push("expertise", "levels are 1, 2 or 3");
                                valid = false;
                            }
                        }
                    }
                    Err(e) => {
                        problems.push("expertise", e.to_string());
                        valid = false;
                    }
                }
            }
            if list.is_empty() {
                problems.push("expertise", "must name at least one category");
                valid = false;
            }
            valid.then_some(Some(parsed))
        }
        None if new => {
            problems.push("expertise", "must name at least one category");
            None
        }
        None => Some(None),
    };
    let product_types = match &input.product_types {
        Some(list) => unique_codes::<ProductType>(problems, "product_types", list).map(Some),
        None => Some(None),
    };
    let languages = match &input.languages {
        Some(list) if list.is_empty() => {
            problems.push("languages", "must name ja and/or en");
            None
        }
        Some(list) => unique_codes::<Lang>(problems, "languages", list).map(Some),
        None => Some(None),
    };
    let capacity = match input.capacity {
        Some(c) if experts::CAPACITY.contains(&c) => Some(Some(c)),
        Some(_) => {
            problems.push("capacity", "must be from 1 to 50");
            None
        }
        None => Some(None),
    };
    let conflicts = match &input.conflicts {
        Some(list) if list.len() > experts::MAX_CONFLICTS => {
            problems.push("conflicts", "at most 200 organisations");
            None
        }
        Some(list) => {
            let mut parsed: Vec<Conflict> = Vec::new();
            let mut valid = true;
            for name in list {
                match parse_display_name(name, ORGANIZATION_MAX_CHARS) {
                    Ok(name) => {
                        let normalized = normalize_organization_name(&name);
                        if normalized.is_empty() {
                            problems.push("conflicts", format!("{name:?} names no organisation"));
                            valid = false;
                        } else if !parsed.iter().any(|c| c.name == name) {
                            parsed.push(Conflict { name, normalized });
                        }
                    }
                    Err(e) => {
                        problems.push("conflicts", e);
                        valid = false;
                    }
                }
            }
            valid.then_some(Some(parsed))
        }
        None => Some(None),
    };
    let paused_until = match &input.paused_until {
        Some(Some(date)) => problems
            .check(
                "paused_until",
                date.parse::<NaiveDate>()
                    .map_err(|_| "must be a date YYYY-MM-DD"),
            )
            .map(|d| Some(Some(d))),
        Some(None) => Some(Some(None)),
        None => Some(None),
    };
    Some(ProfileChange {
        name: name?,
        affiliation: affiliation?,
        expertise: expertise?,
        product_types: product_types?,
        languages: languages?,
        capacity: capacity?,
        conflicts: conflicts?,
        paused_until: paused_until?,
    })
}

/// Register an expert; creates (or links) the `expert` user.
#[utoipa::path(
    tag = "experts",
    request_body = CreateExpertBody,
    security(("bearer" = [])),
    responses(
        (status = 201, body = ExpertResponse),
        (status = 403, description = "admins only"),
        (status = 409, description = "the e-mail belongs to a non-expert, or the expert exists"),
    )
)]
#[post("/api/v1/experts")]
pub async fn create_expert(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: Json<CreateExpertRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(experts::REGISTRARS)?;
    let body = body.into_inner();
    let mut problems = Problems::default();
    let email = problems
        .required("email", body.email.as_deref())
        .and_then(|e| problems.check("email", EmailAddress::parse(e)));
    let password = match body.password.as_deref() {
        None => Some(None),
        Some(p) => problems.check("password", NewPassword::parse(p)).map(Some),
    };
    let input: ProfileInput = super::extract::from_value(serde_json::Value::Object(body.profile))?;
    let change = profile_change(&mut problems, &input, true);
    let (email, password, profile) =
        problems.finish(|| Some((email?, password?, change?.into_new()?)))?;
    let password_hash = match password {
        Some(p) => Some(state.hasher.hash(p.expose().to_owned()).await),
        None => None,
    };
    let command = experts::RegisterExpert {
        email,
        password_hash,
        profile,
    };
    let record = experts::register_expert(&state.desk, caller, command).await?;
    Ok(HttpResponse::Created().json(expert_response(record)))
}

/// Every registered expert.
#[utoipa::path(
    tag = "experts",
    security(("bearer" = [])),
    responses(
        (status = 200, body = ExpertList),
        (status = 403, description = "desk staff only"),
    )
)]
#[get("/api/v1/experts")]
pub async fn list_experts(
    state: web::Data<AppState>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let records = experts::registry(&state.desk, caller).await?;
    let items: Vec<ExpertResponse> = records.into_iter().map(expert_response).collect();
    Ok(HttpResponse::Ok().json(ExpertList { items }))
}

/// One expert.
#[utoipa::path(
    tag = "experts",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = ExpertResponse),
        (status = 403, description = "desk staff only"),
    )
)]
#[get("/api/v1/experts/{id}")]
pub async fn get_expert(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let record = experts::expert(&state.desk, caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(expert_response(record)))
}

/// Change an expert's profile; absent fields stay as they are.
#[utoipa::path(
    tag = "experts",
    request_body = ProfileInput,
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = ExpertResponse),
        (status = 403, description = "admins only"),
    )
)]
#[patch("/api/v1/experts/{id}")]
pub async fn update_expert(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    body: Json<ProfileInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(experts::REGISTRARS)?;
    let mut problems = Problems::default();
    let change = profile_change(&mut problems, &body, false);
    let change = problems.finish(|| change)?;
    let record = experts::update_expert(&state.desk, caller, id.into_inner(), change).await?;
    Ok(HttpResponse::Ok().json(expert_response(record)))
}

/// One reason of a suggestion: its code, its parameters and its label.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonDetail {
    /// `covers_category` (params `category`, `level`), `product_type`
    /// (`product_type`), `speaks` / `does_not_speak` (`language`), `load`
    /// (`load`, `capacity`).
    #[schema(value_type = ReasonCode)]
    pub code: &'static str,
    #[schema(value_type = Object)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The reason in the caller's language (`locale`).
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionItem {
    pub expert_id: i64,
    pub name: String,
    #[schema(minimum = 0)]
    pub score: u32,
    /// Why the expert fits, for people, in the caller's language: the
    /// `label`s of `reason_details`, in the same order.
    pub reasons: Vec<String>,
    /// The same reasons with their codes and parameters.
    pub reason_details: Vec<ReasonDetail>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExcludedItem {
    pub expert_id: i64,
    pub name: String,
    /// The code (kept as it was: clients match on it, and a 409 of an
    /// assignment names the same code in its own `reason`).
    #[schema(value_type = ExclusionReason)]
    pub reason: String,
    /// The same code, named as in `reason_details` of a suggestion.
    #[schema(value_type = ExclusionReason)]
    pub reason_code: &'static str,
    /// What the code is about (`organization`, `until`, `load` and
    /// `capacity`; empty for the others).
    #[schema(value_type = Object)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The reason in the caller's language (`locale`).
    pub label: String,
    /// The same as `label`.
    pub detail: String,
}

/// `value`'s fields without its `tag` (the code): the parameters.
fn params_of(value: &impl Serialize, tag: &str) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.remove(tag);
            fields
        }
        _ => serde_json::Map::new(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionList {
    pub items: Vec<SuggestionItem>,
    pub excluded: Vec<ExcludedItem>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SuggestionQuery {
    /// How many experts to rank; 20 when absent.
    #[param(value_type = i64, required = false, minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

/// Ranked experts for a case, with reasons, and who was excluded and why.
#[utoipa::path(
    tag = "experts",
    security(("bearer" = [])),
    params(("id" = i64, Path), SuggestionQuery),
    responses(
        (status = 200, body = SuggestionList),
        (status = 403, description = "desk staff only"),
    )
)]
#[get("/api/v1/cases/{id}/suggestions")]
pub async fn suggestions(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<i64>,
    query: web::Query<SuggestionQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(experts::SUGGESTIONS_DEFAULT_LIMIT);
    let found = experts::suggestions(&state.desk, caller, id.into_inner(), limit).await?;
    let lang = found.lang;
    Ok(HttpResponse::Ok().json(SuggestionList {
        items: found
            .items
            .into_iter()
            .map(|SuggestedExpert { suggestion, name }| SuggestionItem {
                expert_id: suggestion.expert_id,
                name,
                score: suggestion.score,
                reasons: suggestion.reason_labels(lang),
                reason_details: suggestion
                    .reasons
                    .iter()
                    .map(|reason| ReasonDetail {
                        code: reason.code(),
                        params: params_of(reason, "code"),
                        label: reason.label(lang),
                    })
                    .collect(),
            })
            .collect(),
        excluded: found
            .excluded
            .into_iter()
            .map(|ExcludedExpert { excluded, name }| {
                let label = excluded.reason.label(lang);
                ExcludedItem {
                    expert_id: excluded.expert_id,
                    name,
                    reason: excluded.reason.code().to_owned(),
                    reason_code: excluded.reason.code(),
                    params: params_of(&excluded.reason, "reason"),
                    detail: label.clone(),
                    label,
                }
            })
            .collect(),
    }))
}
