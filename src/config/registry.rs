//! Settings of the module registry, its security rules, and secrets.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Secret, Settings, StoreBackend};

/// Where module artifacts' bytes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactBackend {
    /// A content-addressed directory (`artifact_dir`).
    Filesystem,
    /// The PostgreSQL store's database (store.backend must be "postgres").
    Postgres,
}

/// The module registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    pub artifact_backend: ArtifactBackend,
    pub artifact_dir: PathBuf,
    /// Largest artifact accepted, in bytes (larger uploads get 413).
    pub max_artifact_bytes: usize,
    /// How often stored artifacts that no version names are removed.
    #[serde(with = "humantime_serde")]
    pub gc_interval: Duration,
    /// How long a stored artifact is kept after its last write, named or not
    /// (an upload writes the bytes before it records the version).
    #[serde(with = "humantime_serde")]
    pub gc_grace: Duration,
}

/// What the Security Scan and uploads insist on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// Signatures must verify against a trusted, unrevoked key, at upload
    /// (422 otherwise) and in the Security Scan.
    pub strict_mode: bool,
    /// A run's module version must be in the registry.
    pub require_registered_modules: bool,
    /// The smallest trusted RSA key, in bits (at least 2048).
    pub min_key_bits: u32,
}

impl Settings {
    pub(super) fn validate_registry(&self) -> Result<(), ConfigError> {
        let r = &self.registry;
        if r.max_artifact_bytes == 0 {
            return Err(ConfigError("registry.max_artifact_bytes must be above zero".into()));
        }
        if r.gc_interval.is_zero() {
            return Err(ConfigError("registry.gc_interval must be above zero".into()));
        }
        if r.artifact_backend == ArtifactBackend::Filesystem && r.artifact_dir.as_os_str().is_empty() {
            return Err(ConfigError("registry.artifact_dir is required with artifact_backend = \"filesystem\"".into()));
        }
        if r.artifact_backend == ArtifactBackend::Postgres && self.store.backend != StoreBackend::Postgres {
            return Err(ConfigError(
                "registry.artifact_backend = \"postgres\" needs store.backend = \"postgres\"".into(),
            ));
        }
        if self.security.min_key_bits < crate::crypto::rsa_sig::MIN_KEY_BITS {
            return Err(ConfigError(format!(
                "security.min_key_bits must be at least {}",
                crate::crypto::rsa_sig::MIN_KEY_BITS
            )));
        }
        if self.is_production() && !(self.security.strict_mode && self.security.require_registered_modules) {
            tracing::warn!("security.strict_mode or require_registered_modules is off in production");
        }
        Ok(())
    }
}

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
    pub jwt_policy: crate::secrets::RotationPolicy,
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

impl Settings {
    pub(super) fn validate_secrets(&self) -> Result<(), ConfigError> {
        let s = &self.secrets;
        if s.check_interval.is_zero() {
            return Err(ConfigError("secrets.check_interval must be above zero".into()));
        }
        s.jwt_policy.validate("secrets.jwt_policy").map_err(ConfigError)?;
        if s.backend == SecretsBackend::Vault {
            let v = &s.vault;
            let https = v.address.starts_with("https://");
            if !https && !v.address.starts_with("http://") {
                return Err(ConfigError(
                    "secrets.vault.address must be an https:// URL such as https://vault:8200".into(),
                ));
            }
            // Vault tokens and secrets must not cross the network in clear.
            if self.is_production() && !https {
                return Err(ConfigError("secrets.vault.address must use https in production".into()));
            }
            if v.mount.trim_matches('/').is_empty() || v.timeout.is_zero() {
                return Err(ConfigError("secrets.vault.mount must be set and secrets.vault.timeout above zero".into()));
            }
            let missing = match v.auth {
                VaultAuth::Token => v.token.expose().is_empty(),
                VaultAuth::Approle => v.role_id.expose().is_empty() || v.secret_id.expose().is_empty(),
            };
            if missing {
                return Err(ConfigError(
                    "secrets.vault: auth = \"token\" needs token; auth = \"approle\" needs role_id and secret_id"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}
