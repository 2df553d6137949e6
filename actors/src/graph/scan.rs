//! The Security Scan's dependency check: which requirements of dependent
//! modules a version would break on nodes where both run, each pair named.
//! A decorator of whatever verifier the registry provides.

use std::sync::Arc;

use async_trait::async_trait;

use super::service::{GraphError, GraphService};
use crate::domain::TenantId;
use crate::registry::{ModuleVerifier, ScanError, VerifiedModule};

pub struct DependencyCheckedVerifier {
    inner: Arc<dyn ModuleVerifier>,
    graph: Arc<GraphService>,
}

impl DependencyCheckedVerifier {
    pub fn wrap(inner: Arc<dyn ModuleVerifier>, graph: Arc<GraphService>) -> Arc<dyn ModuleVerifier> {
        Arc::new(DependencyCheckedVerifier { inner, graph })
    }
}

#[async_trait]
impl ModuleVerifier for DependencyCheckedVerifier {
    async fn verify(&self, tenant: TenantId, module: &str, version: &str) -> Result<VerifiedModule, ScanError> {
        let mut verified = self.inner.verify(tenant, module, version).await?;
        // The answer is recorded, not acted on: the run's scan refuses a
        // version with conflicts, and a dry run shows them as a check of their own.
        match self.graph.dependency_check(tenant, module, version).await {
            Ok(check) => verified.dependents = Some(check),
            // A module nothing knows of, or a version that is not semver: nothing to check against.
            Err(GraphError::NotFound(_) | GraphError::Invalid(_)) => {}
            Err(GraphError::Store(e)) => return Err(ScanError::Unavailable(e.to_string())),
            Err(e) => return Err(ScanError::Unavailable(e.to_string())),
        }
        Ok(verified)
    }
}
