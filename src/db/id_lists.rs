//! `column IN (ids)` as one statement text for any number of ids.
//!
//! diesel writes `eq_any` on SQLite as `IN (?, ?, …)`, a statement text per
//! list length, and marks it unsafe to cache: every case list parsed and
//! planned its categories' and duplicates' queries anew (together a quarter
//! of the server's samples in a list, issue 19's ninth round). [`among`] binds the
//! ids as one value instead: a JSON array read by `json_each` on SQLite, an
//! array for `= ANY` on PostgreSQL. The text never varies, so the statement
//! cache keeps the statement.

use std::fmt::Write as _;

use diesel::QueryResult;
use diesel::expression::{AppearsOnTable, Expression, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Text};
use diesel::sqlite::Sqlite;

/// `column` is one of `ids`; see the module's text.
#[derive(Debug, Clone)]
pub struct AmongIds<C> {
    column: C,
    ids: Vec<i64>,
    /// The ids as SQLite's `json_each` reads them: `[1,2,3]`.
    json: String,
}

/// `column IN ids`, prepared once per connection whatever the ids.
pub fn among<C>(column: C, ids: &[i64]) -> AmongIds<C> {
    let mut json = String::with_capacity(2 + ids.len() * 8);
    json.push('[');
    for (index, id) in ids.iter().enumerate() {
        if index > 0 {
            json.push(',');
        }
        let _ = write!(json, "{id}");
    }
    json.push(']');
    AmongIds {
        column,
        ids: ids.to_vec(),
        json,
    }
}

impl<C: Expression> Expression for AmongIds<C> {
    type SqlType = Bool;
}

impl<C: ValidGrouping<GroupBy>, GroupBy> ValidGrouping<GroupBy> for AmongIds<C> {
    type IsAggregate = C::IsAggregate;
}

impl<C: AppearsOnTable<Source> + Expression, Source> AppearsOnTable<Source> for AmongIds<C> {}

impl<C: QueryFragment<Sqlite>> QueryFragment<Sqlite> for AmongIds<C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, String>(&self.json)?;
        out.push_sql("))");
        Ok(())
    }
}

impl<C: QueryFragment<Pg>> QueryFragment<Pg> for AmongIds<C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" = ANY(");
        out.push_bind_param::<Array<BigInt>, Vec<i64>>(&self.ids)?;
        out.push_sql(")");
        Ok(())
    }
}

/// The statement cache's key: the text depends on the column, not the ids.
impl<C: QueryId> QueryId for AmongIds<C> {
    type QueryId = AmongIds<C::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = C::HAS_STATIC_QUERY_ID;
}

#[cfg(test)]
mod tests {
    use diesel::connection::{Connection, InstrumentationEvent};
    use diesel::prelude::*;
    use diesel::sqlite::SqliteConnection;
    use std::sync::{Arc, Mutex};

    use super::among;

    diesel::table! {
        items (id) {
            id -> BigInt,
            name -> Text,
        }
    }

    /// One cached statement for lists of any length, each answering
    /// exactly its ids (none, one, several, unknown ones).
    #[test]
    fn one_cached_statement_answers_every_list() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        diesel::sql_query("CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL)")
            .execute(&mut conn)
            .unwrap();
        for id in 1..=5i64 {
            diesel::insert_into(items::table)
                .values((items::id.eq(id), items::name.eq(format!("item {id}"))))
                .execute(&mut conn)
                .unwrap();
        }
        let cached = Arc::new(Mutex::new(Vec::new()));
        let seen = cached.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().unwrap().push(sql.to_owned());
            }
        });
        let names = |conn: &mut SqliteConnection, ids: &[i64]| -> Vec<String> {
            items::table
                .filter(among(items::id, ids))
                .select(items::name)
                .order(items::id)
                .load(conn)
                .unwrap()
        };
        assert_eq!(names(&mut conn, &[]), Vec::<String>::new());
        assert_eq!(names(&mut conn, &[3]), vec!["item 3"]);
        assert_eq!(
            names(&mut conn, &[5, 1, 9, 2]),
            vec!["item 1", "item 2", "item 5"]
        );
        // Prepared once, then taken from the cache: `eq_any` would
        // never have been cached at all.
        let cached = cached.lock().unwrap();
        assert_eq!(cached.len(), 1, "{cached:?}");
        assert!(cached[0].contains("json_each"), "{}", cached[0]);
    }
}
