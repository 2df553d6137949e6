//! One look at one batch: follow its running steps, stop it on a failure,
//! finish it when every step succeeded, else start the steps now ready.
//! Every change is saved (with its audit entry) before the next one.

use std::collections::HashSet;

use chrono::Utc;
use uuid::Uuid;

use crate::coordinator::Verb;
use crate::domain::{AuditCategory, AuditResult, BatchRecord, BatchStatus, BatchStepStatus, NewAuditEntry, RunStatus};
use crate::error::CoreError;
use crate::orchestrator::downgrade::{downgrade_allowed_entry, downgrade_of};
use crate::store::{RunFilter, StoreError};
use crate::Orchestrator;

/// Runs of one module read when looking for a run created before a restart.
const RECENT_RUNS: u32 = 50;

async fn save(
    orchestrator: &Orchestrator,
    batch: &mut BatchRecord,
    kind: &str,
    message: String,
) -> Result<(), StoreError> {
    batch.updated_at = Utc::now();
    let result = if batch.status == BatchStatus::Failed { AuditResult::Failure } else { AuditResult::Success };
    let audit = NewAuditEntry::new(batch.tenant_id, batch.created_by.clone(), AuditCategory::Deployment, kind)
        .resource("DeploymentBatch", batch.batch_id)
        .result(result)
        .message(message);
    orchestrator.store().save_batch(batch, &audit).await
}

/// The run a previous incarnation created for step `i` but could not record.
async fn run_created_before(
    orchestrator: &Orchestrator,
    batch: &BatchRecord,
    i: usize,
) -> Result<Option<Uuid>, StoreError> {
    let step = &batch.steps[i];
    let filter =
        RunFilter { module_name: Some(step.module.clone()), page: 1, page_size: RECENT_RUNS, ..Default::default() };
    let runs = orchestrator.store().list_runs(batch.tenant_id, &filter).await?;
    let wanted = batch.run_description(step);
    for summary in runs.items.iter().filter(|r| r.version == step.version && r.created_at >= batch.created_at) {
        if let Some(run) = orchestrator.store().get_run(batch.tenant_id, summary.execution_id).await? {
            if run.request.description.as_deref() == Some(wanted.as_str()) {
                return Ok(Some(run.execution_id));
            }
        }
    }
    Ok(None)
}

/// Follows the steps whose runs are in progress; `Some(message)` names the
/// first that failed.
async fn follow_runs(orchestrator: &Orchestrator, batch: &mut BatchRecord) -> Result<Option<String>, StoreError> {
    let tenant = batch.tenant_id;
    for i in 0..batch.steps.len() {
        if batch.steps[i].status == BatchStepStatus::Starting {
            let found = run_created_before(orchestrator, batch, i).await?;
            let step = &mut batch.steps[i];
            step.execution_id = found;
            step.status = if found.is_some() { BatchStepStatus::Running } else { BatchStepStatus::Pending };
        }
        let step = &batch.steps[i];
        let (BatchStepStatus::Running, Some(id)) = (step.status, step.execution_id) else { continue };
        let outcome = match orchestrator.store().get_run(tenant, id).await? {
            None => Some((BatchStepStatus::Failed, format!("its run {id} is gone"))),
            Some(run) if run.status == RunStatus::Succeeded => Some((BatchStepStatus::Succeeded, run.message)),
            Some(run) if !run.status.is_active() => {
                Some((BatchStepStatus::Failed, format!("run {id} ended {}: {}", run.status.as_str(), run.message)))
            }
            Some(_) => None,
        };
        let Some((status, message)) = outcome else { continue };
        let step = &mut batch.steps[i];
        step.status = status;
        step.message = message.clone();
        if status == BatchStepStatus::Failed {
            return Ok(Some(format!("{} {} failed: {message}", step.module, step.version)));
        }
        let note = format!("{} {} succeeded", step.module, step.version);
        save(orchestrator, batch, "DeploymentBatchStepSucceeded", note).await?;
    }
    Ok(None)
}

