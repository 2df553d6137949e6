//! Run and task leases (see `hotswap_actors::store::LeaseStore`). A run's
//! lease is its row's `owner_epoch` and `lease_expires_at` with the record's
//! `owner.instance`, so that the fence on a save is a
//! condition of the save's own UPDATE and a takeover waits on the same row
//! lock; expiry is judged by the database's clock, one for every instance.

use async_trait::async_trait;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use hotswap_actors::store::{ClaimedRun, LeaseStore, StoreResult};
use uuid::Uuid;

use super::PgStore;

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = SqlUuid)]
    tenant_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    execution_id: Uuid,
    #[diesel(sql_type = BigInt)]
    owner_epoch: i64,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    execution_id: Uuid,
}

#[derive(QueryableByName)]
struct OwnerRow {
    #[diesel(sql_type = Text)]
    #[allow(dead_code)] // Only whether a row came back matters.
    owner: String,
}

/// Active runs nobody holds: no owner yet, or a lease that ran out. Rows a
/// renewal or another claimer has locked are skipped, not waited for.
const CLAIM: &str = "\
    WITH picked AS ( \
        SELECT tenant_id, execution_id FROM runs \
        WHERE holds_module AND (lease_expires_at IS NULL OR lease_expires_at <= now()) \
        ORDER BY created_at, created_at_nanos, execution_id \
        LIMIT $2 \
        FOR UPDATE SKIP LOCKED) \
    UPDATE runs r SET owner_epoch = r.owner_epoch + 1, \
        lease_expires_at = now() + $3 * interval '1 millisecond', \
        record = jsonb_set(r.record, '{owner}', jsonb_build_object('instance', $1::text, 'epoch', r.owner_epoch + 1)) \
    FROM picked WHERE r.tenant_id = picked.tenant_id AND r.execution_id = picked.execution_id \
    RETURNING r.tenant_id, r.execution_id, r.owner_epoch";

const RENEW: &str = "\
    UPDATE runs SET lease_expires_at = now() + $2 * interval '1 millisecond' \
    WHERE holds_module AND record->'owner'->>'instance' = $1 RETURNING execution_id";

const RELEASE: &str = "\
    UPDATE runs SET lease_expires_at = now() \
    WHERE holds_module AND record->'owner'->>'instance' = $1 RETURNING execution_id";

/// Takes the task when free or expired, renews it when ours; no row back
/// when another instance holds it.
const HOLD_TASK: &str = "\
    INSERT INTO task_leases (task, owner, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
    ON CONFLICT (task) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at \
    WHERE task_leases.owner = EXCLUDED.owner OR task_leases.expires_at <= now() \
    RETURNING owner";

#[async_trait]
impl LeaseStore for PgStore {
    async fn claim_runs(&self, owner: &str, limit: u32) -> StoreResult<Vec<ClaimedRun>> {
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(CLAIM)
            .bind::<Text, _>(owner)
            .bind::<BigInt, _>(i64::from(limit))
            .bind::<BigInt, _>(self.lease_ttl_ms())
            .load::<ClaimedRow>(&mut *conn)
            .await;
        match rows {
            Ok(rows) => Ok(rows
                .into_iter()
                .map(|r| ClaimedRun {
                    tenant_id: r.tenant_id,
                    execution_id: r.execution_id,
                    epoch: u64::try_from(r.owner_epoch).unwrap_or(0),
                })
                .collect()),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn renew_runs(&self, owner: &str) -> StoreResult<Vec<Uuid>> {
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(RENEW)
            .bind::<Text, _>(owner)
            .bind::<BigInt, _>(self.lease_ttl_ms())
            .load::<IdRow>(&mut *conn)
            .await;
        match rows {
            Ok(rows) => Ok(rows.into_iter().map(|r| r.execution_id).collect()),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn release_runs(&self, owner: &str) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        match diesel::sql_query(RELEASE).bind::<Text, _>(owner).load::<IdRow>(&mut *conn).await {
            Ok(rows) => Ok(rows.len() as u64),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn hold_task(&self, task: &str, owner: &str) -> StoreResult<bool> {
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(HOLD_TASK)
            .bind::<Text, _>(task)
            .bind::<Text, _>(owner)
            .bind::<BigInt, _>(self.lease_ttl_ms())
            .load::<OwnerRow>(&mut *conn)
            .await;
        match rows {
            Ok(rows) => Ok(!rows.is_empty()),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}
