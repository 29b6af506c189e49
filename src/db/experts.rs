//! The expert registry.

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::{
    assignments, expert_conflicts, expert_expertise, expert_languages, expert_product_types,
    experts,
};
use super::{AnyConnection, DbResult};

#[derive(Debug, Clone, Queryable)]
pub struct ExpertRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub affiliation: String,
    pub capacity: i32,
    pub paused_until: Option<String>,
    pub last_assigned_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An expert with everything matching needs.
#[derive(Debug, Clone)]
pub struct ExpertRecord {
    pub row: ExpertRow,
    /// (category, level)
    pub expertise: Vec<(String, i32)>,
    pub product_types: Vec<String>,
    pub languages: Vec<String>,
    /// (as entered, normalized)
    pub conflicts: Vec<(String, String)>,
    /// Proposed + accepted assignments.
    pub active_load: i64,
}

/// The editable part of an expert profile.
#[derive(Debug, Clone)]
pub struct ExpertProfileData {
    pub name: String,
    pub affiliation: String,
    pub capacity: i32,
    pub paused_until: Option<String>,
    pub expertise: Vec<(String, i32)>,
    pub product_types: Vec<String>,
    pub languages: Vec<String>,
    pub conflicts: Vec<(String, String)>,
}

pub fn insert(
    conn: &mut AnyConnection,
    user_id: i64,
    data: &ExpertProfileData,
    now: i64,
) -> DbResult<i64> {
    let id: i64 = diesel::insert_into(experts::table)
        .values((
            experts::user_id.eq(user_id),
            experts::name.eq(&data.name),
            experts::affiliation.eq(&data.affiliation),
            experts::capacity.eq(data.capacity),
            experts::paused_until.eq(&data.paused_until),
            experts::created_at.eq(now),
            experts::updated_at.eq(now),
        ))
        .returning(experts::id)
        .get_result(conn)?;
    replace_details(conn, id, data)?;
    Ok(id)
}

pub fn update(
    conn: &mut AnyConnection,
    id: i64,
    data: &ExpertProfileData,
    now: i64,
) -> DbResult<()> {
    diesel::update(experts::table.find(id))
        .set((
            experts::name.eq(&data.name),
            experts::affiliation.eq(&data.affiliation),
            experts::capacity.eq(data.capacity),
            experts::paused_until.eq(&data.paused_until),
            experts::updated_at.eq(now),
        ))
        .execute(conn)?;
    replace_details(conn, id, data)
}

/// Rewrites the expertise, product types, languages and conflicts rows.
fn replace_details(conn: &mut AnyConnection, id: i64, data: &ExpertProfileData) -> DbResult<()> {
    diesel::delete(expert_expertise::table.filter(expert_expertise::expert_id.eq(id)))
        .execute(conn)?;
    diesel::delete(expert_product_types::table.filter(expert_product_types::expert_id.eq(id)))
        .execute(conn)?;
    diesel::delete(expert_languages::table.filter(expert_languages::expert_id.eq(id)))
        .execute(conn)?;
    diesel::delete(expert_conflicts::table.filter(expert_conflicts::expert_id.eq(id)))
        .execute(conn)?;
    let expertise: Vec<_> = data
        .expertise
        .iter()
        .map(|(category, level)| {
            (
                expert_expertise::expert_id.eq(id),
                expert_expertise::category.eq(category),
                expert_expertise::level.eq(*level),
            )
        })
        .collect();
    if !expertise.is_empty() {
        insert_rows!(conn, expertise, |rows| diesel::insert_into(
            expert_expertise::table
        )
        .values(rows))?;
    }
    let product_types: Vec<_> = data
        .product_types
        .iter()
        .map(|p| {
            (
                expert_product_types::expert_id.eq(id),
                expert_product_types::product_type.eq(p),
            )
        })
        .collect();
    if !product_types.is_empty() {
        insert_rows!(conn, product_types, |rows| diesel::insert_into(
            expert_product_types::table
        )
        .values(rows))?;
    }
    let languages: Vec<_> = data
        .languages
        .iter()
        .map(|l| {
            (
                expert_languages::expert_id.eq(id),
                expert_languages::language.eq(l),
            )
        })
        .collect();
    if !languages.is_empty() {
        insert_rows!(conn, languages, |rows| diesel::insert_into(
            expert_languages::table
        )
        .values(rows))?;
    }
    let conflicts: Vec<_> = data
        .conflicts
        .iter()
        .map(|(name, normalized)| {
            (
                expert_conflicts::expert_id.eq(id),
                expert_conflicts::name.eq(name),
                expert_conflicts::normalized.eq(normalized),
            )
        })
        .collect();
    if !conflicts.is_empty() {
        insert_rows!(conn, conflicts, |rows| diesel::insert_into(
            expert_conflicts::table
        )
        .values(rows))?;
    }
    Ok(())
}

