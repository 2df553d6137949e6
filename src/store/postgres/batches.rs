//! Deployment batches on PostgreSQL: one row per batch holding the record
//! as jsonb (see the deployment_batches migration).

use async_trait::async_trait;
use diesel::sql_types::{BigInt, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{BatchCursor, BatchRecord, NewAuditEntry, TenantId};
use hotswap_actors::store::{BatchStore, StoreError, StoreResult};
use serde_json::Value;
use uuid::Uuid;

use super::audit::insert_audit;
use super::errors::Failure;
use super::PgStore;

#[derive(diesel::QueryableByName)]
struct BatchRow {
    #[diesel(sql_type = Jsonb)]
    record: Value,
}

fn decode(rows: Vec<BatchRow>) -> StoreResult<Vec<BatchRecord>> {
    rows.into_iter()
        .map(|r| {
            serde_json::from_value(r.record)
                .map_err(|e| StoreError::Other(format!("stored deployment batch is unreadable: {e}")))
        })
        .collect()
}

impl PgStore {
    async fn load_batches(
        &self,
        query: diesel::query_builder::BoxedSqlQuery<'_, diesel::pg::Pg, diesel::query_builder::SqlQuery>,
    ) -> StoreResult<Vec<BatchRecord>> {
        let mut conn = self.conn().await?;
        match query.load::<BatchRow>(&mut *conn).await {
            Ok(rows) => decode(rows),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}

#[async_trait]
impl BatchStore for PgStore {
    async fn save_batch(&self, batch: &BatchRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        let record = serde_json::to_value(batch)
            .map_err(|e| StoreError::Other(format!("deployment batch cannot be stored: {e}")))?;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            diesel::sql_query(
                "INSERT INTO deployment_batches (tenant_id, batch_id, status, record, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, batch_id) DO UPDATE SET \
                 status = EXCLUDED.status, record = EXCLUDED.record, updated_at = EXCLUDED.updated_at",
            )
            .bind::<SqlUuid, _>(batch.tenant_id)
            .bind::<SqlUuid, _>(batch.batch_id)
            .bind::<Text, _>(batch.status.as_str())
            .bind::<Jsonb, _>(&record)
            .bind::<Timestamptz, _>(batch.created_at)
            .bind::<Timestamptz, _>(batch.updated_at)
            .execute(conn)
            .await?;
            insert_audit(conn, std::slice::from_ref(audit)).await?;
            Ok(())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    async fn get_batch(&self, tenant: TenantId, batch_id: Uuid) -> StoreResult<Option<BatchRecord>> {
        let query = diesel::sql_query("SELECT record FROM deployment_batches WHERE tenant_id = $1 AND batch_id = $2")
            .into_boxed()
            .bind::<SqlUuid, _>(tenant)
            .bind::<SqlUuid, _>(batch_id);
        Ok(self.load_batches(query).await?.pop())
    }

    async fn recent_batches(
        &self,
        tenant: TenantId,
        limit: usize,
        before: Option<BatchCursor>,
    ) -> StoreResult<Vec<BatchRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Both forms read the index deployment_batches_recent in its order.
        let query = match before {
            None => diesel::sql_query(
                "SELECT record FROM deployment_batches WHERE tenant_id = $1 \
                 ORDER BY created_at DESC, batch_id DESC LIMIT $2",
            )
            .into_boxed()
            .bind::<SqlUuid, _>(tenant)
            .bind::<BigInt, _>(limit),
            Some(cursor) => diesel::sql_query(
                "SELECT record FROM deployment_batches WHERE tenant_id = $1 AND (created_at, batch_id) < ($3, $4) \
                 ORDER BY created_at DESC, batch_id DESC LIMIT $2",
            )
            .into_boxed()
            .bind::<SqlUuid, _>(tenant)
            .bind::<BigInt, _>(limit)
            .bind::<Timestamptz, _>(cursor.created_at)
            .bind::<SqlUuid, _>(cursor.batch_id),
        };
        self.load_batches(query).await
    }

    async fn batches_in_flight(&self) -> StoreResult<Vec<BatchRecord>> {
        let query = diesel::sql_query(
            "SELECT record FROM deployment_batches WHERE status = 'Running' ORDER BY created_at, batch_id",
        )
        .into_boxed();
        self.load_batches(query).await
    }
}
