//! The steps of the pipeline. Each step either asks nodes something and, on
//! the answer, records the next checkpoint; or arms a timer. `advance` picks
//! the step that the checkpoint names whenever the coordinator is idle.

use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;
use serde_json::json;

use super::actor::Coordinator;
use super::node_calls::{ask_all, ask_all_infallible, outcomes, per_thread};
use super::plan::{canary_step_percent, waves};
use super::stages::{event, finish_run, finish_stage, listed, node_events, progress_event, start_stage};
use super::{Checkpoint, DeployStep};
use crate::domain::listing::{counted, thousands};
use crate::domain::{
    deploy_stage_name, Environment, NodeChange, RunStatus, StageStatus, Strategy, VersionSlot, APPROVAL_STAGE,
    VALIDATION_STAGE,
};
use crate::node::{CheckHealth, LoadTarget, LoadVersion, VerifyModule};
use crate::node::{ClusterNodes, NodeEntry};
use crate::simulation::LoadFault;

/// From this many nodes on, a wave's slot reads are split by actor thread
/// (see `record_changes`).
const SPLIT_SLOT_READS_FROM: usize = 1_000;

type Ctx = Context<Coordinator>;

impl Coordinator {
    pub(super) fn advance(&mut self, ctx: &mut Ctx) {
        if !self.idle() {
            return;
        }
        // Every step runs in its stage's span, which also opens the span of
        // a stage that asks no node anything.
        let span = self.step_span();
        let _entered = span.enter();
        let checkpoint = self.run.checkpoint.clone();
        match checkpoint {
            Checkpoint::Done => {
                self.apply_pending_restores();
                ctx.stop()
            }
            Checkpoint::Restoring { environment, message } => self.restore_stage(environment, message, ctx),
            Checkpoint::Unwinding { status, message } => self.unwind(status, message, ctx),
            Checkpoint::ManualRollback => self.manual_rollback(ctx),
            Checkpoint::AwaitingApproval { approval_id, .. } if self.run.intent.abort => {
                self.close_approval(approval_id, ctx);
                // The stage ends with the wait: left WaitingForApproval, a
                // Cancelled run showed it waiting (its duration growing) for ever.
                let closed = finish_stage(
                    &mut self.run,
                    APPROVAL_STAGE,
                    StageStatus::Skipped,
                    "Closed without a decision: the run was aborted while waiting for approval",
                );
                // Live clients keeping a list of waiting approvals hear that
                // this one ended, as they do for a decision or an expiry.
                let (by, reason) = self.abort_closing();
                let decided = event(
                    &self.run,
                    "ApprovalDecided",
                    "approval closed: the run was aborted",
                    json!({
                        "approvalId": approval_id,
                        "status": crate::domain::ApprovalStatus::Rejected.as_str(),
                        "decidedBy": null,
                        "decidedAt": Utc::now(),
                        "reason": reason,
                        "closedBy": by.name,
                    }),
                );
                self.run.checkpoint = Checkpoint::Unwinding {
                    status: RunStatus::Cancelled,
                    message: "Aborted by operator while waiting for approval; no node was changed".into(),
                };
                self.save_checkpoint(closed.into_iter().chain([decided]), ctx);
            }
            _ if self.run.intent.abort => {
                self.run.checkpoint = Checkpoint::Unwinding {
                    status: RunStatus::Cancelled,
                    message: "Aborted by operator; every node this run changed was restored".into(),
                };
                self.save_checkpoint([], ctx);
            }
            _ if self.run.status == RunStatus::Paused => {}
            Checkpoint::SecurityScan => self.security_scan(ctx),
            Checkpoint::RequestApproval => self.request_approval(ctx),
            Checkpoint::AwaitingApproval { approval_id, .. } => self.await_approval(approval_id, ctx),
            Checkpoint::Deploy { environment, step, .. } => self.deploy_step(environment, step, ctx),
            Checkpoint::Validation => self.validate(ctx),
        }
    }

    /// Skips an armed bake or health-check wait; false when none is armed.
    pub(super) fn skip_wait(&mut self, ctx: &mut Ctx) -> bool {
        let Checkpoint::Deploy { step: DeployStep::Wait { wave, .. }, .. } = &self.run.checkpoint else {
            return false;
        };
        let wave = *wave;
        let Some(handle) = self.timer.take() else { return false };
        ctx.cancel_future(handle);
        self.set_step(DeployStep::Check { wave });
        true
    }

