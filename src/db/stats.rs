//! Statistics rollups: daily counts per (product type) and per (product
//! type, category), adjusted in the transaction of every change that moves a
//! case between cells, so the category table never scans the cases.

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::{stats_daily_cases, stats_daily_categories};
use super::{AnyConnection, DbResult};

/// Adds `delta` (+1 or −1) for one case counted on `day` under
/// `product_type` and `categories`.
pub fn count_case(
    conn: &mut AnyConnection,
    day: &str,
    product_type: &str,
    categories: &[&str],
    delta: i64,
) -> DbResult<()> {
    let case_row = diesel::insert_into(stats_daily_cases::table)
        .values((
            stats_daily_cases::day.eq(day),
            stats_daily_cases::product_type.eq(product_type),
            stats_daily_cases::cases.eq(delta),
        ))
        .on_conflict((stats_daily_cases::day, stats_daily_cases::product_type))
        .do_update()
        .set(
            stats_daily_cases::cases
                .eq(stats_daily_cases::cases + excluded(stats_daily_cases::cases)),
        );
    on_backend!(conn, |c| case_row.execute(c))?;
    for category in categories {
        let category_row = diesel::insert_into(stats_daily_categories::table)
            .values((
                stats_daily_categories::day.eq(day),
                stats_daily_categories::product_type.eq(product_type),
                stats_daily_categories::category.eq(*category),
                stats_daily_categories::cases.eq(delta),
            ))
            .on_conflict((
                stats_daily_categories::day,
                stats_daily_categories::product_type,
                stats_daily_categories::category,
            ))
            .do_update()
            .set(
                stats_daily_categories::cases
                    .eq(stats_daily_categories::cases + excluded(stats_daily_categories::cases)),
            );
        on_backend!(conn, |c| category_row.execute(c))?;
    }
    Ok(())
}

/// Moves a case from one cell set to another (triage confirming other
/// product type / categories than the applicant chose).
pub fn recount_case(
    conn: &mut AnyConnection,
    day: &str,
    before: (&str, &[&str]),
    after: (&str, &[&str]),
) -> DbResult<()> {
    if before.0 == after.0 && before.1 == after.1 {
        return Ok(());
    }
    count_case(conn, day, before.0, before.1, -1)?;
    count_case(conn, day, after.0, after.1, 1)
}
