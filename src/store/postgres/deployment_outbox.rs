//! The outbox of run events for the system topic `hotswap.deployments`
//! (table `deployment_event_outbox`, filled by a trigger on `run_events` in
//! the transaction that stores each event; see its migration).

use async_trait::async_trait;
use diesel::sql_types::{Array, BigInt};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use hotswap_actors::domain::RunEvent;
use hotswap_actors::store::StoreResult;

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

/// One `execution_id` column serves both the event and the run (they are equal by the join).
const PENDING: &str =
    "SELECT o.event_id AS entry, e.tenant_id, e.execution_id, e.at, e.at_nanos, e.kind, e.message, e.data, \
            r.module_name, r.version, r.target_environment, r.status, \
            r.created_at, r.created_at_nanos, r.finished_at, r.finished_at_nanos \
     FROM deployment_event_outbox o \
     JOIN run_events e ON e.id = o.event_id \
     JOIN runs r ON r.tenant_id = e.tenant_id AND r.execution_id = e.execution_id \
     ORDER BY o.event_id \
     LIMIT $1";

#[async_trait]
impl DeploymentOutbox for PgStore {
    async fn pending(&self, max: usize) -> StoreResult<Vec<PendingEvent>> {
        let mut conn = self.conn().await?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = diesel::sql_query(PENDING).bind::<BigInt, _>(limit).load::<PendingRow>(&mut *conn).await;
        match rows {
            Ok(rows) => rows.into_iter().map(PendingRow::decode).collect(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn published(&self, entries: &[i64]) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let deleted = diesel::sql_query("DELETE FROM deployment_event_outbox WHERE event_id = ANY($1)")
            .bind::<Array<BigInt>, _>(entries)
            .execute(&mut *conn)
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}
