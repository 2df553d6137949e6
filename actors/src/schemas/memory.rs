//! The registry in memory: for development and as the reference the
//! PostgreSQL store is checked against.

use std::collections::BTreeMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::error::SchemaError;
use super::model::{Deprecation, SchemaDecision, SchemaSubject, SchemaVersion};
use super::store::{decide, SchemaStore};
use crate::domain::TenantId;

#[derive(Default)]
pub struct MemorySchemaStore {
    subjects: Mutex<BTreeMap<(TenantId, String), SchemaSubject>>,
}

impl MemorySchemaStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn not_found(schema_id: &str) -> SchemaError {
    SchemaError::NotFound(schema_id.to_string())
}

#[async_trait]
impl SchemaStore for MemorySchemaStore {
    async fn add_schema_version(&self, version: &SchemaVersion) -> Result<(), SchemaError> {
        let mut subjects = self.subjects.lock();
        let subject = subjects.entry((version.tenant_id, version.schema_id.clone())).or_insert_with(|| SchemaSubject {
            tenant_id: version.tenant_id,
            schema_id: version.schema_id.clone(),
            versions: Vec::new(),
            deprecated: None,
        });
        if subject.versions.iter().any(|v| v.version == version.version) {
            return Err(SchemaError::Conflict(format!(
                "schema '{}' version {} was registered concurrently",
                version.schema_id, version.version
            )));
        }
        subject.versions.push(version.clone());
        subject.versions.sort_by_key(|v| v.version);
        Ok(())
    }

    async fn get_schema(&self, tenant: TenantId, schema_id: &str) -> Result<SchemaSubject, SchemaError> {
        self.subjects.lock().get(&(tenant, schema_id.to_string())).cloned().ok_or_else(|| not_found(schema_id))
    }

    async fn list_schemas(&self, tenant: TenantId) -> Result<Vec<SchemaSubject>, SchemaError> {
        Ok(self.subjects.lock().values().filter(|s| s.tenant_id == tenant).cloned().collect())
    }

    async fn decide_schema_version(
        &self,
        tenant: TenantId,
        schema_id: &str,
        version: u32,
        decision: &SchemaDecision,
    ) -> Result<SchemaVersion, SchemaError> {
        let mut subjects = self.subjects.lock();
        let subject = subjects.get_mut(&(tenant, schema_id.to_string())).ok_or_else(|| not_found(schema_id))?;
        let stored = subject
            .versions
            .iter_mut()
            .find(|v| v.version == version)
            .ok_or_else(|| SchemaError::VersionNotFound { schema_id: schema_id.to_string(), version })?;
        let updated = decide(stored.clone(), decision)?;
        *stored = updated.clone();
        Ok(updated)
    }

    async fn deprecate_schema(
        &self,
        tenant: TenantId,
        schema_id: &str,
        deprecation: &Deprecation,
    ) -> Result<SchemaSubject, SchemaError> {
        let mut subjects = self.subjects.lock();
        let subject = subjects.get_mut(&(tenant, schema_id.to_string())).ok_or_else(|| not_found(schema_id))?;
        subject.deprecated.get_or_insert_with(|| deprecation.clone());
        Ok(subject.clone())
    }
}
