//! The counters every intake bumps — the year's case numbers and the
//! statistics rollups — as upserts written out in SQL.
//!
//! Diesel never caches an `INSERT … ON CONFLICT … DO UPDATE` (a changeset
//! with optional fields could change its SQL), so its query builder would
//! parse and plan these statements on every run; on SQLite's single writer
//! that was a seventh of an intake. Written as a `QueryFragment` of their own
//! they are prepared once per connection and reused.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel::{QueryResult, RunQueryDsl};

/// A rollup table's name and the keys of its cells, as a type: the
/// statement cache then finds [`AddToCell`]'s statement by type instead of
/// writing its SQL out to look it up (issue 19: 2 % of SQLite's writer).
pub trait CellTable: 'static {
    const NAME: &'static str;
    const KEYS: &'static [&'static str];
}

/// `INSERT INTO <table> (<keys…>, cases) VALUES (…) ON CONFLICT (<keys…>)
/// DO UPDATE SET cases = <table>.cases + excluded.cases`: adds `delta` to
/// one cell of a rollup table, creating it at `delta`.
#[derive(Debug, Clone, Copy)]
pub struct AddToCell<'a, Table> {
    /// One per key of `Table`, in its order.
    pub values: &'a [&'a str],
    pub delta: i64,
    pub table: PhantomData<Table>,
}

impl<'a, Table: CellTable> AddToCell<'a, Table> {
    pub fn new(values: &'a [&'a str], delta: i64) -> Self {
        debug_assert_eq!(Table::KEYS.len(), values.len());
        Self {
            values,
            delta,
            table: PhantomData,
        }
    }
}

impl<Table: CellTable> QueryId for AddToCell<'_, Table> {
    type QueryId = AddToCell<'static, Table>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB, Table> QueryFragment<DB> for AddToCell<'_, Table>
where
    DB: Backend,
    Table: CellTable,
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("INSERT INTO ");
        out.push_identifier(Table::NAME)?;
        out.push_sql(" (");
        for key in Table::KEYS {
            out.push_identifier(key)?;
            out.push_sql(", ");
        }
        out.push_sql("cases) VALUES (");
        for value in self.values {
            out.push_bind_param::<Text, str>(value)?;
            out.push_sql(", ");
        }
        out.push_bind_param::<BigInt, i64>(&self.delta)?;
        out.push_sql(") ON CONFLICT (");
        for (i, key) in Table::KEYS.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_identifier(key)?;
        }
        out.push_sql(") DO UPDATE SET cases = ");
        out.push_identifier(Table::NAME)?;
        out.push_sql(".cases + excluded.cases");
        Ok(())
    }
}

impl<Conn, Table> RunQueryDsl<Conn> for AddToCell<'_, Table> {}

/// Takes the next case number of `year`: `INSERT INTO case_counters … ON
/// CONFLICT (year) DO UPDATE SET last = last + 1 RETURNING last`, one
/// statement, so concurrent intakes never read-modify-write.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct NextSequence {
    pub year: i32,
}

impl<DB> QueryFragment<DB> for NextSequence
where
    DB: Backend,
    i32: ToSql<Integer, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("INSERT INTO case_counters (year, last) VALUES (");
        out.push_bind_param::<Integer, i32>(&self.year)?;
        out.push_sql(
            ", 1) ON CONFLICT (year) DO UPDATE SET last = case_counters.last + 1 RETURNING last",
        );
        Ok(())
    }
}

impl Query for NextSequence {
    type SqlType = BigInt;
}

impl<Conn> RunQueryDsl<Conn> for NextSequence {}

/// `INSERT INTO case_counters … ON CONFLICT (year) DO UPDATE SET last =
/// max(last, excluded.last)`: SQLite's writer records the last number a
/// batch handed out (`case_numbers`), never lowering the counter.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct RaiseCounter {
    pub year: i32,
    pub last: i64,
}

impl QueryFragment<diesel::sqlite::Sqlite> for RaiseCounter {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        out.push_sql("INSERT INTO case_counters (year, last) VALUES (");
        out.push_bind_param::<Integer, i32>(&self.year)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, i64>(&self.last)?;
        out.push_sql(
            ") ON CONFLICT (year) DO UPDATE SET last = max(case_counters.last, excluded.last)",
        );
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for RaiseCounter {}

/// PostgreSQL: [`NextSequence`] as a statement of its own whose commit does
/// not wait for the disk (`set_config('synchronous_commit', 'off', true)`
/// evaluated in the statement, so it holds for the statement's own implicit
/// transaction and ends with it): one round trip, where `BEGIN`, `SET LOCAL`,
/// the upsert and `COMMIT` took four.
/// Takes `count` numbers and returns the last one taken.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct ReserveSequence {
    pub year: i32,
    pub count: i64,
}

impl QueryFragment<diesel::pg::Pg> for ReserveSequence {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        out.push_sql("INSERT INTO case_counters (year, last) SELECT ");
        out.push_bind_param::<Integer, i32>(&self.year)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, i64>(&self.count)?;
        out.push_sql(
            " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS without_waiting \
             ON CONFLICT (year) DO UPDATE SET last = case_counters.last + excluded.last \
             RETURNING last",
        );
        Ok(())
    }
}

impl Query for ReserveSequence {
    type SqlType = BigInt;
}

