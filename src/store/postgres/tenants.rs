//! Tenants, and the counts of their runs that quotas and usage reports use.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel::sql_types::{Array, BigInt, Bool, Date, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{
    NewAuditEntry, Quota, QuotaExceeded, RunEvent, RunRecord, TenantId, TenantRecord, TenantStatus, Tier,
};
use hotswap_actors::store::{Admission, AdmissionCheck, RunCounts, StoreError, StoreResult, TenantStore, UsageCounts};
use uuid::Uuid;

use super::audit::insert_audit;
use super::cached_sql::CachedSql;
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

/// The counts admission reads: active runs from the index of module holders
/// (a few rows), runs per day and modules from the counters `count_created`
/// keeps, so the cost does not grow with the tenant's history. A `since`
/// that is not a UTC midnight counts that part of a day from the runs.
const COUNTS: &str = "\
    SELECT (SELECT count(*) FROM runs WHERE tenant_id = $1 AND holds_module) AS active, \
           CASE WHEN $2 = date_trunc('day', $2 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' \
                THEN (SELECT coalesce(sum(runs), 0)::bigint FROM tenant_runs_per_day WHERE tenant_id = $1 AND day >= $3) \
                ELSE (SELECT count(*) FROM runs WHERE tenant_id = $1 AND created_at >= $2) END AS created_since, \
           (SELECT count(*) FROM tenant_modules WHERE tenant_id = $1) AS modules, \
           EXISTS (SELECT 1 FROM tenant_modules WHERE tenant_id = $1 AND module_name = $4) AS module_known";

/// Keeps the counters of a new run's tenant, in the insert's transaction.
const COUNT_CREATED: &str = "\
    WITH module AS (INSERT INTO tenant_modules (tenant_id, module_name) VALUES ($1, $2) ON CONFLICT DO NOTHING) \
    INSERT INTO tenant_runs_per_day (tenant_id, day, runs) VALUES ($1, $3, 1) \
    ON CONFLICT (tenant_id, day) DO UPDATE SET runs = tenant_runs_per_day.runs + 1";

/// The counts a batch of admissions starts from, read under the admission
/// lock in one round trip: `COUNTS`, with which of the batch's modules are
/// known (`$4`, an array) and which of them a run holds now, and by which run.
const BATCH_COUNTS: &str = "\
    SELECT (SELECT count(*) FROM runs WHERE tenant_id = $1 AND holds_module) AS active, \
           CASE WHEN $2 = date_trunc('day', $2 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' \
                THEN (SELECT coalesce(sum(runs), 0)::bigint FROM tenant_runs_per_day WHERE tenant_id = $1 AND day >= $3) \
                ELSE (SELECT count(*) FROM runs WHERE tenant_id = $1 AND created_at >= $2) END AS created_since, \
           (SELECT count(*) FROM tenant_modules WHERE tenant_id = $1) AS modules, \
           ARRAY(SELECT module_name FROM tenant_modules WHERE tenant_id = $1 AND module_name = ANY($4)) AS known, \
           ARRAY(SELECT module_name FROM runs WHERE tenant_id = $1 AND holds_module AND module_name = ANY($4) \
                 ORDER BY execution_id) AS held, \
           ARRAY(SELECT execution_id FROM runs WHERE tenant_id = $1 AND holds_module AND module_name = ANY($4) \
                 ORDER BY execution_id) AS holders";

/// `COUNT_CREATED` for a batch of one tenant's runs: `$2` their modules, `$3` their days.
const COUNT_CREATED_BATCH: &str = "\
    WITH module AS (INSERT INTO tenant_modules (tenant_id, module_name) \
                    SELECT DISTINCT $1::uuid, m FROM unnest($2::text[]) m ON CONFLICT DO NOTHING) \
    INSERT INTO tenant_runs_per_day (tenant_id, day, runs) \
    SELECT $1, d, count(*) FROM unnest($3::date[]) d GROUP BY d \
    ON CONFLICT (tenant_id, day) DO UPDATE SET runs = tenant_runs_per_day.runs + EXCLUDED.runs";

#[derive(QueryableByName)]
struct BatchCountsRow {
    #[diesel(sql_type = BigInt)]
    active: i64,
    #[diesel(sql_type = BigInt)]
    created_since: i64,
    #[diesel(sql_type = BigInt)]
    modules: i64,
    #[diesel(sql_type = Array<Text>)]
    known: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    held: Vec<String>,
    #[diesel(sql_type = Array<SqlUuid>)]
    holders: Vec<Uuid>,
}

/// What a batch of admissions starts from (see `BATCH_COUNTS`).
pub(super) struct BatchCounts {
    /// `RunCounts` for a module the tenant has not run, before the batch.
    pub(super) counts: RunCounts,
    /// The batch's modules that the tenant has run before.
    pub(super) known: std::collections::HashSet<String>,
    /// The batch's modules a stored run holds now, with that run.
    pub(super) held: std::collections::HashMap<String, Uuid>,
}

