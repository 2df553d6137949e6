//! One actor per live tenant. Admissions and lifecycle commands are handled
//! one at a time (atomic responses), so a count read from the store and the
//! insert it allows cannot interleave with another request of the tenant.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::admission::{check_admission, start_of_day};
use super::lifecycle::{apply, TenantCommand};
use super::{Clusters, OnSuspend, TenantSettings};
use crate::coordinator::{RunDirectory, Steer, Verb};
use crate::domain::{
    AuditActor, AuditCategory, AuditResult, NewAuditEntry, RunRecord, RunStatus, TenantId, TenantRecord, TenantStatus,
    DEFAULT_TENANT,
};
use crate::error::CoreError;
use crate::store::{Admission, RunCounts, RunEvent, RunFilter, SharedStore, StoreError};
use crate::supervision::{ActorKind, ChildControl, ChildSpec, ExitGuard, StartChild, Supervisor};

/// What every tenant actor needs.
pub struct TenantDeps {
    pub store: SharedStore,
    pub directory: Arc<TenantDirectory>,
    pub supervisor: Addr<Supervisor>,
    pub clusters: Clusters,
    pub runs: Arc<RunDirectory>,
    pub settings: TenantSettings,
    /// Whether tenants get simulated clusters.
    pub simulation: bool,
}

/// The live tenant actors, and the last record each of them saved (for
/// quick status checks on every verb).
#[derive(Default)]
pub struct TenantDirectory {
    live: RwLock<HashMap<TenantId, Addr<TenantActor>>>,
    records: RwLock<HashMap<TenantId, TenantRecord>>,
}

impl TenantDirectory {
    pub fn get(&self, tenant: TenantId) -> Option<Addr<TenantActor>> {
        self.live.read().get(&tenant).filter(|a| a.connected()).cloned()
    }

    /// Whether an actor of the tenant was started on this instance, running
    /// or not (restarting, or stopped once the tenant was deleted).
    pub fn known(&self, tenant: TenantId) -> bool {
        self.live.read().contains_key(&tenant)
    }

    /// The tenant's status as its actor last saved it.
    pub fn status(&self, tenant: TenantId) -> Option<TenantStatus> {
        self.records.read().get(&tenant).map(|t| t.status)
    }

    fn publish(&self, record: &TenantRecord) {
        self.records.write().insert(record.tenant_id, record.clone());
    }
}

pub struct TenantActor {
    record: TenantRecord,
    deps: Arc<TenantDeps>,
    /// Admissions waiting for the next batch.
    waiting: Vec<Waiting>,
    /// Whether a `FlushAdmissions` is on its way.
    flush_queued: bool,
    _guard: ExitGuard,
}

/// Registers a tenant's actor with the tenants supervisor. The first
/// incarnation starts from `record` at once (so that the caller can wait for
/// it); every later one reloads the tenant from the store.
pub(super) fn spawn_tenant(deps: Arc<TenantDeps>, record: TenantRecord) {
    let tenant = record.tenant_id;
    let first = Arc::new(Mutex::new(Some(record)));
    let start_deps = deps.clone();
    let start = Arc::new(move |guard: ExitGuard| {
        let deps = start_deps.clone();
        if let Some(record) = first.lock().take() {
            let addr = TenantActor::new(record, deps.clone(), guard).start();
            deps.directory.live.write().insert(tenant, addr);
            return;
        }
        actix::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            let record = loop {
                match deps.store.get_tenant(tenant).await {
                    Ok(Some(record)) => break record,
                    Ok(None) => {
                        tracing::error!(%tenant, "tenant vanished from the store; its actor stops");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(%tenant, error = %e, "cannot load tenant; retrying");
                        actix::clock::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            };
            let addr = TenantActor::new(record, deps.clone(), guard).start();
            deps.directory.live.write().insert(tenant, addr);
        });
    });
    let control = Arc::new(TenantControl { directory: deps.directory.clone(), tenant });
    deps.supervisor.do_send(StartChild(ChildSpec {
        id: format!("tenant:{tenant}"),
        kind: ActorKind::Tenant,
        tenant: Some(tenant),
        start,
        on_escalate: None,
        control: Some(control),
    }));
}