    /// The environment of the deploy stage under way when its strategy has
    /// waits a promote can skip (rolling health-check delays, canary bakes).
    pub(super) fn stage_with_waits(&self) -> Option<Environment> {
        match &self.run.checkpoint {
            Checkpoint::Deploy { environment, .. }
                if matches!(self.run.request.strategy_for(*environment), Strategy::Rolling | Strategy::Canary) =>
            {
                Some(*environment)
            }
            _ => None,
        }
    }

    pub(super) fn set_step(&mut self, next: DeployStep) {
        if let Checkpoint::Deploy { step, .. } = &mut self.run.checkpoint {
            *step = next;
        }
    }

    /// The directory's list of `env`'s nodes, shared rather than copied: with
    /// 100,000 nodes, a copy on every look (some only to count them) was a
    /// large share of the coordinator's own work in a wave.
    pub(super) fn env_nodes(&self, env: Environment) -> ClusterNodes {
        self.deps.clusters.nodes(self.run.tenant_id, env)
    }

    pub(super) fn module(&self) -> String {
        self.run.request.module_name.clone()
    }

    /// The lease epoch node changes are made under: once another instance
    /// takes the run, the store refuses them from this coordinator.
    pub(super) fn fence(&self) -> Option<crate::store::RunFence> {
        self.run.owner.as_ref().map(|owner| crate::store::RunFence {
            tenant_id: self.run.tenant_id,
            execution_id: self.run.execution_id,
            epoch: owner.epoch,
        })
    }

    /// The waves of `env`'s stage: the pinned plan while the stage runs, else
    /// the plan the current settings give.
    fn env_waves(&self, env: Environment, nodes: usize) -> Vec<std::ops::Range<usize>> {
        if let Checkpoint::Deploy { environment, waves: ends, .. } = &self.run.checkpoint {
            if *environment == env && !ends.is_empty() {
                let mut start = 0;
                return ends
                    .iter()
                    .map(|end| {
                        let wave = start.min(nodes)..(*end).min(nodes);
                        start = *end;
                        wave
                    })
                    .collect();
            }
        }
        self.planned_waves(env, nodes)
    }

    fn planned_waves(&self, env: Environment, nodes: usize) -> Vec<std::ops::Range<usize>> {
        let steps = self.run.request.canary_steps.clone().unwrap_or_else(|| self.deps.pipeline.canary_steps.clone());
        waves(self.run.request.strategy_for(env), nodes, self.deps.pipeline.rolling_batch_size, &steps)
    }

    pub(super) fn first_step(&self, env: Environment) -> Checkpoint {
        let step = match self.run.request.strategy_for(env) {
            Strategy::Canary => DeployStep::CaptureBaseline,
            Strategy::BlueGreen => DeployStep::LoadStandby,
            Strategy::Direct | Strategy::Rolling => DeployStep::Load { wave: 0 },
        };
        let nodes = self.env_nodes(env).len();
        let waves = self.planned_waves(env, nodes).into_iter().map(|w| w.end).collect();
        Checkpoint::Deploy { environment: env, step, baseline: Vec::new(), analysis_baseline: Vec::new(), waves }
    }

    // ---- Deploy stages ------------------------------------------------------

    fn deploy_step(&mut self, env: Environment, step: DeployStep, ctx: &mut Ctx) {
        // Normally started by the save that entered the stage (see
        // `enter_stage`); one entered without a save starts here, saved with
        // its first step.
        if let Some(ev) = start_stage(&mut self.run, &deploy_stage_name(env)) {
            self.note(ev);
        }
        match step {
            DeployStep::CaptureBaseline => self.capture_baseline(env, ctx),
            DeployStep::Load { wave } => self.load_wave(env, wave, ctx),
            DeployStep::Wait { wave, until } => self.wait(wave, until, ctx),
            DeployStep::Check { wave } => self.check_wave(env, wave, ctx),
            DeployStep::LoadStandby => self.load_standby(env, ctx),
            DeployStep::SmokeTest { deadline } => self.smoke_test(env, deadline, ctx),
            DeployStep::Switch => self.switch(env, ctx),
        }
    }

