//! `SchemaRegistry`: the registry's rules over a [`SchemaStore`]: version
//! numbering, compatibility with earlier approved versions, decisions, and
//! validation with compiled schemas kept for reuse. Compiling and checking
//! large payloads run on blocking threads, never on the caller's.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::compatibility::breaking_changes;
use super::error::SchemaError;
use super::model::{Deprecation, NewSchema, SchemaDecision, SchemaStatus, SchemaSubject, SchemaVersion};
use super::store::SharedSchemaStore;
use super::validation::{CompiledSchema, PayloadError, INLINE_VALIDATION_BYTES};
use crate::domain::TenantId;

/// Compiled schemas kept; past that the cache starts over (versions never
/// change, so anything cached stays right, it is only a matter of memory).
const COMPILED_CACHE_ENTRIES: usize = 512;
/// Registrations retried when a concurrent one takes the version number.
const REGISTER_ATTEMPTS: usize = 3;

type CacheKey = (TenantId, String, u32);

/// What a registration did: a new version, or the latest one again when
/// the definition is the same.
#[derive(Debug, Clone)]
pub struct Registered {
    pub version: SchemaVersion,
    pub created: bool,
}

pub struct SchemaRegistry {
    store: SharedSchemaStore,
    compiled: Mutex<HashMap<CacheKey, Arc<CompiledSchema>>>,
}

impl SchemaRegistry {
    pub fn new(store: SharedSchemaStore) -> Self {
        SchemaRegistry { store, compiled: Mutex::new(HashMap::new()) }
    }

    pub fn store(&self) -> &SharedSchemaStore {
        &self.store
    }

