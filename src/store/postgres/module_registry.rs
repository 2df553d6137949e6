//! The module registry: versions (`module_artifacts`, the descriptor in
//! `metadata`), their modules (`modules`) and trusted keys (`signing_keys`).
//! The artifacts' bytes, for deployments that keep them in the database,
//! are in `artifact_chunks.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{ModuleVersion, NewAuditEntry, QuotaExceeded, SigningKey, TenantId};
use hotswap_actors::store::{RegistryStore, StoreError, StoreResult, VersionCheck};
use uuid::Uuid;

use super::audit::insert_audit;
use super::codec;
use super::errors::Failure;
use super::schema::{module_artifacts, modules, signing_keys};
use super::tenants::admission_lock;
use super::PgStore;

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = module_artifacts, check_for_backend(Pg))]
struct VersionRow {
    tenant_id: Uuid,
    module_name: String,
    version: String,
    sha256: String,
    size_bytes: i64,
    storage_uri: String,
    signature: Option<String>,
    signing_key_id: Option<String>,
    uploaded_by: Option<String>,
    uploaded_at: DateTime<Utc>,
    metadata: serde_json::Value,
}

impl VersionRow {
    fn new(v: &ModuleVersion) -> StoreResult<VersionRow> {
        Ok(VersionRow {
            tenant_id: v.tenant_id,
            module_name: v.name().to_string(),
            version: v.version().to_string(),
            sha256: v.sha256.clone(),
            size_bytes: i64::try_from(v.size_bytes).map_err(|_| StoreError::Other("artifact too large".into()))?,
            storage_uri: v.storage_uri.clone(),
            signature: v.signature.clone(),
            signing_key_id: v.signing_key_id.clone(),
            uploaded_by: v.uploaded_by.clone(),
            uploaded_at: v.uploaded_at,
            metadata: codec::to_json(&v.descriptor, "the module descriptor")?,
        })
    }

