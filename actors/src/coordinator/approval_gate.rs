//! The approval gate: after the security scan, a run that needs approval
//! opens an approval (saved with the run), hands its timer to an approval
//! actor, and waits. It moves on when the approval actor reports the
//! decision, or when its own poll of the store finds one taken by another
//! instance.

use std::time::Duration;

use actix::prelude::*;
use chrono::{SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;

use super::actor::Coordinator;
use super::stages::{event, finish_run, finish_stage, start_stage};
use super::Checkpoint;
use crate::approval::{spawn_approval, ApprovalSettled};
use crate::domain::audit_entries::approval_outcome_entry;
use crate::domain::{
    ApprovalDecision, ApprovalRecord, ApprovalStatus, AuditActor, Environment, RunStatus, StageStatus, APPROVAL_STAGE,
};

/// The audit event of a pending approval closed because its run was aborted:
/// nobody decided it, so it is neither a rejection nor an expiry.
pub const APPROVAL_CLOSED: &str = "ApprovalClosed";

type Ctx = Context<Coordinator>;

impl Handler<ApprovalSettled> for Coordinator {
    type Result = ();

    fn handle(&mut self, ApprovalSettled(record): ApprovalSettled, ctx: &mut Self::Context) {
        self.settle_approval(record, ctx);
    }
}

impl Coordinator {
    pub(super) fn request_approval(&mut self, ctx: &mut Ctx) {
        // Whole microseconds, which is what PostgreSQL keeps.
        let now = Utc::now().trunc_subsecs(6);
        let timeout = self.deps.approval_settings.timeout;
        let timeout_at = now + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::days(365));
        let request = self.run.request.clone();
        let approval = ApprovalRecord {
            tenant_id: self.run.tenant_id,
            approval_id: Uuid::new_v4(),
            execution_id: self.run.execution_id,
            module_name: request.module_name.clone(),
            version: request.version.clone(),
            target_environment: request.target_environment,
            requester_id: self.run.requested_by,
            requester_email: request.requester_email.clone(),
            status: ApprovalStatus::Pending,
            requested_at: now,
            timeout_at,
            decided_at: None,
            decided_by_id: None,
            decided_by_email: None,
            reason: None,
        };
        let started = start_stage(&mut self.run, APPROVAL_STAGE);
        if let Some(stage) = self.run.stage_mut(APPROVAL_STAGE) {
            stage.status = StageStatus::WaitingForApproval;
            stage.message = format!("Waiting for approval until {}", timeout_at.to_rfc3339());
        }
        self.run.status = RunStatus::PendingApproval;
        let requested = event(
            &self.run,
            "ApprovalRequested",
            format!(
                "Approval required: deploy {} {} to {}",
                request.module_name, request.version, request.target_environment
            ),
            json!({
                "approvalId": approval.approval_id,
                "requesterEmail": approval.requester_email,
                "requestedAt": approval.requested_at,
                "timeoutAt": approval.timeout_at,
            }),
        );
        self.run.checkpoint = Checkpoint::AwaitingApproval { approval_id: approval.approval_id, timeout_at };
        self.opening = Some(approval);
        self.save_checkpoint(started.into_iter().chain([requested]), ctx);
    }

    /// Makes sure somebody watches the approval: its actor (which expires it
    /// on time) and this coordinator's poll of the store.
    pub(super) fn await_approval(&mut self, approval_id: Uuid, ctx: &mut Ctx) {
        if self.approval_poll.is_some() {
            return;
        }
        spawn_approval(self.deps.approvals.clone(), self.run.tenant_id, approval_id, self.run.execution_id);
        self.poll_approval(approval_id, ctx);
        let every = self.deps.approval_settings.poll_interval;
        self.approval_poll = Some(ctx.run_interval(every, move |act, ctx| act.poll_approval(approval_id, ctx)));
    }

    fn poll_approval(&mut self, approval_id: Uuid, ctx: &mut Ctx) {
        let store = self.deps.store.clone();
        let tenant = self.run.tenant_id;
        let read = async move { store.get_approval(tenant, approval_id).await };
        ctx.spawn(read.into_actor(self).map(|found, act, ctx| match found {
            Ok(Some(record)) if record.status != ApprovalStatus::Pending => act.settle_approval(record, ctx),
            Ok(_) => {}
            Err(e) => tracing::warn!(run = %act.run.execution_id, error = %e, "cannot read the run's approval"),
        }));
    }

    /// Moves the run on from its gate, once.
    pub(super) fn settle_approval(&mut self, record: ApprovalRecord, ctx: &mut Ctx) {
        let Checkpoint::AwaitingApproval { approval_id, .. } = self.run.checkpoint else { return };
        if approval_id != record.approval_id || record.status == ApprovalStatus::Pending || self.run.intent.abort {
            return;
        }
        if let Some(handle) = self.approval_poll.take() {
            ctx.cancel_future(handle);
        }
        let by = record.decided_by_email.clone().unwrap_or_else(|| AuditActor::SYSTEM.to_string());
        let reason = record.reason.clone().unwrap_or_default();
        let decided = event(
            &self.run,
            "ApprovalDecided",
            format!("approval {}", record.status.as_str().to_lowercase()),
            json!({
                "approvalId": record.approval_id,
                "status": record.status.as_str(),
                "decidedBy": record.decided_by_email,
                "decidedAt": record.decided_at,
                "reason": record.reason,
            }),
        );
        let mut events = vec![decided];
        match record.status {
            ApprovalStatus::Approved => {
                let message = format!("Approved by {by}. {reason}").trim_end().to_string();
                events.extend(finish_stage(&mut self.run, APPROVAL_STAGE, StageStatus::Succeeded, message));
                self.run.status = RunStatus::Running;
                events.push(event(&self.run, "DeploymentStatusChanged", "approved", json!({ "status": "Running" })));
                self.run.checkpoint = self.first_step(Environment::Development);
            }
            ApprovalStatus::Rejected | ApprovalStatus::Expired => {
                let message = if record.status == ApprovalStatus::Rejected {
                    format!("Rejected by {by}{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })
                } else {
                    // The approval's own deadline: the configured timeout may
                    // have changed since it was requested (a restart with
                    // other settings).
                    let allowed = (record.timeout_at - record.requested_at).to_std().unwrap_or_default();
                    let waited = humantime::format_duration(Duration::from_millis(allowed.as_millis() as u64));
                    format!("Approval request expired after {waited} without a decision")
                };
                events.extend(finish_stage(&mut self.run, APPROVAL_STAGE, StageStatus::Failed, message.clone()));
                events.push(finish_run(&mut self.run, RunStatus::Failed, message));
                self.run.checkpoint = Checkpoint::Done;
            }
            ApprovalStatus::Pending => unreachable!("checked above"),
        }
        self.save_checkpoint(events, ctx);
    }

    /// An abort while the run waits: the pending approval is closed, so that
    /// nobody is asked to decide on a run that no longer exists. The approval
    /// keeps the original's statuses (it reads Rejected, with the abort as its
    /// reason); its audit entry says what happened: `ApprovalClosed`, by
    /// whoever aborted the run.
    /// Who aborted the run waiting at its gate, and the reason its closed
    /// approval gives: the same in the store and in the live event.
    pub(super) fn abort_closing(&self) -> (AuditActor, String) {
        let by = self.run.intent.aborted_by.clone().unwrap_or_else(AuditActor::system);
        let reason = format!("the deployment was aborted by {}", by.name);
        (by, reason)
    }

    pub(super) fn close_approval(&mut self, approval_id: Uuid, ctx: &mut Ctx) {
        if let Some(handle) = self.approval_poll.take() {
            ctx.cancel_future(handle);
        }
        let store = self.deps.store.clone();
        let directory = self.deps.approvals.directory.clone();
        let tenant = self.run.tenant_id;
        let execution_id = self.run.execution_id;
        let (aborted_by, reason) = self.abort_closing();
        let close = async move {
            let decision = ApprovalDecision {
                status: ApprovalStatus::Rejected,
                at: Utc::now(),
                by_id: None,
                by_email: None,
                reason: Some(reason.clone()),
            };
            let details = json!({ "reason": reason, "abortedBy": aborted_by.name });
            let audit = approval_outcome_entry(tenant, aborted_by, APPROVAL_CLOSED, execution_id, approval_id, details)
                .message(format!("approval of deployment {execution_id} closed: {reason}"));
            if let Err(e) = store.decide_approval(tenant, approval_id, &decision, &audit).await {
                tracing::warn!(%approval_id, error = %e, "could not close the approval of an aborted run");
            }
            if let Some(actor) = directory.get(approval_id) {
                actor.do_send(crate::approval::StopApproval);
            }
        };
        ctx.spawn(close.into_actor(self));
    }
}
