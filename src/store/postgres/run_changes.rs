//! A run's node changes, kept in a table of their own: every save appends
//! only the changes the run gained since the last one, so the bytes a
//! checkpoint writes stay the same however many nodes the run has changed.
//! Reads put them back into the record in one statement (one snapshot).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{NodeChange, RunRecord};
use hotswap_actors::store::{StoreError, StoreResult};

use super::cached_sql::{self, CachedSql};
use super::codec;

/// Rows per INSERT: seven parameters each, well under PostgreSQL's 65535.
const CHANGE_CHUNK: usize = 1_000;

/// The stored record with its changes, as one `jsonb` expression over `runs`:
/// what `get_run` and `runs_in_flight` select in place of `runs.record`.
pub(super) const RECORD_WITH_CHANGES: &str = "runs.record || jsonb_build_object('changes', coalesce((\
    SELECT jsonb_agg(jsonb_build_object('nodeId', c.node_id, 'hostname', c.hostname, \
                                        'environment', c.environment, 'before', c.before) ORDER BY c.seq) \
    FROM run_node_changes c \
    WHERE c.tenant_id = runs.tenant_id AND c.execution_id = runs.execution_id), '[]'::jsonb))";

/// The record column's value: the run without its changes, which live in
/// `run_node_changes`.
pub(super) fn record_without_changes(run: &RunRecord) -> StoreResult<serde_json::Value> {
    // The changes are left out before encoding rather than after: a run's
    // thousands of changes would otherwise be encoded only to be dropped.
    let bare = RunRecord { changes: std::sync::Arc::default(), ..run.clone() };
    let mut record = codec::to_json(&bare, "the deployment")?;
    if let Some(fields) = record.as_object_mut() {
        fields.remove("changes");
    }
    Ok(record)
}

struct ChangeRow<'a> {
    tenant_id: uuid::Uuid,
    execution_id: uuid::Uuid,
    seq: i32,
    node_id: uuid::Uuid,
    hostname: &'a str,
    environment: &'static str,
    before: serde_json::Value,
}

fn rows<'a>(run: &RunRecord, from: usize, changes: &'a [NodeChange]) -> StoreResult<Vec<ChangeRow<'a>>> {
    changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Ok(ChangeRow {
                tenant_id: run.tenant_id,
                execution_id: run.execution_id,
                seq: i32::try_from(from + i).map_err(|_| StoreError::Other("too many node changes".into()))?,
                node_id: c.node_id,
                hostname: &c.hostname,
                environment: c.environment.as_str(),
                before: codec::to_json(&c.before, "a node's module slots")?,
            })
        })
        .collect()
}

/// How many changes of the run the table holds (see [`saved_counts`]).
pub(super) async fn saved_count(conn: &mut AsyncPgConnection, run: &RunRecord) -> QueryResult<usize> {
    Ok(saved_counts(conn, &[run]).await?.into_iter().next().unwrap_or(0))
}

/// How many changes each run holds, in one statement, in the order given:
/// one past each run's highest position, read backwards from the primary
/// key (not a count that grows with the run).
const SAVED_COUNTS: &str = "\
    SELECT k.n, (SELECT c.seq FROM run_node_changes c \
                 WHERE c.tenant_id = k.tenant_id AND c.execution_id = k.execution_id \
                 ORDER BY c.seq DESC LIMIT 1) AS highest \
    FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS k(tenant_id, execution_id, n)";

#[derive(QueryableByName)]
struct HighestRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    highest: Option<i32>,
}

/// How many changes the table holds of each of `runs`, in their order.
pub(super) async fn saved_counts(conn: &mut AsyncPgConnection, runs: &[&RunRecord]) -> QueryResult<Vec<usize>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let tenants: Vec<uuid::Uuid> = runs.iter().map(|r| r.tenant_id).collect();
    let ids: Vec<uuid::Uuid> = runs.iter().map(|r| r.execution_id).collect();
    let rows: Vec<HighestRow> = CachedSql::new(SAVED_COUNTS)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&tenants)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&ids)
        .load(conn)
        .await?;
    let mut counts = vec![0; runs.len()];
    for row in rows {
        // WITH ORDINALITY counts from 1.
        if let Some(slot) = usize::try_from(row.n - 1).ok().and_then(|i| counts.get_mut(i)) {
            *slot = row.highest.map_or(0, |h| usize::try_from(h).unwrap_or(0) + 1);
        }
    }
    Ok(counts)
}

/// Appends the run's changes from position `saved` on, inside the caller's
/// transaction. Changes are only ever appended, so those before `saved` are
/// the ones already stored.
pub(super) async fn append(
    conn: &AsyncPgConnection,
    run: &RunRecord,
    saved: usize,
) -> Result<(), super::errors::Failure> {
    append_many(conn, &[(run, saved)]).await
}

/// [`append`] for several runs, their rows in shared multi-row inserts.
/// The chunks are pipelined (see `insert_audit`).
pub(super) async fn append_many(
    conn: &AsyncPgConnection,
    runs: &[(&RunRecord, usize)],
) -> Result<(), super::errors::Failure> {
    let mut all = Vec::new();
    for &(run, saved) in runs {
        if let Some(new) = run.changes.get(saved..).filter(|n| !n.is_empty()) {
            all.extend(rows(run, saved, new)?);
        }
    }
    cached_sql::execute_in_chunks(conn, &all, CHANGE_CHUNK, |chunk| {
        use diesel::sql_types::{Array, Integer, Jsonb, Text, Uuid as SqlUuid};
        CachedSql::new(INSERT_CHANGES)
            .bind::<Array<SqlUuid>, _>(chunk.iter().map(|c| c.tenant_id).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(chunk.iter().map(|c| c.execution_id).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(chunk.iter().map(|c| c.seq).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(chunk.iter().map(|c| c.node_id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(chunk.iter().map(|c| c.hostname).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(chunk.iter().map(|c| c.environment).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(chunk.iter().map(|c| &c.before).collect::<Vec<_>>())
    })
    .await?;
    Ok(())
}

/// The changes' insert: one statement text whatever the number of rows, so
/// that it stays prepared (see `cached_sql.rs`).
const INSERT_CHANGES: &str = "\
    INSERT INTO run_node_changes (tenant_id, execution_id, seq, node_id, hostname, environment, before) \
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::uuid[], $5::text[], $6::text[], $7::jsonb[])";
