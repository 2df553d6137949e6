//! Brings agent hosts to their desired state (what runs and rollbacks last
//! set for each module). A host that reconnects is compared with it: a
//! restore that never reached it is applied now; any other difference (a host
//! changed by hand, or one that died mid-activation and came back on another
//! version) is put right or only flagged, as `[agent] drift` says. A run that
//! ends applies the restores it left pending on hosts that are back. Either
//! way the event is audited.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{ClusterDirectory, RestoreModule, Snapshot};
use crate::domain::{
    AuditActor, AuditCategory, AuditResult, DesiredModule, DriftPolicy, Environment, ModuleSlots, NewAuditEntry,
    TenantId,
};
use crate::error::CoreError;
use crate::store::SharedStore;

/// What became of one module that differed from its desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftOutcome {
    /// The host was brought back to the desired state.
    Reconciled { module: String },
    /// Bringing it back failed; the node is flagged with why.
    ReconcileFailed { module: String, error: String },
    /// Left as it is and flagged (`drift = "flag"`).
    Flagged { module: String },
}

fn version(slots: &ModuleSlots) -> &str {
    slots.active_version().unwrap_or("nothing")
}

/// Which differences a pass acts on.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every module, as `[agent] drift` says (a host that just connected).
    Every(DriftPolicy),
    /// Only a restore still pending for this module (a run that just ended).
    PendingRestoreOf(&'a str),
}

/// Brings agent hosts to their desired state.
pub struct HostReconciler {
    pub store: SharedStore,
    pub clusters: Arc<ClusterDirectory>,
    /// How long one host may take to apply a module: a run's step timeout.
    pub step_timeout: Duration,
}

impl HostReconciler {
    /// Applies the restores of `module` still pending on `nodes` (agent
    /// hosts), once the run that changed them has ended. A host that
    /// reconnected while the run was still in flight was left to that run by
    /// its connect-time comparison; if the run then gave up restoring it (it
    /// was away when the run tried), nothing else would apply the restore,
    /// and the host stayed on the failed version with the view saying all
    /// was well. A host still away gets it when it reconnects.
    pub async fn apply_pending_restores(&self, tenant: TenantId, module: &str, nodes: &[(Environment, Uuid)]) {
        for &(environment, node_id) in nodes {
            let back = self
                .clusters
                .nodes(tenant, environment)
                .iter()
                .any(|n| n.node_id == node_id && n.agent_link().is_some());
            if !back {
                continue;
            }
            match self.reconcile(tenant, environment, node_id, Scope::PendingRestoreOf(module)).await {
                Ok(outcomes) if !outcomes.is_empty() => {
                    tracing::info!(%node_id, module, ?outcomes, "applied a restore left pending by a run that ended")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%node_id, module, error = %e, "could not apply a pending restore"),
            }
        }
    }

