//! The end of a run whose last incarnation kept failing too: nothing is left
//! to restore its nodes, so the run is ended Failed (and a manual rollback
//! marked Failed) directly in the store, saying that nodes may be left on its
//! version, and its module is released. A run never stays Running for ever.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::actor::CoordinatorDeps;
use super::report::report;
use super::stages::event;
use super::Checkpoint;
use crate::domain::{RollbackState, RunRecord, RunStatus, StageStatus, TenantId};
use crate::store::StoreError;

/// How often the final save is tried when the store refuses it for a reason
/// other than an outage (an outage is waited out).
const ATTEMPTS: u32 = 10;

pub(super) async fn give_up(deps: Arc<CoordinatorDeps>, tenant: TenantId, id: Uuid, reason: String) {
    let mut backoff = Duration::from_millis(50);
    let mut refusals = 0;
    loop {
        let outcome = match deps.store.get_run(tenant, id).await {
            Ok(Some(run)) if !run.holds_module() => return,
            Ok(Some(run)) => {
                let (ended, ev) = ended(run, &reason);
                let ended = Arc::new(ended);
                match deps.store.save_run(&ended, std::slice::from_ref(&ev)).await {
                    Ok(()) => {
                        tracing::error!(run = %id, %reason, "run ended Failed: its last coordinator kept failing");
                        report(&deps, ended, vec![ev], Vec::new());
                        return;
                    }
                    Err(e) => e,
                }
            }
            Ok(None) => return,
            Err(e) => e,
        };
        if !matches!(outcome, StoreError::Unavailable(_)) {
            refusals += 1;
            if refusals >= ATTEMPTS {
                tracing::error!(run = %id, error = %outcome, "cannot end the run; it stays as stored");
                return;
            }
        }
        tracing::warn!(run = %id, error = %outcome, ?backoff, "cannot end the run yet; retrying");
        actix::clock::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// `run` ended: Failed if it was still active; a manual rollback in progress
/// marked Failed. Nodes are not touched, and the message says so.
fn ended(mut run: RunRecord, reason: &str) -> (RunRecord, crate::store::RunEvent) {
    let now = Utc::now();
    let version = run.request.version.clone();
    let message = format!(
        "Gave up after the coordinator kept failing ({reason}); nodes this run changed may still run {version}"
    );
    if let Some(rb) = run.rollback.as_mut().filter(|rb| rb.in_progress()) {
        rb.status = RollbackState::FAILED.to_string();
        rb.finished_at = Some(now);
        rb.message = message.clone();
    }
    if run.status.is_active() {
        for stage in run.stages.iter_mut().filter(|s| s.status == StageStatus::Running) {
            stage.status = StageStatus::Failed;
            stage.end_time = Some(now);
            stage.message = message.clone();
        }
        run.status = RunStatus::Failed;
        run.finished_at = Some(now);
        run.message = message.clone();
    }
    run.checkpoint = Checkpoint::Done;
    run.revision += 1;
    let ev = event(&run, "CoordinatorGaveUp", message, json!({ "reason": reason }));
    (run, ev)
}
