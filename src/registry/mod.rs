//! The module registry: uploads checked against trusted signing keys,
//! artifacts kept by digest, and the Security Scan's verifier.
//!
//! Files by job: `artifacts` (bytes by SHA-256), `artifact_stream` (reading
//! them in chunks, checked on the way), `upload_slots` (the cap on uploads at
//! once), `quota_locks` (one upload at a time per tenant past the quota
//! check), `upload` (descriptor checks and uploads), `placements` (where versions run; deletion), `keys` (trusted
//! signing keys), `verifier` (the core's
//! [`hotswap_actors::registry::ModuleVerifier`]), `cli` (keygen, sign, push).

pub mod artifact_stream;
pub mod artifacts;
mod gc;
pub mod keys;
pub mod placements;
pub mod quota_locks;
pub mod settings;
pub mod statement;
pub mod upload;
pub mod upload_slots;
pub mod verifier;

use hotswap_actors::store::{SharedStore, StoreError};

pub use artifact_stream::OpenedArtifact;
pub use artifacts::{ArtifactBackend, ArtifactError, Artifacts, DirectoryArtifacts};
pub use gc::ArtifactSweeper;
pub use quota_locks::QuotaLocks;
pub use upload::{Upload, UploadOutcome};
pub use upload_slots::UploadSlots;
pub use verifier::RegistryVerifier;

use settings::SecuritySettings;

/// Why a registry request was refused; the HTTP layer maps each to a status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    /// Malformed input (400), every problem listed.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Well-formed but refused by policy (422): a bad signature, a short key.
    #[error("{0}")]
    Refused(String),
    /// The tenant's modules or artifact storage quota is full (403).
    #[error("{0}")]
    Quota(hotswap_actors::domain::QuotaExceeded),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => RegistryError::Unavailable(m),
            StoreError::NotFound(m) => RegistryError::NotFound(m),
            StoreError::Conflict(m) => RegistryError::Conflict(m),
            other => RegistryError::Internal(other.to_string()),
        }
    }
}

impl From<ArtifactError> for RegistryError {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::NotFound(d) => RegistryError::NotFound(format!("the artifact {d} is not stored")),
            ArtifactError::Corrupt { .. } => RegistryError::Internal(e.to_string()),
            ArtifactError::Unavailable(m) => RegistryError::Unavailable(m),
        }
    }
}

/// Everything the registry's handlers and the verifier share.
#[derive(Clone)]
pub struct Registry {
    pub store: SharedStore,
    pub artifacts: Artifacts,
    pub security: SecuritySettings,
    pub max_artifact_bytes: usize,
    /// How long an upload's body may take to arrive and parse.
    pub upload_read_timeout: std::time::Duration,
    /// The cap on uploads read at once (`registry.max_concurrent_uploads`).
    pub upload_slots: UploadSlots,
    /// Serialises each tenant's quota check with the store it admits.
    pub quota_locks: QuotaLocks,
}

/// Now, to the microsecond PostgreSQL keeps, so that both stores answer
/// the same times.
pub(crate) fn now_micros() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}