struct TenantControl {
    directory: Arc<TenantDirectory>,
    tenant: TenantId,
}

impl ChildControl for TenantControl {
    fn stop(&self) -> bool {
        match self.directory.get(self.tenant) {
            Some(addr) => {
                addr.do_send(StopTenant);
                true
            }
            None => false,
        }
    }
}

/// A tenant-management audit entry by `actor` about `record`.
fn entry(record: &TenantRecord, actor: &AuditActor, event_type: &str, message: String) -> NewAuditEntry {
    NewAuditEntry::new(record.tenant_id, actor.clone(), AuditCategory::TenantManagement, event_type)
        .resource("Tenant", record.tenant_id)
        .message(message)
        .details(serde_json::json!({
            "status": record.status.as_str(),
            "tier": record.tier.as_str(),
            "revision": record.revision,
        }))
}

/// The trails a tenant-management entry is written to: the tenant's own,
/// where its Admins read what was done to it, and, for every tenant but the
/// system one, the system tenant's, where the platform's Admins who create,
/// suspend and delete tenants read each tenant's lifecycle in one place.
pub(super) fn in_both_trails(entry: NewAuditEntry) -> Vec<NewAuditEntry> {
    if entry.tenant_id == DEFAULT_TENANT {
        return vec![entry];
    }
    let platform = NewAuditEntry { tenant_id: DEFAULT_TENANT, ..entry.clone() };
    vec![entry, platform]
}

/// Saves a record with its entry in both trails; a stale write means another
/// replica changed the tenant.
async fn save(store: &SharedStore, record: &TenantRecord, audit: NewAuditEntry) -> Result<(), CoreError> {
    store.save_tenant(record, &in_both_trails(audit)).await.map_err(|e| match e {
        StoreError::Stale(_) => CoreError::Refused("the tenant changed while the request ran; try again".into()),
        other => other.into(),
    })
}

impl Actor for TenantActor {
    type Context = Context<Self>;

    /// Brings the tenant to what its status says (clusters up, a half-done
    /// provisioning or deletion finished) before any request is handled.
    fn started(&mut self, ctx: &mut Self::Context) {
        self.deps.directory.publish(&self.record);
        // What another instance changed reaches this one with a signal
        // (`Tenants::refresh`, over Redis); this is the net under it.
        let every = self.deps.settings.refresh_interval;
        if !every.is_zero() {
            ctx.run_interval(every, |_act, ctx| ctx.notify(RefreshTenant));
        }
        let deps = self.deps.clone();
        let record = self.record.clone();
        let settle = async move {
            let system = AuditActor::system();
            match record.status {
                TenantStatus::Provisioning => {
                    let mut next = record.clone();
                    next.revision += 1;
                    next.updated_at = super::now();
                    let (status, event, message) = match provision(&deps, &record).await {
                        Ok(()) => (TenantStatus::Active, "TenantProvisioned", "clusters provisioned".to_string()),
                        Err(e) => (TenantStatus::Deleted, "TenantProvisioningFailed", e.to_string()),
                    };
                    next.status = status;
                    if status == TenantStatus::Deleted {
                        next.deleted_at = Some(next.updated_at);
                        deps.clusters.deprovision(record.tenant_id);
                    }
                    let mut audit = entry(&next, &system, event, message);
                    if status == TenantStatus::Deleted {
                        audit = audit.result(AuditResult::Failure);
                    }
                    save(&deps.store, &next, audit).await.map(|()| next)
                }
                TenantStatus::Deprovisioning => finish_deletion(&deps, &record).await,
                TenantStatus::Active | TenantStatus::Suspended => provision(&deps, &record).await.map(|()| record),
                TenantStatus::Deleted => Ok(record),
            }
        };
        ctx.wait(settle.into_actor(self).map(|settled, act, ctx| match settled {
            Ok(record) => {
                act.adopt(record);
                if act.record.status == TenantStatus::Deleted {
                    ctx.stop();
                }
            }
            // Panicking hands the retry to the supervisor's restart intensity.
            Err(e) => panic!("tenant {} could not settle: {e}", act.record.tenant_id),
        }));
    }
}