/// Ends the batch Failed: its other runs are aborted (each restores what it
/// changed) and the steps not started never will be.
async fn stop(orchestrator: &Orchestrator, batch: &mut BatchRecord, why: String) -> Result<(), StoreError> {
    for step in batch.steps.iter_mut() {
        match (step.status, step.execution_id) {
            (BatchStepStatus::Running, Some(id)) => {
                let aborted = orchestrator.apply_verb(batch.tenant_id, id, Verb::Abort, &batch.created_by).await;
                step.message = match aborted {
                    Ok(_) => "aborted: another step of the batch failed".into(),
                    Err(e) => format!("could not be aborted: {e}"),
                };
                step.status = BatchStepStatus::Stopped;
            }
            (BatchStepStatus::Pending | BatchStepStatus::Starting, _) => {
                step.status = BatchStepStatus::Stopped;
                step.message = "not started: another step of the batch failed".into();
            }
            _ => {}
        }
    }
    batch.status = BatchStatus::Failed;
    batch.message = format!("{why}; the batch stopped");
    let message = batch.message.clone();
    save(orchestrator, batch, "DeploymentBatchFailed", message).await
}

/// Whether asking again later may succeed.
fn transient(e: &CoreError) -> bool {
    matches!(
        e,
        CoreError::ModuleBusy { .. } | CoreError::Overloaded { .. } | CoreError::Unavailable(_) | CoreError::Quota(_)
    )
}

/// One look at `batch`: see the module doc.
pub async fn drive_batch(orchestrator: &Orchestrator, mut batch: BatchRecord) -> Result<(), StoreError> {
    if let Some(why) = follow_runs(orchestrator, &mut batch).await? {
        return stop(orchestrator, &mut batch, why).await;
    }
    if batch.steps.iter().all(|s| s.status == BatchStepStatus::Succeeded) {
        batch.status = BatchStatus::Succeeded;
        batch.message = format!("All {} module versions deployed", batch.steps.len());
        let message = batch.message.clone();
        return save(orchestrator, &mut batch, "DeploymentBatchSucceeded", message).await;
    }
    let succeeded: HashSet<String> =
        batch.steps.iter().filter(|s| s.status == BatchStepStatus::Succeeded).map(|s| s.module.clone()).collect();
    for i in 0..batch.steps.len() {
        let step = &batch.steps[i];
        if step.status != BatchStepStatus::Pending || !step.depends_on.iter().all(|d| succeeded.contains(d)) {
            continue;
        }
        let request = batch.run_request(step);
        // The nodes may have moved on since the batch was accepted (another
        // run went higher): the version is checked again as it starts.
        if let Some(what) = downgrade_of(orchestrator.store().as_ref(), batch.tenant_id, &request).await? {
            if !batch.allow_downgrade {
                let step = &mut batch.steps[i];
                step.status = BatchStepStatus::Failed;
                step.message = format!("{what}; the batch was created without allowDowngrade");
                let why = format!("{} {} could not start: {}", step.module, step.version, step.message);
                return stop(orchestrator, &mut batch, why).await;
            }
            if !batch.steps[i].downgrade_audited {
                let how = format!("allowDowngrade (deployment batch {})", batch.batch_id);
                let entry = downgrade_allowed_entry(batch.tenant_id, &batch.created_by, &request, &what, &how);
                orchestrator.store().append_audit(&[entry]).await?;
                // Saved with the Starting step just below.
                batch.steps[i].downgrade_audited = true;
            }
        }
        let step = &batch.steps[i];
        let note = format!("starting {} {}", step.module, step.version);
        // Recorded before the run is created: a restart in between finds the run by its description.
        batch.steps[i].status = BatchStepStatus::Starting;
        save(orchestrator, &mut batch, "DeploymentBatchStepStarting", note).await?;
        match orchestrator.create_deployment(batch.tenant_id, request, &batch.created_by).await {
            Ok(run) => {
                let step = &mut batch.steps[i];
                step.status = BatchStepStatus::Running;
                step.execution_id = Some(run.execution_id);
                let note = format!("{} {} runs as {}", step.module, step.version, run.execution_id);
                save(orchestrator, &mut batch, "DeploymentBatchStepStarted", note).await?;
            }
            // Left Starting: the next look finds no run, sets the step Pending and tries again.
            Err(e) if transient(&e) => return Ok(()),
            Err(e) => {
                let step = &mut batch.steps[i];
                step.status = BatchStepStatus::Failed;
                step.message = e.to_string();
                let why = format!("{} {} could not start: {e}", step.module, step.version);
                return stop(orchestrator, &mut batch, why).await;
            }
        }
    }
    Ok(())
}
