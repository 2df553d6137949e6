//! The outbox of run events for the system topic `hotswap.deployments`
//! (table `deployment_event_outbox`, filled by a trigger on `run_events` in
//! the transaction that stores each event; see its migration).

use async_trait::async_trait;
use diesel::sql_types::{Array, BigInt};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use hotswap_actors::domain::RunEvent;
use hotswap_actors::store::StoreResult;

use super::cached_sql::CachedSql;
use super::runs::{StoredEvent, StoredSummary};
use super::PgStore;
use crate::messaging::deployment_outbox::{DeploymentOutbox, PendingEvent};

/// An outbox entry with its event and its run's summary as stored now.
#[derive(QueryableByName)]
struct PendingRow {
    #[diesel(sql_type = BigInt)]
    entry: i64,
    #[diesel(embed)]
    event: StoredEvent,
    #[diesel(embed)]
    run: StoredSummary,
}

impl PendingRow {
    fn decode(self) -> StoreResult<PendingEvent> {
        Ok(PendingEvent { entry: self.entry, run: self.run.decode()?, event: RunEvent::from(self.event) })
    }
}

/// The oldest entries first, each joined to its event and run by key.
///
/// The entries are picked first and their events looked up one by one by key
/// (`LATERAL`, whose `LIMIT 1` keeps the planner from folding it back into a
/// plain join). Joined as plain tables, the planner merged the outbox with
/// `run_events` in key order or hashed a scan of all of `run_events`, reading
/// every event ever stored on every call: each call cost more as history grew
/// (7.9 ms for 16 entries after 2,500 events with `EXPLAIN ANALYZE`, and the
/// statement that took the most database time while runs were being created;
/// 0.26 ms this way).
/// One `execution_id` column serves both the event and the run (they are
/// equal by the join). Public so that a test can check the plan PostgreSQL
/// makes of it.
pub const PENDING_EVENTS_SQL: &str =
    "SELECT o.event_id AS entry, e.tenant_id, e.execution_id, e.at, e.at_nanos, e.kind, e.message, e.data, \
            r.module_name, r.version, r.target_environment, r.status, \
            r.created_at, r.created_at_nanos, r.finished_at, r.finished_at_nanos \
     FROM (SELECT event_id FROM deployment_event_outbox ORDER BY event_id LIMIT $1) o \
     CROSS JOIN LATERAL (SELECT tenant_id, execution_id, at, at_nanos, kind, message, data \
                         FROM run_events WHERE id = o.event_id LIMIT 1) e \
     JOIN runs r ON r.tenant_id = e.tenant_id AND r.execution_id = e.execution_id \
     ORDER BY o.event_id";

#[async_trait]
impl DeploymentOutbox for PgStore {
    async fn pending(&self, max: usize) -> StoreResult<Vec<PendingEvent>> {
        let mut conn = self.conn().await?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = CachedSql::new(PENDING_EVENTS_SQL).bind::<BigInt, _>(limit).load::<PendingRow>(&mut *conn).await;
        match rows {
            Ok(rows) => rows.into_iter().map(PendingRow::decode).collect(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn published(&self, entries: &[i64]) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let deleted = CachedSql::new("DELETE FROM deployment_event_outbox WHERE event_id = ANY($1)")
            .bind::<Array<BigInt>, _>(entries)
            .execute(&mut *conn)
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}
