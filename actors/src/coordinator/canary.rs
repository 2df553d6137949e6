//! The canary strategy's analysis: the baseline taken before the first
//! step and the verdict after each bake, measured by the configured
//! `MetricsProvider` (the nodes' own reports unless `[analysis]` says
//! otherwise) and judged node by node against each node's own baseline.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use uuid::Uuid;

use super::actor::Coordinator;
use super::node_calls::ask_all_infallible;
use super::stages::listed;
use super::{Checkpoint, DeployStep};
use crate::analysis::{judge, AnalysedNode, AnalysisError, AnalysisScope, Measurement, NodeReported, Readings};
use crate::domain::{Environment, NodeMetrics};
use crate::node::{CheckHealth, NodeEntry};

type Ctx = Context<Coordinator>;

impl Coordinator {
    /// Asks every node of `env` for its health, then the provider for each
    /// node's readings, and records them as the baseline of the stage.
    pub(super) fn capture_baseline(&mut self, env: Environment, ctx: &mut Ctx) {
        let nodes = self.env_nodes(env);
        self.busy = true;
        let span = self.step_span();
        let calls = ask_all_infallible(
            self.deps.threads.clone(),
            nodes.to_vec(),
            self.deps.pipeline.node_request_timeout,
            span,
            |_| CheckHealth { standby_of: None },
        );
        ctx.spawn(calls.into_actor(self).map(move |results, act, ctx| {
            act.busy = false;
            let mut reported = Vec::new();
            let mut missing = Vec::new();
            for (node, r) in nodes.iter().zip(results) {
                match r {
                    Ok(h) => reported.push((node.node_id, h.metrics)),
                    Err(e) => missing.push(e.to_string()),
                }
            }
            if !missing.is_empty() {
                return act.baseline_failed(env, listed(&missing), ctx);
            }
            let scope = act.scope(env, &nodes, &reported);
            act.measure(scope, ctx, move |act, measured, ctx| match measured {
                Err(why) => act.baseline_failed(env, why, ctx),
                Ok(measurement) => {
                    if let Checkpoint::Deploy { step, baseline, analysis_baseline, .. } = &mut act.run.checkpoint {
                        *step = DeployStep::Load { wave: 0 };
                        *baseline = reported;
                        *analysis_baseline = measurement.readings;
                    }
                    act.save_checkpoint([], ctx);
                }
            });
        }));
    }

    fn baseline_failed(&mut self, env: Environment, why: String, ctx: &mut Ctx) {
        let message = format!("Canary baseline could not be captured: {why}");
        self.run.checkpoint = Checkpoint::Restoring { environment: env, message };
        self.save_checkpoint([], ctx);
    }

    /// Measures the canary nodes checked so far and hands `conclude` the
    /// regressions found (empty when the step passes), each prefixed with the
    /// step's percentage, and what each node was judged on.
    pub(super) fn analyse_canary(
        &mut self,
        env: Environment,
        checked: &[Arc<NodeEntry>],
        reported: Vec<(Uuid, NodeMetrics)>,
        percent: u32,
        ctx: &mut Ctx,
        conclude: impl FnOnce(&mut Coordinator, Vec<String>, Vec<String>, &mut Ctx) + 'static,
    ) {
        let scope = self.scope(env, checked, &reported);
        let hostnames: std::collections::HashMap<Uuid, String> =
            checked.iter().map(|n| (n.node_id, n.hostname.clone())).collect();
        self.measure(scope, ctx, move |act, measured, ctx| {
            let (problems, readings) = match measured {
                Err(why) => (vec![why], Vec::new()),
                Ok(now) => {
                    let baseline = act.stage_baseline();
                    let name = |id: Uuid| hostnames.get(&id).cloned().unwrap_or_else(|| id.to_string());
                    let verdict = judge(&now.metrics, &baseline, &now.readings, name);
                    (verdict.problems, verdict.judged_on)
                }
            };
            let problems = problems.into_iter().map(|p| format!("canary analysis at {percent}% failed: {p}")).collect();
            conclude(act, problems, readings, ctx)
        });
    }

    /// The stage's baseline readings; for a checkpoint written before
    /// providers existed, the nodes' reports it holds.
    fn stage_baseline(&self) -> Vec<(Uuid, Readings)> {
        match &self.run.checkpoint {
            Checkpoint::Deploy { analysis_baseline, .. } if !analysis_baseline.is_empty() => analysis_baseline.clone(),
            Checkpoint::Deploy { baseline, .. } => {
                baseline.iter().map(|(id, m)| (*id, NodeReported::readings(m))).collect()
            }
            _ => Vec::new(),
        }
    }

    fn scope(&self, env: Environment, nodes: &[Arc<NodeEntry>], reported: &[(Uuid, NodeMetrics)]) -> AnalysisScope {
        let reports: std::collections::HashMap<Uuid, NodeMetrics> = reported.iter().copied().collect();
        AnalysisScope {
            tenant: self.run.tenant_id,
            module: self.module(),
            version: self.run.request.version.clone(),
            environment: env,
            nodes: nodes
                .iter()
                .filter_map(|n| {
                    let reported = *reports.get(&n.node_id)?;
                    Some(AnalysedNode { node_id: n.node_id, hostname: n.hostname.clone(), reported })
                })
                .collect(),
        }
    }

    /// Asks the provider for `scope`'s readings. While it does not answer,
    /// the step is repeated every `retry_interval` (an actor timer, so abort
    /// and pause still interrupt it) until `timeout` has passed since the
    /// first unanswered attempt; then `done` gets a message saying so. The
    /// step never passes without readings.
    fn measure(
        &mut self,
        scope: AnalysisScope,
        ctx: &mut Ctx,
        done: impl FnOnce(&mut Coordinator, Result<Measurement, String>, &mut Ctx) + 'static,
    ) {
        let provider = self.deps.analysis.clone();
        self.busy = true;
        let asked = async move { provider.measure(scope).await };
        ctx.spawn(asked.into_actor(self).map(move |answer, act, ctx| {
            act.busy = false;
            let provider = &act.deps.analysis;
            match answer {
                Ok(measurement) => {
                    act.analysis_unanswered_since = None;
                    done(act, Ok(measurement), ctx)
                }
                Err(AnalysisError::Refused(why)) => {
                    act.analysis_unanswered_since = None;
                    let message = format!("{} refused the analysis: {why}", provider.describe());
                    done(act, Err(message), ctx)
                }
                Err(AnalysisError::Unavailable(why)) => {
                    let patience = provider.patience();
                    let since = *act.analysis_unanswered_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < patience.timeout {
                        tracing::warn!(run = %act.run.execution_id, error = %why,
                            "canary analysis: the metrics provider did not answer; asking again");
                        act.timer = Some(ctx.run_later(patience.retry_interval, |act, ctx| {
                            act.timer = None;
                            act.advance(ctx);
                        }));
                        return;
                    }
                    act.analysis_unanswered_since = None;
                    let waited = humantime::format_duration(patience.timeout);
                    let message =
                        format!("{} gave no answer for {waited} (analysis.timeout): {why}", provider.describe());
                    done(act, Err(message), ctx)
                }
            }
        }));
    }
}
