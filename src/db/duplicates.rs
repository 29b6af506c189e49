//! The duplicate links: a case closed as a duplicate of another names it
//! (its original). One row per duplicate (`case_duplicates`), deleted when
//! the duplicate is reopened.

use std::collections::HashMap;

use diesel::prelude::*;

use super::id_lists::among;
use super::schema::{case_duplicates, cases};
use super::{AnyConnection, DbResult};

/// The other end of a link, as much as the desk needs to decide who may
/// see it and to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedCase {
    pub id: i64,
    pub number: String,
    pub organization_id: i64,
}

/// Links `case_id` (just closed as a duplicate) to `original_id`.
pub fn link(conn: &mut AnyConnection, case_id: i64, original_id: i64, now: i64) -> DbResult<()> {
    diesel::insert_into(case_duplicates::table)
        .values((
            case_duplicates::case_id.eq(case_id),
            case_duplicates::original_id.eq(original_id),
            case_duplicates::linked_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Bumps the version of an original that just gained a duplicate, if it is
/// still at `expected_version` (the version its checks read); false when
/// someone changed it meanwhile — closed it as a duplicate itself, say —
/// and the link must not be made.
pub fn touch_original(
    conn: &mut AnyConnection,
    id: i64,
    expected_version: i64,
    now: i64,
) -> DbResult<bool> {
    let updated = diesel::update(
        cases::table
            .find(id)
            .filter(cases::version.eq(expected_version)),
    )
    .set((
        cases::updated_at.eq(now),
        cases::version.eq(expected_version + 1),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Removes the link of `case_id` (reopened); returns the original it named.
pub fn unlink(conn: &mut AnyConnection, case_id: i64) -> DbResult<Option<LinkedCase>> {
    let original = original_of(conn, case_id)?;
    if original.is_some() {
        diesel::delete(case_duplicates::table.find(case_id)).execute(conn)?;
    }
    Ok(original)
}

/// The original `case_id` is linked to, if it is a duplicate.
pub fn original_of(conn: &mut AnyConnection, case_id: i64) -> DbResult<Option<LinkedCase>> {
    let row = case_duplicates::table
        .inner_join(cases::table.on(cases::id.eq(case_duplicates::original_id)))
        .filter(case_duplicates::case_id.eq(case_id))
        .select((cases::id, cases::number, cases::organization_id))
        .first::<(i64, String, i64)>(conn)
        .optional()?;
    Ok(row.map(|(id, number, organization_id)| LinkedCase {
        id,
        number,
        organization_id,
    }))
}

/// The links of several cases, both ways.
#[derive(Debug, Default, Clone)]
pub struct Links {
    /// case → its original.
    pub originals: HashMap<i64, LinkedCase>,
    /// original → its duplicates, by id.
    pub duplicates: HashMap<i64, Vec<LinkedCase>>,
}

/// The duplicates of `case_ids` and the originals of `duplicate_ids` (the
/// cases closed as duplicates among them), in a query each.
pub fn links_of(
    conn: &mut AnyConnection,
    case_ids: &[i64],
    duplicate_ids: &[i64],
) -> DbResult<Links> {
    let mut links = Links::default();
    if case_ids.is_empty() {
        return Ok(links);
    }
    links.originals = originals_of(conn, duplicate_ids)?;
    let columns = (
        case_duplicates::original_id,
        cases::id,
        cases::number,
        cases::organization_id,
    );
    let joined =
        case_duplicates::table.inner_join(cases::table.on(cases::id.eq(case_duplicates::case_id)));
    // Both statements are prepared once per connection and then taken
    // from its cache (an `eq_any` list is parsed and planned every time).
    let duplicates: Vec<(i64, i64, String, i64)> = match case_ids {
        // Every read of one case asks this.
        [case_id] => {
            let query = joined
                .filter(case_duplicates::original_id.eq(*case_id))
                .select(columns)
                .order(cases::id.asc());
            on_backend!(conn, |c| query.load(c))?
        }
        _ => {
            let query = joined
                .filter(among(case_duplicates::original_id, case_ids))
                .select(columns)
                .order(cases::id.asc());
            on_backend!(conn, |c| query.load(c))?
        }
    };
    for (original_id, id, number, organization_id) in duplicates {
        links
            .duplicates
            .entry(original_id)
            .or_default()
            .push(LinkedCase {
                id,
                number,
                organization_id,
            });
    }
    Ok(links)
}

/// The originals of `duplicate_ids`, by duplicate.
pub fn originals_of(
    conn: &mut AnyConnection,
    duplicate_ids: &[i64],
) -> DbResult<HashMap<i64, LinkedCase>> {
    if duplicate_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let query = case_duplicates::table
        .inner_join(cases::table.on(cases::id.eq(case_duplicates::original_id)))
        .filter(among(case_duplicates::case_id, duplicate_ids))
        .select((
            case_duplicates::case_id,
            cases::id,
            cases::number,
            cases::organization_id,
        ));
    let originals: Vec<(i64, i64, String, i64)> = on_backend!(conn, |c| query.load(c))?;
    Ok(originals
        .into_iter()
        .map(|(case_id, id, number, organization_id)| {
            let original = LinkedCase {
                id,
                number,
                organization_id,
            };
            (case_id, original)
        })
        .collect())
}

/// The id, number and organisation of each of `ids` that exists.
pub fn cases_named(conn: &mut AnyConnection, ids: &[i64]) -> DbResult<Vec<LinkedCase>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let query = cases::table.filter(among(cases::id, ids)).select((
        cases::id,
        cases::number,
        cases::organization_id,
    ));
    let rows: Vec<(i64, String, i64)> = on_backend!(conn, |c| query.load(c))?;
    Ok(rows
        .into_iter()
        .map(|(id, number, organization_id)| LinkedCase {
            id,
            number,
            organization_id,
        })
        .collect())
}
