//! The supervision tree as the admin API sees and steers it: every
//! supervisor's children (all, a page, or one), an operator's restart or
//! stop, and a crash on request to watch supervision work.

use actix::prelude::*;
use uuid::Uuid;

use super::Orchestrator;
use crate::domain::TenantId;
use crate::error::CoreError;
use crate::supervision::{
    ActorKind, ChildAction, ChildSnapshot, ControlChild, ControlError, GetChild, GetTree, GetTreePage, Supervisor,
    SupervisorPage, SupervisorSnapshot,
};

impl Orchestrator {
    /// Every supervisor, so that a failing approval actor shows like any other.
    fn supervisors(&self) -> [&Addr<Supervisor>; 4] {
        [
            &self.inner.node_supervisor,
            &self.inner.run_supervisor,
            &self.inner.approval_supervisor,
            &self.inner.tenant_supervisor,
        ]
    }

    /// Every supervisor with all its children (tests; the admin API asks for pages).
    pub async fn supervision(&self) -> Vec<SupervisorSnapshot> {
        let mut out = Vec::new();
        for sup in self.supervisors() {
            if let Ok(tree) = sup.send(GetTree).await {
                out.push(tree);
            }
        }
        out
    }

    /// Every supervisor with one page of the children `tenant` sees, those
    /// that need an operator's eye first (see `GetTreePage`).
    pub async fn supervision_page(&self, tenant: TenantId, offset: usize, limit: usize) -> Vec<SupervisorPage> {
        let mut out = Vec::new();
        for sup in self.supervisors() {
            if let Ok(page) = sup.send(GetTreePage { tenant, offset, limit }).await {
                out.push(page);
            }
        }
        out
    }

    /// One supervised actor of the tenant, by id (`node:{hostname}`, `run:{executionId}`).
    pub async fn supervised(&self, tenant: TenantId, child_id: &str) -> Option<ChildSnapshot> {
        for sup in self.supervisors() {
            if let Ok(Some(child)) = sup.send(GetChild { tenant, id: child_id.to_string() }).await {
                return Some(child);
            }
        }
        None
    }

    /// Restarts or stops a supervised actor of the tenant on an operator's request.
    pub async fn control(
        &self,
        tenant: TenantId,
        child_id: &str,
        action: ChildAction,
    ) -> Result<ChildSnapshot, CoreError> {
        let Some(child) = self.supervised(tenant, child_id).await else {
            return Err(CoreError::NotFound(format!("no supervised actor {child_id}")));
        };
        if child.kind == ActorKind::Coordinator && matches!(action, ChildAction::Stop) {
            // A stopped coordinator left its run Running with nothing driving
            // it, holding its module, its verbs answering 503 until someone
            // restarted it: a run is steered by its own verbs.
            let run = child_id.strip_prefix("run:").unwrap_or(child_id).trim_end_matches(":unwind");
            return Err(CoreError::Refused(format!(
                "{child_id} drives a run and is not stopped by hand: that would leave the run Running with nothing \
                 driving it; pause or abort the run (POST /api/v1/deployments/{run}/pause or /abort), or restart \
                 its coordinator"
            )));
        }
        let supervisor = match child.kind {
            ActorKind::Node => &self.inner.node_supervisor,
            ActorKind::Coordinator => &self.inner.run_supervisor,
            ActorKind::Approval => &self.inner.approval_supervisor,
            ActorKind::Tenant => &self.inner.tenant_supervisor,
        };
        let msg = ControlChild { tenant: child.tenant_id, id: child_id.to_string(), action };
        match supervisor.send(msg).await.map_err(|e| CoreError::Internal(e.to_string()))? {
            Ok(snapshot) => Ok(snapshot),
            Err(ControlError::NotFound(m)) => Err(CoreError::NotFound(format!("no supervised actor {m}"))),
            Err(ControlError::Refused(message)) => Err(CoreError::Refused(message)),
            Err(ControlError::Busy(m)) => Err(CoreError::Unavailable(m)),
        }
    }

    /// Makes a supervised actor panic: `node:{hostname}` or `run:{executionId}`.
    /// Returns false when no such live actor exists.
    pub fn crash(&self, tenant: TenantId, child_id: &str) -> bool {
        if let Some(hostname) = child_id.strip_prefix("node:") {
            if let Some(addr) = self.node(tenant, hostname).and_then(|n| n.addr()) {
                addr.do_send(crate::node::Crash);
                return true;
            }
        } else if let Some(id) = child_id.strip_prefix("run:").and_then(|id| Uuid::parse_str(id).ok()) {
            if let Some(addr) = self.inner.runs.get(id) {
                addr.do_send(crate::coordinator::CrashCoordinator);
                return true;
            }
        } else if let Some(id) = child_id.strip_prefix("tenant:").and_then(|id| Uuid::parse_str(id).ok()) {
            // A tenant's own actor only.
            return id == tenant && self.inner.tenants.crash(id);
        }
        false
    }
}