impl<Conn> RunQueryDsl<Conn> for ReserveSequence {}

/// PostgreSQL: counts one case (`delta` +1 or −1) in the four rollups of a
/// set, daily and monthly, per product type and per product type and
/// category, in one statement of data-modifying CTEs, prepared once per
/// connection. Four multi-row upserts, which diesel never prepares, cost
/// four round trips and four parses and plans per intake.
///
/// `categories` must be sorted and without repeats: one statement may not
/// update a row twice, and every intake locking the day's cells in the
/// same order cannot deadlock another.
#[derive(Debug, Clone, Copy)]
pub struct CountOneCase<'a> {
    /// Daily cases, monthly cases, daily categories, monthly categories.
    pub tables: [&'static str; 4],
    pub day: &'a str,
    pub month: &'a str,
    pub product_type: &'a str,
    pub categories: &'a [&'a str],
    pub delta: i64,
}

impl QueryId for CountOneCase<'_> {
    type QueryId = ();
    // The SQL depends on the tables: cached by its text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<diesel::pg::Pg> for CountOneCase<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        use diesel::sql_types::Array;
        let [daily, monthly, daily_categories, monthly_categories] = self.tables;
        let cells = [
            (daily, "day", self.day, false),
            (monthly, "month", self.month, false),
            (daily_categories, "day", self.day, true),
            (monthly_categories, "month", self.month, true),
        ];
        for (i, (table, period, key, per_category)) in cells.into_iter().enumerate() {
            let last = i == cells.len() - 1;
            if i == 0 {
                out.push_sql("WITH ");
            }
            if !last {
                out.push_sql(&format!("cell{i} AS ("));
            }
            out.push_sql("INSERT INTO ");
            out.push_identifier(table)?;
            out.push_sql(&format!(" AS cell ({period}, product_type"));
            if per_category {
                out.push_sql(", category");
            }
            out.push_sql(", cases) SELECT ");
            out.push_bind_param::<Text, str>(key)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, str>(self.product_type)?;
            if per_category {
                out.push_sql(", category, ");
                out.push_bind_param::<BigInt, i64>(&self.delta)?;
                out.push_sql(" FROM unnest(");
                out.push_bind_param::<Array<Text>, [&str]>(self.categories)?;
                out.push_sql(") AS category");
            } else {
                out.push_sql(", ");
                out.push_bind_param::<BigInt, i64>(&self.delta)?;
            }
            out.push_sql(&format!(" ON CONFLICT ({period}, product_type"));
            if per_category {
                out.push_sql(", category");
            }
            out.push_sql(") DO UPDATE SET cases = cell.cases + excluded.cases");
            if i + 2 < cells.len() {
                out.push_sql("), ");
            } else if !last {
                out.push_sql(") ");
            }
        }
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for CountOneCase<'_> {}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{InstrumentationEvent, SimpleConnection};
    use diesel::prelude::*;

    use super::{AddToCell, CellTable, NextSequence};

    struct Cells;

    impl CellTable for Cells {
        const NAME: &'static str = "cells";
        const KEYS: &'static [&'static str] = &["day", "kind"];
    }

    /// The SQL of the statements the connection prepared for its cache.
    fn cached_statements(conn: &mut SqliteConnection) -> Arc<Mutex<Vec<String>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                sink.lock().unwrap().push(sql.to_owned());
            }
        });
        seen
    }

    fn scratch() -> SqliteConnection {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute(
            "CREATE TABLE cells (day TEXT, kind TEXT, cases BIGINT NOT NULL,
                                 PRIMARY KEY (day, kind));
             CREATE TABLE case_counters (year INTEGER PRIMARY KEY, last BIGINT NOT NULL);",
        )
        .unwrap();
        conn
    }

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Cell {
        #[diesel(sql_type = diesel::sql_types::Text)]
        day: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        kind: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        cases: i64,
    }

    #[test]
    fn cells_are_created_then_added_to_with_one_prepared_statement() {
        let mut conn = scratch();
        let prepared = cached_statements(&mut conn);
        for (day, kind, delta) in [
            ("d1", "a", 1),
            ("d1", "b", 1),
            ("d1", "a", 2),
            ("d1", "b", -1),
        ] {
            AddToCell::<Cells>::new(&[day, kind], delta)
                .execute(&mut conn)
                .unwrap();
        }
        let cells: Vec<Cell> =
            diesel::sql_query("SELECT day, kind, cases FROM cells ORDER BY kind")
                .load(&mut conn)
                .unwrap();
        let cell = |kind: &str, cases| Cell {
            day: "d1".into(),
            kind: kind.into(),
            cases,
        };
        assert_eq!(cells, vec![cell("a", 3), cell("b", 0)]);
        assert_eq!(prepared.lock().unwrap().len(), 1, "{:?}", prepared);
    }

    #[test]
    fn sequences_count_per_year_with_one_prepared_statement() {
        let mut conn = scratch();
        let prepared = cached_statements(&mut conn);
        let mut next = |year| -> i64 { NextSequence { year }.get_result(&mut conn).unwrap() };
        assert_eq!(next(2026), 1);
        assert_eq!(next(2026), 2);
        assert_eq!(next(2027), 1);
        assert_eq!(next(2026), 3);
        assert_eq!(prepared.lock().unwrap().len(), 1, "{:?}", prepared);
    }
}
