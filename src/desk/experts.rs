//! The expert registry and the suggestions for a case.
//!
//! Admins register experts and edit their profiles; desk staff read the
//! registry and ask which experts fit a case. Who fits, who is excluded and
//! why is `domain::matching`'s decision; this module reads the registry and
//! the case into its profiles — an unknown stored code is an error naming
//! the expert (or case) and column, never a default that would rank an
//! expert wrongly.

use std::collections::HashMap;
use std::fmt::Debug;
use std::ops::RangeInclusive;

use anyhow::anyhow;
use chrono::NaiveDate;

use super::cases::DESK_STAFF;
use super::{Desk, DeskError};
use crate::auth::tokens;
use crate::clock;
use crate::db::experts::{self as store, ExpertProfileData, ExpertRecord};
use crate::db::users::{self, NewUser};
use crate::db::{AnyConnection, assignments, cases, outbox};
use crate::domain::account::{EmailAddress, Locale};
use crate::domain::case::desk_date;
use crate::domain::conflicts::normalize_organization_name;
use crate::domain::matching::{self, CaseProfile, Excluded, ExpertProfile, Suggestion};
use crate::domain::role::{Caller, Role};
use crate::domain::vocabulary::{Category, Lang, ProductType};

/// Who writes the registry.
pub const REGISTRARS: &[Role] = &[Role::Admin];
/// Who reads the registry and asks for suggestions.
pub const READERS: &[Role] = DESK_STAFF;

/// A new expert's capacity when the admin gives none.
pub const DEFAULT_CAPACITY: i32 = 3;
/// The capacities an expert may have (concurrent active assignments).
pub const CAPACITY: RangeInclusive<i32> = 1..=50;
/// Expertise levels: 1 (basic) to 3 (leading).
pub const LEVELS: RangeInclusive<u8> = 1..=3;
/// The most conflicts of interest one expert lists.
pub const MAX_CONFLICTS: usize = 200;
/// How many experts the suggestions rank when the caller does not say, and
/// the most they rank.
pub const SUGGESTIONS_DEFAULT_LIMIT: usize = 20;
pub const SUGGESTIONS_MAX_LIMIT: usize = 100;
/// How long the mailed link to set a first password stays valid.
pub const SET_PASSWORD_LINK_DAYS: i64 = 7;
const SET_PASSWORD_LINK_MICROS: i64 = SET_PASSWORD_LINK_DAYS * 24 * 3600 * 1_000_000;

// ---------------------------------------------------------------- profiles

/// One area of expertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expertise {
    pub category: Category,
    /// One of [`LEVELS`].
    pub level: u8,
}

/// An organisation the expert must not advise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// As entered.
    pub name: String,
    /// `domain::conflicts::normalize_organization_name` of it, never empty.
    pub normalized: String,
}

/// An expert's profile, every value checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    /// Empty when none was given.
    pub affiliation: String,
    /// At least one, a category at most once.
    pub expertise: Vec<Expertise>,
    pub product_types: Vec<ProductType>,
    /// At least one.
    pub languages: Vec<Lang>,
    /// One of [`CAPACITY`].
    pub capacity: i32,
    pub conflicts: Vec<Conflict>,
    /// Paused until this date (exclusive); `None`: available.
    pub paused_until: Option<NaiveDate>,
}

/// A change of a profile: `None` leaves a field as it is (for a new expert:
/// as [`ProfileChange::into_new`] defaults it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChange {
    pub name: Option<String>,
    pub affiliation: Option<String>,
    pub expertise: Option<Vec<Expertise>>,
    pub product_types: Option<Vec<ProductType>>,
    pub languages: Option<Vec<Lang>>,
    pub capacity: Option<i32>,
    pub conflicts: Option<Vec<Conflict>>,
    /// `Some(None)` makes the expert available again.
    pub paused_until: Option<Option<NaiveDate>>,
}

