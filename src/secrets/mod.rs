//! Secrets: versioned values behind one [`SecretBackend`] trait (in memory
//! for development; in the PostgreSQL store, sealed, or HashiCorp Vault KV
//! v2 for production), generated from the operating system's CSPRNG,
//! rotated by policy.
//!
//! Files by job: `model` (values, policies, metadata), `memory` and
//! `vault` (back-ends; PostgreSQL's is `store::postgres::PgSecrets`),
//! `sealing` (encryption at rest), `manager` (creation, rotation, the JWT
//! key), `rotation` (the background actor).
//!
//! Everything lives in the root crate rather than the core: no core
//! component reads a secret, and the Vault back-end speaks HTTP, which the
//! core must not.

pub mod manager;
pub mod memory;
pub mod model;
pub mod rotation;
pub mod sealing;
pub mod settings;
pub mod vault;

use async_trait::async_trait;

pub use manager::SecretManager;
pub use model::{RotationPolicy, SecretError, SecretMetadata, SecretValue};

/// Where versions live. Versions are numbered 1, 2, … by the back-end.
/// Futures need not be `Send`: the Vault client is actix's, which runs on
/// the calling arbiter.
#[async_trait(?Send)]
pub trait SecretBackend: Send + Sync {
    fn name(&self) -> &'static str;
    /// The metadata of `id`, if it exists.
    async fn metadata(&self, id: &str) -> Result<Option<SecretMetadata>, SecretError>;
    /// One version's value; `None` when it does not exist.
    async fn value(&self, id: &str, version: u32) -> Result<Option<SecretValue>, SecretError>;
    /// Writes a new version, only if the current version is still
    /// `expected_current` (0: the secret must not exist), then stores
    /// `metadata` with the new version number filled in. Answers that number;
    /// `Conflict` when someone else wrote first.
    async fn write(
        &self,
        id: &str,
        value: &SecretValue,
        expected_current: u32,
        metadata: &SecretMetadata,
    ) -> Result<u32, SecretError>;
    /// Every secret's id.
    async fn list(&self) -> Result<Vec<String>, SecretError>;
}
