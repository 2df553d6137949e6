//! Secrets in process memory, for development and tests: lost on exit.

use std::collections::BTreeMap;

use async_trait::async_trait;
use parking_lot::RwLock;

use super::{SecretBackend, SecretError, SecretMetadata, SecretValue};

#[derive(Default)]
pub struct MemorySecrets {
    /// id → (metadata, versions oldest first: version n at index n - 1).
    secrets: RwLock<BTreeMap<String, (SecretMetadata, Vec<SecretValue>)>>,
}

impl MemorySecrets {
    pub fn new() -> MemorySecrets {
        MemorySecrets::default()
    }
}

#[async_trait(?Send)]
impl SecretBackend for MemorySecrets {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn metadata(&self, id: &str) -> Result<Option<SecretMetadata>, SecretError> {
        Ok(self.secrets.read().get(id).map(|(m, _)| m.clone()))
    }

    async fn value(&self, id: &str, version: u32) -> Result<Option<SecretValue>, SecretError> {
        let secrets = self.secrets.read();
        let index = (version as usize).checked_sub(1);
        Ok(secrets.get(id).and_then(|(_, versions)| index.and_then(|i| versions.get(i))).cloned())
    }

    async fn write(
        &self,
        id: &str,
        value: &SecretValue,
        expected_current: u32,
        metadata: &SecretMetadata,
    ) -> Result<u32, SecretError> {
        let mut secrets = self.secrets.write();
        let current = secrets.get(id).map_or(0, |(m, _)| m.current_version);
        if current != expected_current {
            return Err(SecretError::Conflict(id.to_string()));
        }
        let entry = secrets.entry(id.to_string()).or_insert_with(|| (metadata.clone(), Vec::new()));
        entry.1.push(value.clone());
        let version = entry.1.len() as u32;
        entry.0 = SecretMetadata { current_version: version, ..metadata.clone() };
        Ok(version)
    }

    async fn list(&self) -> Result<Vec<String>, SecretError> {
        Ok(self.secrets.read().keys().cloned().collect())
    }
}