impl ProfileChange {
    /// A new expert's profile: what the change gives, the registration's
    /// defaults for the rest (no affiliation, product types or conflicts,
    /// Japanese, [`DEFAULT_CAPACITY`], available). `None` without a name or
    /// expertise, which a new expert must have.
    pub fn into_new(self) -> Option<Profile> {
        Some(Profile {
            name: self.name?,
            affiliation: self.affiliation.unwrap_or_default(),
            expertise: self.expertise?,
            product_types: self.product_types.unwrap_or_default(),
            languages: self.languages.unwrap_or_else(|| vec![Lang::Ja]),
            capacity: self.capacity.unwrap_or(DEFAULT_CAPACITY),
            conflicts: self.conflicts.unwrap_or_default(),
            paused_until: self.paused_until.flatten(),
        })
    }

    /// `base` with the change applied.
    fn apply(self, base: Profile) -> Profile {
        Profile {
            name: self.name.unwrap_or(base.name),
            affiliation: self.affiliation.unwrap_or(base.affiliation),
            expertise: self.expertise.unwrap_or(base.expertise),
            product_types: self.product_types.unwrap_or(base.product_types),
            languages: self.languages.unwrap_or(base.languages),
            capacity: self.capacity.unwrap_or(base.capacity),
            conflicts: self.conflicts.unwrap_or(base.conflicts),
            paused_until: self.paused_until.unwrap_or(base.paused_until),
        }
    }
}

/// The profile as the registry stores it.
fn stored_data(profile: &Profile) -> ExpertProfileData {
    ExpertProfileData {
        name: profile.name.clone(),
        affiliation: profile.affiliation.clone(),
        capacity: profile.capacity,
        paused_until: profile.paused_until.map(|d| d.to_string()),
        expertise: profile
            .expertise
            .iter()
            .map(|e| (e.category.as_str().to_owned(), i32::from(e.level)))
            .collect(),
        product_types: profile
            .product_types
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        languages: profile
            .languages
            .iter()
            .map(|l| l.as_str().to_owned())
            .collect(),
        conflicts: profile
            .conflicts
            .iter()
            .map(|c| (c.name.clone(), c.normalized.clone()))
            .collect(),
    }
}

// ---------------------------------------------------------------- stored values

/// A stored value of expert `id` that is not one of ours.
fn unknown(id: i64, column: &str, value: impl Debug) -> DeskError {
    DeskError::internal(anyhow!(
        "expert {id}: unknown {column} {value:?} in the database"
    ))
}

fn stored_codes<T: std::str::FromStr>(
    id: i64,
    column: &str,
    raw: &[String],
) -> Result<Vec<T>, DeskError> {
    raw.iter()
        .map(|code| code.parse().map_err(|_| unknown(id, column, code)))
        .collect()
}

fn stored_expertise(record: &ExpertRecord) -> Result<Vec<Expertise>, DeskError> {
    let id = record.row.id;
    record
        .expertise
        .iter()
        .map(|(category, level)| {
            Ok(Expertise {
                category: category
                    .parse()
                    .map_err(|_| unknown(id, "expertise category", category))?,
                level: u8::try_from(*level)
                    .ok()
                    .filter(|l| LEVELS.contains(l))
                    .ok_or_else(|| unknown(id, "expertise level", level))?,
            })
        })
        .collect()
}

fn stored_paused_until(record: &ExpertRecord) -> Result<Option<NaiveDate>, DeskError> {
    record
        .row
        .paused_until
        .as_deref()
        .map(|date| {
            date.parse()
                .map_err(|_| unknown(record.row.id, "paused_until", date))
        })
        .transpose()
}

/// The stored profile, every code read back into its type.
fn stored_profile(record: &ExpertRecord) -> Result<Profile, DeskError> {
    let id = record.row.id;
    Ok(Profile {
        name: record.row.name.clone(),
        affiliation: record.row.affiliation.clone(),
        expertise: stored_expertise(record)?,
        product_types: stored_codes(id, "product type", &record.product_types)?,
        languages: stored_codes(id, "language", &record.languages)?,
        capacity: record.row.capacity,
        conflicts: record
            .conflicts
            .iter()
            .map(|(name, normalized)| Conflict {
                name: name.clone(),
                normalized: normalized.clone(),
            })
            .collect(),
        paused_until: stored_paused_until(record)?,
    })
}

