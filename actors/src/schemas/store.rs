use std::sync::Arc;

use async_trait::async_trait;

use super::error::SchemaError;
use super::model::{Deprecation, SchemaDecision, SchemaSubject, SchemaVersion};
use crate::domain::TenantId;

/// The registry's storage. Every method takes the tenant and sees only that
/// tenant's subjects: another tenant's schema is "not found". The rules
/// (numbering, compatibility, who decides) are [`super::SchemaRegistry`]'s;
/// a store keeps records and refuses only what it alone can see.
#[async_trait]
pub trait SchemaStore: Send + Sync {
    /// Stores a new version (creating its subject on version 1). `Conflict`
    /// when that version number is taken: a concurrent registration won.
    async fn add_schema_version(&self, version: &SchemaVersion) -> Result<(), SchemaError>;
    /// `NotFound` when the subject has no versions.
    async fn get_schema(&self, tenant: TenantId, schema_id: &str) -> Result<SchemaSubject, SchemaError>;
    /// The tenant's subjects, by id.
    async fn list_schemas(&self, tenant: TenantId) -> Result<Vec<SchemaSubject>, SchemaError>;
    /// Approves or rejects a Draft version (`InvalidState` for any other
    /// status, decided atomically so two Admins cannot both decide).
    async fn decide_schema_version(
        &self,
        tenant: TenantId,
        schema_id: &str,
        version: u32,
        decision: &SchemaDecision,
    ) -> Result<SchemaVersion, SchemaError>;
    /// Marks the subject deprecated; again keeps the first deprecation.
    async fn deprecate_schema(
        &self,
        tenant: TenantId,
        schema_id: &str,
        deprecation: &Deprecation,
    ) -> Result<SchemaSubject, SchemaError>;
}

pub type SharedSchemaStore = Arc<dyn SchemaStore>;

/// What a decision makes of a Draft version; shared by the back-ends.
pub fn decide(mut version: SchemaVersion, decision: &SchemaDecision) -> Result<SchemaVersion, SchemaError> {
    use super::model::SchemaStatus;
    if version.status != SchemaStatus::Draft {
        return Err(SchemaError::InvalidState {
            schema_id: version.schema_id,
            version: version.version,
            current: version.status.as_str().to_string(),
        });
    }
    version.status = if decision.approve { SchemaStatus::Approved } else { SchemaStatus::Rejected };
    version.decision = Some(decision.clone());
    Ok(version)
}
