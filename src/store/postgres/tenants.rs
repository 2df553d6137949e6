//! Tenants, and the counts of their runs that quotas and usage reports use.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel::sql_types::{BigInt, Bool, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{NewAuditEntry, Quota, TenantId, TenantRecord, TenantStatus, Tier};
use hotswap_actors::store::{RunCounts, StoreError, StoreResult, TenantStore, UsageCounts};
use uuid::Uuid;

use super::audit::insert_audit;
use super::codec;
use super::errors::Failure;
use super::schema::tenants;
use super::PgStore;

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = tenants, primary_key(tenant_id), treat_none_as_null = true)]
struct TenantRow<'a> {
    tenant_id: Uuid,
    name: &'a str,
    subdomain: &'a str,
    status: &'static str,
    tier: &'static str,
    created_at: DateTime<Utc>,
    suspended_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    metadata: serde_json::Value,
    custom_domain: Option<&'a str>,
    contact_email: &'a str,
    quota: serde_json::Value,
    updated_at: DateTime<Utc>,
    paused_runs: &'a [Uuid],
    revision: i64,
}

impl<'a> TenantRow<'a> {
    fn new(t: &'a TenantRecord) -> StoreResult<Self> {
        Ok(TenantRow {
            tenant_id: t.tenant_id,
            name: &t.name,
            subdomain: &t.subdomain,
            status: t.status.as_str(),
            tier: t.tier.as_str(),
            created_at: t.created_at,
            suspended_at: t.suspended_at,
            deleted_at: t.deleted_at,
            metadata: codec::to_json(&t.metadata, "the tenant's metadata")?,
            custom_domain: t.custom_domain.as_deref(),
            contact_email: &t.contact_email,
            quota: codec::to_json(&t.quota, "the tenant's quota")?,
            updated_at: t.updated_at,
            paused_runs: &t.paused_runs,
            revision: codec::revision(t.revision)?,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = tenants, check_for_backend(Pg))]
struct StoredTenant {
    tenant_id: Uuid,
    name: String,
    subdomain: String,
    status: String,
    tier: String,
    created_at: DateTime<Utc>,
    suspended_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    metadata: serde_json::Value,
    custom_domain: Option<String>,
    contact_email: String,
    quota: serde_json::Value,
    updated_at: DateTime<Utc>,
    paused_runs: Vec<Uuid>,
    revision: i64,
}

impl StoredTenant {
    fn decode(self) -> StoreResult<TenantRecord> {
        let status = TenantStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Other(format!("stored tenant status '{}' is unknown", self.status)))?;
        let tier = Tier::parse(&self.tier)
            .ok_or_else(|| StoreError::Other(format!("stored tenant tier '{}' is unknown", self.tier)))?;
        Ok(TenantRecord {
            tenant_id: self.tenant_id,
            name: self.name,
            subdomain: self.subdomain,
            custom_domain: self.custom_domain,
            contact_email: self.contact_email,
            status,
            tier,
            quota: codec::from_json::<Quota>(self.quota, "tenant quota")?,
            metadata: codec::from_json::<BTreeMap<String, String>>(self.metadata, "tenant metadata")?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            suspended_at: self.suspended_at,
            deleted_at: self.deleted_at,
            paused_runs: self.paused_runs,
            revision: u64::try_from(self.revision).unwrap_or(0),
        })
    }
}

#[derive(QueryableByName)]
struct CountsRow {
    #[diesel(sql_type = BigInt)]
    active: i64,
    #[diesel(sql_type = BigInt)]
    created_since: i64,
    #[diesel(sql_type = BigInt)]
    modules: i64,
    #[diesel(sql_type = Bool)]
    module_known: bool,
}

#[derive(QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    runs: i64,
    #[diesel(sql_type = BigInt)]
    node_updates: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn taken(e: DbError, tenant: &TenantRecord) -> Failure {
    match &e {
        DbError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => match info.constraint_name() {
            Some("tenants_subdomain_unique") => {
                StoreError::Conflict(format!("Subdomain '{}' is already taken", tenant.subdomain)).into()
            }
            _ => StoreError::Conflict(format!("tenant {} exists", tenant.tenant_id)).into(),
        },
        _ => Failure::Db(e),
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl TenantStore for PgStore {
    async fn create_tenant(&self, tenant: &TenantRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        let row = TenantRow::new(tenant)?;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            diesel::insert_into(tenants::table).values(&row).execute(conn).await.map_err(|e| taken(e, tenant))?;
            insert_audit(conn, std::slice::from_ref(audit)).await?;
            Ok(())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    async fn get_tenant(&self, tenant: TenantId) -> StoreResult<Option<TenantRecord>> {
        let mut conn = self.conn().await?;
        let found = tenants::table.find(tenant).select(StoredTenant::as_select()).first(&mut *conn).await.optional();
        match found {
            Ok(row) => row.map(StoredTenant::decode).transpose(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn list_tenants(&self, status: Option<TenantStatus>) -> StoreResult<Vec<TenantRecord>> {
        let mut conn = self.conn().await?;
        let mut query = tenants::table.select(StoredTenant::as_select()).into_boxed();
        if let Some(status) = status {
            query = query.filter(tenants::status.eq(status.as_str()));
        }
        match query.order((tenants::created_at, tenants::tenant_id)).load(&mut *conn).await {
            Ok(rows) => rows.into_iter().map(StoredTenant::decode).collect(),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn save_tenant(&self, tenant: &TenantRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        let row = TenantRow::new(tenant)?;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            // Only a newer revision replaces the stored one.
            let updated =
                diesel::update(tenants::table.find(tenant.tenant_id).filter(tenants::revision.lt(row.revision)))
                    .set(&row)
                    .execute(conn)
                    .await
                    .map_err(|e| taken(e, tenant))?;
            if updated == 0 {
                let stored: Option<i64> =
                    tenants::table.find(tenant.tenant_id).select(tenants::revision).first(conn).await.optional()?;
                return Err(match stored {
                    None => StoreError::NotFound(format!("Tenant {} not found", tenant.tenant_id)),
                    Some(stored) => StoreError::Stale(format!(
                        "tenant {} is at revision {stored}, not saving revision {}",
                        tenant.tenant_id, tenant.revision
                    )),
                }
                .into());
            }
            insert_audit(conn, std::slice::from_ref(audit)).await?;
            Ok(())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    async fn run_counts(&self, tenant: TenantId, since: DateTime<Utc>, module: &str) -> StoreResult<RunCounts> {
        let mut conn = self.conn().await?;
        let row = diesel::sql_query(
            "SELECT count(*) FILTER (WHERE holds_module) AS active, \
                    count(*) FILTER (WHERE created_at >= $2) AS created_since, \
                    count(DISTINCT module_name) AS modules, \
                    coalesce(bool_or(module_name = $3), false) AS module_known \
             FROM runs WHERE tenant_id = $1",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<Timestamptz, _>(since)
        .bind::<Text, _>(module)
        .get_result::<CountsRow>(&mut *conn)
        .await;
        match row {
            Ok(r) => Ok(RunCounts {
                active: count(r.active),
                created_since: count(r.created_since),
                modules: count(r.modules),
                module_known: r.module_known,
            }),
            Err(e) => Err(self.db_error(&mut conn, e)),
        }
    }

    async fn usage_counts(&self, tenant: TenantId, from: DateTime<Utc>, to: DateTime<Utc>) -> StoreResult<UsageCounts> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // One snapshot for both counts.
        let result = conn
            .build_transaction()
            .repeatable_read()
            .read_only()
            .run::<_, DbError, _>(async |conn| {
                let by_status: Vec<StatusRow> = diesel::sql_query(
                    "SELECT status, count(*) AS runs, \
                            coalesce(sum(jsonb_array_length(record->'changes')), 0)::bigint AS node_updates \
                     FROM runs WHERE tenant_id = $1 AND created_at >= $2 AND created_at <= $3 GROUP BY status",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<Timestamptz, _>(from)
                .bind::<Timestamptz, _>(to)
                .load(conn)
                .await?;
                let approvals: CountRow = diesel::sql_query(
                    "SELECT count(*) AS n FROM run_events \
                     WHERE tenant_id = $1 AND kind LIKE 'Approval%' AND at >= $2 AND at <= $3",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<Timestamptz, _>(from)
                .bind::<Timestamptz, _>(to)
                .get_result(conn)
                .await?;
                Ok((by_status, approvals))
            })
            .await;
        let (by_status, approvals) = result.map_err(|e| self.db_error(conn, e))?;
        let mut usage = UsageCounts { approval_events: count(approvals.n), ..UsageCounts::default() };
        for row in by_status {
            usage.runs_by_status.insert(row.status, count(row.runs));
            usage.node_updates += count(row.node_updates);
        }
        Ok(usage)
    }
}