    /// Records the slots of `nodes` that this run has not changed yet, before
    /// any of them changes. Returns false when nothing was left to record.
    pub(super) fn record_changes(&mut self, env: Environment, nodes: &[Arc<NodeEntry>], ctx: &mut Ctx) -> bool {
        let missing: Vec<_> = if self.run.changes.is_empty() {
            nodes.to_vec()
        } else {
            let known: foldhash::HashSet<_> = self.run.changes.iter().map(|c| c.node_id).collect();
            nodes.iter().filter(|n| !known.contains(&n.node_id)).cloned().collect()
        };
        if missing.is_empty() {
            return false;
        }
        self.busy = true;
        let (store, threads) = (self.deps.store.clone(), self.deps.threads.clone());
        let (tenant, module) = (self.run.tenant_id, self.module());
        let deadline = self.deps.store_deadline;
        // Each thread reads (and copies into changes) the slots of its own
        // nodes: for a large cluster this is most of a wave's planning, and
        // done here it would keep the other threads waiting. A few nodes are
        // read here in one call: split, they cost a database round trip and
        // a relay per thread for copying that takes no time.
        let split = missing.len() >= SPLIT_SLOT_READS_FROM;
        let read = async move {
            let read_group = move |group: Vec<Arc<NodeEntry>>| {
                let (store, module) = (store.clone(), module.clone());
                async move {
                    let ids: Vec<_> = group.iter().map(|n| n.node_id).collect();
                    match crate::store::within(deadline, store.module_slots(tenant, &ids, &module)).await {
                        Ok(slots) => group
                            .iter()
                            .zip(slots)
                            .map(|(n, before)| {
                                Ok(NodeChange {
                                    node_id: n.node_id,
                                    hostname: n.hostname.clone(),
                                    environment: env,
                                    before,
                                })
                            })
                            .collect(),
                        Err(e) => vec![Err(Arc::new(e)); group.len()],
                    }
                }
            };
            let changes =
                if split { per_thread(&threads, missing, read_group).await } else { read_group(missing).await };
            changes.into_iter().collect::<Result<Vec<NodeChange>, _>>()
        };
        ctx.spawn(read.into_actor(self).map(move |changes, act, ctx| {
            act.busy = false;
            match changes {
                Ok(changes) => {
                    if act.run.changes.is_empty() {
                        act.run.changes = Arc::new(changes);
                    } else {
                        Arc::make_mut(&mut act.run.changes).extend(changes);
                    }
                    act.save_checkpoint([], ctx);
                }
                Err(e) => {
                    tracing::warn!(run = %act.run.execution_id, error = %e, "cannot read node state; retrying");
                    act.retry_later(ctx);
                }
            }
        }));
        true
    }

    pub(super) fn retry_later(&mut self, ctx: &mut Ctx) {
        let delay = self.deps.pipeline.restore_retry_delay.max(std::time::Duration::from_millis(50));
        self.timer = Some(ctx.run_later(delay, |act, ctx| {
            act.timer = None;
            act.advance(ctx);
        }));
    }

    /// Nodes could not record a change because the store is down: repeat the
    /// step (nodes treat a repeated request as done) after a growing pause.
    pub(super) fn wait_for_store(&mut self, errors: &[String], ctx: &mut Ctx) {
        self.store_backoff =
            (self.store_backoff * 2).clamp(std::time::Duration::from_millis(50), std::time::Duration::from_secs(5));
        tracing::warn!(run = %self.run.execution_id, nodes = errors.len(), backoff = ?self.store_backoff,
            first = %errors[0], "store unavailable; the step is repeated once it is back");
        let delay = self.store_backoff;
        self.timer = Some(ctx.run_later(delay, |act, ctx| {
            act.timer = None;
            act.advance(ctx);
        }));
    }

    pub(super) fn load_faults(&self, env: Environment, nodes: &[Arc<NodeEntry>]) -> (Vec<LoadFault>, VersionSlot) {
        let env_faults = self.faults.for_env(env);
        let slot = VersionSlot { version: self.run.request.version.clone(), faults: env_faults.version.clone() };
        (env_faults.load_faults(nodes.iter().map(|n| n.hostname.as_str())), slot)
    }