/// The expert as matching sees them.
pub(crate) fn expert_profile(record: &ExpertRecord) -> Result<ExpertProfile, DeskError> {
    let id = record.row.id;
    Ok(ExpertProfile {
        id,
        name: record.row.name.clone(),
        expertise: stored_expertise(record)?
            .into_iter()
            .map(|e| (e.category, e.level))
            .collect(),
        product_types: stored_codes(id, "product type", &record.product_types)?,
        languages: stored_codes(id, "language", &record.languages)?,
        capacity: u32::try_from(record.row.capacity)
            .map_err(|_| unknown(id, "capacity", record.row.capacity))?,
        active_load: u32::try_from(record.active_load)
            .map_err(|_| unknown(id, "active load", record.active_load))?,
        paused_until: stored_paused_until(record)?,
        conflicts_normalized: record.conflicts.iter().map(|(_, n)| n.clone()).collect(),
        last_assigned_at: record.row.last_assigned_at,
    })
}

/// Runs matching for one case against `experts` (inside a transaction).
pub(crate) fn match_case(
    conn: &mut AnyConnection,
    case: &cases::CaseRow,
    experts: &[ExpertProfile],
    limit: usize,
) -> Result<matching::Suggestions, DeskError> {
    let categories: Vec<Category> = cases::categories_of(conn, &[case.id])?
        .remove(&case.id)
        .map(cases::CaseCategories::effective)
        .unwrap_or_default();
    let product_type = case.effective_product_type;
    let language = case.language;
    let (declined, active) = assignments::declined_and_active(conn, case.id)?;
    let organization = normalize_organization_name(&case.organization_name);
    let profile = CaseProfile {
        product_type,
        categories: &categories,
        language,
        organization_normalized: &organization,
        declined_by: &declined,
        already_assigned: &active,
    };
    Ok(matching::suggest(
        &profile,
        experts,
        desk_date(clock::now_micros()),
        limit,
    ))
}

// ---------------------------------------------------------------- registry

/// Register an expert: a new `expert` account, or an existing one linked.
#[derive(Debug, Clone)]
pub struct RegisterExpert {
    /// The expert's sign-in address.
    pub email: EmailAddress,
    /// The password the admin chose, already hashed (`auth::password`);
    /// `None`: a new account gets a mail with a link to set one. Ignored
    /// when the address belongs to an expert account already.
    pub password_hash: Option<String>,
    pub profile: Profile,
}

/// Registers an expert (and, for a new address, their account and the mail
/// to set a password), in one transaction.
pub async fn register_expert(
    desk: &Desk,
    caller: Caller,
    command: RegisterExpert,
) -> Result<ExpertRecord, DeskError> {
    caller.require(REGISTRARS)?;
    let RegisterExpert {
        email,
        password_hash,
        profile,
    } = command;
    let email = email.into_string();
    let data = stored_data(&profile);
    // No password yet: nothing can match this until the expert sets one.
    let (password_hash, set_password) = match password_hash {
        Some(hash) => (hash, None),
        None => ("!unset".to_owned(), Some(tokens::new_refresh_token())),
    };
    let base_url = desk.notifier.base_url.clone();
    desk.write_and_mail(move |conn| {
        let now = clock::now_micros();
        let user_id = match users::find_by_email(conn, &email)? {
            Some(user) if user.role != Role::Expert.as_str() => {
                return Err(DeskError::conflict(
                    "this e-mail belongs to an account that is not an expert",
                ));
            }
            Some(user) => {
                if store::find_by_user(conn, user.id)?.is_some() {
                    return Err(DeskError::conflict("this expert is already registered"));
                }
                user.id
            }
            None => {
                let user = users::insert(
                    conn,
                    &NewUser {
                        email: &email,
                        password_hash: &password_hash,
                        name: &data.name,
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
                        now + SET_PASSWORD_LINK_MICROS,
                        now,
                    )?;
                    outbox::enqueue(
                        conn,
                        &crate::mail::templates::expert_welcome(
                            Locale::Ja,
                            &email,
                            &data.name,
                            &base_url,
                            token,
                            SET_PASSWORD_LINK_DAYS,
                        ),
                        now,
                    )?;
                }
                user.id
            }
        };
        let id = store::insert(conn, user_id, &data, now)?;
        store::find(conn, id)?.ok_or(DeskError::NotFound)
    })
    .await
}

/// Every registered expert, by id.
pub async fn registry(desk: &Desk, caller: Caller) -> Result<Vec<ExpertRecord>, DeskError> {
    caller.require(READERS)?;
    desk.read(|conn| Ok(store::all(conn)?)).await
}

