//! The expert registry and explained suggestions for a case.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::{AuthUser, Json, body};
use super::problem::ApiError;
use super::schema::{
    Affiliation, Email, ExclusionReason, IsoDate, Languages, OrganizationName, Password,
    PersonName, ProductTypes,
};
use crate::auth::tokens;
use crate::clock;
use crate::db::experts::{self as store, ExpertProfileData, ExpertRecord};
use crate::db::users::NewUser;
use crate::db::{cases, outbox, users};
use crate::desk::experts::{expert_profile, match_case};
use crate::domain::account::{EmailAddress, Locale, NewPassword, parse_display_name};
use crate::domain::case::Problems;
use crate::domain::conflicts::normalize_organization_name;
use crate::domain::matching::ExpertProfile;
use crate::domain::role::Role;
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
    #[serde(flatten)]
    pub profile: ProfileInput,
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

fn unique_codes<T: std::str::FromStr + PartialEq + Copy>(
    problems: &mut Problems,
    field: &str,
    raw: &[String],
) -> Option<Vec<T>>
where
    T::Err: ToString,
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

/// Validates `input` over `base` (the current profile when patching).
fn merge_profile(
    input: &ProfileInput,
    base: Option<&ExpertProfileData>,
) -> Result<ExpertProfileData, ApiError> {
    let mut problems = Problems::default();
    let name = match (&input.name, base) {
        (Some(n), _) => problems.check("name", parse_display_name(n, 100)),
        (None, Some(b)) => Some(b.name.clone()),
        (None, None) => problems.required("name", None).map(str::to_owned),
    };
    let affiliation = match (&input.affiliation, base) {
        (Some(a), _) if a.trim().is_empty() => Some(String::new()),
        (Some(a), _) => problems.check("affiliation", parse_display_name(a, 200)),
        (None, Some(b)) => Some(b.affiliation.clone()),
        (None, None) => Some(String::new()),
    };
    let expertise = match (&input.expertise, base) {
        (Some(list), _) => {
            let mut seen: Vec<Category> = Vec::new();
            let mut rows = Vec::new();
            for item in list {
                match item.category.parse::<Category>() {
                    Ok(c) if seen.contains(&c) => {
                        problems.push("expertise", format!("lists {} twice", c.as_str()))
                    }
                    Ok(c) => {
                        seen.push(c);
                        if (1..=3).contains(&item.level) {
                            rows.push((c.as_str().to_owned(), item.level));
                        } else {
                            problems.push("expertise", "levels are 1, 2 or 3");
                        }
                    }
                    Err(e) => problems.push("expertise", e.to_string()),
                }
            }
            if list.is_empty() {
                problems.push("expertise", "must name at least one category");
            }
            Some(rows)
        }
        (None, Some(b)) => Some(b.expertise.clone()),
        (None, None) => {
            problems.push("expertise", "must name at least one category");
            None
        }
    };
    let product_types = match (&input.product_types, base) {
        (Some(list), _) => unique_codes::<ProductType>(&mut problems, "product_types", list)
            .map(|v| v.iter().map(|p| p.as_str().to_owned()).collect()),
        (None, Some(b)) => Some(b.product_types.clone()),
        (None, None) => Some(Vec::new()),
    };
    let languages = match (&input.languages, base) {
        (Some(list), _) if list.is_empty() => {
            problems.push("languages", "must name ja and/or en");
            None
        }
        (Some(list), _) => unique_codes::<Lang>(&mut problems, "languages", list)
            .map(|v| v.iter().map(|l| l.as_str().to_owned()).collect()),
        (None, Some(b)) => Some(b.languages.clone()),
        (None, None) => Some(vec![Lang::Ja.as_str().to_owned()]),
    };
    let capacity = match (input.capacity, base) {
        (Some(c), _) if (1..=50).contains(&c) => Some(c),
        (Some(_), _) => {
            problems.push("capacity", "must be from 1 to 50");
            None
        }
        (None, Some(b)) => Some(b.capacity),
        (None, None) => Some(3),
    };
    let conflicts = match (&input.conflicts, base) {
        (Some(list), _) if list.len() > 200 => {
            problems.push("conflicts", "at most 200 organisations");
            None
        }
        (Some(list), _) => {
            let mut rows: Vec<(String, String)> = Vec::new();
            for name in list {
                match parse_display_name(name, 200) {
                    Ok(name) => {
                        let normalized = normalize_organization_name(&name);
                        if normalized.is_empty() {
                            problems.push("conflicts", format!("{name:?} names no organisation"));
                        } else if !rows.iter().any(|(n, _)| *n == name) {
                            rows.push((name, normalized));
                        }
                    }
                    Err(e) => problems.push("conflicts", e),
                }
            }
            Some(rows)
        }
        (None, Some(b)) => Some(b.conflicts.clone()),
        (None, None) => Some(Vec::new()),
    };
    let paused_until = match (&input.paused_until, base) {
        (Some(Some(date)), _) => problems
            .check(
                "paused_until",
                date.parse::<NaiveDate>()
                    .map_err(|_| "must be a date YYYY-MM-DD"),
            )
            .map(|d| Some(d.to_string())),
        (Some(None), _) => Some(None),
        (None, Some(b)) => Some(b.paused_until.clone()),
        (None, None) => Some(None),
    };
    problems.into_result().map_err(ApiError::from)?;
    Ok(ExpertProfileData {
        name: name.expect("checked"),
        affiliation: affiliation.expect("checked"),
        capacity: capacity.expect("checked"),
        paused_until: paused_until.expect("checked"),
        expertise: expertise.expect("checked"),
        product_types: product_types.expect("checked"),
        languages: languages.expect("checked"),
        conflicts: conflicts.expect("checked"),
    })
}