    pub async fn reconcile(
        &self,
        tenant: TenantId,
        environment: Environment,
        node_id: Uuid,
        scope: Scope<'_>,
    ) -> Result<Vec<DriftOutcome>, CoreError> {
        let nodes = self.clusters.nodes(tenant, environment);
        let Some(entry) = nodes.iter().find(|n| n.node_id == node_id).cloned() else {
            return Err(CoreError::NotFound(format!("node {node_id}")));
        };
        let Some(addr) = entry.addr() else {
            return Err(CoreError::Unavailable(format!("the node actor of {} is restarting", entry.hostname)));
        };
        let desired = self.store.desired_modules(tenant, node_id).await?;
        let desired: Vec<DesiredModule> = match scope {
            Scope::Every(_) => desired,
            Scope::PendingRestoreOf(module) => {
                desired.into_iter().filter(|d| d.module == module && d.restore_pending).collect()
            }
        };
        if desired.is_empty() {
            return Ok(Vec::new());
        }
        // A module a run is changing is that run's to settle (a run resumed
        // after a restart loads what the host may already have).
        let in_flight: Vec<String> = self
            .store
            .runs_in_flight()
            .await?
            .into_iter()
            .filter(|r| r.tenant_id == tenant)
            .map(|r| r.request.module_name)
            .collect();
        let desired: Vec<DesiredModule> = desired.into_iter().filter(|d| !in_flight.contains(&d.module)).collect();
        // What the host itself last reported; the node actor may not have
        // adopted it yet.
        let reported = match entry.agent_link().and_then(|l| l.last_report()) {
            Some(report) => report.modules,
            None => addr.send(Snapshot).await.map_err(|e| CoreError::Internal(e.to_string()))?.modules,
        };
        // Long enough for a download, the checks and the hooks, as for a run's step.
        let step_timeout = self.step_timeout.max(Duration::from_secs(1));
        let mut outcomes = Vec::new();
        for wanted in desired {
            let have = reported.get(&wanted.module).cloned().unwrap_or_default();
            if !wanted.differs_from(&have) {
                entry.clear_drift(&wanted.module);
                continue;
            }
            let what = format!("desired {}, the host runs {}", version(&wanted.slots), version(&have));
            let put_back = match scope {
                Scope::Every(policy) => wanted.restore_pending || policy == DriftPolicy::Reconcile,
                Scope::PendingRestoreOf(_) => true,
            };
            let outcome = if put_back {
                // Not a run's write: the desired state is put back as recorded, unfenced.
                let restore = RestoreModule { module: wanted.module.clone(), slots: wanted.slots.clone(), fence: None };
                match addr.send(restore).timeout(step_timeout).await {
                    Ok(Ok(())) => DriftOutcome::Reconciled { module: wanted.module.clone() },
                    Ok(Err(e)) => DriftOutcome::ReconcileFailed { module: wanted.module.clone(), error: e.to_string() },
                    Err(e) => DriftOutcome::ReconcileFailed { module: wanted.module.clone(), error: e.to_string() },
                }
            } else {
                DriftOutcome::Flagged { module: wanted.module.clone() }
            };
            match &outcome {
                DriftOutcome::Reconciled { .. } => entry.clear_drift(&wanted.module),
                DriftOutcome::ReconcileFailed { error, .. } => {
                    entry.set_drift(&wanted.module, format!("{what}; putting it back failed: {error}"))
                }
                DriftOutcome::Flagged { .. } => entry.set_drift(&wanted.module, what.clone()),
            }
            let audit = drift_audit(&entry.hostname, &wanted, &what, &outcome);
            if let Err(e) = self.store.append_audit(&[audit]).await {
                tracing::warn!(node = %entry.hostname, error = %e, "could not audit a drifted module");
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}

fn drift_audit(hostname: &str, wanted: &DesiredModule, what: &str, outcome: &DriftOutcome) -> NewAuditEntry {
    let (event, result, message) = match outcome {
        DriftOutcome::Reconciled { .. } if wanted.restore_pending => {
            ("AgentRestoreApplied", AuditResult::Success, format!("{hostname} {}: {what}; restored", wanted.module))
        }
        DriftOutcome::Reconciled { .. } => {
            ("AgentDriftReconciled", AuditResult::Success, format!("{hostname} {}: {what}; put back", wanted.module))
        }
        DriftOutcome::ReconcileFailed { error, .. } => (
            "AgentDriftReconcileFailed",
            AuditResult::Failure,
            format!("{hostname} {}: {what}; putting it back failed: {error}", wanted.module),
        ),
        DriftOutcome::Flagged { .. } => {
            ("AgentDriftDetected", AuditResult::Failure, format!("{hostname} {}: {what}; left as is", wanted.module))
        }
    };
    NewAuditEntry::new(wanted.tenant_id, AuditActor::system(), AuditCategory::Administration, event)
        .resource("Node", wanted.node_id)
        .result(result)
        .message(message)
        .details(serde_json::json!({
            "module": wanted.module,
            "desired": wanted.slots.active_version(),
        }))
}
