//! Putting nodes back: after a failed stage, on abort or escalation, and for
//! a finished run's rollback on request.

use std::collections::HashSet;
use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;
use serde_json::json;

use super::actor::Coordinator;
use super::node_calls::restore_all;
use super::stages::{event, finish_run, finish_stage, node_events};
use super::Checkpoint;
use crate::domain::listing::{counted, host_failure};
use crate::domain::{
    deploy_stage_name, Environment, NodeChange, RollbackState, RunStatus, StageStatus, VALIDATION_STAGE,
};
use crate::node::NodeEntry;

type Ctx = Context<Coordinator>;

impl Coordinator {
    /// Restores `changes`, then calls `done` with the nodes that could not be restored.
    fn restore<F>(&mut self, changes: Vec<NodeChange>, ctx: &mut Ctx, done: F)
    where
        F: FnOnce(&mut Coordinator, Vec<(String, String)>, &mut Ctx) + 'static,
    {
        let mut targets = Vec::new();
        // A node that left its cluster cannot be put back: it is not restored.
        let mut gone = Vec::new();
        for env in Environment::ALL {
            let nodes: std::collections::HashMap<_, _> =
                self.env_nodes(env).iter().map(|n| (n.node_id, n.clone())).collect();
            for change in changes.iter().filter(|c| c.environment == env) {
                match nodes.get(&change.node_id) {
                    Some(node) => targets.push((node.clone(), change.before.clone())),
                    None => gone.push((change.hostname.clone(), "no longer in its cluster".to_string())),
                }
            }
        }
        self.busy = true;
        let span = self.step_span();
        let p = &self.deps.pipeline;
        let nodes: Vec<_> = targets.iter().map(|(n, _)| n.clone()).collect();
        let sessions_before: Vec<Option<usize>> = nodes.iter().map(|n| agent_session(n)).collect();
        let work = restore_all(
            self.deps.threads.clone(),
            targets,
            self.module(),
            self.fence(),
            p.node_request_timeout,
            p.restore_attempts,
            p.restore_retry_delay,
            span,
        );
        ctx.spawn(work.into_actor(self).map(move |mut failures, act, ctx| {
            act.busy = false;
            act.note_unreached(&nodes, &sessions_before, &failures);
            act.live(|run| restored_events(run, &nodes, &failures));
            failures.extend(gone);
            // Saved with the step that `done` commits.
            if let Some(ev) = act.quarantine(&failures) {
                act.note(ev);
            }
            done(act, failures, ctx);
        }));
    }

    /// Names the nodes whose restore kept failing on the run (they may still
    /// run its version) and returns the event that says so.
    fn quarantine(&mut self, failures: &[(String, String)]) -> Option<crate::store::RunEvent> {
        if failures.is_empty() {
            return None;
        }
        let left = &mut self.run.nodes_left_on_new_version;
        // A set of the hosts already named, so that a wave of 100,000 failed
        // restores is not a quadratic search of the list.
        let mut named: HashSet<String> = left.iter().cloned().collect();
        for (host, _) in failures {
            if named.insert(host.clone()) {
                left.push(host.clone());
            }
        }
        let attempts = self.deps.pipeline.restore_attempts.max(1);
        let message = format!(
            "{} could not be restored after {} and may still run {}; quarantined: {}",
            counted(failures.len(), "node", "nodes"),
            counted(attempts as usize, "attempt", "attempts"),
            self.run.request.version,
            describe(failures)
        );
        let hosts: Vec<&str> =
            failures.iter().take(super::stages::NAMED_IN_MESSAGES).map(|(h, _)| h.as_str()).collect();
        Some(event(&self.run, "NodesQuarantined", message, json!({ "count": failures.len(), "nodes": hosts })))
    }

