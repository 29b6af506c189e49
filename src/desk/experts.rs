//! The expert registry and the suggestions for a case.

use crate::clock;
use crate::db::experts::ExpertRecord;
use crate::db::{AnyConnection, DbError, assignments, cases};
use crate::domain::case::desk_date;
use crate::domain::conflicts::normalize_organization_name;
use crate::domain::matching::{self, CaseProfile, ExpertProfile};
use crate::domain::vocabulary::{Category, Lang, ProductType};

pub(crate) fn expert_profile(record: &ExpertRecord) -> ExpertProfile {
    ExpertProfile {
        id: record.row.id,
        name: record.row.name.clone(),
        expertise: record
            .expertise
            .iter()
            .filter_map(|(c, l)| Some((c.parse().ok()?, *l as u8)))
            .collect(),
        product_types: record
            .product_types
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect(),
        languages: record
            .languages
            .iter()
            .filter_map(|l| l.parse().ok())
            .collect(),
        capacity: record.row.capacity.max(0) as u32,
        active_load: record.active_load.max(0) as u32,
        paused_until: record
            .row
            .paused_until
            .as_deref()
            .and_then(|d| d.parse().ok()),
        conflicts_normalized: record.conflicts.iter().map(|(_, n)| n.clone()).collect(),
        last_assigned_at: record.row.last_assigned_at,
    }
}

/// Runs matching for one case against `experts` (inside a transaction).
pub(crate) fn match_case(
    conn: &mut AnyConnection,
    case: &cases::CaseRow,
    experts: &[ExpertProfile],
    limit: usize,
) -> Result<matching::Suggestions, DbError> {
    let categories: Vec<Category> = cases::categories_of(conn, &[case.id])?
        .remove(&case.id)
        .map(cases::CaseCategories::effective)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let (declined, active) = assignments::declined_and_active(conn, case.id)?;
    let organization = normalize_organization_name(&case.organization_name);
    let profile = CaseProfile {
        product_type: case
            .effective_product_type
            .parse()
            .unwrap_or(ProductType::Other),
        categories: &categories,
        language: case.language.parse().unwrap_or(Lang::Ja),
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
