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
    /// The `[store]` database (which must be PostgreSQL), values sealed
    /// with `encryption_key`: shared by every instance on that database.
    Postgres,
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
    /// With `backend = "postgres"`: 32 bytes in base64 (`openssl rand -base64
    /// 32`) that seal every value; the same on every instance.
    pub encryption_key: Secret,
    pub vault: VaultSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// https://vault.example.com:8200
    pub address: crate::crypto::ServiceUrl,
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

impl SecretsSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.check_interval.is_zero() {
            return Err("secrets.check_interval must be above zero".into());
        }
        self.jwt_policy.validate("secrets.jwt_policy")?;
        if self.backend == SecretsBackend::Postgres {
            super::sealing::SealingKey::from_base64(self.encryption_key.expose())
                .map_err(|e| format!("secrets.backend = \"postgres\" needs secrets.encryption_key: {e}"))?;
        }
        if self.backend == SecretsBackend::Vault {
            let v = &self.vault;
            if !v.address.starts_with("https://") && !v.address.starts_with("http://") {
                return Err("secrets.vault.address must be an https:// URL such as https://vault:8200".into());
            }
            if v.mount.trim_matches('/').is_empty() || v.timeout.is_zero() {
                return Err("secrets.vault.mount must be set and secrets.vault.timeout above zero".into());
            }
            let missing = match v.auth {
                VaultAuth::Token => v.token.expose().is_empty(),
                VaultAuth::Approle => v.role_id.expose().is_empty() || v.secret_id.expose().is_empty(),
            };
            if missing {
                return Err(
                    "secrets.vault: auth = \"token\" needs token; auth = \"approle\" needs role_id and secret_id"
                        .into(),
                );
            }
        }
        Ok(())
    }
}
