//! What happens to a coordinator's events once they are saved: the observer
//! hears of the facts they record, and the bus carries them to live
//! subscribers, in the order they were saved.

use std::sync::Arc;
use std::time::Duration;

use super::actor::CoordinatorDeps;
use crate::domain::{ApprovalStatus, Environment, RunRecord, RunStatus, StageStatus};
use crate::events::Publish;
use crate::hooks::Observer;
use crate::store::RunEvent;

/// `live` holds events only live subscribers see (they are not stored); they
/// happened before the saved ones and are published first.
pub(super) fn report(deps: &CoordinatorDeps, run: Arc<RunRecord>, saved: Vec<RunEvent>, live: Vec<RunEvent>) {
    observe(deps.hooks.observer.as_ref(), &run, &saved);
    for e in saved.iter().filter(|e| matches!(e.kind.as_str(), "ApprovalRequested" | "ApprovalDecided")) {
        deps.hooks.notifier.notify(&run, e);
    }
    if saved.is_empty() && live.is_empty() {
        return;
    }
    let mut events = live;
    events.extend(saved);
    deps.bus.do_send(Publish { run, events });
}

/// Tells the observer what the saved `events` of `run` mean.
pub(crate) fn observe(observer: &dyn Observer, run: &RunRecord, events: &[RunEvent]) {
    let target = run.request.target_environment;
    for e in events {
        match e.kind.as_str() {
            "DeploymentCreated" => observer.deployment_started(target, run.request.strategy_for(target)),
            "StageCompleted" => {
                let name = e.data["stage"].as_str().unwrap_or_default();
                let status = stage_status(e.data["status"].as_str().unwrap_or_default());
                if let (Some(stage), Some(status)) = (run.stages.iter().find(|s| s.name == name), status) {
                    let duration = match (stage.start_time, stage.end_time) {
                        (Some(start), Some(end)) => (end - start).to_std().unwrap_or_default(),
                        _ => Duration::ZERO,
                    };
                    observer.stage_finished(name, status, duration);
                }
            }
            "DeploymentProgress" => {
                let env = environment(&e.data).unwrap_or(target);
                let updated = e.data["nodesUpdated"].as_u64().unwrap_or(0);
                if updated > 0 {
                    observer.nodes_updated(env, updated);
                }
            }
            // Per environment after an automatic restore; once for the run after a rollback on request.
            "DeploymentRolledBack" => {
                let env = environment(&e.data).unwrap_or(target);
                observer.environment_rolled_back(env, run.request.strategy_for(env));
            }
            "DeploymentCompleted" | "DeploymentFailed" | "DeploymentCancelled" => {
                let duration = run.finished_at.map(|f| (f - run.created_at).to_std().unwrap_or_default());
                let status = match e.kind.as_str() {
                    "DeploymentCompleted" => RunStatus::Succeeded,
                    "DeploymentCancelled" => RunStatus::Cancelled,
                    _ => RunStatus::Failed,
                };
                observer.deployment_finished(
                    target,
                    run.request.strategy_for(target),
                    status,
                    duration.unwrap_or_default(),
                );
            }
            "ApprovalRequested" => observer.approval(target, ApprovalStatus::Pending),
            "ApprovalDecided" => {
                if let Some(status) = e.data["status"].as_str().and_then(ApprovalStatus::parse) {
                    observer.approval(target, status);
                }
            }
            _ => {}
        }
    }
}

fn environment(data: &serde_json::Value) -> Option<Environment> {
    data["environment"].as_str().and_then(|e| e.parse().ok())
}

fn stage_status(s: &str) -> Option<StageStatus> {
    use StageStatus::*;
    [Pending, Running, Succeeded, Failed, Skipped, WaitingForApproval, RolledBack].into_iter().find(|v| v.as_str() == s)
}