/// Takes the tenant's admission lock until the transaction ends, then reads
/// what a batch of admissions for `modules` starts from.
pub(super) async fn lock_and_count_batch(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    since: DateTime<Utc>,
    modules: &[&str],
) -> QueryResult<BatchCounts> {
    admission_lock(conn, tenant).await?;
    let r: BatchCountsRow = CachedSql::new(BATCH_COUNTS)
        .bind::<SqlUuid, _>(tenant)
        .bind::<Timestamptz, _>(since)
        .bind::<Date, _>(since.date_naive())
        .bind::<Array<Text>, _>(modules)
        .get_result(conn)
        .await?;
    Ok(BatchCounts {
        counts: RunCounts {
            active: count(r.active),
            created_since: count(r.created_since),
            modules: count(r.modules),
            module_known: false,
        },
        known: r.known.into_iter().collect(),
        held: r.held.into_iter().zip(r.holders).collect(),
    })
}

/// Counts a batch of one tenant's new runs against its days and modules.
pub(super) async fn count_created_batch(conn: &AsyncPgConnection, runs: &[&RunRecord]) -> QueryResult<()> {
    let Some(first) = runs.first() else { return Ok(()) };
    let modules: Vec<&str> = runs.iter().map(|r| r.request.module_name.as_str()).collect();
    let days: Vec<chrono::NaiveDate> = runs.iter().map(|r| r.created_at.date_naive()).collect();
    CachedSql::new(COUNT_CREATED_BATCH)
        .bind::<SqlUuid, _>(first.tenant_id)
        .bind::<Array<Text>, _>(modules)
        .bind::<Array<Date>, _>(days)
        .execute(&mut &*conn)
        .await?;
    Ok(())
}

/// Namespace of the per-tenant admission lock among advisory locks.
const ADMISSION_LOCK_SEED: i64 = 0x0061_646d_6974; // "admit"

async fn counts_on(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    since: DateTime<Utc>,
    module: &str,
) -> QueryResult<RunCounts> {
    let r: CountsRow = CachedSql::new(COUNTS)
        .bind::<SqlUuid, _>(tenant)
        .bind::<Timestamptz, _>(since)
        .bind::<Date, _>(since.date_naive())
        .bind::<Text, _>(module)
        .get_result(conn)
        .await?;
    Ok(RunCounts {
        active: count(r.active),
        created_since: count(r.created_since),
        modules: count(r.modules),
        module_known: r.module_known,
    })
}

/// Takes the tenant's admission lock until the transaction ends, then
/// counts: every instance admits the tenant's runs one at a time, so the
/// counts cannot change between the check and the insert.
pub(super) async fn lock_and_count(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    since: DateTime<Utc>,
    module: &str,
) -> QueryResult<RunCounts> {
    admission_lock(conn, tenant).await?;
    counts_on(conn, tenant, since, module).await
}

/// The tenant's admission lock, held until the transaction ends: its runs'
/// admission and its new module versions' quota check take it.
pub(super) async fn admission_lock(conn: &mut AsyncPgConnection, tenant: TenantId) -> QueryResult<()> {
    CachedSql::new("SELECT pg_advisory_xact_lock(hashtextextended($1::text, $2))")
        .bind::<SqlUuid, _>(tenant)
        .bind::<BigInt, _>(ADMISSION_LOCK_SEED)
        .execute(conn)
        .await?;
    Ok(())
}

/// Counts a new run against its tenant's day and modules.
pub(super) async fn count_created(conn: &mut AsyncPgConnection, run: &RunRecord) -> QueryResult<()> {
    CachedSql::new(COUNT_CREATED)
        .bind::<SqlUuid, _>(run.tenant_id)
        .bind::<Text, _>(&run.request.module_name)
        .bind::<Date, _>(run.created_at.date_naive())
        .execute(conn)
        .await?;
    Ok(())
}

#[async_trait]
impl TenantStore for PgStore {
    async fn create_tenant(&self, tenant: &TenantRecord, audit: &[NewAuditEntry]) -> StoreResult<()> {
        let row = TenantRow::new(tenant)?;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            diesel::insert_into(tenants::table).values(&row).execute(conn).await.map_err(|e| taken(e, tenant))?;
            insert_audit(conn, audit).await?;
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

    async fn save_tenant(&self, tenant: &TenantRecord, audit: &[NewAuditEntry]) -> StoreResult<()> {
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
            insert_audit(conn, audit).await?;
            Ok(())
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }

    async fn admit_run(
        &self,
        run: &RunRecord,
        events: &[RunEvent],
        since: DateTime<Utc>,
        check: AdmissionCheck<'_>,
    ) -> StoreResult<Result<(), QuotaExceeded>> {
        self.insert_run(run, events, Some((since, check))).await
    }

    async fn admit_runs(
        &self,
        batch: &[Admission<'_>],
        since: DateTime<Utc>,
        check: AdmissionCheck<'_>,
    ) -> Vec<StoreResult<Result<(), QuotaExceeded>>> {
        self.admit_batch(batch, since, check).await
    }

    async fn run_counts(&self, tenant: TenantId, since: DateTime<Utc>, module: &str) -> StoreResult<RunCounts> {
        let mut conn = self.conn().await?;
        match counts_on(&mut conn, tenant, since, module).await {
            Ok(counts) => Ok(counts),
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
                            coalesce(sum((SELECT count(*) FROM run_node_changes c \
                              WHERE c.tenant_id = runs.tenant_id AND c.execution_id = runs.execution_id)), 0)::bigint \
                              AS node_updates \
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
