//! Run and task leases (see `hotswap_actors::store::LeaseStore`). A run's
//! lease is its row's `owner_epoch` and `lease_expires_at` with the record's
//! `owner.instance`, so that the fence on a save is a
//! condition of the save's own UPDATE and a takeover waits on the same row
//! lock; expiry is judged by the database's clock, one for every instance.

use async_trait::async_trait;
use diesel::sql_types::{Array, BigInt, Jsonb, Text, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use hotswap_actors::domain::{ModuleSlots, TenantId};
use hotswap_actors::store::{ClaimedRun, LeaseStore, RelayedAnswer, RelayedVerb, RunFence, StoreResult};
use uuid::Uuid;

use super::cached_sql::CachedSql;
use super::{codec, PgStore};

#[derive(QueryableByName)]
struct EpochRow {
    #[diesel(sql_type = BigInt)]
    owner_epoch: i64,
}

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Jsonb)]
    value: serde_json::Value,
}

/// A run and its lease epoch: what a claim took, or what a fenced write found.
#[derive(QueryableByName)]
pub(super) struct RunEpochRow {
    #[diesel(sql_type = SqlUuid)]
    pub(super) tenant_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub(super) execution_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub(super) owner_epoch: i64,
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

/// The owner's active runs, their rows locked in key order: the order in
/// which grouped saves (`grouped_saves.rs`) and node writes' fence checks
/// (`nodes.rs`) lock them. Locked in any other order, a renewal and a group
/// of saves each waited for a row the other held, and PostgreSQL broke the
/// deadlock after a second by failing one of them.
macro_rules! owned_rows_in_key_order {
    () => {
        "mine AS ( \
            SELECT tenant_id, execution_id FROM runs \
            WHERE holds_module AND owner_instance = $1 \
            ORDER BY tenant_id, execution_id \
            FOR NO KEY UPDATE)"
    };
}

const RENEW: &str = concat!(
    "WITH ",
    owned_rows_in_key_order!(),
    " UPDATE runs r SET lease_expires_at = now() + $2 * interval '1 millisecond' \
      FROM mine WHERE r.tenant_id = mine.tenant_id AND r.execution_id = mine.execution_id \
      RETURNING r.execution_id"
);

const RELEASE: &str = concat!(
    "WITH ",
    owned_rows_in_key_order!(),
    " UPDATE runs r SET lease_expires_at = now() \
      FROM mine WHERE r.tenant_id = mine.tenant_id AND r.execution_id = mine.execution_id \
      RETURNING r.execution_id"
);

/// Takes the task when free or expired, renews it when ours; no row back
/// when another instance holds it.
const HOLD_TASK: &str = "\
    INSERT INTO task_leases (task, owner, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
    ON CONFLICT (task) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at \
    WHERE task_leases.owner = EXCLUDED.owner OR task_leases.expires_at <= now() \
    RETURNING owner";

/// A finished run becomes `$3`'s, under a new epoch, with a fresh lease.
const TAKE_FINISHED: &str = "\
    UPDATE runs SET owner_epoch = owner_epoch + 1, \
        lease_expires_at = now() + $4 * interval '1 millisecond', \
        record = jsonb_set(record, '{owner}', jsonb_build_object('instance', $3::text, 'epoch', owner_epoch + 1)) \
    WHERE tenant_id = $1 AND execution_id = $2 AND NOT holds_module \
    RETURNING owner_epoch";

const RELAY: &str = "\
    INSERT INTO relayed_verbs (request_id, tenant_id, execution_id, request) VALUES ($1, $2, $3, $4)";
const WAITING: &str = "\
    SELECT request AS value FROM relayed_verbs WHERE answer IS NULL AND execution_id = ANY($1) ORDER BY created_at";
const ANSWER: &str = "UPDATE relayed_verbs SET answer = $2 WHERE request_id = $1 AND answer IS NULL";
const TAKE_ANSWER: &str =
    "DELETE FROM relayed_verbs WHERE request_id = $1 AND answer IS NOT NULL RETURNING answer AS value";
const WITHDRAW: &str = "DELETE FROM relayed_verbs WHERE request_id = $1 AND answer IS NULL";

#[async_trait]
impl LeaseStore for PgStore {
    async fn claim_runs(&self, owner: &str, limit: u32) -> StoreResult<Vec<ClaimedRun>> {
        let mut conn = self.conn().await?;
        let rows = CachedSql::new(CLAIM)
            .bind::<Text, _>(owner)
            .bind::<BigInt, _>(i64::from(limit))
            .bind::<BigInt, _>(self.lease_ttl_ms())
            .load::<RunEpochRow>(&mut *conn)
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
        let rows = CachedSql::new(RENEW)
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
        match CachedSql::new(RELEASE).bind::<Text, _>(owner).load::<IdRow>(&mut *conn).await {
            Ok(rows) => Ok(rows.len() as u64),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn hold_task(&self, task: &str, owner: &str) -> StoreResult<bool> {
        let mut conn = self.conn().await?;
        let rows = CachedSql::new(HOLD_TASK)
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

    async fn set_module_slots_fenced(
        &self,
        node_id: Uuid,
        module: &str,
        slots: &ModuleSlots,
        fence: &RunFence,
    ) -> StoreResult<()> {
        self.write_module_slots(fence.tenant_id, node_id, module, slots, Some(fence)).await
    }

    async fn take_finished_run(&self, tenant: TenantId, execution_id: Uuid, owner: &str) -> StoreResult<Option<u64>> {
        let mut conn = self.conn().await?;
        let rows = CachedSql::new(TAKE_FINISHED)
            .bind::<SqlUuid, _>(tenant)
            .bind::<SqlUuid, _>(execution_id)
            .bind::<Text, _>(owner)
            .bind::<BigInt, _>(self.lease_ttl_ms())
            .load::<EpochRow>(&mut *conn)
            .await;
        match rows {
            Ok(rows) => Ok(rows.into_iter().next().map(|r| u64::try_from(r.owner_epoch).unwrap_or(0))),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn relay_verb(&self, verb: &RelayedVerb) -> StoreResult<()> {
        let request = codec::to_json(verb, "relayed verb")?;
        let mut conn = self.conn().await?;
        let inserted = CachedSql::new(RELAY)
            .bind::<SqlUuid, _>(verb.request_id)
            .bind::<SqlUuid, _>(verb.tenant_id)
            .bind::<SqlUuid, _>(verb.execution_id)
            .bind::<Jsonb, _>(request)
            .execute(&mut *conn)
            .await;
        inserted.map(|_| ()).map_err(|e| self.db_error(&mut conn, e))
    }

    async fn relayed_verbs(&self, runs: &[Uuid]) -> StoreResult<Vec<RelayedVerb>> {
        let mut conn = self.conn().await?;
        let rows = CachedSql::new(WAITING).bind::<Array<SqlUuid>, _>(runs).load::<JsonRow>(&mut *conn).await;
        match rows {
            Ok(rows) => rows.into_iter().map(|r| codec::from_json(r.value, "relayed verb")).collect(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn answer_relayed_verb(&self, request_id: Uuid, answer: &RelayedAnswer) -> StoreResult<()> {
        let answer = codec::to_json(answer, "relayed verb's answer")?;
        let mut conn = self.conn().await?;
        let updated =
            CachedSql::new(ANSWER).bind::<SqlUuid, _>(request_id).bind::<Jsonb, _>(answer).execute(&mut *conn).await;
        updated.map(|_| ()).map_err(|e| self.db_error(&mut conn, e))
    }

    async fn take_relayed_answer(&self, request_id: Uuid) -> StoreResult<Option<RelayedAnswer>> {
        let mut conn = self.conn().await?;
        let rows = CachedSql::new(TAKE_ANSWER).bind::<SqlUuid, _>(request_id).load::<JsonRow>(&mut *conn).await;
        match rows {
            Ok(rows) => rows.into_iter().next().map(|r| codec::from_json(r.value, "relayed verb's answer")).transpose(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn withdraw_relayed_verb(&self, request_id: Uuid) -> StoreResult<bool> {
        let mut conn = self.conn().await?;
        match CachedSql::new(WITHDRAW).bind::<SqlUuid, _>(request_id).execute(&mut *conn).await {
            Ok(n) => Ok(n > 0),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }
}