async fn provision(deps: &TenantDeps, record: &TenantRecord) -> Result<(), CoreError> {
    if deps.simulation {
        deps.clusters.provision(record.tenant_id, &record.quota).await?;
    }
    Ok(())
}

/// Deprovisioning → Deleted: the clusters go, the record stays.
async fn finish_deletion(deps: &TenantDeps, record: &TenantRecord) -> Result<TenantRecord, CoreError> {
    deps.clusters.deprovision(record.tenant_id);
    let mut next = record.clone();
    next.status = TenantStatus::Deleted;
    next.deleted_at = Some(super::now());
    next.updated_at = super::now();
    next.revision += 1;
    let audit = entry(&next, &AuditActor::system(), "TenantDeprovisioned", "clusters removed".into());
    save(&deps.store, &next, audit).await?;
    Ok(next)
}

impl TenantActor {
    fn new(record: TenantRecord, deps: Arc<TenantDeps>, guard: ExitGuard) -> Self {
        TenantActor { record, deps, waiting: Vec::new(), flush_queued: false, _guard: guard }
    }

    fn adopt(&mut self, record: TenantRecord) {
        self.deps.directory.publish(&record);
        self.record = record;
    }

    /// Takes a newer record another instance stored; a tenant deleted there
    /// loses its clusters and its actor here too.
    fn follow(&mut self, record: TenantRecord, ctx: &mut Context<Self>) {
        if record.revision <= self.record.revision {
            return;
        }
        self.adopt(record);
        if self.record.status == TenantStatus::Deleted {
            self.deps.clusters.deprovision(self.record.tenant_id);
            ctx.stop();
        }
    }
}

/// The tenant as its actor holds it (settled: provisioning is over).
#[derive(Message)]
#[rtype(result = "TenantRecord")]
pub struct GetTenant;

impl Handler<GetTenant> for TenantActor {
    type Result = MessageResult<GetTenant>;

    fn handle(&mut self, _: GetTenant, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.record.clone())
    }
}

/// Stores a new run if the tenant is active and the run fits its quotas.
#[derive(Message)]
#[rtype(result = "Result<(), CoreError>")]
pub struct AdmitRun {
    pub run: RunRecord,
    pub events: Vec<RunEvent>,
    pub actor: AuditActor,
    /// The span the run is created in; the store write happens inside it.
    pub span: tracing::Span,
}

/// An admission waiting for the next batch, with where its answer goes.
struct Waiting {
    msg: AdmitRun,
    answer: oneshot::Sender<Result<(), CoreError>>,
}

/// Group admission. Each `AdmitRun` joins the queue and is answered when
/// its batch is stored; one batch is written at a time, with every
/// admission that arrived while the previous one was being written (one
/// transaction, one commit, for many creates). Batches are handled as
/// atomically as lifecycle commands, so counting and inserting still never
/// interleave with another request of the tenant, and a run is answered
/// only once it is committed.
impl Handler<AdmitRun> for TenantActor {
    type Result = ResponseFuture<Result<(), CoreError>>;

    fn handle(&mut self, msg: AdmitRun, ctx: &mut Self::Context) -> Self::Result {
        let (answer, answered) = oneshot::channel();
        self.waiting.push(Waiting { msg, answer });
        if !self.flush_queued {
            // Runs after the mailbox is drained: the batch takes every admission already queued.
            self.flush_queued = true;
            ctx.notify(FlushAdmissions);
        }
        Box::pin(async move {
            answered
                .await
                .unwrap_or_else(|_| Err(CoreError::Unavailable("the tenant's actor stopped; try again".into())))
        })
    }
}

/// Creates per batch at most: one transaction stays short, and its
/// multi-row inserts well under PostgreSQL's 65,535 bind parameters.
const MAX_ADMISSION_BATCH: usize = 500;

/// Writes the admissions waiting (see [`AdmitRun`]).
#[derive(Message)]
#[rtype(result = "()")]
struct FlushAdmissions;

