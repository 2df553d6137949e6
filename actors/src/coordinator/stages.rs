//! Bookkeeping of a run's stages and events.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use crate::domain::{
    deploy_stage_name, Environment, RunRecord, RunStatus, Stage, StageStatus, APPROVAL_STAGE, SECURITY_SCAN_STAGE,
    VALIDATION_STAGE,
};
use crate::node::NodeEntry;

pub use crate::domain::listing::{listed, NAMED_IN_MESSAGES};
use crate::store::RunEvent;

/// The stages a run will go through, all Pending at the start.
pub fn planned_stages(run: &RunRecord) -> Vec<Stage> {
    let mut stages = vec![Stage::pending(SECURITY_SCAN_STAGE)];
    if run.approval_required {
        stages.push(Stage::pending(APPROVAL_STAGE));
    }
    for env in run.request.target_environment.path() {
        let mut stage = Stage::pending(deploy_stage_name(env));
        stage.environment = Some(env);
        stage.strategy = Some(run.request.strategy_for(env));
        stages.push(stage);
    }
    stages.push(Stage::pending(VALIDATION_STAGE));
    stages
}

pub fn event(run: &RunRecord, kind: &str, message: impl Into<String>, data: serde_json::Value) -> RunEvent {
    RunEvent {
        tenant_id: run.tenant_id,
        execution_id: run.execution_id,
        at: Utc::now(),
        kind: kind.to_string(),
        message: message.into(),
        data,
    }
}

/// Marks a stage Running (once) and returns the event for it.
pub fn start_stage(run: &mut RunRecord, name: &str) -> Option<RunEvent> {
    let stage = run.stage_mut(name)?;
    if stage.status != StageStatus::Pending {
        return None;
    }
    stage.status = StageStatus::Running;
    stage.start_time = Some(Utc::now());
    let data = json!({ "stage": name });
    Some(event(run, "StageStarted", format!("{name} started"), data))
}

pub fn finish_stage(
    run: &mut RunRecord,
    name: &str,
    status: StageStatus,
    message: impl Into<String>,
) -> Option<RunEvent> {
    let message = message.into();
    let stage = run.stage_mut(name)?;
    stage.status = status;
    if stage.start_time.is_none() {
        stage.start_time = Some(Utc::now());
    }
    stage.end_time = Some(Utc::now());
    stage.message = message.clone();
    let mut data = json!({ "stage": name, "status": status.as_str(), "message": message });
    // Node counts of a deployment stage, for the audit trail and live clients.
    if let (Some(deployed), Some(map)) = (stage.nodes_deployed, data.as_object_mut()) {
        map.insert("nodesDeployed".into(), json!(deployed));
        map.insert("nodesFailed".into(), json!(stage.nodes_failed.unwrap_or(0)));
    }
    Some(event(run, "StageCompleted", format!("{name}: {}", status.as_str()), data))
}

/// Ends the run: stages never reached become Skipped.
pub fn finish_run(run: &mut RunRecord, status: RunStatus, message: impl Into<String>) -> RunEvent {
    let message = message.into();
    for stage in &mut run.stages {
        if stage.status == StageStatus::Pending {
            stage.status = StageStatus::Skipped;
        }
    }
    run.status = status;
    run.message = message.clone();
    run.finished_at = Some(Utc::now());
    let kind = match status {
        RunStatus::Succeeded => "DeploymentCompleted",
        RunStatus::RolledBack => "DeploymentRolledBack",
        RunStatus::Cancelled => "DeploymentCancelled",
        _ => "DeploymentFailed",
    };
    event(run, kind, message, json!({ "status": status.as_str() }))
}

/// Progress over the whole run: nodes done in every environment so far out of
/// all the nodes on the run's path. `updated` is how many took the version in
/// the step just finished.
pub fn progress_event(run: &RunRecord, env: Environment, total: u32, updated: usize) -> RunEvent {
    let done: u32 = run.stages.iter().filter_map(|s| s.nodes_deployed).sum();
    let percent = if total == 0 { 0.0 } else { (f64::from(done) * 100.0 / f64::from(total)).min(100.0) };
    event(
        run,
        "DeploymentProgress",
        format!("{done} of {total} nodes updated"),
        json!({
            "environment": env.as_str(),
            "nodesDone": done,
            "nodesTotal": total,
            "nodesUpdated": updated,
            "percent": percent,
        }),
    )
}