    fn decode(self) -> StoreResult<ModuleVersion> {
        Ok(ModuleVersion {
            tenant_id: self.tenant_id,
            descriptor: codec::from_json(self.metadata, "module descriptor")?,
            sha256: self.sha256,
            size_bytes: u64::try_from(self.size_bytes).unwrap_or_default(),
            storage_uri: self.storage_uri,
            signature: self.signature,
            signing_key_id: self.signing_key_id,
            uploaded_by: self.uploaded_by,
            uploaded_at: self.uploaded_at,
        })
    }
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = signing_keys, check_for_backend(Pg))]
struct KeyRow {
    tenant_id: Uuid,
    key_id: String,
    algorithm: String,
    public_key: String,
    name: String,
    bits: i32,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl KeyRow {
    fn new(k: &SigningKey) -> KeyRow {
        KeyRow {
            tenant_id: k.tenant_id,
            key_id: k.key_id.clone(),
            algorithm: k.algorithm.clone(),
            public_key: k.public_key_pem.clone(),
            name: k.name.clone(),
            bits: i32::try_from(k.bits).unwrap_or(i32::MAX),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }

    fn decode(self) -> SigningKey {
        SigningKey {
            tenant_id: self.tenant_id,
            key_id: self.key_id,
            name: self.name,
            algorithm: self.algorithm,
            bits: u32::try_from(self.bits).unwrap_or_default(),
            public_key_pem: self.public_key,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        }
    }
}

fn unique_violation(e: &DbError) -> bool {
    matches!(e, DbError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}

/// Inserts a version (and its module, when new) with its audit entry, on
/// `conn` inside the caller's transaction.
async fn insert_version(
    conn: &mut AsyncPgConnection,
    version: &ModuleVersion,
    row: &VersionRow,
    audit: &NewAuditEntry,
) -> Result<(), Failure> {
    diesel::insert_into(modules::table)
        .values((
            modules::tenant_id.eq(version.tenant_id),
            modules::module_name.eq(version.name()),
            modules::description.eq(&version.descriptor.description),
            modules::updated_at.eq(version.uploaded_at),
        ))
        .on_conflict((modules::tenant_id, modules::module_name))
        .do_update()
        .set((
            modules::description.eq(excluded(modules::description)),
            modules::updated_at.eq(excluded(modules::updated_at)),
        ))
        .execute(conn)
        .await?;
    diesel::insert_into(module_artifacts::table).values(row).execute(conn).await?;
    insert_audit(conn, std::slice::from_ref(audit)).await?;
    Ok(())
}

impl PgStore {
    /// A failed insert of `version`: `Conflict` when it exists already.
    fn version_failure(&self, conn: &mut AsyncPgConnection, version: &ModuleVersion, f: Failure) -> StoreError {
        match f {
            Failure::Db(e) if unique_violation(&e) => StoreError::Conflict(format!(
                "module '{}' version {} exists already",
                version.name(),
                version.version()
            )),
            f => self.failure(conn, f),
        }
    }

    async fn versions_where(
        &self,
        tenant: TenantId,
        name: Option<&str>,
        version: Option<&str>,
    ) -> StoreResult<Vec<ModuleVersion>> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let mut query = module_artifacts::table.filter(module_artifacts::tenant_id.eq(tenant)).into_boxed();
        if let Some(name) = name {
            query = query.filter(module_artifacts::module_name.eq(name.to_string()));
        }
        if let Some(version) = version {
            query = query.filter(module_artifacts::version.eq(version.to_string()));
        }
        match query.select(VersionRow::as_select()).load(conn).await {
            Ok(rows) => rows.into_iter().map(VersionRow::decode).collect(),
            Err(e) => Err(self.db_error(conn, e)),
        }
    }
}

#[async_trait]
impl RegistryStore for PgStore {
    async fn add_module_version(&self, version: &ModuleVersion, audit: &NewAuditEntry) -> StoreResult<()> {
        let row = VersionRow::new(version)?;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result =
            conn.transaction::<_, Failure, _>(async |conn| insert_version(conn, version, &row, audit).await).await;
        result.map_err(|f| self.version_failure(conn, version, f))
    }

    async fn admit_module_version(
        &self,
        version: &ModuleVersion,
        audit: &NewAuditEntry,
        check: VersionCheck<'_>,
    ) -> StoreResult<Result<(), QuotaExceeded>> {
        let row = VersionRow::new(version)?;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction::<_, Failure, _>(async |conn| {
                // Every instance checks and stores the tenant's new versions
                // (and admits its runs) one at a time, until COMMIT.
                admission_lock(conn, version.tenant_id).await?;
                let stored = module_artifacts::table
                    .filter(module_artifacts::tenant_id.eq(version.tenant_id))
                    .select(VersionRow::as_select())
                    .load(conn)
                    .await?
                    .into_iter()
                    .map(VersionRow::decode)
                    .collect::<StoreResult<Vec<_>>>()?;
                if let Err(over) = check(&stored) {
                    return Ok(Err(over));
                }
                insert_version(conn, version, &row, audit).await.map(Ok)
            })
            .await;
        result.map_err(|f| self.version_failure(conn, version, f))
    }

    async fn get_module_version(
        &self,
        tenant: TenantId,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<ModuleVersion>> {
        Ok(self.versions_where(tenant, Some(name), Some(version)).await?.pop())
    }

    async fn module_versions(&self, tenant: TenantId, name: &str) -> StoreResult<Vec<ModuleVersion>> {
        self.versions_where(tenant, Some(name), None).await
    }

    async fn all_module_versions(&self, tenant: TenantId) -> StoreResult<Vec<ModuleVersion>> {
        self.versions_where(tenant, None, None).await
    }

    async fn artifact_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let found =
            diesel::select(diesel::dsl::exists(module_artifacts::table.filter(module_artifacts::sha256.eq(sha256))))
                .get_result::<bool>(conn)
                .await;
        found.map_err(|e| self.db_error(conn, e))
    }

    async fn delete_module_version(
        &self,
        tenant: TenantId,
        name: &str,
        version: &str,
        audit: &NewAuditEntry,
    ) -> StoreResult<bool> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction::<_, Failure, _>(async |conn| {
                let deleted =
                    diesel::delete(module_artifacts::table.find((tenant, name, version))).execute(conn).await?;
                if deleted > 0 {
                    insert_audit(conn, std::slice::from_ref(audit)).await?;
                }
                Ok(deleted > 0)
            })
            .await;
        result.map_err(|f| self.failure(conn, f))
    }

    async fn add_signing_key(&self, key: &SigningKey, audit: &NewAuditEntry) -> StoreResult<()> {
        let row = KeyRow::new(key);
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction::<_, Failure, _>(async |conn| {
                diesel::insert_into(signing_keys::table).values(&row).execute(conn).await?;
                insert_audit(conn, std::slice::from_ref(audit)).await?;
                Ok(())
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(Failure::Db(e)) if unique_violation(&e) => {
                Err(StoreError::Conflict(format!("signing key {} is trusted already", key.key_id)))
            }
            Err(f) => Err(self.failure(conn, f)),
        }
    }

    async fn get_signing_key(&self, tenant: TenantId, key_id: &str) -> StoreResult<Option<SigningKey>> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let found = signing_keys::table.find((tenant, key_id)).select(KeyRow::as_select()).first(conn).await.optional();
        match found {
            Ok(row) => Ok(row.map(KeyRow::decode)),
            Err(e) => Err(self.db_error(conn, e)),
        }
    }

    async fn list_signing_keys(&self, tenant: TenantId) -> StoreResult<Vec<SigningKey>> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let rows = signing_keys::table
            .filter(signing_keys::tenant_id.eq(tenant))
            .order((signing_keys::created_at.asc(), signing_keys::key_id.asc()))
            .select(KeyRow::as_select())
            .load(conn)
            .await;
        match rows {
            Ok(rows) => Ok(rows.into_iter().map(KeyRow::decode).collect()),
            Err(e) => Err(self.db_error(conn, e)),
        }
    }

    async fn revoke_signing_key(
        &self,
        tenant: TenantId,
        key_id: &str,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<SigningKey>> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction::<_, Failure, _>(async |conn| {
                let key = signing_keys::table.find((tenant, key_id));
                let Some(mut row) = key.select(KeyRow::as_select()).for_update().first(conn).await.optional()? else {
                    return Ok(None);
                };
                if row.revoked_at.is_none() {
                    diesel::update(key).set(signing_keys::revoked_at.eq(at)).execute(conn).await?;
                    insert_audit(conn, std::slice::from_ref(audit)).await?;
                    row.revoked_at = Some(at);
                }
                Ok(Some(row.decode()))
            })
            .await;
        result.map_err(|f| self.failure(conn, f))
    }
}
