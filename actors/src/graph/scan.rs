//! The Security Scan's dependency check: a version that would break a
//! dependent module's requirement on nodes where both run is refused, naming
//! each pair. A decorator of whatever verifier the registry provides.

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
        match self.graph.dependency_check(tenant, module, version).await {
            Ok(check) if !check.conflicts.is_empty() => {
                return Err(ScanError::Refused(format!(
                    "{module} {version} would break modules that depend on it: {}",
                    check.conflicts.join("; ")
                )))
            }
            Ok(check) => {
                let direct = check.direct_dependents;
                verified.notes.push(format!(
                    "Dependencies: {direct} dependent module versions checked in the knowledge graph, none broken where they run."
                ));
            }
            // A module nothing knows of, or a version that is not semver: nothing to check against.
            Err(GraphError::NotFound(_) | GraphError::Invalid(_)) => {}
            Err(GraphError::Store(e)) => return Err(ScanError::Unavailable(e.to_string())),
            Err(e) => return Err(ScanError::Unavailable(e.to_string())),
        }
        Ok(verified)
    }
}