/// One registered expert.
pub async fn expert(desk: &Desk, caller: Caller, id: i64) -> Result<ExpertRecord, DeskError> {
    caller.require(READERS)?;
    desk.read(move |conn| store::find(conn, id)?.ok_or(DeskError::NotFound))
        .await
}

/// Changes an expert's profile: the fields the change names, the rest as
/// they are.
pub async fn update_expert(
    desk: &Desk,
    caller: Caller,
    id: i64,
    change: ProfileChange,
) -> Result<ExpertRecord, DeskError> {
    caller.require(REGISTRARS)?;
    desk.write(move |conn| {
        let current = store::find(conn, id)?.ok_or(DeskError::NotFound)?;
        let profile = change.apply(stored_profile(&current)?);
        store::update(conn, id, &stored_data(&profile), clock::now_micros())?;
        store::find(conn, id)?.ok_or(DeskError::NotFound)
    })
    .await
}

// ---------------------------------------------------------------- suggestions

/// A ranked expert, with the name the registry knows them by.
#[derive(Debug)]
pub struct SuggestedExpert {
    pub suggestion: Suggestion,
    pub name: String,
}

/// An excluded expert, with their name.
#[derive(Debug)]
pub struct ExcludedExpert {
    pub excluded: Excluded,
    pub name: String,
}

/// The experts for a case: the best first, and every one excluded, and why.
#[derive(Debug)]
pub struct CaseSuggestions {
    pub items: Vec<SuggestedExpert>,
    pub excluded: Vec<ExcludedExpert>,
    /// The caller's locale: the language the reasons are to be labelled in.
    pub lang: Lang,
}