impl Handler<FlushAdmissions> for TenantActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: FlushAdmissions, ctx: &mut Self::Context) -> Self::Result {
        let take = self.waiting.len().min(MAX_ADMISSION_BATCH);
        let batch: Vec<Waiting> = self.waiting.drain(..take).collect();
        // What is left goes in the next batch, after this one.
        self.flush_queued = !self.waiting.is_empty();
        if self.flush_queued {
            ctx.notify(FlushAdmissions);
        }
        let record = self.record.clone();
        let store = self.deps.store.clone();
        let work = async move {
            // Admitted against the tenant as stored, not as this actor last
            // saw it: another instance may have suspended it or changed its tier.
            let record = match stored(&store, record).await {
                Ok(record) => record,
                Err(e) => {
                    for w in batch {
                        let _ = w.answer.send(Err(e.clone().into()));
                    }
                    return None;
                }
            };
            admit_batch(store, record.clone(), batch).await;
            Some(record)
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(|record, act, ctx| {
            if let Some(record) = record {
                act.follow(record, ctx);
            }
        })))
    }
}

/// The tenant as stored now, or `known` where the store holds no newer
/// revision. Each instance has an actor for the tenant and only one of them
/// applies a change, so the others learn of it here, from the store.
async fn stored(store: &SharedStore, known: TenantRecord) -> Result<TenantRecord, StoreError> {
    Ok(match store.get_tenant(known.tenant_id).await? {
        Some(stored) if stored.revision > known.revision => stored,
        _ => known,
    })
}

/// Stores a batch of one tenant's new runs and answers each.
async fn admit_batch(store: SharedStore, record: TenantRecord, batch: Vec<Waiting>) {
    if batch.is_empty() {
        return;
    }
    if record.status != TenantStatus::Active {
        for w in batch {
            let _ = w.answer.send(Err(CoreError::Forbidden(format!(
                "Tenant {} is {}; runs cannot start",
                record.tenant_id, record.status
            ))));
        }
        return;
    }
    let quota = record.quota;
    let check = move |counts: &RunCounts| check_admission(&quota, counts);
    let since = start_of_day(super::now());
    let admissions: Vec<Admission> =
        batch.iter().map(|w| Admission { run: &w.msg.run, events: &w.msg.events }).collect();
    // The first run's span: a batch is one write, traced once.
    let span = batch[0].msg.span.clone();
    let results = store.admit_runs(&admissions, since, &check).instrument(span).await;
    drop(admissions);
    let mut refusals = Vec::new();
    let mut answers = Vec::with_capacity(batch.len());
    for (w, result) in batch.into_iter().zip(results) {
        let answer = match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(over)) => {
                refusals.push(
                    entry(&record, &w.msg.actor, "RunRefusedByQuota", over.to_string())
                        .result(AuditResult::Denied)
                        .details(serde_json::json!({
                            "quota": over.quota.as_str(),
                            "limit": over.limit,
                            "current": over.current,
                            "module": w.msg.run.request.module_name,
                            "version": w.msg.run.request.version,
                        })),
                );
                Err(CoreError::Quota(over))
            }
            Err(e) => Err(e.into()),
        };
        answers.push((w.answer, answer));
    }
    if !refusals.is_empty() {
        if let Err(e) = store.append_audit(&refusals).await {
            tracing::warn!(error = %e, "could not audit a quota refusal");
        }
    }
    for (tx, answer) in answers {
        // A caller that gave up waiting is no longer listening.
        let _ = tx.send(answer);
    }
}

/// An operator's command, with who gave it.
#[derive(Message)]
#[rtype(result = "Result<TenantRecord, CoreError>")]
pub struct ApplyCommand {
    pub command: TenantCommand,
    pub actor: AuditActor,
}

impl Handler<ApplyCommand> for TenantActor {
    type Result = AtomicResponse<Self, Result<TenantRecord, CoreError>>;

