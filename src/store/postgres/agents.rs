//! Enrolment tokens, agents and desired module state. Each record is kept
//! whole as jsonb beside the columns it is found by; the hashes, which the
//! records never serialise, have columns of their own.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{AgentRecord, DesiredModule, EnrolmentToken, NewAuditEntry, TenantId};
use hotswap_actors::store::{AgentStore, StoreResult};
use uuid::Uuid;

use super::audit::insert_audit;
use super::codec;
use super::errors::Failure;
use super::PgStore;

#[derive(QueryableByName)]
struct RecordRow {
    #[diesel(sql_type = Jsonb)]
    record: serde_json::Value,
    #[diesel(sql_type = Text)]
    secret_hash: String,
}

/// A count of rows.
#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

fn token(row: RecordRow) -> StoreResult<EnrolmentToken> {
    let mut token: EnrolmentToken = codec::from_json(row.record, "enrolment token")?;
    token.token_hash = row.secret_hash;
    Ok(token)
}

fn agent(row: RecordRow) -> StoreResult<AgentRecord> {
    let mut agent: AgentRecord = codec::from_json(row.record, "agent")?;
    agent.session_hash = row.secret_hash;
    Ok(agent)
}

const TOKEN_COLUMNS: &str = "SELECT record, token_hash AS secret_hash FROM enrolment_tokens";
const AGENT_COLUMNS: &str = "SELECT record, session_hash AS secret_hash FROM agents";

impl PgStore {
    async fn records(
        &self,
        query: diesel::query_builder::BoxedSqlQuery<'_, diesel::pg::Pg, diesel::query_builder::SqlQuery>,
    ) -> StoreResult<Vec<RecordRow>> {
        let mut conn = self.conn().await?;
        match query.load::<RecordRow>(&mut *conn).await {
            Ok(rows) => Ok(rows),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    /// Runs `statement` and writes `audit` in one transaction.
    async fn write_audited(
        &self,
        statement: diesel::query_builder::BoxedSqlQuery<'_, diesel::pg::Pg, diesel::query_builder::SqlQuery>,
        audit: &NewAuditEntry,
    ) -> StoreResult<usize> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            let changed = statement.execute(conn).await?;
            if changed > 0 {
                insert_audit(conn, std::slice::from_ref(audit)).await?;
            }
            Ok(changed)
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }
}

#[async_trait]
impl AgentStore for PgStore {
    async fn create_enrolment_token(&self, token: &EnrolmentToken, audit: &NewAuditEntry) -> StoreResult<()> {
        let record = codec::to_json(token, "enrolment token")?;
        let statement = diesel::sql_query(
            "INSERT INTO enrolment_tokens (tenant_id, id, token_hash, created_at, record) VALUES ($1, $2, $3, $4, $5)",
        )
        .into_boxed()
        .bind::<SqlUuid, _>(token.tenant_id)
        .bind::<SqlUuid, _>(token.id)
        .bind::<Text, _>(token.token_hash.clone())
        .bind::<Timestamptz, _>(token.created_at)
        .bind::<Jsonb, _>(record);
        self.write_audited(statement, audit).await.map(|_| ())
    }

    async fn list_enrolment_tokens(&self, tenant: TenantId) -> StoreResult<Vec<EnrolmentToken>> {
        let query = diesel::sql_query(format!("{TOKEN_COLUMNS} WHERE tenant_id = $1 ORDER BY created_at DESC, id"))
            .into_boxed()
            .bind::<SqlUuid, _>(tenant);
        self.records(query).await?.into_iter().map(token).collect()
    }

