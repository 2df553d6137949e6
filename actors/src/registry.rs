//! What the Security Scan asks of the module registry. The core defines the
//! question; the root crate answers it with its registry, its artifact store
//! and RSA verification. Without a registry, [`NoRegistry`] answers.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::TenantId;

/// A version the registry vouched for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifiedModule {
    /// The artifact's SHA-256, as the nodes must receive it; `None` when the
    /// version is not registered and the settings let that pass.
    pub digest: Option<String>,
    /// Module name → semantic-version requirement, from the descriptor.
    pub dependencies: BTreeMap<String, String>,
    /// What was checked, and warnings (an unsigned module outside strict mode).
    pub notes: Vec<String>,
    /// What the knowledge graph found about the modules that depend on this
    /// one; `None` where nothing it knows of depends on the module.
    pub dependents: Option<DependentsChecked>,
}

/// The knowledge graph's answer for a version: would it break a module that
/// depends on it, on nodes where both run?
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DependentsChecked {
    /// Dependent module versions one hop away.
    pub direct: usize,
    /// Each requirement the version would break, and where, as a sentence.
    pub conflicts: Vec<String>,
}

impl DependentsChecked {
    /// Why `version` of `module` must not be deployed, if it breaks a dependent.
    pub fn refusal(&self, module: &str, version: &str) -> Option<String> {
        (!self.conflicts.is_empty())
            .then(|| format!("{module} {version} would break modules that depend on it: {}", self.conflicts.join("; ")))
    }

    /// What was checked, for a scan that passed.
    pub fn summary(&self) -> String {
        let versions = if self.direct == 1 { "version" } else { "versions" };
        format!(
            "{} dependent module {versions} checked in the knowledge graph, none broken where they run.",
            self.direct
        )
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScanError {
    /// The version must not be deployed; the message says why and what to do.
    #[error("{0}")]
    Refused(String),
    /// The registry could not answer now; the scan is repeated later.
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait ModuleVerifier: Send + Sync {
    /// Checks that `version` of `module` is registered, that its stored bytes
    /// still have their digest, and that its signature verifies against a
    /// trusted, unrevoked key, as far as the settings require each.
    async fn verify(&self, tenant: TenantId, module: &str, version: &str) -> Result<VerifiedModule, ScanError>;
}

/// No registry configured: nothing is verified, and the scan says so.
pub struct NoRegistry;

#[async_trait]
impl ModuleVerifier for NoRegistry {
    async fn verify(&self, _tenant: TenantId, _module: &str, _version: &str) -> Result<VerifiedModule, ScanError> {
        Ok(VerifiedModule {
            notes: vec!["Module signatures are not verified: no module registry is configured.".into()],
            ..VerifiedModule::default()
        })
    }
}