    pub(super) fn restore_stage(&mut self, env: Environment, message: String, ctx: &mut Ctx) {
        let changes: Vec<_> = self.run.changes.iter().filter(|c| c.environment == env).cloned().collect();
        self.restore(changes, ctx, move |act, failures, ctx| {
            let stage = deploy_stage_name(env);
            let (status, stage_message) = if failures.is_empty() {
                (StageStatus::RolledBack, format!("{message}. Rolled back every node this stage changed."))
            } else {
                (StageStatus::Failed, format!("{message}. Could not restore: {}", describe(&failures)))
            };
            let mut events: Vec<_> = finish_stage(&mut act.run, &stage, status, stage_message).into_iter().collect();
            events.push(event(
                &act.run,
                "DeploymentRolledBack",
                format!("{env} restored"),
                json!({ "environment": env.as_str() }),
            ));
            if act.run.intent.abort {
                act.run.checkpoint = Checkpoint::Unwinding {
                    status: RunStatus::Cancelled,
                    message: "Aborted by operator; every node this run changed was restored".into(),
                };
            } else {
                // The run's own message says so too when nodes were left on
                // its version: it is what lists and notifications show.
                let left = if failures.is_empty() {
                    String::new()
                } else {
                    format!(". Could not restore: {}", describe(&failures))
                };
                // The stage that failed: the environment's deploy stage, or
                // the Validation that found its nodes wrong after it.
                let validation_failed =
                    act.run.stages.iter().any(|s| s.name == VALIDATION_STAGE && s.status == StageStatus::Failed);
                let failed_at = if validation_failed { VALIDATION_STAGE } else { stage.as_str() };
                events.push(finish_run(
                    &mut act.run,
                    RunStatus::Failed,
                    format!("Pipeline failed at {failed_at} stage: {message}{left}"),
                ));
                act.run.checkpoint = Checkpoint::Done;
            }
            act.save_checkpoint(events, ctx);
        });
    }

    pub(super) fn unwind(&mut self, status: RunStatus, message: String, ctx: &mut Ctx) {
        let changes = self.run.changes.as_ref().clone();
        self.restore(changes, ctx, move |act, failures, ctx| {
            for stage in act.run.stages.iter_mut() {
                let touched = stage.environment.is_some()
                    && matches!(stage.status, StageStatus::Running | StageStatus::Succeeded);
                if touched {
                    stage.status = StageStatus::RolledBack;
                    stage.end_time = Some(Utc::now());
                    stage.message = format!("Rolled back: {message}");
                } else if stage.status == StageStatus::Running {
                    stage.status = StageStatus::Failed;
                    stage.end_time = Some(Utc::now());
                }
            }
            let (status, message) = if failures.is_empty() {
                (status, message.clone())
            } else {
                // Nodes left on the new version: never reported as a clean stop.
                (RunStatus::Failed, format!("{message}. Could not restore: {}", describe(&failures)))
            };
            let end = finish_run(&mut act.run, status, message);
            act.run.checkpoint = Checkpoint::Done;
            act.save_checkpoint([end], ctx);
        });
    }

    /// Restores the nodes that still run this run's version; a node that a
    /// later run has changed since is left alone.
    pub(super) fn manual_rollback(&mut self, ctx: &mut Ctx) {
        self.busy = true;
        let store = self.deps.store.clone();
        let ids: Vec<_> = self.run.changes.iter().map(|c| c.node_id).collect();
        let (tenant, module) = (self.run.tenant_id, self.module());
        let deadline = self.deps.store_deadline;
        let read = async move { crate::store::within(deadline, store.module_slots(tenant, &ids, &module)).await };
        ctx.spawn(read.into_actor(self).map(|current, act, ctx| {
            act.busy = false;
            let current = match current {
                Ok(current) => current,
                Err(e) => {
                    tracing::warn!(run = %act.run.execution_id, error = %e, "cannot read node state; retrying");
                    return act.retry_later(ctx);
                }
            };
            let version = act.run.request.version.as_str();
            let changes: Vec<_> = act
                .run
                .changes
                .iter()
                .zip(current)
                .filter(|(_, now)| now.active_version() == Some(version))
                .map(|(c, _)| c.clone())
                .collect();
            act.finish_manual_rollback(changes, ctx);
        }));
    }