/// Nodes one `NodeUpdated` event lists; `nodeCount` and `failedCount` count
/// them all. A wave of 100,000 nodes listed in full was a 12 MB message,
/// built on the coordinator's thread and sent to every live client.
pub const NODES_LISTED_PER_UPDATE: usize = 100;

/// One live-only `NodeUpdated` event for the nodes one step changed (or
/// failed to change): each is `action` when its call succeeded (`Updated`,
/// `StandbyLoaded`, `Switched`, `Restored`), else `Failed` with the error.
/// `outcomes` holds each node's error, in node order. One event per step, not
/// per node, keeps a wave of thousands of nodes to one message per client;
/// it lists at most [`NODES_LISTED_PER_UPDATE`] of them, failed ones first
/// chosen, in node order.
/// `wave` is the wave's index and the stage's count of waves, for a load
/// (a client that missed earlier waves still numbers this one right).
pub fn node_events(
    run: &RunRecord,
    env: Environment,
    nodes: &[Arc<NodeEntry>],
    outcomes: &[Option<String>],
    action: &str,
    wave: Option<(usize, usize)>,
) -> Vec<RunEvent> {
    if nodes.is_empty() {
        return Vec::new();
    }
    let failed = outcomes.iter().filter(|o| o.is_some()).count();
    let entries: Vec<_> = listed_nodes(outcomes, NODES_LISTED_PER_UPDATE)
        .into_iter()
        .filter_map(|i| nodes.get(i).zip(outcomes.get(i)))
        .map(|(node, error)| {
            let status = if error.is_some() { "Failed" } else { action };
            json!({ "nodeId": node.node_id, "hostname": node.hostname, "status": status, "error": error })
        })
        .collect();
    let message = format!("{} {env} nodes {action}, {failed} failed", nodes.len() - failed);
    let mut data = json!({
        "environment": env.as_str(),
        "module": run.request.module_name,
        "version": run.request.version,
        "action": action,
        "nodes": entries,
        "nodeCount": nodes.len(),
        "failedCount": failed,
    });
    if let (Some((index, count)), Some(map)) = (wave, data.as_object_mut()) {
        map.insert("wave".into(), json!(index));
        map.insert("waves".into(), json!(count));
    }
    vec![event(run, "NodeUpdated", message, data)]
}

/// The indexes of the nodes an update lists, in node order: every failed
/// node up to `limit`, then the first others until `limit`.
fn listed_nodes(outcomes: &[Option<String>], limit: usize) -> Vec<usize> {
    if outcomes.len() <= limit {
        return (0..outcomes.len()).collect();
    }
    let failed = outcomes.iter().enumerate().filter(|(_, o)| o.is_some()).map(|(i, _)| i);
    let succeeded = outcomes.iter().enumerate().filter(|(_, o)| o.is_none()).map(|(i, _)| i);
    let mut listed: Vec<usize> = failed.chain(succeeded).take(limit).collect();
    listed.sort_unstable();
    listed
}

#[cfg(test)]
mod tests {
    use super::listed_nodes;

    fn outcomes(n: usize, failed: &[usize]) -> Vec<Option<String>> {
        (0..n).map(|i| failed.contains(&i).then(|| "hook failed".to_string())).collect()
    }

    #[test]
    fn an_update_lists_every_node_of_a_small_step() {
        assert_eq!(listed_nodes(&outcomes(3, &[1]), 100), vec![0, 1, 2]);
    }

    #[test]
    fn a_large_step_lists_its_failed_nodes_first_chosen_then_the_first_others() {
        let listed = listed_nodes(&outcomes(100_000, &[5, 99_998]), 4);
        assert_eq!(listed, vec![0, 1, 5, 99_998], "both failures, then the first nodes, in node order");
        let all_failed: Vec<usize> = (0..10).collect();
        assert_eq!(listed_nodes(&outcomes(10, &all_failed), 3), vec![0, 1, 2]);
    }
}
