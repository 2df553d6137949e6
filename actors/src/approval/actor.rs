use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use parking_lot::Mutex;
use serde_json::json;
use uuid::Uuid;

use crate::domain::audit_entries::approval_outcome_entry;
use crate::domain::{
    ApprovalDecision, ApprovalRecord, ApprovalStatus, AuditActor, AuditResult, DecisionOutcome, NewAuditEntry, TenantId,
};
use crate::error::CoreError;
use crate::store::{SharedStore, StoreError};
use crate::supervision::{ActorKind, ChildControl, ChildSpec, ExitGuard, StartChild, Supervisor};

/// The approval of a run's gate is settled (decided or expired); sent to the
/// run's coordinator.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApprovalSettled(pub ApprovalRecord);

/// Finds the coordinator of a run, when it lives in this process, to tell it
/// that its approval is settled. The coordinators implement it, so that
/// approvals need not know them.
pub trait SettledListeners: Send + Sync {
    fn listener(&self, execution_id: Uuid) -> Option<Recipient<ApprovalSettled>>;
}

/// What every approval actor needs.
pub struct ApprovalDeps {
    pub store: SharedStore,
    pub runs: Arc<dyn SettledListeners>,
    pub supervisor: Addr<Supervisor>,
    pub directory: Arc<ApprovalDirectory>,
}

/// The approval actors of this process, by approval. An entry without an
/// address is one whose actor is starting.
#[derive(Default)]
pub struct ApprovalDirectory {
    live: Mutex<HashMap<Uuid, Option<Addr<ApprovalActor>>>>,
}

impl ApprovalDirectory {
    pub fn get(&self, approval_id: Uuid) -> Option<Addr<ApprovalActor>> {
        self.live.lock().get(&approval_id).cloned().flatten().filter(|a| a.connected())
    }

    /// Claims the approval for a new actor; false when one already has it.
    fn claim(&self, approval_id: Uuid) -> bool {
        let mut live = self.live.lock();
        if live.contains_key(&approval_id) {
            return false;
        }
        live.insert(approval_id, None);
        true
    }

    fn set(&self, approval_id: Uuid, addr: Addr<ApprovalActor>) {
        self.live.lock().insert(approval_id, Some(addr));
    }

    fn release(&self, approval_id: Uuid) {
        self.live.lock().remove(&approval_id);
    }
}

/// Starts the actor of a pending approval under the approvals supervisor,
/// unless this process already has one.
pub fn spawn_approval(deps: Arc<ApprovalDeps>, tenant: TenantId, approval_id: Uuid, execution_id: Uuid) {
    if !deps.directory.claim(approval_id) {
        return;
    }
    let start_deps = deps.clone();
    let start = Arc::new(move |guard: ExitGuard| {
        let actor = ApprovalActor { deps: start_deps.clone(), tenant, approval_id, execution_id, _guard: guard };
        let addr = actor.start();
        start_deps.directory.set(approval_id, addr);
    });
    let escalate_deps = deps.clone();
    let on_escalate = Arc::new(move |reason: String| {
        // Without its actor nobody would expire the approval: expire it now,
        // so that the run does not wait for ever.
        let deps = escalate_deps.clone();
        actix::spawn(async move {
            let reason = format!("the approval's actor kept crashing ({reason})");
            let outcome = expire(&deps, tenant, approval_id, execution_id, reason).await;
            settle(&deps, outcome);
            deps.directory.release(approval_id);
        });
    });
    let control = Arc::new(ApprovalControl { directory: deps.directory.clone(), approval_id });
    deps.supervisor.do_send(StartChild(ChildSpec {
        id: format!("approval:{approval_id}"),
        kind: ActorKind::Approval,
        tenant: Some(tenant),
        start,
        on_escalate: Some(on_escalate),
        control: Some(control),
    }));
}

struct ApprovalControl {
    directory: Arc<ApprovalDirectory>,
    approval_id: Uuid,
}

impl ChildControl for ApprovalControl {
    fn stop(&self) -> bool {
        match self.directory.get(self.approval_id) {
            Some(addr) => {
                addr.do_send(StopApproval);
                true
            }
            None => false,
        }
    }
}

pub struct ApprovalActor {
    deps: Arc<ApprovalDeps>,
    tenant: TenantId,
    approval_id: Uuid,
    execution_id: Uuid,
    _guard: ExitGuard,
}

impl Actor for ApprovalActor {
    type Context = Context<Self>;