    fn finish_manual_rollback(&mut self, changes: Vec<NodeChange>, ctx: &mut Ctx) {
        self.restore(changes, ctx, move |act, failures, ctx| {
            let now = Utc::now();
            let (rb_status, message) = if failures.is_empty() {
                (
                    RollbackState::COMPLETED,
                    "Rolled back by request: every node this run changed runs its previous version".to_string(),
                )
            } else {
                (RollbackState::FAILED, format!("Rollback incomplete. Could not restore: {}", describe(&failures)))
            };
            if let Some(rb) = act.run.rollback.as_mut() {
                rb.status = rb_status.to_string();
                rb.finished_at = Some(now);
                rb.message = message.clone();
            }
            let mut events = Vec::new();
            if failures.is_empty() {
                act.run.status = RunStatus::RolledBack;
                act.run.message = message.clone();
                // The run's end and duration stay those of the run; the
                // rollback's own times are in `rollback`.
                act.run.finished_at.get_or_insert(now);
                events.push(event(&act.run, "DeploymentRolledBack", message, json!({ "status": "RolledBack" })));
            } else {
                events.push(event(&act.run, "RollbackFailed", message, json!({})));
            }
            act.run.checkpoint = Checkpoint::Done;
            act.save_checkpoint(events, ctx);
        });
    }
}

/// NodeUpdated events for the nodes a restore put back, environment by environment.
fn restored_events(
    run: &crate::domain::RunRecord,
    nodes: &[Arc<NodeEntry>],
    failures: &[(String, String)],
) -> Vec<crate::store::RunEvent> {
    let mut events = Vec::new();
    for env in Environment::ALL {
        let in_env: Vec<_> = nodes.iter().filter(|n| n.environment == env).cloned().collect();
        let outcomes: Vec<Option<String>> = in_env
            .iter()
            .map(|n| failures.iter().find(|(host, _)| *host == n.hostname).map(|(_, e)| e.clone()))
            .collect();
        events.extend(node_events(run, env, &in_env, &outcomes, "Restored", None));
    }
    events
}

fn describe(failures: &[(String, String)]) -> String {
    let named: Vec<String> = failures.iter().map(|(host, e)| host_failure(host, e)).collect();
    super::stages::listed(&named)
}

impl Coordinator {
    /// Once the run has ended (its module released), applies any restore it
    /// left pending on an agent host that was away when it tried and has come
    /// back meanwhile: see
    /// `HostReconciler::apply_pending_restores`. Detached: the coordinator
    /// stops at once, and a host that is slow to apply it delays nothing.
    pub(super) fn apply_pending_restores(&self) {
        let nodes = self.unreached_restores.clone();
        if nodes.is_empty() {
            return;
        }
        let reconciler = crate::node::HostReconciler {
            store: self.deps.store.clone(),
            clusters: self.deps.clusters.clone(),
            step_timeout: self.deps.pipeline.node_request_timeout,
        };
        let (tenant, module) = (self.run.tenant_id, self.run.request.module_name.clone());
        actix::spawn(async move { reconciler.apply_pending_restores(tenant, &module, &nodes).await });
    }
}

impl Coordinator {
    /// Remembers the agent hosts among `failures` whose session ended or was
    /// absent while their restore ran: they did not refuse it, they were not
    /// there. A host that answered with a failure (its hook fails) is not
    /// tried again when the run ends: it had its `restore_attempts`.
    fn note_unreached(&mut self, nodes: &[Arc<NodeEntry>], before: &[Option<usize>], failures: &[(String, String)]) {
        if failures.is_empty() {
            return;
        }
        let failed: HashSet<&str> = failures.iter().map(|(host, _)| host.as_str()).collect();
        for (node, session) in nodes.iter().zip(before) {
            if node.kind != crate::node::NodeKind::Agent || !failed.contains(node.hostname.as_str()) {
                continue;
            }
            let now = agent_session(node);
            if session.is_none() || now != *session {
                self.unreached_restores.push((node.environment, node.node_id));
            }
        }
    }
}

/// Which session of its agent a host has now (`None`: not connected): the
/// identity of its link, which a reconnection replaces.
fn agent_session(node: &NodeEntry) -> Option<usize> {
    node.agent_link().map(|link| Arc::as_ptr(&link) as *const () as usize)
}
