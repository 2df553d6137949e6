//! A batch of node slot writes: one wave's nodes on one actor thread, with
//! the fences of the runs that write them. With hundreds of small runs in
//! flight these batches were a fifth of every statement the database saw,
//! and each was seven round trips: `BEGIN`, the fences read `FOR SHARE`, the
//! nodes touched and the slots upserted (each prepared anew before it ran,
//! as diesel does for updates and multi-row inserts), `COMMIT`.
//!
//! Here the four statements are fixed texts that stay prepared on the
//! connection (`cached_sql.rs`), and they go to the database together
//! (pipelined) between `BEGIN` and the end of the transaction: three round
//! trips. They do not wait for one another's answers: the fences' read runs
//! first and locks the runs' rows (in key order, as grouped saves and lease
//! renewals lock them), and when it finds a fence stale, or the touch finds
//! a node missing, the transaction is rolled back, so the writes made
//! meanwhile never show. (One statement of common table expressions did the
//! same in one round trip, but PostgreSQL planned it anew at every call,
//! which cost more than the round trips it saved.)

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Int2, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::store::{RunFence, StoreError};
use uuid::Uuid;

use super::cached_sql::{self, CachedSql};
use super::codec;
use super::errors::Failure;
use super::leases::RunEpochRow;

/// The fenced runs' epochs as stored, their rows locked against a takeover
/// until the transaction ends. `= ANY` rather than a join with the pairs:
/// PostgreSQL keeps one plan for it, where the join (with the eight indexes
/// of `runs` to weigh) was planned again at every call. Execution ids are
/// unique, so tenants times ids selects the fenced runs; each row is still
/// matched to its fence by both.
const READ_FENCES: &str = "\
    SELECT tenant_id, execution_id, owner_epoch FROM runs \
    WHERE tenant_id = ANY($1::uuid[]) AND execution_id = ANY($2::uuid[]) \
    ORDER BY tenant_id, execution_id \
    FOR SHARE";

/// Touching the nodes locks them and counts those that exist.
const TOUCH_NODES: &str = "\
    UPDATE nodes SET updated_at = $3, updated_at_nanos = $4 \
    FROM unnest($1::uuid[], $2::uuid[]) AS k(tenant_id, node_id) \
    WHERE nodes.tenant_id = k.tenant_id AND nodes.node_id = k.node_id";

const REMOVE_SLOTS: &str = "\
    DELETE FROM node_modules m \
    USING unnest($1::uuid[], $2::uuid[], $3::text[]) AS d(tenant_id, node_id, module_name) \
    WHERE m.tenant_id = d.tenant_id AND m.node_id = d.node_id AND m.module_name = d.module_name";

/// Only for nodes that exist: a missing node is reported by the touch (and
/// the transaction rolled back) rather than as a foreign key's error.
const UPSERT_SLOTS: &str = "\
    INSERT INTO node_modules (tenant_id, node_id, module_name, slots) \
    SELECT u.tenant_id, u.node_id, u.module_name, u.slots \
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[]) AS u(tenant_id, node_id, module_name, slots) \
    JOIN nodes n ON n.tenant_id = u.tenant_id AND n.node_id = u.node_id \
    ON CONFLICT (tenant_id, node_id, module_name) DO UPDATE SET slots = EXCLUDED.slots";

/// What one batch writes, already reduced to the last write per node and
/// module (one statement may not touch a row twice).
pub(super) struct SlotBatch<'a> {
    /// Each distinct fence with the first node that carries it (for the message).
    pub fences: &'a [(RunFence, Uuid)],
    /// Every node the batch writes, once each.
    pub touch: &'a [(Uuid, Uuid)],
    pub at: DateTime<Utc>,
    pub removals: &'a [(Uuid, Uuid, &'a str)],
    pub upserts: Vec<(Uuid, Uuid, &'a str, serde_json::Value)>,
}

/// Writes the batch, or nothing: `Fenced` when a run's lease moved past its
/// fence's epoch (a run that is not stored fences nothing, as before leases
/// existed), `NotFound` when a node is not stored.
pub(super) async fn write(conn: &mut AsyncPgConnection, batch: SlotBatch<'_>) -> Result<(), Failure> {
    let (at, at_nanos) = codec::split_time(batch.at);
    conn.transaction::<_, Failure, _>(async |conn| {
        let conn: &AsyncPgConnection = conn;
        let read_fences = cached_sql::unless_nothing(batch.fences.is_empty(), || {
            CachedSql::new(READ_FENCES)
                .bind::<Array<SqlUuid>, _>(batch.fences.iter().map(|(f, _)| f.tenant_id).collect::<Vec<_>>())
                .bind::<Array<SqlUuid>, _>(batch.fences.iter().map(|(f, _)| f.execution_id).collect::<Vec<_>>())
                .load::<RunEpochRow>(&mut &*conn)
        });
        let touch = CachedSql::new(TOUCH_NODES)
            .bind::<Array<SqlUuid>, _>(batch.touch.iter().map(|(t, _)| *t).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(batch.touch.iter().map(|(_, n)| *n).collect::<Vec<_>>())
            .bind::<Timestamptz, _>(at)
            .bind::<Int2, _>(at_nanos)
            .execute(&mut &*conn);
        let remove = cached_sql::unless_nothing(batch.removals.is_empty(), || {
            CachedSql::new(REMOVE_SLOTS)
                .bind::<Array<SqlUuid>, _>(batch.removals.iter().map(|r| r.0).collect::<Vec<_>>())
                .bind::<Array<SqlUuid>, _>(batch.removals.iter().map(|r| r.1).collect::<Vec<_>>())
                .bind::<Array<Text>, _>(batch.removals.iter().map(|r| r.2).collect::<Vec<_>>())
                .execute(&mut &*conn)
        });
        let upsert = cached_sql::unless_nothing(batch.upserts.is_empty(), || {
            CachedSql::new(UPSERT_SLOTS)
                .bind::<Array<SqlUuid>, _>(batch.upserts.iter().map(|u| u.0).collect::<Vec<_>>())
                .bind::<Array<SqlUuid>, _>(batch.upserts.iter().map(|u| u.1).collect::<Vec<_>>())
                .bind::<Array<Text>, _>(batch.upserts.iter().map(|u| u.2).collect::<Vec<_>>())
                .bind::<Array<Jsonb>, _>(batch.upserts.iter().map(|u| &u.3).collect::<Vec<_>>())
                .execute(&mut &*conn)
        });
        let (stored, touched, _, _) = futures::try_join!(read_fences, touch, remove, upsert)?;
        for stored in &stored {
            let fenced = |f: &RunFence| f.tenant_id == stored.tenant_id && f.execution_id == stored.execution_id;
            let Some((fence, node_id)) = batch.fences.iter().find(|(f, _)| fenced(f)) else {
                continue;
            };
            if codec::revision(fence.epoch)? != stored.owner_epoch {
                return Err(StoreError::Fenced(format!(
                    "deployment {} has lease epoch {}, not {}: node {node_id} not changed",
                    stored.execution_id, stored.owner_epoch, fence.epoch
                ))
                .into());
            }
        }
        if touched != batch.touch.len() {
            let missing = batch.touch.len().saturating_sub(touched);
            return Err(StoreError::NotFound(format!("{missing} of {} nodes not found", batch.touch.len())).into());
        }
        Ok(())
    })
    .await
}
