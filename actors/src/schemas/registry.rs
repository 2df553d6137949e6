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
use super::model::{
    BreakingChange, Compatibility, Deprecation, NewSchema, Registrant, SchemaDecision, SchemaStatus, SchemaSubject,
    SchemaVersion,
};
use super::store::SharedSchemaStore;
use super::validation::{CompiledSchema, PayloadError, INLINE_VALIDATION_BYTES};
use crate::domain::{holds_nul, json_holds_nul, nul_refusal, TenantId};

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
    /// first, when nothing is approved yet, when it breaks an approved
    /// version under the subject's compatibility, or when someone other than
    /// an Admin names another compatibility than the subject's; Approved
    /// otherwise. An invalid JSON Schema is refused with the reason.
    pub async fn register(
        &self,
        tenant: TenantId,
        spec: NewSchema,
        by: Registrant<'_>,
        now: DateTime<Utc>,
    ) -> Result<Registered, SchemaError> {
        NewSchema::validate_id(&spec.schema_id)?;
        if json_holds_nul(&spec.definition) {
            return Err(SchemaError::Invalid(nul_refusal("schemaDefinition")));
        }
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
                let asked = spec.compatibility.unwrap_or_else(|| s.compatibility());
                if let Some(latest) = s.latest().filter(|v| v.definition == spec.definition) {
                    if latest.status != SchemaStatus::Rejected && latest.compatibility == asked {
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
        if decision.reason.as_deref().is_some_and(holds_nul) {
            return Err(SchemaError::Invalid(nul_refusal("reason")));
        }
        self.store.decide_schema_version(tenant, schema_id, version, &decision).await
    }

    /// Deprecates a subject; a subject deprecated already keeps its first
    /// deprecation (who, when and why).
    pub async fn deprecate(
        &self,
        tenant: TenantId,
        schema_id: &str,
        by: &str,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<SchemaSubject, SchemaError> {
        if reason.as_deref().is_some_and(holds_nul) {
            return Err(SchemaError::Invalid(nul_refusal("reason")));
        }
        let deprecation = Deprecation { by: by.to_string(), at: now, reason };
        self.store.deprecate_schema(tenant, schema_id, &deprecation).await
    }

    /// Checks `payload` (JSON text) against a version of the subject:
    /// `version` when given, else the latest approved one. With
    /// `approved_only`, as publishes are, a version that is not approved is
    /// refused; without it (the validate endpoint, for trying drafts) any
    /// version may be named. With no version named and none approved it is
    /// refused either way, as a publish would be.
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
            // A publish naming a version the subject does not have names no
            // approved version: refused as invalid input, as a Draft is.
            Some(n) if approved_only => subject.version(n).map_err(|_| {
                SchemaError::Invalid(format!(
                    "schemaVersion: schema '{schema_id}' has no version {n}; only approved versions validate messages"
                ))
            })?,
            Some(n) => subject.version(n)?,
            // Without a version, validate answers what a publish would: with
            // none approved there is nothing a publish is checked against.
            None => subject.latest_approved().ok_or_else(|| {
                SchemaError::Invalid(format!("schema '{schema_id}' has no approved version to validate against"))
            })?,
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

/// The `change` of the entry that says why a version naming another
/// compatibility than its subject's waits for an Admin.
pub const COMPATIBILITY_CHANGED: &str = "CompatibilityChanged";

/// The version a registration makes of `spec`, given the subject so far.
fn next_version(
    tenant: TenantId,
    subject: Option<&SchemaSubject>,
    spec: &NewSchema,
    by: Registrant<'_>,
    now: DateTime<Utc>,
) -> SchemaVersion {
    let number = subject.and_then(SchemaSubject::latest).map_or(1, |v| v.version + 1);
    let current = subject.map(SchemaSubject::compatibility);
    let asked = spec.compatibility.or(current).unwrap_or_default();
    let approved: Vec<&SchemaVersion> =
        subject.map(|s| s.versions.iter().filter(|v| v.status == SchemaStatus::Approved).collect()).unwrap_or_default();
    let (status, breaking, decision) = match approved.last() {
        // Nothing to be compatible with: an Admin approves the first.
        None => (SchemaStatus::Draft, Vec::new(), None),
        // Another mode than the subject's, named by someone who may not set
        // it: what breaks under either mode is listed, and an Admin decides
        // (approving the version makes its mode the subject's).
        Some(latest) if current.is_some_and(|c| c != asked) && !by.may_set_compatibility => {
            let current = current.unwrap_or_default();
            let mut changes = changes_under(current, &approved, spec);
            for change in changes_under(asked, &approved, spec) {
                if !changes.contains(&change) {
                    changes.push(change);
                }
            }
            changes.push(BreakingChange {
                path: "$".into(),
                change: COMPATIBILITY_CHANGED.into(),
                detail: format!(
                    "the subject's compatibility is {}; {} applies once an Admin approves this version",
                    current.as_str(),
                    asked.as_str()
                ),
                against_version: latest.version,
            });
            (SchemaStatus::Draft, changes, None)
        }
        Some(latest) => {
            let against = compared_with(asked, &approved, latest);
            let changes = changes_under(asked, &approved, spec);
            if changes.is_empty() {
                // Approved by the check, and the version says so: who decided, when and against what.
                let numbers: Vec<String> = against.iter().map(|v| v.version.to_string()).collect();
                let decision = SchemaDecision {
                    approve: true,
                    by: AUTO_APPROVER.to_string(),
                    at: now,
                    reason: Some(format!(
                        "compatible ({}) with approved version {}",
                        asked.as_str(),
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
        compatibility: asked,
        status,
        breaking_changes: breaking,
        created_by: by.name.to_string(),
        created_at: now,
        decision,
    }
}

/// The approved versions `mode` compares a new version with: every one for
/// the Transitive modes, else the latest.
fn compared_with<'a>(
    mode: Compatibility,
    approved: &[&'a SchemaVersion],
    latest: &'a SchemaVersion,
) -> Vec<&'a SchemaVersion> {
    if mode.transitive() {
        approved.to_vec()
    } else {
        vec![latest]
    }
}

/// What `spec` breaks under `mode` (`approved` is never empty).
fn changes_under(mode: Compatibility, approved: &[&SchemaVersion], spec: &NewSchema) -> Vec<BreakingChange> {
    let Some(latest) = approved.last() else { return Vec::new() };
    compared_with(mode, approved, latest)
        .iter()
        .flat_map(|v| breaking_changes(&v.definition, v.version, &spec.definition, mode))
        .collect()
}

/// Runs CPU-bound work on a blocking thread.
async fn off_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, SchemaError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| SchemaError::Backend(format!("schema work failed: {e}")))
}
