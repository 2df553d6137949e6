//! The connect-time comparison of a host with its desired state: see
//! `node::HostReconciler`.

use uuid::Uuid;

use super::Orchestrator;
use crate::domain::{DriftPolicy, Environment, TenantId};
use crate::error::CoreError;
use crate::node::{DriftOutcome, HostReconciler, ReconcileScope};

impl Orchestrator {
    /// Compares the node's modules (as its host just reported them) with the
    /// desired state and acts on each difference. Call it once the host's
    /// session can carry commands.
    pub async fn reconcile_host(
        &self,
        tenant: TenantId,
        environment: Environment,
        node_id: Uuid,
        policy: DriftPolicy,
    ) -> Result<Vec<DriftOutcome>, CoreError> {
        let reconciler = HostReconciler {
            store: self.inner.store.clone(),
            clusters: self.inner.clusters.clone(),
            step_timeout: self.inner.settings.pipeline.node_request_timeout,
        };
        reconciler.reconcile(tenant, environment, node_id, ReconcileScope::Every(policy)).await
    }
}
