//! The schema registry's subjects and versions. Each version is kept whole
//! as jsonb; a subject row holds its deprecation, and the versions' primary
//! key settles concurrent registrations of the same number.

use async_trait::async_trait;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel::sql_types::{Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::TenantId;
use hotswap_actors::schemas::{Deprecation, SchemaDecision, SchemaError, SchemaStore, SchemaSubject, SchemaVersion};
use hotswap_actors::store::StoreError;

use super::codec;
use super::PgStore;

#[derive(QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Nullable<Jsonb>)]
    deprecated: Option<serde_json::Value>,
    #[diesel(sql_type = Jsonb)]
    record: serde_json::Value,
}

const SUBJECT_ROWS: &str = "SELECT s.deprecated, v.record FROM schema_subjects s \
     JOIN schema_versions v ON v.tenant_id = s.tenant_id AND v.schema_id = s.schema_id";

fn store_error(e: StoreError) -> SchemaError {
    match e {
        StoreError::Unavailable(m) => SchemaError::Unavailable(m),
        other => SchemaError::Backend(other.to_string()),
    }
}

/// Rows of one or more subjects, ordered by subject then version, as subjects.
fn subjects(rows: Vec<VersionRow>) -> Result<Vec<SchemaSubject>, SchemaError> {
    let mut out: Vec<SchemaSubject> = Vec::new();
    for row in rows {
        let version: SchemaVersion = codec::from_json(row.record, "schema version").map_err(store_error)?;
        match out.last_mut() {
            Some(s) if s.schema_id == version.schema_id => s.versions.push(version),
            _ => {
                let deprecated: Option<Deprecation> = match row.deprecated {
                    Some(d) => Some(codec::from_json(d, "schema deprecation").map_err(store_error)?),
                    None => None,
                };
                out.push(SchemaSubject {
                    tenant_id: version.tenant_id,
                    schema_id: version.schema_id.clone(),
                    versions: vec![version],
                    deprecated,
                });
            }
        }
    }
    Ok(out)
}

impl PgStore {
    async fn subject_rows(&self, tenant: TenantId, schema_id: Option<&str>) -> Result<Vec<VersionRow>, SchemaError> {
        let mut conn = self.conn().await.map_err(store_error)?;
        let query = match schema_id {
            Some(id) => diesel::sql_query(format!(
                "{SUBJECT_ROWS} WHERE s.tenant_id = $1 AND s.schema_id = $2 ORDER BY v.version"
            ))
            .into_boxed()
            .bind::<SqlUuid, _>(tenant)
            .bind::<Text, _>(id.to_string()),
            None => diesel::sql_query(format!("{SUBJECT_ROWS} WHERE s.tenant_id = $1 ORDER BY s.schema_id, v.version"))
                .into_boxed()
                .bind::<SqlUuid, _>(tenant),
        };
        match query.load::<VersionRow>(&mut *conn).await {
            Ok(rows) => Ok(rows),
            Err(e) => Err(store_error(self.db_error(&mut conn, e))),
        }
    }

    fn schema_db_error(&self, conn: &mut AsyncPgConnection, e: DbError, what: &str) -> SchemaError {
        match e {
            DbError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                SchemaError::Conflict(format!("{what} was registered concurrently"))
            }
            other => store_error(self.db_error(conn, other)),
        }
    }
}

#[async_trait]
impl SchemaStore for PgStore {
    async fn add_schema_version(&self, version: &SchemaVersion) -> Result<(), SchemaError> {
        let record = codec::to_json(version, "schema version").map_err(store_error)?;
        let number = i32::try_from(version.version).map_err(|_| SchemaError::Invalid("version out of range".into()))?;
        let mut pooled = self.conn().await.map_err(store_error)?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let outcome = conn
            .transaction::<_, DbError, _>(async |conn| {
                diesel::sql_query(
                    "INSERT INTO schema_subjects (tenant_id, schema_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id, schema_id) DO NOTHING",
                )
                .bind::<SqlUuid, _>(version.tenant_id)
                .bind::<Text, _>(&version.schema_id)
                .bind::<Timestamptz, _>(version.created_at)
                .execute(conn)
                .await?;
                diesel::sql_query(
                    "INSERT INTO schema_versions (tenant_id, schema_id, version, record) VALUES ($1, $2, $3, $4)",
                )
                .bind::<SqlUuid, _>(version.tenant_id)
                .bind::<Text, _>(&version.schema_id)
                .bind::<Integer, _>(number)
                .bind::<Jsonb, _>(&record)
                .execute(conn)
                .await?;
                Ok(())
            })
            .await;
        let what = format!("schema '{}' version {}", version.schema_id, version.version);
        outcome.map_err(|e| self.schema_db_error(conn, e, &what))
    }

