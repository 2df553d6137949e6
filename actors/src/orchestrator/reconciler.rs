//! No active run without a coordinator. Every `recovery.reconcile_interval`
//! the runs that hold their module in the store are compared with the live
//! coordinators and the deployments supervisor's children; a run that has
//! neither on two passes in a row (one pass could catch a run between its
//! save and its spawn) gets a coordinator, which resumes it at its checkpoint.

use std::collections::HashSet;

use actix::prelude::*;
use uuid::Uuid;

use super::Orchestrator;
use crate::coordinator::spawn_coordinator;
use crate::supervision::{ChildState, GetTree};

pub(super) struct Reconciler {
    orchestrator: Orchestrator,
    /// Runs found without a coordinator on the last pass.
    suspects: HashSet<Uuid>,
    /// A pass is under way; a tick meanwhile is skipped.
    running: bool,
}

impl Reconciler {
    pub(super) fn new(orchestrator: Orchestrator) -> Self {
        Reconciler { orchestrator, suspects: HashSet::new(), running: false }
    }
}

impl Actor for Reconciler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = self.orchestrator.inner.settings.recovery.reconcile_interval;
        ctx.run_interval(every, |act, ctx| {
            if act.running {
                return;
            }
            act.running = true;
            let orchestrator = act.orchestrator.clone();
            let pass = async move { orphans(&orchestrator).await };
            ctx.spawn(pass.into_actor(act).map(|found, act, _ctx| {
                act.running = false;
                let Some(found) = found else { return };
                for (tenant, id) in &found {
                    if act.suspects.contains(id) {
                        tracing::warn!(run = %id, "active run without a coordinator; starting one");
                        spawn_coordinator(act.orchestrator.inner.deps.clone(), *tenant, *id);
                    }
                }
                act.suspects = found.into_iter().map(|(_, id)| id).collect();
            }));
        });
    }
}

/// The active runs that have no live coordinator and no supervised child
/// that will bring one (restarting, or stopped by an operator on purpose).
/// `None` when the store or the supervisor cannot answer now.
async fn orphans(orchestrator: &Orchestrator) -> Option<Vec<(crate::domain::TenantId, Uuid)>> {
    let inner = &orchestrator.inner;
    let runs = match inner.store.runs_in_flight().await {
        Ok(runs) => runs,
        Err(e) => {
            tracing::debug!(error = %e, "cannot list active runs; reconciling later");
            return None;
        }
    };
    if runs.is_empty() {
        return Some(Vec::new());
    }
    let tree = inner.run_supervisor.send(GetTree).await.ok()?;
    let owned: HashSet<(Option<crate::domain::TenantId>, String)> = tree
        .children
        .into_iter()
        .filter(|c| {
            matches!(c.state, ChildState::Running | ChildState::Restarting | ChildState::Stopping | ChildState::Stopped)
        })
        .map(|c| (c.tenant_id, c.id))
        .collect();
    Some(
        runs.into_iter()
            // Another instance's runs are its own business (the lease keeper
            // takes them over once their lease expires).
            .filter(|run| run.owner.as_ref().is_some_and(|o| *o.instance == *inner.instance_id))
            .filter(|run| inner.runs.get(run.execution_id).is_none())
            .filter(|run| {
                let tenant = Some(run.tenant_id);
                !owned.contains(&(tenant, format!("run:{}", run.execution_id)))
                    && !owned.contains(&(tenant, format!("run:{}:unwind", run.execution_id)))
            })
            .map(|run| (run.tenant_id, run.execution_id))
            .collect(),
    )
}