/// Ranks the registry for a case (at most `limit`, one of 1 to
/// [`SUGGESTIONS_MAX_LIMIT`]), with the reasons, and who was excluded and why.
pub async fn suggestions(
    desk: &Desk,
    caller: Caller,
    case_id: i64,
    limit: usize,
) -> Result<CaseSuggestions, DeskError> {
    caller.require(READERS)?;
    if !(1..=SUGGESTIONS_MAX_LIMIT).contains(&limit) {
        return Err(DeskError::field("limit", "must be from 1 to 100"));
    }
    desk.read(move |conn| {
        let case = cases::find(conn, case_id)?.ok_or(DeskError::NotFound)?;
        let me = crate::db::users::find_by_id(conn, caller.id)?.ok_or(DeskError::NotFound)?;
        let lang: Lang = crate::db::StoredCodes::new("users", me.id)
            .parse("locale", &me.locale)
            .map_err(crate::db::DbError::from)?;
        let profiles = store::all(conn)?
            .iter()
            .map(expert_profile)
            .collect::<Result<Vec<_>, _>>()?;
        let result = match_case(conn, &case, &profiles, limit)?;
        let names: HashMap<i64, &str> = profiles.iter().map(|p| (p.id, p.name.as_str())).collect();
        let name_of = |expert_id: i64| {
            names
                .get(&expert_id)
                .map(|name| (*name).to_owned())
                .ok_or_else(|| {
                    DeskError::internal(anyhow!(
                        "matching named expert {expert_id}, who is not in the registry it was given"
                    ))
                })
        };
        Ok(CaseSuggestions {
            items: result
                .items
                .into_iter()
                .map(|suggestion| {
                    Ok(SuggestedExpert {
                        name: name_of(suggestion.expert_id)?,
                        suggestion,
                    })
                })
                .collect::<Result<_, DeskError>>()?,
            excluded: result
                .excluded
                .into_iter()
                .map(|excluded| {
                    Ok(ExcludedExpert {
                        name: name_of(excluded.expert_id)?,
                        excluded,
                    })
                })
                .collect::<Result<_, DeskError>>()?,
            lang,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::experts::ExpertRow;

    fn record() -> ExpertRecord {
        ExpertRecord {
            row: ExpertRow {
                id: 12,
                user_id: 40,
                name: "Stored".into(),
                affiliation: String::new(),
                capacity: 3,
                paused_until: Some("2030-01-31".into()),
                last_assigned_at: None,
                created_at: 0,
                updated_at: 0,
            },
            expertise: vec![("regulatory".into(), 3)],
            product_types: vec!["medical_device".into()],
            languages: vec!["ja".into(), "en".into()],
            conflicts: vec![("Bio Ventures Inc.".into(), "bioventures".into())],
            active_load: 1,
        }
    }

    fn message(error: DeskError) -> String {
        match error {
            DeskError::Internal(source) => source.to_string(),
            other => panic!("not an internal error: {other:?}"),
        }
    }

    #[test]
    fn a_stored_profile_reads_back_into_its_types() {
        let profile = stored_profile(&record()).unwrap();
        assert_eq!(
            profile.expertise,
            vec![Expertise {
                category: Category::Regulatory,
                level: 3
            }]
        );
        assert_eq!(profile.product_types, vec![ProductType::MedicalDevice]);
        assert_eq!(profile.languages, vec![Lang::Ja, Lang::En]);
        assert_eq!(profile.paused_until, NaiveDate::from_ymd_opt(2030, 1, 31));
        // And is stored as it was read.
        let data = stored_data(&profile);
        let stored = record();
        assert_eq!(data.expertise, stored.expertise);
        assert_eq!(data.product_types, stored.product_types);
        assert_eq!(data.languages, stored.languages);
        assert_eq!(data.conflicts, stored.conflicts);
        assert_eq!(data.paused_until, stored.row.paused_until);

        let matched = expert_profile(&record()).unwrap();
        assert_eq!(matched.expertise, vec![(Category::Regulatory, 3)]);
        assert_eq!((matched.capacity, matched.active_load), (3, 1));
    }

    #[test]
    fn unknown_stored_values_are_errors_naming_the_expert_and_column() {
        type Corruption = fn(&mut ExpertRecord);
        let cases: [(Corruption, &str); 6] = [
            (
                |r| r.languages = vec!["xx".into()],
                "expert 12: unknown language \"xx\" in the database",
            ),
            (
                |r| r.product_types = vec!["device".into()],
                "expert 12: unknown product type \"device\" in the database",
            ),
            (
                |r| r.expertise = vec![("law".into(), 2)],
                "expert 12: unknown expertise category \"law\" in the database",
            ),
            (
                |r| r.expertise = vec![("regulatory".into(), 4)],
                "expert 12: unknown expertise level 4 in the database",
            ),
            (
                |r| r.row.paused_until = Some("someday".into()),
                "expert 12: unknown paused_until \"someday\" in the database",
            ),
            (
                |r| r.row.capacity = -1,
                "expert 12: unknown capacity -1 in the database",
            ),
        ];
        for (corrupt, expected) in cases {
            let mut broken = record();
            corrupt(&mut broken);
            assert_eq!(message(expert_profile(&broken).unwrap_err()), expected);
            if !expected.contains("capacity") {
                assert_eq!(message(stored_profile(&broken).unwrap_err()), expected);
            }
        }
    }

    #[test]
    fn a_new_profile_takes_the_registration_defaults() {
        let expertise = vec![Expertise {
            category: Category::Fundraising,
            level: 2,
        }];
        let change = ProfileChange {
            name: Some("New".into()),
            expertise: Some(expertise.clone()),
            ..ProfileChange::default()
        };
        assert_eq!(
            change.clone().into_new(),
            Some(Profile {
                name: "New".into(),
                affiliation: String::new(),
                expertise,
                product_types: Vec::new(),
                languages: vec![Lang::Ja],
                capacity: DEFAULT_CAPACITY,
                conflicts: Vec::new(),
                paused_until: None,
            })
        );
        for missing in [
            ProfileChange {
                name: None,
                ..change.clone()
            },
            ProfileChange {
                expertise: None,
                ..change
            },
        ] {
            assert_eq!(missing.into_new(), None);
        }
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name_and_null_resumes() {
        let base = stored_profile(&record()).unwrap();
        let changed = ProfileChange {
            capacity: Some(7),
            ..ProfileChange::default()
        }
        .apply(base.clone());
        assert_eq!(
            changed,
            Profile {
                capacity: 7,
                ..base.clone()
            }
        );
        let resumed = ProfileChange {
            paused_until: Some(None),
            ..ProfileChange::default()
        }
        .apply(base.clone());
        assert_eq!(resumed.paused_until, None);
        assert_eq!(ProfileChange::default().apply(base.clone()), base);
    }
}