    /// Registers `spec` as the subject's next version: Draft when it is the
    /// first, when nothing is approved yet, or when it breaks an approved
    /// version its compatibility names; Approved otherwise. An invalid
    /// JSON Schema is refused with the reason.
    pub async fn register(
        &self,
        tenant: TenantId,
        spec: NewSchema,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Registered, SchemaError> {
        NewSchema::validate_id(&spec.schema_id)?;
        let definition = spec.definition.clone();
        off_thread(move || CompiledSchema::compile(&definition)).await??;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let subject = match self.store.get_schema(tenant, &spec.schema_id).await {
                Ok(s) => Some(s),
                Err(SchemaError::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            if let Some(s) = &subject {
                if s.deprecated.is_some() {
                    return Err(SchemaError::Deprecated(spec.schema_id.clone()));
                }
                if let Some(latest) = s.latest().filter(|v| v.definition == spec.definition) {
                    if latest.status != SchemaStatus::Rejected && latest.compatibility == spec.compatibility {
                        return Ok(Registered { version: latest.clone(), created: false });
                    }
                }
            }
            let version = next_version(tenant, subject.as_ref(), &spec, by, now);
            match self.store.add_schema_version(&version).await {
                Ok(()) => return Ok(Registered { version, created: true }),
                Err(SchemaError::Conflict(_)) if attempt < REGISTER_ATTEMPTS => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub async fn get(&self, tenant: TenantId, schema_id: &str) -> Result<SchemaSubject, SchemaError> {
        self.store.get_schema(tenant, schema_id).await
    }

    pub async fn list(&self, tenant: TenantId) -> Result<Vec<SchemaSubject>, SchemaError> {
        self.store.list_schemas(tenant).await
    }

    pub async fn decide(
        &self,
        tenant: TenantId,
        schema_id: &str,
        version: u32,
        decision: SchemaDecision,
    ) -> Result<SchemaVersion, SchemaError> {
        self.store.decide_schema_version(tenant, schema_id, version, &decision).await
    }

    pub async fn deprecate(
        &self,
        tenant: TenantId,
        schema_id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<SchemaSubject, SchemaError> {
        self.store.deprecate_schema(tenant, schema_id, &Deprecation { by: by.to_string(), at: now }).await
    }

    /// Checks `payload` (JSON text) against a version of the subject:
    /// `version` when given, else the latest approved one. With
    /// `approved_only`, as publishes are, a version that is not approved is
    /// refused; without it (the validate endpoint, for trying drafts) any
    /// version may be named, and a subject with nothing approved is checked
    /// against its latest version.
    pub async fn validate(
        &self,
        tenant: TenantId,
        schema_id: &str,
        version: Option<u32>,
        payload: String,
        approved_only: bool,
    ) -> Result<(SchemaVersion, Vec<PayloadError>), SchemaError> {
        let subject = self.store.get_schema(tenant, schema_id).await?;
        let chosen = match version {
            Some(n) => subject.version(n)?,
            None if approved_only => subject.latest_approved().ok_or_else(|| {
                SchemaError::Invalid(format!("schema '{schema_id}' has no approved version to validate against"))
            })?,
            None => {
                subject.latest_approved().or(subject.latest()).ok_or_else(|| SchemaError::NotFound(schema_id.into()))?
            }
        };
        if approved_only && chosen.status != SchemaStatus::Approved {
            return Err(SchemaError::Invalid(format!(
                "schema '{schema_id}' version {} is {}; only approved versions validate messages",
                chosen.version,
                chosen.status.as_str()
            )));
        }
        let chosen = chosen.clone();
        let compiled = self.compiled(&chosen).await?;
        let errors = if payload.len() <= INLINE_VALIDATION_BYTES {
            compiled.check_text(&payload)
        } else {
            off_thread(move || compiled.check_text(&payload)).await?
        };
        Ok((chosen, errors))
    }

    async fn compiled(&self, version: &SchemaVersion) -> Result<Arc<CompiledSchema>, SchemaError> {
        let key = (version.tenant_id, version.schema_id.clone(), version.version);
        if let Some(found) = self.compiled.lock().get(&key) {
            return Ok(found.clone());
        }
        let definition = version.definition.clone();
        let compiled = Arc::new(off_thread(move || CompiledSchema::compile(&definition)).await??);
        let mut cache = self.compiled.lock();
        if cache.len() >= COMPILED_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
        Ok(compiled)
    }
}

/// Who `decidedBy` names on a version approved at registration, because the
/// compatibility check found nothing that breaks.
pub const AUTO_APPROVER: &str = "compatibility check";

/// The version a registration makes of `spec`, given the subject so far.
fn next_version(
    tenant: TenantId,
    subject: Option<&SchemaSubject>,
    spec: &NewSchema,
    by: &str,
    now: DateTime<Utc>,
) -> SchemaVersion {
    let number = subject.and_then(SchemaSubject::latest).map_or(1, |v| v.version + 1);
    let approved: Vec<&SchemaVersion> =
        subject.map(|s| s.versions.iter().filter(|v| v.status == SchemaStatus::Approved).collect()).unwrap_or_default();
    let (status, breaking, decision) = match approved.last() {
        // Nothing to be compatible with: an Admin approves the first.
        None => (SchemaStatus::Draft, Vec::new(), None),
        Some(latest) => {
            let against: Vec<&SchemaVersion> =
                if spec.compatibility.transitive() { approved.clone() } else { vec![*latest] };
            let changes: Vec<_> = against
                .iter()
                .flat_map(|v| breaking_changes(&v.definition, v.version, &spec.definition, spec.compatibility))
                .collect();
            if changes.is_empty() {
                // Approved by the check, and the version says so: who decided, when and against what.
                let numbers: Vec<String> = against.iter().map(|v| v.version.to_string()).collect();
                let decision = SchemaDecision {
                    approve: true,
                    by: AUTO_APPROVER.to_string(),
                    at: now,
                    reason: Some(format!(
                        "compatible ({}) with approved version {}",
                        spec.compatibility.as_str(),
                        numbers.join(", ")
                    )),
                };
                (SchemaStatus::Approved, changes, Some(decision))
            } else {
                (SchemaStatus::Draft, changes, None)
            }
        }
    };
    SchemaVersion {
        tenant_id: tenant,
        schema_id: spec.schema_id.clone(),
        version: number,
        definition: spec.definition.clone(),
        compatibility: spec.compatibility,
        status,
        breaking_changes: breaking,
        created_by: by.to_string(),
        created_at: now,
        decision,
    }
}

/// Runs CPU-bound work on a blocking thread.
async fn off_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, SchemaError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| SchemaError::Backend(format!("schema work failed: {e}")))
}
