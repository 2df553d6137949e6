//! The module registry's records: a module version with its descriptor, the
//! digest and signature of its artifact, and the public keys that
//! signatures are checked against.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::TenantId;

/// How a detached signature is padded. Both sign the SHA-256 of the artifact,
/// as `openssl dgst -sha256 -sign key.pem` does (PSS with
/// `-sigopt rsa_padding_mode:pss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SignatureAlgorithm {
    #[default]
    #[serde(rename = "RSA-PKCS1v15-SHA256", alias = "PKCS1v15", alias = "pkcs1v15")]
    RsaPkcs1v15Sha256,
    #[serde(rename = "RSA-PSS-SHA256", alias = "PSS", alias = "pss")]
    RsaPssSha256,
}

impl SignatureAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaPkcs1v15Sha256 => "RSA-PKCS1v15-SHA256",
            SignatureAlgorithm::RsaPssSha256 => "RSA-PSS-SHA256",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirements {
    #[serde(rename = "memoryMB", default)]
    pub memory_mb: u64,
    #[serde(default)]
    pub cpu_cores: f64,
    #[serde(rename = "diskMB", default)]
    pub disk_mb: u64,
}

/// What the uploader says about a module version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleDescriptor {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub author: String,
    /// Module name → semantic-version requirement such as "^1.2".
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
    #[serde(default)]
    pub resource_requirements: ResourceRequirements,
    /// An object; `{}` when left out.
    #[serde(default = "empty_object")]
    pub configuration: serde_json::Value,
    #[serde(default)]
    pub signature_algorithm: SignatureAlgorithm,
    /// The canary analysis's own queries for this module, if it brings any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<super::ModuleAnalysis>,
    /// Commands an agent runs on its host around each step (docs/AGENT.md).
    #[serde(default, skip_serializing_if = "ModuleHooks::is_empty")]
    pub hooks: ModuleHooks,
}

/// Shell commands run by `hotswap agent` with a timeout; each gets the
/// artifact path, module, version and node in its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModuleHooks {
    pub activate: Option<String>,
    pub deactivate: Option<String>,
    /// Exit 0 = healthy; may print `{"errorRate": .., "latencyMs": ..}`.
    pub health: Option<String>,
    /// Also read as `prepare_standby`, the name the hook has in
    /// `HOTSWAP_HOOK` and the spelling agents' TOML files tend to use.
    #[serde(alias = "prepare_standby")]
    pub prepare_standby: Option<String>,
}

impl ModuleHooks {
    pub fn is_empty(&self) -> bool {
        self == &ModuleHooks::default()
    }

    /// `self`'s commands where set, else `fallback`'s.
    pub fn or(&self, fallback: &ModuleHooks) -> ModuleHooks {
        let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        ModuleHooks {
            activate: pick(&self.activate, &fallback.activate),
            deactivate: pick(&self.deactivate, &fallback.deactivate),
            health: pick(&self.health, &fallback.health),
            prepare_standby: pick(&self.prepare_standby, &fallback.prepare_standby),
        }
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// One stored version of a module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleVersion {
    pub tenant_id: TenantId,
    pub descriptor: ModuleDescriptor,
    /// Lower-case hex SHA-256 of the artifact.
    pub sha256: String,
    pub size_bytes: u64,
    /// Where the artifact store keeps the bytes ("fs:…", "pg:…").
    pub storage_uri: String,
    /// Base64 detached signature; `None` for an unsigned module.
    pub signature: Option<String>,
    /// The trusted key the signature verified against at upload.
    pub signing_key_id: Option<String>,
    pub uploaded_by: Option<String>,
    pub uploaded_at: DateTime<Utc>,
}

impl ModuleVersion {
    pub fn name(&self) -> &str {
        &self.descriptor.name
    }
    pub fn version(&self) -> &str {
        &self.descriptor.version
    }
}

/// A trusted RSA public key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    pub tenant_id: TenantId,
    /// "sha256:" and the hex SHA-256 of the key's SubjectPublicKeyInfo DER.
    pub key_id: String,
    pub name: String,
    pub algorithm: String,
    pub bits: u32,
    /// SPKI PEM, whatever form it was given in.
    pub public_key_pem: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl SigningKey {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// The storage quota's unit: decimal gigabytes, as the tiers are sold.
pub const BYTES_PER_GB: u64 = 1_000_000_000;

/// Bytes a tenant's artifacts take: each distinct artifact once (versions
/// with the same bytes share one stored copy).
pub fn stored_bytes(versions: &[ModuleVersion]) -> u64 {
    let mut seen = std::collections::HashSet::new();
    versions.iter().filter(|v| seen.insert(v.sha256.as_str())).map(|v| v.size_bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standby_hook_is_read_in_either_spelling_and_written_in_one() {
        for key in ["prepareStandby", "prepare_standby"] {
            let hooks: ModuleHooks = serde_json::from_value(serde_json::json!({ key: "touch standby" })).unwrap();
            assert_eq!(hooks.prepare_standby.as_deref(), Some("touch standby"), "{key}");
            assert_eq!(serde_json::to_value(&hooks).unwrap()["prepareStandby"], "touch standby");
        }
    }
}
