//! Hand-written SQL that stays prepared on each connection.
//!
//! `diesel::sql_query` marks every statement as unsafe to cache, because its
//! text may be built at run time. So each call of one prepared it anew: a
//! round trip to parse it, then a second to run it, and PostgreSQL planned
//! it again every time. For the statements of every run (a wave's node
//! writes, grouped saves, the outbox read) that planning alone took more of
//! the database's time than running them. The statements here are fixed
//! texts (or one of a few built from fixed parts), so they are safe to keep:
//! each connection prepares one once, keyed by its text and bind types, and
//! PostgreSQL may settle on a generic plan after a few runs.
//!
//! The placeholders (`$1`, `$2`, ...) are written in the text, as with
//! `sql_query`, and the values are bound in the same order with `bind`.

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::QueryResult;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A statement of fixed text and the values of its placeholders, in order.
#[must_use = "a statement does nothing until it is run"]
pub(super) struct CachedSql<'a> {
    sql: Cow<'static, str>,
    binds: Vec<Box<dyn QueryFragment<Pg> + Send + 'a>>,
}

impl<'a> CachedSql<'a> {
    pub(super) fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        CachedSql { sql: sql.into(), binds: Vec::new() }
    }

    /// The value of the next placeholder, as SQL type `ST`.
    pub(super) fn bind<ST, T>(mut self, value: T) -> Self
    where
        Pg: HasSqlType<ST>,
        T: ToSql<ST, Pg> + Send + 'a,
        ST: 'a,
    {
        self.binds.push(Box::new(Value { value, sql_type: PhantomData }));
        self
    }
}

struct Value<ST, T> {
    value: T,
    // `fn() -> ST`: the marker type need not be `Send` for the value to be.
    sql_type: PhantomData<fn() -> ST>,
}

impl<ST, T> QueryFragment<Pg> for Value<ST, T>
where
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.value)
    }
}

impl QueryFragment<Pg> for CachedSql<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&self.sql);
        // diesel's public way to pass a value also writes its placeholder.
        // The text has its placeholders already, so these copies go where
        // PostgreSQL ignores them: a comment after the statement. They are
        // the same for every call of a statement, so the text stays its key.
        out.push_sql(" /* binds:");
        for value in &self.binds {
            out.push_sql(" ");
            value.walk_ast(out.reborrow())?;
        }
        out.push_sql(" */");
        Ok(())
    }
}

impl QueryId for CachedSql<'_> {
    type QueryId = ();
    // No type identifies the statement: it is cached by its text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for CachedSql<'_> {
    type SqlType = Untyped;
}

/// Runs the statement one chunk of `rows` at a time, every chunk's statement
/// sent together (pipelined) on `conn`, inside the caller's transaction: a
/// bound on each statement's size, without a round trip per chunk.
pub(super) async fn execute_in_chunks<'a, T>(
    conn: &AsyncPgConnection,
    rows: &'a [T],
    chunk_size: usize,
    statement: impl Fn(&'a [T]) -> CachedSql<'a>,
) -> QueryResult<()> {
    futures::future::try_join_all(rows.chunks(chunk_size).map(|chunk| statement(chunk).execute(&mut &*conn))).await?;
    Ok(())
}

/// The statement's answer, or, when there is nothing for it to do
/// (`nothing`), the empty answer without sending it.
pub(super) async fn unless_nothing<T: Default, F: Future<Output = QueryResult<T>>>(
    nothing: bool,
    statement: impl FnOnce() -> F,
) -> QueryResult<T> {
    if nothing {
        return Ok(T::default());
    }
    statement().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::{Array, Text, Uuid as SqlUuid};

    #[test]
    fn the_text_keeps_its_placeholders_and_the_copies_are_a_comment() {
        let statement = CachedSql::new("SELECT * FROM t WHERE a = $1 AND b = ANY($2)")
            .bind::<Text, _>("x")
            .bind::<Array<SqlUuid>, _>(vec![uuid::Uuid::nil()]);
        let sql = diesel::debug_query::<Pg, _>(&statement).to_string();
        assert!(sql.starts_with("SELECT * FROM t WHERE a = $1 AND b = ANY($2) /* binds: $1 $2 */"), "{sql}");
    }

    #[test]
    fn the_statement_may_be_kept_prepared() {
        let statement = CachedSql::new("SELECT $1").bind::<Text, _>("x");
        assert!(statement.is_safe_to_cache_prepared(&Pg).unwrap());
    }
}