    fn load_wave(&mut self, env: Environment, wave: usize, ctx: &mut Ctx) {
        let nodes = self.env_nodes(env);
        let waves = self.env_waves(env, nodes.len());
        let Some(range) = waves.get(wave).cloned() else {
            return self.stage_succeeded(env, ctx);
        };
        let members = nodes[range.clone()].to_vec();
        if self.record_changes(env, &members, ctx) {
            return;
        }
        let (faults, slot) = self.load_faults(env, &nodes);
        let delay = self.faults.for_env(env).node_delay;
        let wave_faults: Vec<LoadFault> = faults[range].to_vec();
        let module = self.module();
        let timeout = self.deps.pipeline.node_request_timeout;
        let by_id = PlannedFaults::new(&members, wave_faults);
        let digest = self.run.artifact_digest.clone();
        let (fence, interrupt) = (self.fence(), self.interrupt.clone());
        self.busy = true;
        let calls =
            ask_all(self.deps.threads.clone(), members.clone(), timeout, self.step_span(), move |n| LoadVersion {
                module: module.clone(),
                slot: slot.clone(),
                target: LoadTarget::Active,
                fault: by_id.of(n),
                digest: digest.clone(),
                delay,
                fence,
                interrupt: interrupt.clone(),
            });
        ctx.spawn(calls.into_actor(self).map(move |results, act, ctx| {
            act.busy = false;
            let outcomes = match outcomes(results) {
                Ok(outcomes) => outcomes,
                Err(store_down) => return act.wait_for_store(&store_down, ctx),
            };
            let count = waves.len();
            act.live(|run| node_events(run, env, &members, &outcomes, "Updated", Some((wave, count))));
            let failures: Vec<String> = outcomes.into_iter().flatten().collect();
            act.count_nodes(env, wave, failures.len());
            let strategy = act.run.request.strategy_for(env);
            let label = wave_label(strategy, wave, waves.len());
            let mut events = vec![act.progress_event(env, members.len() - failures.len())];
            if !failures.is_empty() {
                let message = format!(
                    "{strategy} deployment failed on {} of {} nodes in {label}: {}",
                    failures.len(),
                    members.len(),
                    listed(&failures)
                );
                events.push(event(&act.run, "NodesFailed", message.clone(), json!({ "failed": failures.len() })));
                act.run.checkpoint = Checkpoint::Restoring { environment: env, message };
            } else if strategy == Strategy::Direct {
                return act.stage_succeeded_with(env, events, ctx);
            } else {
                let delay = match strategy {
                    Strategy::Canary => act.deps.pipeline.canary_bake_time,
                    _ => act.deps.pipeline.rolling_health_check_delay,
                };
                let until = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                act.set_step(DeployStep::Wait { wave, until });
            }
            act.save_checkpoint(events, ctx);
        }));
    }

    /// Updates the stage's node counts after a wave.
    fn count_nodes(&mut self, env: Environment, wave: usize, failed: usize) {
        let nodes = self.env_nodes(env).len();
        let done = self.env_waves(env, nodes).get(wave).map(|r| r.end).unwrap_or(nodes);
        if let Some(stage) = self.run.stage_mut(&deploy_stage_name(env)) {
            stage.nodes_deployed = Some((done - failed.min(done)) as u32);
            stage.nodes_failed = Some(failed as u32);
        }
    }

    /// Progress over the whole run, after `updated` more nodes of `env` took the version.
    pub(super) fn progress_event(&self, env: Environment, updated: usize) -> crate::store::RunEvent {
        let total: u32 =
            self.run.request.target_environment.path().iter().map(|e| self.env_nodes(*e).len() as u32).sum();
        progress_event(&self.run, env, total, updated)
    }

    fn wait(&mut self, wave: usize, until: chrono::DateTime<Utc>, ctx: &mut Ctx) {
        if std::mem::take(&mut self.run.intent.promote) {
            self.set_step(DeployStep::Check { wave });
            return self.save_checkpoint([], ctx);
        }
        let remaining = (until - Utc::now()).to_std().unwrap_or_default();
        self.timer = Some(ctx.run_later(remaining, move |act, ctx| {
            act.timer = None;
            act.set_step(DeployStep::Check { wave });
            act.save_checkpoint([], ctx);
        }));
    }

