//! The blue-green steps of a deploy stage: load the new version into every
//! node's standby slot, smoke-test the standby until it is healthy or its
//! deadline passes, then switch every node to it. Traffic stays on the
//! serving version until the switch; a failure before it changes nothing
//! that serves.

use actix::prelude::*;
use chrono::Utc;
use serde_json::json;

use super::actor::Coordinator;
use super::node_calls::{ask_all, ask_all_infallible, outcomes};
use super::stages::{event, listed, node_events, NODES_LISTED_PER_UPDATE};
use super::steps::PlannedFaults;
use super::{Checkpoint, DeployStep};
use crate::domain::{deploy_stage_name, Environment};
use crate::node::{CheckHealth, LoadTarget, LoadVersion, SwitchToStandby};

type Ctx = Context<Coordinator>;

impl Coordinator {
    pub(super) fn load_standby(&mut self, env: Environment, ctx: &mut Ctx) {
        let nodes = self.env_nodes(env);
        if self.record_changes(env, &nodes, ctx) {
            return;
        }
        let (faults, slot) = self.load_faults(env, &nodes);
        let delay = self.faults.for_env(env).node_delay;
        let module = self.module();
        let by_id = PlannedFaults::new(&nodes, faults);
        let digest = self.run.artifact_digest.clone();
        let (fence, interrupt) = (self.fence(), self.interrupt.clone());
        self.busy = true;
        let span = self.step_span();
        let calls = ask_all(
            self.deps.threads.clone(),
            nodes.to_vec(),
            self.deps.pipeline.node_request_timeout,
            span,
            move |n| LoadVersion {
                module: module.clone(),
                slot: slot.clone(),
                target: LoadTarget::Standby,
                fault: by_id.of(n),
                digest: digest.clone(),
                delay,
                fence,
                interrupt: interrupt.clone(),
            },
        );
        let smoke_timeout = self.deps.pipeline.bluegreen_smoke_test_timeout;
        ctx.spawn(calls.into_actor(self).map(move |results, act, ctx| {
            act.busy = false;
            let outcomes = match outcomes(results) {
                Ok(outcomes) => outcomes,
                Err(store_down) => return act.wait_for_store(&store_down, ctx),
            };
            act.live(|run| node_events(run, env, &nodes, &outcomes, "StandbyLoaded", None));
            let failures: Vec<String> = outcomes.into_iter().flatten().collect();
            let mut events = Vec::new();
            if failures.is_empty() {
                let deadline = Utc::now() + chrono::Duration::from_std(smoke_timeout).unwrap_or_default();
                act.set_step(DeployStep::SmokeTest { deadline });
                // Stored with the step, so that the history shows the
                // standby and a client hearing it finds the wait on the run.
                let message = format!(
                    "The standby slot holds the new version on all {} nodes of {env}; smoke test until {}",
                    nodes.len(),
                    deadline.format("%H:%M:%S UTC")
                );
                let data = json!({ "environment": env.as_str(), "nodes": nodes.len(), "deadline": deadline });
                events.push(event(&act.run, "SmokeTestStarted", message, data));
                // Live clients hear progress (no serving node changed yet) and
                // find the smoke test's wait on the run.
                events.push(act.progress_event(env, 0));
            } else {
                if let Some(stage) = act.run.stage_mut(&deploy_stage_name(env)) {
                    stage.nodes_failed = Some(failures.len() as u32);
                }
                let message = format!(
                    "Loading the standby slot failed on {} of {} nodes; no serving version changed: {}",
                    failures.len(),
                    nodes.len(),
                    listed(&failures)
                );
                act.run.checkpoint = Checkpoint::Restoring { environment: env, message };
            }
            act.save_checkpoint(events, ctx);
        }));
    }

