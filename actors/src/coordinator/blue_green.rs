//! The blue-green strategy's steps: load the standby slot, smoke-test it,
//! switch every node at once.

use actix::prelude::*;
use chrono::Utc;

use super::actor::Coordinator;
use super::node_calls::{ask_all, ask_all_infallible, failures};
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
        let module = self.module();
        let by_id: std::collections::HashMap<_, _> = nodes.iter().zip(faults).map(|(n, f)| (n.node_id, f)).collect();
        self.busy = true;
        let calls = ask_all(nodes.clone(), self.deps.pipeline.node_request_timeout, move |n| LoadVersion {
            module: module.clone(),
            slot: slot.clone(),
            target: LoadTarget::Standby,
            fault: by_id[&n.node_id],
        });
        let smoke_timeout = self.deps.pipeline.bluegreen_smoke_test_timeout;
        ctx.spawn(calls.into_actor(self).map(move |results, act, ctx| {
            act.busy = false;
            let (failures, store_down) = failures(results);
            if !store_down.is_empty() {
                return act.wait_for_store(&store_down, ctx);
            }
            if failures.is_empty() {
                let deadline = Utc::now() + chrono::Duration::from_std(smoke_timeout).unwrap_or_default();
                act.set_step(DeployStep::SmokeTest { deadline });
            } else {
                if let Some(stage) = act.run.stage_mut(&deploy_stage_name(env)) {
                    stage.nodes_failed = Some(failures.len() as u32);
                }
                let message = format!(
                    "Loading the standby slot failed on {} of {} nodes; no serving version changed: {}",
                    failures.len(),
                    nodes.len(),
                    failures.join("; ")
                );
                act.run.checkpoint = Checkpoint::Restoring { environment: env, message };
            }
            act.commit([], ctx);
        }));
    }

    pub(super) fn smoke_test(&mut self, env: Environment, deadline: chrono::DateTime<Utc>, ctx: &mut Ctx) {
        let nodes = self.env_nodes(env);
        let module = self.module();
        self.busy = true;
        let calls = ask_all_infallible(nodes.clone(), self.deps.pipeline.node_request_timeout, move |_| CheckHealth {
            standby_of: Some(module.clone()),
        });
        let interval = self.deps.pipeline.bluegreen_smoke_test_interval;
        ctx.spawn(calls.into_actor(self).map(move |results, act, ctx| {
            act.busy = false;
            let problems: Vec<String> = nodes
                .iter()
                .zip(results)
                .filter_map(|(n, r)| match r {
                    Ok(h) if h.healthy => None,
                    Ok(h) => Some(format!("{} unhealthy on standby: {}", n.hostname, h.reasons.join(", "))),
                    Err(e) => Some(e.to_string()),
                })
                .collect();
            if problems.is_empty() {
                act.set_step(DeployStep::Switch);
                act.commit([], ctx);
            } else if Utc::now() >= deadline {
                let message =
                    format!("Smoke test failed; traffic stays on the serving version: {}", problems.join("; "));
                act.run.checkpoint = Checkpoint::Restoring { environment: env, message };
                act.commit([], ctx);
            } else {
                act.timer = Some(ctx.run_later(interval, |act, ctx| {
                    act.timer = None;
                    act.advance(ctx);
                }));
            }
        }));
    }

    pub(super) fn switch(&mut self, env: Environment, ctx: &mut Ctx) {
        let nodes = self.env_nodes(env);
        let module = self.module();
        let version = self.run.request.version.clone();
        self.busy = true;
        let calls = ask_all(nodes.clone(), self.deps.pipeline.node_request_timeout, move |_| SwitchToStandby {
            module: module.clone(),
            expected_version: version.clone(),
        });
        ctx.spawn(calls.into_actor(self).map(move |results, act, ctx| {
            act.busy = false;
            let (failures, store_down) = failures(results);
            if !store_down.is_empty() {
                return act.wait_for_store(&store_down, ctx);
            }
            if let Some(stage) = act.run.stage_mut(&deploy_stage_name(env)) {
                stage.nodes_deployed = Some((nodes.len() - failures.len()) as u32);
                stage.nodes_failed = Some(failures.len() as u32);
            }
            if failures.is_empty() {
                let ev = act.progress_event(env);
                act.stage_succeeded_with(env, vec![ev], ctx);
            } else {
                let message = format!(
                    "Switching to the standby slot failed on {} of {} nodes; all nodes switched back: {}",
                    failures.len(),
                    nodes.len(),
                    failures.join("; ")
                );
                act.run.checkpoint = Checkpoint::Restoring { environment: env, message };
                act.commit([], ctx);
            }
        }));
    }
}
