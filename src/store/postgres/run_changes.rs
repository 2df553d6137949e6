//! A run's node changes, kept in a table of their own: every save appends
//! only the changes the run gained since the last one, so the bytes a
//! checkpoint writes stay the same however many nodes the run has changed.
//! Reads put them back into the record in one statement (one snapshot).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{NodeChange, RunRecord};
use hotswap_actors::store::{StoreError, StoreResult};

use super::codec;
use super::schema::run_node_changes;

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

#[derive(Insertable)]
#[diesel(table_name = run_node_changes)]
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

/// How many changes of the run the table holds: one past the highest
/// position, read backwards from the primary key (not a count that grows
/// with the run).
pub(super) async fn saved_count(conn: &mut AsyncPgConnection, run: &RunRecord) -> QueryResult<usize> {
    let highest: Option<i32> = run_node_changes::table
        .filter(run_node_changes::tenant_id.eq(run.tenant_id))
        .filter(run_node_changes::execution_id.eq(run.execution_id))
        .select(run_node_changes::seq)
        .order(run_node_changes::seq.desc())
        .first(conn)
        .await
        .optional()?;
    Ok(highest.map_or(0, |h| usize::try_from(h).unwrap_or(0) + 1))
}

/// Appends the run's changes from position `saved` on, inside the caller's
/// transaction. Changes are only ever appended, so those before `saved` are
/// the ones already stored.
/// The chunks are pipelined (see `insert_audit`).
pub(super) async fn append(
    conn: &AsyncPgConnection,
    run: &RunRecord,
    saved: usize,
) -> Result<(), super::errors::Failure> {
    let Some(new) = run.changes.get(saved..).filter(|n| !n.is_empty()) else { return Ok(()) };
    let rows = rows(run, saved, new)?;
    let inserts = rows
        .chunks(CHANGE_CHUNK)
        .map(|chunk| diesel::insert_into(run_node_changes::table).values(chunk).execute(&mut &*conn));
    futures::future::try_join_all(inserts).await?;
    Ok(())
}