pub fn find_row(conn: &mut AnyConnection, id: i64) -> DbResult<Option<ExpertRow>> {
    Ok(experts::table
        .find(id)
        .select(experts::all_columns)
        .first(conn)
        .optional()?)
}

pub fn find_by_user(conn: &mut AnyConnection, user_id: i64) -> DbResult<Option<ExpertRow>> {
    Ok(experts::table
        .filter(experts::user_id.eq(user_id))
        .select(experts::all_columns)
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> DbResult<Option<ExpertRecord>> {
    let Some(row) = find_row(conn, id)? else {
        return Ok(None);
    };
    Ok(assemble(conn, vec![row], Some(id))?.pop())
}

/// Every expert with details and load, in a fixed number of queries.
pub fn all(conn: &mut AnyConnection) -> DbResult<Vec<ExpertRecord>> {
    let rows: Vec<ExpertRow> = experts::table
        .select(experts::all_columns)
        .order(experts::id.asc())
        .load(conn)?;
    assemble(conn, rows, None)
}

fn assemble(
    conn: &mut AnyConnection,
    rows: Vec<ExpertRow>,
    only: Option<i64>,
) -> DbResult<Vec<ExpertRecord>> {
    let mut expertise_q = expert_expertise::table
        .select((
            expert_expertise::expert_id,
            expert_expertise::category,
            expert_expertise::level,
        ))
        .order((expert_expertise::expert_id, expert_expertise::category))
        .into_boxed();
    let mut product_q = expert_product_types::table
        .select((
            expert_product_types::expert_id,
            expert_product_types::product_type,
        ))
        .order((
            expert_product_types::expert_id,
            expert_product_types::product_type,
        ))
        .into_boxed();
    let mut language_q = expert_languages::table
        .select((expert_languages::expert_id, expert_languages::language))
        .order((expert_languages::expert_id, expert_languages::language))
        .into_boxed();
    let mut conflict_q = expert_conflicts::table
        .select((
            expert_conflicts::expert_id,
            expert_conflicts::name,
            expert_conflicts::normalized,
        ))
        .order((expert_conflicts::expert_id, expert_conflicts::name))
        .into_boxed();
    let mut load_q = assignments::table
        .filter(assignments::status.eq_any(["proposed", "accepted"]))
        .group_by(assignments::expert_id)
        .select((assignments::expert_id, diesel::dsl::count_star()))
        .into_boxed();
    if let Some(id) = only {
        expertise_q = expertise_q.filter(expert_expertise::expert_id.eq(id));
        product_q = product_q.filter(expert_product_types::expert_id.eq(id));
        language_q = language_q.filter(expert_languages::expert_id.eq(id));
        conflict_q = conflict_q.filter(expert_conflicts::expert_id.eq(id));
        load_q = load_q.filter(assignments::expert_id.eq(id));
    }
    let mut expertise: HashMap<i64, Vec<(String, i32)>> = HashMap::new();
    for (id, category, level) in expertise_q.load::<(i64, String, i32)>(conn)? {
        expertise.entry(id).or_default().push((category, level));
    }
    let mut products: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, product_type) in product_q.load::<(i64, String)>(conn)? {
        products.entry(id).or_default().push(product_type);
    }
    let mut languages: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, language) in language_q.load::<(i64, String)>(conn)? {
        languages.entry(id).or_default().push(language);
    }
    let mut conflicts: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    for (id, name, normalized) in conflict_q.load::<(i64, String, String)>(conn)? {
        conflicts.entry(id).or_default().push((name, normalized));
    }
    let loads: HashMap<i64, i64> = load_q.load::<(i64, i64)>(conn)?.into_iter().collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let id = row.id;
            ExpertRecord {
                row,
                expertise: expertise.remove(&id).unwrap_or_default(),
                product_types: products.remove(&id).unwrap_or_default(),
                languages: languages.remove(&id).unwrap_or_default(),
                conflicts: conflicts.remove(&id).unwrap_or_default(),
                active_load: loads.get(&id).copied().unwrap_or(0),
            }
        })
        .collect())
}

/// Records an assignment time; returns the rows touched (0: no such expert).
pub fn touch_last_assigned(conn: &mut AnyConnection, id: i64, now: i64) -> DbResult<usize> {
    Ok(diesel::update(experts::table.find(id))
        .set(experts::last_assigned_at.eq(now))
        .execute(conn)?)
}