    async fn get_schema(&self, tenant: TenantId, schema_id: &str) -> Result<SchemaSubject, SchemaError> {
        let rows = self.subject_rows(tenant, Some(schema_id)).await?;
        subjects(rows)?.pop().ok_or_else(|| SchemaError::NotFound(schema_id.to_string()))
    }

    async fn list_schemas(&self, tenant: TenantId) -> Result<Vec<SchemaSubject>, SchemaError> {
        subjects(self.subject_rows(tenant, None).await?)
    }

    async fn decide_schema_version(
        &self,
        tenant: TenantId,
        schema_id: &str,
        version: u32,
        decision: &SchemaDecision,
    ) -> Result<SchemaVersion, SchemaError> {
        let number = i32::try_from(version)
            .map_err(|_| SchemaError::VersionNotFound { schema_id: schema_id.to_string(), version })?;
        let mut pooled = self.conn().await.map_err(store_error)?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // The row is locked while the decision is made, so two Admins
        // deciding at once are served one after the other: the second sees
        // the first's decision and is refused.
        let outcome = conn
            .transaction::<_, DbError, _>(async |conn| {
                let rows: Vec<VersionRow> = diesel::sql_query(
                    "SELECT NULL::jsonb AS deprecated, record FROM schema_versions \
                     WHERE tenant_id = $1 AND schema_id = $2 AND version = $3 FOR UPDATE",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<Text, _>(schema_id)
                .bind::<Integer, _>(number)
                .load(conn)
                .await?;
                let Some(row) = rows.into_iter().next() else {
                    return Ok(Err(SchemaError::VersionNotFound { schema_id: schema_id.to_string(), version }));
                };
                let stored: SchemaVersion = match codec::from_json(row.record, "schema version") {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(store_error(e))),
                };
                let updated = match hotswap_actors::schemas::decide(stored, decision) {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(e)),
                };
                let record = match codec::to_json(&updated, "schema version") {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(store_error(e))),
                };
                diesel::sql_query(
                    "UPDATE schema_versions SET record = $4 WHERE tenant_id = $1 AND schema_id = $2 AND version = $3",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<Text, _>(schema_id)
                .bind::<Integer, _>(number)
                .bind::<Jsonb, _>(record)
                .execute(conn)
                .await?;
                Ok(Ok(updated))
            })
            .await;
        match outcome {
            Ok(verdict) => verdict,
            Err(e) => Err(self.schema_db_error(conn, e, schema_id)),
        }
    }

    async fn deprecate_schema(
        &self,
        tenant: TenantId,
        schema_id: &str,
        deprecation: &Deprecation,
    ) -> Result<SchemaSubject, SchemaError> {
        let stamp = codec::to_json(deprecation, "schema deprecation").map_err(store_error)?;
        let mut conn = self.conn().await.map_err(store_error)?;
        // The first deprecation is kept.
        let result = diesel::sql_query(
            "UPDATE schema_subjects SET deprecated = COALESCE(deprecated, $3) WHERE tenant_id = $1 AND schema_id = $2",
        )
        .bind::<SqlUuid, _>(tenant)
        .bind::<Text, _>(schema_id)
        .bind::<Jsonb, _>(stamp)
        .execute(&mut *conn)
        .await;
        match result {
            Ok(0) => Err(SchemaError::NotFound(schema_id.to_string())),
            Ok(_) => {
                drop(conn);
                self.get_schema(tenant, schema_id).await
            }
            Err(e) => Err(store_error(self.db_error(&mut conn, e))),
        }
    }
}
