//! The in-memory module registry: versions and signing keys by tenant.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::domain::{ModuleVersion, NewAuditEntry, SigningKey, TenantId};
use crate::store::{RegistryStore, StoreError, StoreResult};

#[derive(Default)]
pub(super) struct Registry {
    /// (tenant, module name, version) → version.
    versions: HashMap<(TenantId, String, String), ModuleVersion>,
    /// Per tenant.
    keys: HashMap<TenantId, Vec<SigningKey>>,
}

#[async_trait]
impl RegistryStore for MemoryStore {
    async fn add_module_version(&self, version: &ModuleVersion, audit: &NewAuditEntry) -> StoreResult<()> {
        {
            let mut reg = self.registry.write();
            let key = (version.tenant_id, version.name().to_string(), version.version().to_string());
            if reg.versions.contains_key(&key) {
                return Err(StoreError::Conflict(format!(
                    "module '{}' version {} exists already",
                    version.name(),
                    version.version()
                )));
            }
            reg.versions.insert(key, version.clone());
        }
        self.push_audit(std::slice::from_ref(audit));
        Ok(())
    }

    async fn get_module_version(
        &self,
        tenant: TenantId,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<ModuleVersion>> {
        Ok(self.registry.read().versions.get(&(tenant, name.to_string(), version.to_string())).cloned())
    }

    async fn module_versions(&self, tenant: TenantId, name: &str) -> StoreResult<Vec<ModuleVersion>> {
        let reg = self.registry.read();
        Ok(reg.versions.values().filter(|v| v.tenant_id == tenant && v.name() == name).cloned().collect())
    }

    async fn all_module_versions(&self, tenant: TenantId) -> StoreResult<Vec<ModuleVersion>> {
        Ok(self.registry.read().versions.values().filter(|v| v.tenant_id == tenant).cloned().collect())
    }

    async fn artifact_in_use(&self, sha256: &str) -> StoreResult<bool> {
        Ok(self.registry.read().versions.values().any(|v| v.sha256 == sha256))
    }

    async fn delete_module_version(
        &self,
        tenant: TenantId,
        name: &str,
        version: &str,
        audit: &NewAuditEntry,
    ) -> StoreResult<bool> {
        let removed = self.registry.write().versions.remove(&(tenant, name.to_string(), version.to_string()));
        if removed.is_some() {
            self.push_audit(std::slice::from_ref(audit));
        }
        Ok(removed.is_some())
    }

    async fn add_signing_key(&self, key: &SigningKey, audit: &NewAuditEntry) -> StoreResult<()> {
        {
            let mut reg = self.registry.write();
            let keys = reg.keys.entry(key.tenant_id).or_default();
            if keys.iter().any(|k| k.key_id == key.key_id) {
                return Err(StoreError::Conflict(format!("signing key {} is trusted already", key.key_id)));
            }
            keys.push(key.clone());
        }
        self.push_audit(std::slice::from_ref(audit));
        Ok(())
    }

    async fn get_signing_key(&self, tenant: TenantId, key_id: &str) -> StoreResult<Option<SigningKey>> {
        let reg = self.registry.read();
        Ok(reg.keys.get(&tenant).and_then(|keys| keys.iter().find(|k| k.key_id == key_id)).cloned())
    }

    async fn list_signing_keys(&self, tenant: TenantId) -> StoreResult<Vec<SigningKey>> {
        let mut keys = self.registry.read().keys.get(&tenant).cloned().unwrap_or_default();
        // PostgreSQL's order: by creation time, then id.
        keys.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
        Ok(keys)
    }

    async fn revoke_signing_key(
        &self,
        tenant: TenantId,
        key_id: &str,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<SigningKey>> {
        let (key, changed) = {
            let mut reg = self.registry.write();
            let Some(key) = reg.keys.get_mut(&tenant).and_then(|keys| keys.iter_mut().find(|k| k.key_id == key_id))
            else {
                return Ok(None);
            };
            let changed = key.revoked_at.is_none();
            if changed {
                key.revoked_at = Some(at);
            }
            (key.clone(), changed)
        };
        if changed {
            self.push_audit(std::slice::from_ref(audit));
        }
        Ok(Some(key))
    }
}