fn profile_of(record: &ExpertRecord) -> ExpertProfileData {
    ExpertProfileData {
        name: record.row.name.clone(),
        affiliation: record.row.affiliation.clone(),
        capacity: record.row.capacity,
        paused_until: record.row.paused_until.clone(),
        expertise: record.expertise.clone(),
        product_types: record.product_types.clone(),
        languages: record.languages.clone(),
        conflicts: record.conflicts.clone(),
    }
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
    caller.require(&[Role::Admin])?;
    let body = body.into_inner();
    let mut problems = Problems::default();
    let email = problems
        .required("email", body.email.as_deref())
        .and_then(|e| problems.check("email", EmailAddress::parse(e)));
    let password = body
        .password
        .as_deref()
        .and_then(|p| problems.check("password", NewPassword::parse(p)));
    let profile = merge_profile(&body.profile, None);
    let profile = match (problems.into_result(), profile) {
        (Ok(()), Ok(profile)) => profile,
        (Err(mut a), Err(ApiError::Validation(b))) => {
            a.extend(
                b.into_iter()
                    .map(|f| crate::domain::case::Invalid::new(f.field, f.message)),
            );
            return Err(a.into());
        }
        (Err(a), _) => return Err(a.into()),
        (Ok(()), Err(e)) => return Err(e),
    };
    let email = email.expect("checked").into_string();
    let password_hash = match &password {
        Some(p) => state.hasher.hash(p.expose().to_owned()).await,
        // No password yet: nothing can match this until the expert sets one.
        None => "!unset".to_owned(),
    };
    let set_password = password.is_none().then(tokens::new_refresh_token);
    let record = state
        .db
        .write(move |conn| {
            let now = clock::now_micros();
            let user_id = match users::find_by_email(conn, &email)? {
                Some(user) if user.role != Role::Expert.as_str() => {
                    return Err(ApiError::conflict(
                        "this e-mail belongs to an account that is not an expert",
                    ));
                }
                Some(user) => {
                    if store::find_by_user(conn, user.id)?.is_some() {
                        return Err(ApiError::conflict("this expert is already registered"));
                    }
                    user.id
                }
                None => {
                    let user = users::insert(
                        conn,
                        &NewUser {
                            email: &email,
                            password_hash: &password_hash,
                            name: &profile.name,
                            role: Role::Expert.as_str(),
                            locale: Locale::Ja.as_str(),
                            organization_id: None,
                            created_at: now,
                        },
                    )?;
                    if let Some(token) = &set_password {
                        users::insert_password_token(
                            conn,
                            user.id,
                            &tokens::hash_refresh_token(token),
                            now + 7 * 24 * 3600 * 1_000_000,
                            now,
                        )?;
                        outbox::enqueue(
                            conn,
                            &crate::mail::templates::expert_welcome(
                                Locale::Ja,
                                &email,
                                &profile.name,
                                token,
                            ),
                            now,
                        )?;
                    }
                    user.id
                }
            };
            let id = store::insert(conn, user_id, &profile, now)?;
            store::find(conn, id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    state.desk.mail_signal.queued();
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
    caller.require(&[Role::Supporter, Role::Admin])?;
    let records = state.db.read(store::all).await?;
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
    caller.require(&[Role::Supporter, Role::Admin])?;
    let id = id.into_inner();
    let record = state
        .db
        .read(move |conn| store::find(conn, id))
        .await?
        .ok_or(ApiError::NotFound)?;
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
    caller.require(&[Role::Admin])?;
    let id = id.into_inner();
    let input = body.into_inner();
    let record = state
        .db
        .write(move |conn| {
            let current = store::find(conn, id)?.ok_or(ApiError::NotFound)?;
            let profile = merge_profile(&input, Some(&profile_of(&current)))?;
            store::update(conn, id, &profile, clock::now_micros())?;
            store::find(conn, id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(HttpResponse::Ok().json(expert_response(record)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionItem {
    pub expert_id: i64,
    pub name: String,
    #[schema(minimum = 0)]
    pub score: u32,
    /// Why the expert fits, for people.
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExcludedItem {
    pub expert_id: i64,
    pub name: String,
    #[schema(value_type = ExclusionReason)]
    pub reason: String,
    pub detail: String,
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
    caller.require(&[Role::Supporter, Role::Admin])?;
    let limit = match query.limit {
        None => 20,
        Some(n) if (1..=100).contains(&n) => n,
        Some(_) => return Err(ApiError::field("limit", "must be from 1 to 100")),
    };
    let id = id.into_inner();
    let list = state
        .db
        .read(move |conn| {
            let case = cases::find(conn, id)?.ok_or(ApiError::NotFound)?;
            let records = store::all(conn)?;
            let profiles: Vec<ExpertProfile> = records.iter().map(expert_profile).collect();
            let result = match_case(conn, &case, &profiles, limit)?;
            let names: std::collections::HashMap<i64, &str> =
                profiles.iter().map(|p| (p.id, p.name.as_str())).collect();
            let name_of = |id: i64| names.get(&id).copied().unwrap_or_default().to_owned();
            Ok::<_, ApiError>(SuggestionList {
                items: result
                    .items
                    .into_iter()
                    .map(|s| SuggestionItem {
                        name: name_of(s.expert_id),
                        expert_id: s.expert_id,
                        score: s.score,
                        reasons: s.reasons,
                    })
                    .collect(),
                excluded: result
                    .excluded
                    .into_iter()
                    .map(|e| ExcludedItem {
                        name: name_of(e.expert_id),
                        expert_id: e.expert_id,
                        reason: e.reason.code().to_owned(),
                        detail: e.detail,
                    })
                    .collect(),
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}