    fn check_wave(&mut self, env: Environment, wave: usize, ctx: &mut Ctx) {
        let nodes = self.env_nodes(env);
        let waves = self.env_waves(env, nodes.len());
        let strategy = self.run.request.strategy_for(env);
        let Some(range) = waves.get(wave).cloned() else {
            return self.stage_succeeded(env, ctx);
        };
        let (wave_end, nodes_in_stage) = (range.end, waves.last().map_or(0, |w| w.end));
        // Rolling checks the batch just deployed; canary analyses every canary node so far.
        let checked: Vec<_> = match strategy {
            Strategy::Canary => nodes[..range.end].to_vec(),
            _ => nodes[range].to_vec(),
        };
        self.busy = true;
        let span = self.step_span();
        let calls = ask_all_infallible(
            self.deps.threads.clone(),
            checked.clone(),
            self.deps.pipeline.node_request_timeout,
            span,
            |_| CheckHealth { standby_of: None },
        );
        let steps = self.run.request.canary_steps.clone().unwrap_or_else(|| self.deps.pipeline.canary_steps.clone());
        ctx.spawn(calls.into_actor(self).map(move |results, act, ctx| {
            act.busy = false;
            // A node that is down right now is most likely being restarted by its
            // supervisor: look again a few times before counting it as failed.
            let down = results.iter().any(Result::is_err);
            if down && act.check_retries < act.deps.pipeline.restore_attempts {
                act.check_retries += 1;
                return act.retry_later(ctx);
            }
            act.check_retries = 0;
            let mut problems = Vec::new();
            let mut now = Vec::new();
            for (node, r) in checked.iter().zip(results) {
                match r {
                    Ok(h) if h.healthy => now.push((node.node_id, h.metrics)),
                    Ok(h) => problems.push(format!("{} unhealthy: {}", node.hostname, h.reasons.join(", "))),
                    Err(e) => problems.push(e.to_string()),
                }
            }
            if problems.is_empty() && strategy == Strategy::Canary {
                let percent = canary_step_percent(nodes_in_stage, wave_end, &steps);
                return act.analyse_canary(env, &checked, now, percent, ctx, move |act, problems, readings, ctx| {
                    act.conclude_check(env, wave, waves.len(), problems, &readings, ctx)
                });
            }
            act.conclude_check(env, wave, waves.len(), problems, &[], ctx);
        }));
    }

    /// Ends a wave's check: on to the next wave, or the stage's end, or its
    /// restoration when `problems` names any. A canary step that passed
    /// records the readings it was judged on (`judged_on`, one per node).
    pub(super) fn conclude_check(
        &mut self,
        env: Environment,
        wave: usize,
        waves: usize,
        problems: Vec<String>,
        judged_on: &[String],
        ctx: &mut Ctx,
    ) {
        let strategy = self.run.request.strategy_for(env);
        let label = wave_label(strategy, wave, waves);
        if !problems.is_empty() {
            let message = match strategy {
                Strategy::Canary => format!("Canary {label} failed: {}", listed(&problems)),
                _ => format!("Health check after {label} failed: {}", listed(&problems)),
            };
            self.run.checkpoint = Checkpoint::Restoring { environment: env, message };
            return self.save_checkpoint([], ctx);
        }
        let judged = match judged_on {
            [] => String::new(),
            lines => format!("; judged on {}", listed(lines)),
        };
        if wave + 1 < waves {
            self.set_step(DeployStep::Load { wave: wave + 1 });
            let ev = event(
                &self.run,
                "WaveCompleted",
                format!("{label} passed{judged}"),
                json!({ "environment": env.as_str(), "wave": wave }),
            );
            self.save_checkpoint([ev], ctx);
        } else {
            self.stage_succeeded_judged(env, &judged, ctx);
        }
    }

    fn stage_succeeded(&mut self, env: Environment, ctx: &mut Ctx) {
        self.stage_succeeded_with(env, Vec::new(), ctx)
    }

    pub(super) fn stage_succeeded_with(
        &mut self,
        env: Environment,
        events: Vec<crate::store::RunEvent>,
        ctx: &mut Ctx,
    ) {
        self.stage_ends_succeeded(env, events, "", ctx)
    }

    /// The last canary step passed: its readings (`judged`, "; judged on
    /// …" or nothing) end the stage's message.
    fn stage_succeeded_judged(&mut self, env: Environment, judged: &str, ctx: &mut Ctx) {
        self.stage_ends_succeeded(env, Vec::new(), judged, ctx)
    }

