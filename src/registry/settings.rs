//! `[registry]` and `[security]`: where artifacts are kept and what uploads and
//! the Security Scan insist on.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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
    /// How long an upload's body may take to arrive and parse. A multipart
    /// body that ends inside a part is otherwise never answered.
    #[serde(with = "humantime_serde", default = "RegistrySettings::default_upload_read_timeout")]
    pub upload_read_timeout: Duration,
    /// Uploads read at once; more are answered 503 with Retry-After (each
    /// may hold its artifact in memory while it is checked).
    #[serde(default = "RegistrySettings::default_max_concurrent_uploads")]
    pub max_concurrent_uploads: usize,
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
    /// Accept signatures of the artifact's bytes alone, which do not bind its
    /// name and version (see `registry::statement`). Off by default; on in the
    /// development and test profiles.
    #[serde(default)]
    pub accept_artifact_signatures: bool,
}

impl RegistrySettings {
    fn default_upload_read_timeout() -> Duration {
        Duration::from_secs(120)
    }

    fn default_max_concurrent_uploads() -> usize {
        4
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.max_concurrent_uploads == 0 {
            return Err("registry.max_concurrent_uploads must be above zero".into());
        }
        if self.upload_read_timeout.is_zero() {
            return Err("registry.upload_read_timeout must be above zero".into());
        }
        if self.max_artifact_bytes == 0 {
            return Err("registry.max_artifact_bytes must be above zero".into());
        }
        if self.gc_interval.is_zero() {
            return Err("registry.gc_interval must be above zero".into());
        }
        if self.artifact_backend == ArtifactBackend::Filesystem && self.artifact_dir.as_os_str().is_empty() {
            return Err("registry.artifact_dir is required with artifact_backend = \"filesystem\"".into());
        }
        Ok(())
    }
}

impl SecuritySettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.min_key_bits < crate::crypto::rsa_sig::MIN_KEY_BITS {
            return Err(format!("security.min_key_bits must be at least {}", crate::crypto::rsa_sig::MIN_KEY_BITS));
        }
        Ok(())
    }
}
