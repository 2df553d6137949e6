//! Secrets in the `[store]` database, for `secrets.backend = "postgres"`:
//! every instance on the database shares them, so a rotation made by one
//! reaches the others (the JWT signing key above all) and survives restarts.
//! Values are sealed with `secrets.encryption_key` (`secrets::sealing`)
//! before they leave the process; the database holds ciphertext only.
//! `secrets` keeps each secret's metadata and current version,
//! `secret_versions` every version's sealed value.

use async_trait::async_trait;
use diesel::sql_types::{Bytea, Integer, Jsonb, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::store::StoreError;

use super::errors::Failure;
use super::PgStore;
use crate::secrets::sealing::SealingKey;
use crate::secrets::{SecretBackend, SecretError, SecretMetadata, SecretValue};

pub struct PgSecrets {
    store: PgStore,
    key: SealingKey,
}

impl PgSecrets {
    pub fn new(store: PgStore, key: SealingKey) -> PgSecrets {
        PgSecrets { store, key }
    }
}

#[derive(QueryableByName)]
struct MetadataRow {
    #[diesel(sql_type = Jsonb)]
    metadata: serde_json::Value,
}

#[derive(QueryableByName)]
struct SealedRow {
    #[diesel(sql_type = Bytea)]
    sealed: Vec<u8>,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

fn unavailable(e: StoreError) -> SecretError {
    SecretError::Unavailable(e.to_string())
}

/// A write lost to another instance's: the current version was not the expected one.
struct Lost;

fn version_number(version: u32) -> Result<i32, SecretError> {
    i32::try_from(version).map_err(|_| SecretError::Invalid(format!("version {version} is out of range")))
}

#[async_trait(?Send)]
impl SecretBackend for PgSecrets {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn metadata(&self, id: &str) -> Result<Option<SecretMetadata>, SecretError> {
        let mut conn = self.store.conn().await.map_err(unavailable)?;
        let query = diesel::sql_query("SELECT metadata FROM secrets WHERE id = $1").bind::<Text, _>(id);
        let row: Option<MetadataRow> = match query.get_result(&mut *conn).await {
            Ok(row) => Some(row),
            Err(diesel::result::Error::NotFound) => None,
            Err(e) => return Err(unavailable(self.store.db_error(&mut conn, e))),
        };
        row.map(|r| {
            serde_json::from_value(r.metadata)
                .map_err(|e| SecretError::Unavailable(format!("the stored metadata of {id} does not read: {e}")))
        })
        .transpose()
    }

    async fn value(&self, id: &str, version: u32) -> Result<Option<SecretValue>, SecretError> {
        let mut conn = self.store.conn().await.map_err(unavailable)?;
        let query = diesel::sql_query("SELECT sealed FROM secret_versions WHERE id = $1 AND version = $2")
            .bind::<Text, _>(id)
            .bind::<Integer, _>(version_number(version)?);
        let row: Option<SealedRow> = match query.get_result(&mut *conn).await {
            Ok(row) => Some(row),
            Err(diesel::result::Error::NotFound) => None,
            Err(e) => return Err(unavailable(self.store.db_error(&mut conn, e))),
        };
        row.map(|r| self.key.open(id, version, &r.sealed)).transpose()
    }

    async fn write(
        &self,
        id: &str,
        value: &SecretValue,
        expected_current: u32,
        metadata: &SecretMetadata,
    ) -> Result<u32, SecretError> {
        let version =
            expected_current.checked_add(1).ok_or_else(|| SecretError::Invalid("too many versions".into()))?;
        let sealed = self.key.seal(id, version, value)?;
        let stored = SecretMetadata { current_version: version, ..metadata.clone() };
        let stored = serde_json::to_value(&stored).map_err(|e| SecretError::Invalid(e.to_string()))?;
        let (expected, new) = (version_number(expected_current)?, version_number(version)?);
        let mut pooled = self.store.conn().await.map_err(unavailable)?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // The head row changes only from the expected version, so of two
        // instances rotating at once one wins and the other hears Conflict;
        // its value row goes in the same transaction.
        let written = conn
            .transaction::<_, Failure, _>(async |conn| {
                let head = if expected == 0 {
                    diesel::sql_query(
                        "INSERT INTO secrets (id, current_version, metadata) VALUES ($1, $2, $3) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind::<Text, _>(id)
                    .bind::<Integer, _>(new)
                    .bind::<Jsonb, _>(&stored)
                    .execute(conn)
                    .await?
                } else {
                    diesel::sql_query(
                        "UPDATE secrets SET current_version = $2, metadata = $3 WHERE id = $1 AND current_version = $4",
                    )
                    .bind::<Text, _>(id)
                    .bind::<Integer, _>(new)
                    .bind::<Jsonb, _>(&stored)
                    .bind::<Integer, _>(expected)
                    .execute(conn)
                    .await?
                };
                if head == 0 {
                    return Ok(Err(Lost));
                }
                diesel::sql_query("INSERT INTO secret_versions (id, version, sealed) VALUES ($1, $2, $3)")
                    .bind::<Text, _>(id)
                    .bind::<Integer, _>(new)
                    .bind::<Bytea, _>(&sealed)
                    .execute(conn)
                    .await?;
                Ok(Ok(()))
            })
            .await
            .map_err(|f| unavailable(self.store.failure(conn, f)))?;
        match written {
            Ok(()) => Ok(version),
            Err(Lost) => Err(SecretError::Conflict(id.to_string())),
        }
    }

    async fn list(&self) -> Result<Vec<String>, SecretError> {
        let mut conn = self.store.conn().await.map_err(unavailable)?;
        let rows: Vec<IdRow> = diesel::sql_query("SELECT id FROM secrets ORDER BY id")
            .load(&mut *conn)
            .await
            .map_err(|e| unavailable(self.store.db_error(&mut conn, e)))?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }
}