    pub(super) fn smoke_test(&mut self, env: Environment, deadline: chrono::DateTime<Utc>, ctx: &mut Ctx) {
        let nodes = self.env_nodes(env);
        let module = self.module();
        self.busy = true;
        let span = self.step_span();
        let calls = ask_all_infallible(
            self.deps.threads.clone(),
            nodes.to_vec(),
            self.deps.pipeline.node_request_timeout,
            span,
            move |_| CheckHealth { standby_of: Some(module.clone()) },
        );
        let interval = self.deps.pipeline.bluegreen_smoke_test_interval;
        ctx.spawn(calls.into_actor(self).map(move |results, act, ctx| {
            act.busy = false;
            let (waiting_for, problems): (Vec<String>, Vec<String>) = nodes
                .iter()
                .zip(results)
                .filter_map(|(n, r)| {
                    match r {
                        Ok(h) if h.healthy => None,
                        Ok(h) => Some(format!("{} unhealthy on standby: {}", n.hostname, h.reasons.join(", "))),
                        Err(e) => Some(e.to_string()),
                    }
                    .map(|problem| (n.hostname.clone(), problem))
                })
                .unzip();
            if problems.is_empty() {
                act.smoke_waiting_for.clear();
                act.set_step(DeployStep::Switch);
                act.save_checkpoint([], ctx);
            } else if Utc::now() >= deadline {
                act.smoke_waiting_for.clear();
                let message = format!("Smoke test failed; traffic stays on the serving version: {}", listed(&problems));
                act.run.checkpoint = Checkpoint::Restoring { environment: env, message };
                act.save_checkpoint([], ctx);
            } else {
                act.timer = Some(ctx.run_later(interval, |act, ctx| {
                    act.timer = None;
                    act.advance(ctx);
                }));
                // A smoke test that waits says for what, once per change of
                // the nodes it waits for: a wait of minutes said nothing.
                if waiting_for != act.smoke_waiting_for {
                    let waiting = act.smoke_waiting(env, nodes.len(), &waiting_for, &problems, deadline);
                    act.smoke_waiting_for = waiting_for;
                    act.save_checkpoint([waiting], ctx);
                }
            }
        }));
    }

    /// The `SmokeTestWaiting` event, also kept as the stage's message while
    /// it waits (`GET /api/v1/deployments/{id}`, `hotswap status`).
    fn smoke_waiting(
        &mut self,
        env: Environment,
        total: usize,
        waiting_for: &[String],
        problems: &[String],
        deadline: chrono::DateTime<Utc>,
    ) -> crate::store::RunEvent {
        let message = format!(
            "Smoke test in {env} waits for {} of {total} nodes until {}: {}",
            waiting_for.len(),
            deadline.format("%H:%M:%S UTC"),
            listed(problems)
        );
        if let Some(stage) = self.run.stage_mut(&deploy_stage_name(env)) {
            stage.message = message.clone();
        }
        let named: Vec<&String> = waiting_for.iter().take(NODES_LISTED_PER_UPDATE).collect();
        let data = json!({
            "environment": env.as_str(),
            "nodes": named,
            "nodeCount": waiting_for.len(),
            "deadline": deadline,
        });
        event(&self.run, "SmokeTestWaiting", message, data)
    }

    pub(super) fn switch(&mut self, env: Environment, ctx: &mut Ctx) {
        let nodes = self.env_nodes(env);
        let module = self.module();
        let version = self.run.request.version.clone();
        let (fence, interrupt) = (self.fence(), self.interrupt.clone());
        self.busy = true;
        let span = self.step_span();
        let calls = ask_all(
            self.deps.threads.clone(),
            nodes.to_vec(),
            self.deps.pipeline.node_request_timeout,
            span,
            move |_| SwitchToStandby {
                module: module.clone(),
                expected_version: version.clone(),
                fence,
                interrupt: interrupt.clone(),
            },
        );
        ctx.spawn(calls.into_actor(self).map(move |results, act, ctx| {
            act.busy = false;
            let outcomes = match outcomes(results) {
                Ok(outcomes) => outcomes,
                Err(store_down) => return act.wait_for_store(&store_down, ctx),
            };
            act.live(|run| node_events(run, env, &nodes, &outcomes, "Switched", None));
            let failures: Vec<String> = outcomes.into_iter().flatten().collect();
            if let Some(stage) = act.run.stage_mut(&deploy_stage_name(env)) {
                stage.nodes_deployed = Some((nodes.len() - failures.len()) as u32);
                stage.nodes_failed = Some(failures.len() as u32);
            }
            if failures.is_empty() {
                let ev = act.progress_event(env, nodes.len());
                act.stage_succeeded_with(env, vec![ev], ctx);
            } else {
                let message = format!(
                    "Switching to the standby slot failed on {} of {} nodes; all nodes switched back: {}",
                    failures.len(),
                    nodes.len(),
                    listed(&failures)
                );
                act.run.checkpoint = Checkpoint::Restoring { environment: env, message };
                act.save_checkpoint([], ctx);
            }
        }));
    }
}