    fn handle(&mut self, msg: ApplyCommand, _ctx: &mut Self::Context) -> Self::Result {
        let known = self.record.clone();
        let deps = self.deps.clone();
        let work = async move {
            // From the stored record: another instance may have changed the
            // tenant since this actor last saw it (its write would be refused
            // as stale, and the lifecycle checked against a former status).
            let current = stored(&deps.store, known).await?;
            let mut next = apply(&current, &msg.command, super::now())?;
            let tenant = current.tenant_id;
            match &msg.command {
                TenantCommand::Delete => {
                    let active = deps.store.run_counts(tenant, super::now(), "").await?.active;
                    if active > 0 {
                        return Err(CoreError::Refused(format!(
                            "Tenant {tenant} has {active} active runs; abort them (as an Admin of the system tenant \
                             acting for it, which works while it is suspended: POST /api/v1/deployments/{{id}}/abort \
                             with X-Tenant-Id: {tenant}, or hotswap --tenant {tenant} abort ID) or let them finish \
                             before deleting it"
                        )));
                    }
                }
                TenantCommand::Suspend { .. } if deps.settings.on_suspend == OnSuspend::Pause => {
                    next.paused_runs = pause_runs(&deps, tenant).await?;
                }
                _ => {}
            }
            let message = match &msg.command {
                TenantCommand::ChangeTier(tier) => format!("tier {} → {tier}", current.tier),
                TenantCommand::Suspend { .. } => format!("{} runs paused", next.paused_runs.len()),
                _ => String::new(),
            };
            let resume = match msg.command {
                TenantCommand::Activate => std::mem::take(&mut next.paused_runs),
                _ => Vec::new(),
            };
            let audit = entry(&next, &msg.actor, msg.command.event_type(), message);
            save(&deps.store, &next, audit).await?;
            for id in resume {
                if let Some(addr) = deps.runs.get(id) {
                    // A run that ended meanwhile, or was resumed by hand, refuses; that is fine.
                    let _ = addr.send(Steer { verb: Verb::Resume, actor: AuditActor::system() }).await;
                }
            }
            if next.status == TenantStatus::Deprovisioning {
                next = finish_deletion(&deps, &next).await?;
            }
            Ok(next)
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(|result, act, ctx| {
            if let Ok(record) = &result {
                act.adopt(record.clone());
                if record.status == TenantStatus::Deleted {
                    ctx.stop();
                }
            }
            result
        })))
    }
}

/// Pauses the tenant's running runs; answers those it paused.
async fn pause_runs(deps: &TenantDeps, tenant: TenantId) -> Result<Vec<uuid::Uuid>, CoreError> {
    let filter = RunFilter { status: Some(RunStatus::Running), page: 1, page_size: 10_000, ..RunFilter::default() };
    let running = deps.store.list_runs(tenant, &filter).await?;
    let mut paused = Vec::new();
    for run in running.items {
        if let Some(addr) = deps.runs.get(run.execution_id) {
            if let Ok(Ok(_)) = addr.send(Steer { verb: Verb::Pause, actor: AuditActor::system() }).await {
                paused.push(run.execution_id);
            }
        }
    }
    Ok(paused)
}

/// Reads the tenant as stored and takes it if another instance changed it
/// (a suspension, a tier change, a deletion): this instance's quick status
/// checks (agent sessions, `Tenants::ensure_active`) then see it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RefreshTenant;

impl Handler<RefreshTenant> for TenantActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: RefreshTenant, _ctx: &mut Self::Context) -> Self::Result {
        let (store, known) = (self.deps.store.clone(), self.record.clone());
        let tenant = known.tenant_id;
        let read = async move { stored(&store, known).await };
        AtomicResponse::new(Box::pin(read.into_actor(self).map(move |read, act, ctx| match read {
            Ok(record) => act.follow(record, ctx),
            // The next refresh, or the next admission, reads it again.
            Err(e) => tracing::debug!(%tenant, error = %e, "cannot read the tenant to refresh it"),
        })))
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StopTenant;

impl Handler<StopTenant> for TenantActor {
    type Result = ();

    fn handle(&mut self, _: StopTenant, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Makes the actor panic, to exercise its supervision.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CrashTenant;

impl Handler<CrashTenant> for TenantActor {
    type Result = ();

    fn handle(&mut self, _: CrashTenant, _ctx: &mut Self::Context) {
        panic!("tenant {} crashed on request", self.record.tenant_id);
    }
}