    async fn get_enrolment_token(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<EnrolmentToken>> {
        let query = diesel::sql_query(format!("{TOKEN_COLUMNS} WHERE tenant_id = $1 AND id = $2"))
            .into_boxed()
            .bind::<SqlUuid, _>(tenant)
            .bind::<SqlUuid, _>(id);
        self.records(query).await?.into_iter().map(token).next().transpose()
    }

    async fn revoke_enrolment_token(
        &self,
        tenant: TenantId,
        id: Uuid,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<EnrolmentToken>> {
        let stamp = codec::to_json(&at, "revocation time")?;
        // Only the first revocation is recorded (and audited).
        let statement = diesel::sql_query(
            "UPDATE enrolment_tokens SET record = jsonb_set(record, '{revokedAt}', $3) \
             WHERE tenant_id = $1 AND id = $2 AND record->'revokedAt' = 'null'::jsonb",
        )
        .into_boxed()
        .bind::<SqlUuid, _>(tenant)
        .bind::<SqlUuid, _>(id)
        .bind::<Jsonb, _>(stamp);
        self.write_audited(statement, audit).await?;
        self.get_enrolment_token(tenant, id).await
    }

    async fn find_enrolment_token(&self, token_hash: &str) -> StoreResult<Option<EnrolmentToken>> {
        let query = diesel::sql_query(format!("{TOKEN_COLUMNS} WHERE token_hash = $1"))
            .into_boxed()
            .bind::<Text, _>(token_hash.to_string());
        self.records(query).await?.into_iter().map(token).next().transpose()
    }

    async fn prune_enrolment_tokens(&self, dead_before: DateTime<Utc>) -> StoreResult<usize> {
        // Dead since its revocation or its expiry, whichever came first; kept
        // while an agent record names it (revoking it must still end that
        // agent's session).
        // The removals remembered against a token go with it: a token that
        // no longer exists enrols nobody.
        let statement = diesel::sql_query(
            "WITH gone AS (DELETE FROM enrolment_tokens t \
             WHERE LEAST(COALESCE((t.record->>'revokedAt')::timestamptz, 'infinity'), \
                         (t.record->>'expiresAt')::timestamptz) < $1 \
               AND NOT EXISTS (SELECT 1 FROM agents a \
                               WHERE a.tenant_id = t.tenant_id AND a.record->>'tokenId' = t.id::text) \
             RETURNING t.tenant_id, t.id), \
             forgotten AS (DELETE FROM removed_agents r USING gone \
                           WHERE r.tenant_id = gone.tenant_id AND r.token_id = gone.id) \
             SELECT count(*) AS count FROM gone",
        )
        .bind::<Timestamptz, _>(dead_before);
        let mut conn = self.conn().await?;
        match statement.get_result::<Counted>(&mut *conn).await {
            Ok(n) => Ok(usize::try_from(n.count).unwrap_or_default()),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn save_agent(&self, agent: &AgentRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        let record = codec::to_json(agent, "agent")?;
        let statement = diesel::sql_query(
            "INSERT INTO agents (tenant_id, node_id, hostname, session_hash, record) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, node_id) DO UPDATE SET hostname = excluded.hostname, \
             session_hash = excluded.session_hash, record = excluded.record",
        )
        .into_boxed()
        .bind::<SqlUuid, _>(agent.tenant_id)
        .bind::<SqlUuid, _>(agent.node_id)
        .bind::<Text, _>(agent.hostname.clone())
        .bind::<Text, _>(agent.session_hash.clone())
        .bind::<Jsonb, _>(record);
        self.write_audited(statement, audit).await.map(|_| ())
    }

    async fn find_agent_by_session(&self, session_hash: &str) -> StoreResult<Option<AgentRecord>> {
        let query = diesel::sql_query(format!("{AGENT_COLUMNS} WHERE session_hash = $1"))
            .into_boxed()
            .bind::<Text, _>(session_hash.to_string());
        self.records(query).await?.into_iter().map(agent).next().transpose()
    }

    async fn list_agents(&self, tenant: TenantId) -> StoreResult<Vec<AgentRecord>> {
        let query =
            diesel::sql_query(format!("{AGENT_COLUMNS} WHERE tenant_id = $1 ORDER BY hostname COLLATE \"C\", node_id"))
                .into_boxed()
                .bind::<SqlUuid, _>(tenant);
        self.records(query).await?.into_iter().map(agent).collect()
    }

    async fn remove_agent(&self, tenant: TenantId, node_id: Uuid, audit: &NewAuditEntry) -> StoreResult<bool> {
        // One statement: the host's desired state and its node (with the
        // node's module records, by cascade) go with its record. The node
        // only when it is an agent's: a simulated node's id removes nothing.
        // Every part sees the tables as they were before the statement.
        // The host is remembered as removed with the token it had joined
        // with, so that the token does not enrol it again.
        let statement = diesel::sql_query(
            "WITH desired AS (DELETE FROM desired_modules WHERE tenant_id = $1 AND node_id = $2), \
             removed AS (INSERT INTO removed_agents (tenant_id, node_id, token_id, removed_at) \
                         SELECT tenant_id, node_id, (record->>'tokenId')::uuid, now() FROM agents \
                         WHERE tenant_id = $1 AND node_id = $2 ON CONFLICT DO NOTHING), \
             node AS (DELETE FROM nodes WHERE tenant_id = $1 AND node_id = $2 \
                      AND EXISTS (SELECT 1 FROM agents WHERE tenant_id = $1 AND node_id = $2)) \
             DELETE FROM agents WHERE tenant_id = $1 AND node_id = $2",
        )
        .into_boxed()
        .bind::<SqlUuid, _>(tenant)
        .bind::<SqlUuid, _>(node_id);
        Ok(self.write_audited(statement, audit).await? > 0)
    }

    async fn was_removed(&self, tenant: TenantId, node_id: Uuid, token_id: Uuid) -> StoreResult<bool> {
        let query = diesel::sql_query(
            "SELECT count(*) AS count FROM removed_agents WHERE tenant_id = $1 AND node_id = $2 AND token_id = $3",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<SqlUuid, _>(node_id)
        .bind::<SqlUuid, _>(token_id);
        let mut conn = self.conn().await?;
        match query.get_result::<Counted>(&mut *conn).await {
            Ok(found) => Ok(found.count > 0),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn set_desired_module(&self, desired: &DesiredModule) -> StoreResult<()> {
        let record = codec::to_json(desired, "desired module state")?;
        let query = diesel::sql_query(
            "INSERT INTO desired_modules (tenant_id, node_id, module_name, record) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, node_id, module_name) DO UPDATE SET record = excluded.record",
        )
        .bind::<SqlUuid, _>(desired.tenant_id)
        .bind::<SqlUuid, _>(desired.node_id)
        .bind::<Text, _>(&desired.module)
        .bind::<Jsonb, _>(record);
        let mut conn = self.conn().await?;
        match query.execute(&mut *conn).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn desired_modules(&self, tenant: TenantId, node_id: Uuid) -> StoreResult<Vec<DesiredModule>> {
        let query = diesel::sql_query(
            "SELECT record, module_name AS secret_hash FROM desired_modules \
             WHERE tenant_id = $1 AND node_id = $2 ORDER BY module_name COLLATE \"C\"",
        )
        .into_boxed()
        .bind::<SqlUuid, _>(tenant)
        .bind::<SqlUuid, _>(node_id);
        self.records(query).await?.into_iter().map(|row| codec::from_json(row.record, "desired module state")).collect()
    }
}
