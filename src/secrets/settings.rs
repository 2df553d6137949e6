//! `[secrets]`: the back-end that keeps secrets and their rotation.

use std::time::Duration;

use serde::Deserialize;

use crate::crypto::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretsBackend {
    /// In process memory (development): lost on exit.
    Memory,
    /// HashiCorp Vault's KV v2 engine.
    Vault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultAuth {
    Token,
    Approle,
}

/// Secrets and their rotation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSettings {
    pub backend: SecretsBackend,
    /// Run the background actor that rotates due secrets and warns before expiry.
    pub rotation_enabled: bool,
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// The policy of the JWT signing key (`jwt-signing-key`).
    pub jwt_policy: super::RotationPolicy,
    pub vault: VaultSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// https://vault.example.com:8200
    pub address: String,
    /// The KV v2 engine's mount path.
    pub mount: String,
    /// Our secrets live under this path in the mount.
    pub path_prefix: String,
    pub auth: VaultAuth,
    pub token: Secret,
    pub role_id: Secret,
    pub secret_id: Secret,
    /// Where the AppRole auth method is mounted.
    pub approle_path: String,
    /// PEM CA bundle that signed Vault's certificate; empty uses the system's.
    pub ca_cert_file: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Further attempts after a connection failure, 429 or 5xx.
    pub retries: u32,
    #[serde(with = "humantime_serde")]
    pub retry_delay: Duration,
}
