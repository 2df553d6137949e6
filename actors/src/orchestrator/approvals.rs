//! Reading approvals and deciding them on a user's behalf.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::Orchestrator;
use crate::approval::{decide_directly, expire_overdue, Decide};
use crate::domain::audit_entries::approval_outcome_entry;
use crate::domain::{ApprovalDecision, ApprovalRecord, ApprovalStatus, AuditActor, DecisionOutcome, TenantId};
use crate::error::CoreError;

/// The user deciding, as their verified token says.
#[derive(Debug, Clone)]
pub struct Decider {
    pub user_id: Uuid,
    pub email: String,
    pub actor: AuditActor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

impl Orchestrator {
    /// Another instance stored news for `execution_id`: when this instance
    /// drives the run, it looks for relayed verbs now, and when the run's
    /// approval is settled, the coordinator hears it now.
    pub(super) async fn woken(&self, execution_id: Uuid) {
        let Some(addr) = self.inner.runs.get(execution_id) else { return };
        // The news may be a relayed verb.
        self.inner.relay_wake.notify_one();
        let Ok(run) = addr.send(crate::coordinator::GetRun).await else { return };
        match self.inner.store.approval_for_run(run.tenant_id, execution_id).await {
            Ok(Some(record)) if record.status != ApprovalStatus::Pending => {
                addr.do_send(crate::approval::ApprovalSettled(record));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(run = %execution_id, error = %e, "woken, but the approval is unreadable; polling finds it")
            }
        }
    }

    /// The tenant's pending approvals, oldest first.
    pub async fn pending_approvals(&self, tenant: TenantId) -> Result<Vec<ApprovalRecord>, CoreError> {
        Ok(self.inner.store.pending_approvals(tenant).await?)
    }

    /// The newest approval of a run.
    pub async fn approval_of_run(&self, tenant: TenantId, execution_id: Uuid) -> Result<ApprovalRecord, CoreError> {
        self.inner.store.approval_for_run(tenant, execution_id).await?.ok_or_else(|| not_found(execution_id))
    }

    /// Approves or rejects the pending approval of a run. Exactly one
    /// decision wins; the others, and any decision after the deadline, get
    /// `ApprovalClosed` with the approval's status.
    pub async fn decide_approval(
        &self,
        tenant: TenantId,
        execution_id: Uuid,
        verdict: Verdict,
        reason: Option<String>,
        decider: &Decider,
    ) -> Result<ApprovalRecord, CoreError> {
        let record = self.approval_of_run(tenant, execution_id).await?;
        if record.status != ApprovalStatus::Pending {
            return Err(closed(&record));
        }
        let settings = &self.inner.settings.approvals;
        let own =
            record.requester_id == Some(decider.user_id) || record.requester_email.eq_ignore_ascii_case(&decider.email);
        if own && !settings.allow_self_approval {
            return Err(CoreError::Forbidden(
                "You requested this deployment and cannot decide its approval yourself (approvals.allow_self_approval is off); ask another administrator".into(),
            ));
        }
        let deps = &self.inner.approvals;
        if record.overdue(Utc::now()) {
            // The timer is about to fire; the deadline wins over a late decision.
            return match expire_overdue(deps, &record).await? {
                DecisionOutcome::Decided(r) | DecisionOutcome::AlreadyDecided(r) => Err(closed(&r)),
                DecisionOutcome::NotFound => Err(not_found(execution_id)),
            };
        }
        let status = match verdict {
            Verdict::Approve => ApprovalStatus::Approved,
            Verdict::Reject => ApprovalStatus::Rejected,
        };
        let decision = ApprovalDecision {
            status,
            at: Utc::now(),
            by_id: Some(decider.user_id),
            by_email: Some(decider.email.clone()),
            reason: reason.clone(),
        };
        let audit = approval_outcome_entry(
            tenant,
            decider.actor.clone(),
            status.event_type(),
            execution_id,
            record.approval_id,
            json!({ "reason": reason }),
        )
        .message(format!(
            "{} {} deployment {execution_id} ({} {} to {})",
            decider.email,
            if status == ApprovalStatus::Approved { "approved" } else { "rejected" },
            record.module_name,
            record.version,
            record.target_environment
        ));
        let outcome = match deps.directory.get(record.approval_id) {
            Some(actor) => {
                let sent = Decide { decision: decision.clone(), audit: audit.clone() };
                match actor.send(sent).timeout(Duration::from_secs(5)).await {
                    Ok(outcome) => outcome?,
                    // The actor stopped (another decision won a moment ago) or
                    // is stuck: the store alone still lets one decision win.
                    Err(_) => decide_directly(deps, &record, decision, audit).await?,
                }
            }
            None => decide_directly(deps, &record, decision, audit).await?,
        };
        if let DecisionOutcome::Decided(r) = &outcome {
            // The run's owner may be another instance: tell it at once.
            if self.inner.runs.get(execution_id).is_none() {
                self.inner.hooks.wake_up.notify(r.execution_id);
            }
        }
        match outcome {
            DecisionOutcome::Decided(r) => Ok(r),
            DecisionOutcome::AlreadyDecided(r) => Err(closed(&r)),
            DecisionOutcome::NotFound => Err(not_found(execution_id)),
        }
    }
}

fn not_found(execution_id: Uuid) -> CoreError {
    CoreError::NotFound(format!("Approval request not found for deployment {execution_id}"))
}

fn closed(record: &ApprovalRecord) -> CoreError {
    let message = match record.status {
        ApprovalStatus::Expired => "The approval request has expired".to_string(),
        status => format!(
            "The approval request was already decided: {}{}",
            status.as_str(),
            record.decided_by_email.as_deref().map(|e| format!(" by {e}")).unwrap_or_default()
        ),
    };
    CoreError::ApprovalClosed { message, status: record.status }
}