    fn stage_ends_succeeded(
        &mut self,
        env: Environment,
        mut events: Vec<crate::store::RunEvent>,
        judged: &str,
        ctx: &mut Ctx,
    ) {
        let nodes = self.env_nodes(env).len();
        let strategy = self.run.request.strategy_for(env);
        // A promote noted in this stage and never used ends with it.
        self.run.intent.promote = false;
        if let Some(stage) = self.run.stage_mut(&deploy_stage_name(env)) {
            stage.nodes_deployed = Some(nodes as u32);
            stage.nodes_failed.get_or_insert(0);
        }
        let to = if nodes == 1 { "the 1 node".to_string() } else { format!("all {}", counted(nodes, "node", "nodes")) };
        let message = format!("Deployed to {to} with the {strategy} strategy{judged}");
        events.extend(finish_stage(&mut self.run, &deploy_stage_name(env), StageStatus::Succeeded, message));
        let next = self.run.request.target_environment.path().into_iter().find(|e| *e > env);
        self.run.checkpoint = match next {
            Some(next) => self.first_step(next),
            None => Checkpoint::Validation,
        };
        self.save_checkpoint(events, ctx);
    }

    // ---- Validation ---------------------------------------------------------

    fn validate(&mut self, ctx: &mut Ctx) {
        // Normally started by the save that entered it (`enter_stage`).
        if let Some(ev) = start_stage(&mut self.run, VALIDATION_STAGE) {
            self.note(ev);
        }
        let env = self.run.request.target_environment;
        let nodes = self.env_nodes(env);
        self.busy = true;
        let (module, version) = (self.module(), self.run.request.version.clone());
        let expected = version.clone();
        let delay = self.faults.for_env(env).node_delay;
        let interrupt = self.interrupt.clone();
        let span = self.step_span();
        let calls = ask_all(
            self.deps.threads.clone(),
            nodes.to_vec(),
            self.deps.pipeline.node_request_timeout,
            span,
            move |_| VerifyModule {
                module: module.clone(),
                version: expected.clone(),
                delay,
                interrupt: interrupt.clone(),
            },
        );
        let heartbeat_timeout = self.deps.heartbeat_timeout;
        ctx.spawn(calls.into_actor(self).map(move |results, act, ctx| {
            act.busy = false;
            // An abort accepted while the nodes were being verified wins over
            // the verdict: the run is unwound, not reported Succeeded.
            if act.run.intent.abort {
                return act.advance(ctx);
            }
            let mut problems: Vec<String> =
                results.into_iter().filter_map(|r| r.err().map(|e| e.to_string())).collect();
            let now_ms = Utc::now().timestamp_millis();
            problems.extend(
                nodes
                    .iter()
                    .filter(|n| !n.heartbeat_fresh_at(now_ms, heartbeat_timeout))
                    .map(|n| format!("{} has no recent heartbeat", n.hostname)),
            );
            if problems.is_empty() {
                let message = match nodes.len() {
                    1 => format!("The 1 {env} node is healthy and runs {version}"),
                    n => format!("All {} {env} nodes are healthy and run {version}", thousands(n)),
                };
                let done = finish_stage(&mut act.run, VALIDATION_STAGE, StageStatus::Succeeded, message);
                let end = finish_run(&mut act.run, RunStatus::Succeeded, "Pipeline completed successfully");
                act.run.checkpoint = Checkpoint::Done;
                act.save_checkpoint(done.into_iter().chain([end]), ctx);
            } else {
                let message = format!("Validation failed: {}", listed(&problems));
                let done = finish_stage(&mut act.run, VALIDATION_STAGE, StageStatus::Failed, message.clone());
                act.run.checkpoint = Checkpoint::Restoring { environment: env, message };
                act.save_checkpoint(done, ctx);
            }
        }));
    }
}

/// Each node's planned fault (the simulation's knobs), looked up by node id
/// from the node calls. Without any fault planned, the usual case, no map of
/// every node is built.
pub(super) struct PlannedFaults(Option<std::collections::HashMap<uuid::Uuid, LoadFault>>);

impl PlannedFaults {
    pub(super) fn new(nodes: &[Arc<NodeEntry>], faults: Vec<LoadFault>) -> PlannedFaults {
        if faults.iter().all(|f| *f == LoadFault::None) {
            return PlannedFaults(None);
        }
        PlannedFaults(Some(nodes.iter().zip(faults).map(|(n, f)| (n.node_id, f)).collect()))
    }

    pub(super) fn of(&self, node: &NodeEntry) -> LoadFault {
        self.0.as_ref().and_then(|m| m.get(&node.node_id).copied()).unwrap_or(LoadFault::None)
    }
}

fn wave_label(strategy: Strategy, wave: usize, waves: usize) -> String {
    match strategy {
        Strategy::Rolling => format!("batch {} of {waves}", wave + 1),
        Strategy::Canary => format!("step {} of {waves}", wave + 1),
        _ => "the deployment".to_string(),
    }
}