    /// Reads the approval and arms its timer from the stored deadline, so
    /// that a restarted actor (or process) keeps the original deadline. An
    /// approval already past it is expired at once.
    fn started(&mut self, ctx: &mut Self::Context) {
        let store = self.deps.store.clone();
        let (tenant, id) = (self.tenant, self.approval_id);
        let load = async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                match store.get_approval(tenant, id).await {
                    Err(StoreError::Unavailable(e)) => {
                        tracing::warn!(approval = %id, error = %e, "cannot load approval; retrying");
                        actix::clock::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                    other => return other,
                }
            }
        };
        ctx.wait(load.into_actor(self).map(|loaded, act, ctx| match loaded {
            Ok(Some(record)) if record.status == ApprovalStatus::Pending => {
                let left = (record.timeout_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                tracing::info!(approval = %act.approval_id, run = %act.execution_id, ?left, "approval waits for a decision");
                ctx.run_later(left, |act, ctx| act.expire_now(ctx));
            }
            Ok(Some(record)) => {
                // Decided elsewhere while no actor watched: pass it on.
                settle(&act.deps, Ok(DecisionOutcome::AlreadyDecided(record)));
                ctx.stop();
            }
            Ok(None) => {
                tracing::error!(approval = %act.approval_id, "approval vanished from the store");
                ctx.stop();
            }
            Err(e) => {
                tracing::error!(approval = %act.approval_id, error = %e, "cannot load approval");
                ctx.stop();
            }
        }));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.deps.directory.release(self.approval_id);
    }
}

impl ApprovalActor {
    fn expire_now(&mut self, ctx: &mut Context<Self>) {
        let deps = self.deps.clone();
        let (tenant, id, run) = (self.tenant, self.approval_id, self.execution_id);
        let fut = async move { expire(&deps, tenant, id, run, "no decision before the deadline".into()).await };
        ctx.wait(fut.into_actor(self).map(|outcome, act, ctx| {
            if matches!(outcome, Err(StoreError::Unavailable(_))) {
                // Try again shortly: the deadline has passed, so it must expire.
                ctx.run_later(Duration::from_millis(500), |act, ctx| act.expire_now(ctx));
                return;
            }
            settle(&act.deps, outcome);
            ctx.stop();
        }));
    }
}

async fn expire(
    deps: &ApprovalDeps,
    tenant: TenantId,
    approval_id: Uuid,
    execution_id: Uuid,
    why: String,
) -> Result<DecisionOutcome, StoreError> {
    let decision = ApprovalDecision {
        status: ApprovalStatus::Expired,
        at: Utc::now(),
        by_id: None,
        by_email: None,
        reason: Some(why.clone()),
    };
    let audit = approval_outcome_entry(
        tenant,
        AuditActor::system(),
        ApprovalStatus::Expired.event_type(),
        execution_id,
        approval_id,
        json!({}),
    )
    .result(AuditResult::Denied)
    .message(format!("approval of deployment {execution_id} expired: {why}"));
    deps.store.decide_approval(tenant, approval_id, &decision, &audit).await
}

/// Tells the run's coordinator, if it lives here, that its approval is settled.
fn settle(deps: &ApprovalDeps, outcome: Result<DecisionOutcome, StoreError>) {
    let record = match outcome {
        Ok(DecisionOutcome::Decided(r) | DecisionOutcome::AlreadyDecided(r)) => r,
        Ok(DecisionOutcome::NotFound) => return,
        Err(e) => {
            tracing::error!(error = %e, "could not record the approval's expiry");
            return;
        }
    };
    if let Some(coordinator) = deps.runs.listener(record.execution_id) {
        coordinator.do_send(ApprovalSettled(record));
    }
}

/// A decision taken through the API of this process.
#[derive(Message)]
#[rtype(result = "Result<DecisionOutcome, CoreError>")]
pub struct Decide {
    pub decision: ApprovalDecision,
    pub audit: NewAuditEntry,
}

impl Handler<Decide> for ApprovalActor {
    type Result = ResponseActFuture<Self, Result<DecisionOutcome, CoreError>>;

    fn handle(&mut self, msg: Decide, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.deps.store.clone();
        let (tenant, id) = (self.tenant, self.approval_id);
        let fut = async move { store.decide_approval(tenant, id, &msg.decision, &msg.audit).await };
        Box::pin(fut.into_actor(self).map(|outcome, act, ctx| {
            let outcome = outcome.map_err(CoreError::from)?;
            if let DecisionOutcome::Decided(record) | DecisionOutcome::AlreadyDecided(record) = &outcome {
                settle(&act.deps, Ok(DecisionOutcome::Decided(record.clone())));
                ctx.stop();
            }
            Ok(outcome)
        }))
    }
}

/// Expires an overdue approval on the spot (a decision arrived after its
/// deadline, before its timer fired) and tells the run.
pub(crate) async fn expire_overdue(deps: &ApprovalDeps, record: &ApprovalRecord) -> Result<DecisionOutcome, CoreError> {
    let why = "no decision before the deadline".to_string();
    let outcome = expire(deps, record.tenant_id, record.approval_id, record.execution_id, why).await?;
    settle(deps, Ok(outcome.clone()));
    Ok(outcome)
}

/// Decides a pending approval without an actor (none lives in this process):
/// the store still lets exactly one decision win.
pub(crate) async fn decide_directly(
    deps: &ApprovalDeps,
    record: &ApprovalRecord,
    decision: ApprovalDecision,
    audit: NewAuditEntry,
) -> Result<DecisionOutcome, CoreError> {
    let outcome = deps.store.decide_approval(record.tenant_id, record.approval_id, &decision, &audit).await?;
    settle(deps, Ok(outcome.clone()));
    Ok(outcome)
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StopApproval;

impl Handler<StopApproval> for ApprovalActor {
    type Result = ();
    fn handle(&mut self, _: StopApproval, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
