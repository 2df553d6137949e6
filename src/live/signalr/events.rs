//! The original hub's events, in its payload shapes, built from run events.

use bytestring::ByteString;
use hotswap_actors::domain::RunRecord;
use hotswap_actors::events::BusEvent;
use serde_json::{json, Value};

use super::protocol::invocation;
use crate::live::wire::{current_stage, server_events, ServerEvent};

/// The memo slot of this encoding in each `BusEvent`.
const MEMO_SLOT: usize = 1;

/// Who receives a hub event: the original sent status changes to the run's
/// group and to `all-deployments`, progress to the run's group only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    RunAndAll,
    RunOnly,
}

/// The hub frames for one event, encoded once for every hub session.
pub fn encoded(e: &BusEvent) -> &[(Audience, ByteString)] {
    e.memo(MEMO_SLOT, |e| {
        let mut out = Vec::new();
        for (kind, data) in server_events(e) {
            match kind {
                ServerEvent::DeploymentStatusChanged => {
                    let status = data["status"].as_str().unwrap_or_default();
                    let arg = json!({
                        "executionId": e.event.execution_id,
                        "status": status,
                        "updatedAt": e.event.at,
                        "details": execution_state(&e.run, status, current_stage(e)),
                    });
                    out.push((Audience::RunAndAll, invocation("DeploymentStatusChanged", vec![arg])));
                    if status == "Succeeded" {
                        out.push((Audience::RunOnly, progress(e, 100)));
                    }
                }
                ServerEvent::DeploymentProgress => {
                    let percent = data["percent"].as_f64().unwrap_or(0.0).round().clamp(0.0, 100.0) as u64;
                    out.push((Audience::RunOnly, progress(e, percent)));
                }
                _ => {}
            }
        }
        out
    })
    .map(Vec::as_slice)
    .unwrap_or_default()
}

fn progress(e: &BusEvent, percent: u64) -> ByteString {
    // The stage the progress was made in: the run's snapshot is taken after
    // the whole save, which may already have started the next stage.
    let stage = match e.event.data["environment"].as_str() {
        Some(env) => format!("Deploy to {env}"),
        None => current_stage(e).unwrap_or_default(),
    };
    let arg = json!({
        "executionId": e.event.execution_id,
        "stage": stage,
        "progress": percent,
        "timestamp": e.event.at,
    });
    invocation("DeploymentProgress", vec![arg])
}

/// The original's PipelineExecutionState.
fn execution_state(run: &RunRecord, status: &str, stage: Option<String>) -> Value {
    let r = &run.request;
    json!({
        "executionId": run.execution_id,
        "request": {
            "module": { "name": r.module_name, "version": r.version, "description": r.description },
            "targetEnvironment": r.target_environment,
            "requesterEmail": r.requester_email,
            "requireApproval": r.require_approval,
            "metadata": r.metadata,
            "executionId": run.execution_id,
            "createdAt": run.created_at,
        },
        "status": status,
        "currentStage": stage,
        "stages": run.stages,
        "startTime": run.created_at,
        "lastUpdated": run.finished_at.unwrap_or_else(chrono::Utc::now),
    })
}
