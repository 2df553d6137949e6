use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::control::StopCoordinator;
use super::directory::RunDirectory;
use super::report::report;
use super::stages::event;
use super::Checkpoint;
use crate::approval::ApprovalDeps;
use crate::audit::{actor_data, ACTOR_KEY};
use crate::domain::ApprovalRecord;
use crate::domain::AuditActor;
use crate::domain::{
    deploy_stage_name, RunRecord, RunStatus, TenantId, APPROVAL_STAGE, SECURITY_SCAN_STAGE, VALIDATION_STAGE,
};
use crate::error::CoreError;
use crate::events::{BusStats, EventBus};
use crate::hooks::CoreHooks;
use crate::node::{ClusterDirectory, StepInterrupt};
use crate::settings::{ApprovalSettings, PipelineSettings};
use crate::simulation::FaultPlan;
use crate::store::{within, RunEvent, SharedStore, StoreError};
use crate::supervision::{ActorKind, ActorThreads, ChildControl, ChildSpec, ExitGuard, StartChild, Supervisor};

/// What every coordinator needs, shared by all of them.
pub struct CoordinatorDeps {
    pub store: SharedStore,
    pub clusters: Arc<ClusterDirectory>,
    pub pipeline: PipelineSettings,
    /// Fault knobs in metadata are honoured only while simulation is enabled.
    pub simulation: bool,
    pub heartbeat_timeout: Duration,
    /// Deadline of each store call the coordinator makes.
    pub store_deadline: Duration,
    pub runs: Arc<RunDirectory>,
    pub supervisor: Addr<Supervisor>,
    pub bus: Addr<EventBus>,
    pub bus_stats: Arc<BusStats>,
    pub hooks: CoreHooks,
    pub approvals: Arc<ApprovalDeps>,
    pub approval_settings: ApprovalSettings,
    /// The threads coordinators are spread over.
    pub threads: ActorThreads,
    /// Measures canary nodes for the canary analysis.
    pub analysis: Arc<dyn crate::analysis::MetricsProvider>,
    /// This instance's name: a coordinator drives only runs whose lease it holds.
    pub instance_id: Arc<str>,
}

/// Saves refused for a reason other than an outage are tried this often
/// before the incarnation gives up and is restarted from the store.
const SAVE_ATTEMPTS: u32 = 3;

/// Why a checkpoint could not be saved.
enum SaveFailure {
    /// The run is no longer in the store, or another instance holds its
    /// lease now: either way this coordinator lets it go.
    Gone(String),
    /// The store refused the save, again and again, or holds a newer revision.
    Refused(String),
}

impl SaveFailure {
    fn reason(&self) -> &str {
        match self {
            SaveFailure::Gone(e) | SaveFailure::Refused(e) => e,
        }
    }
}

/// Answers a verb once the save that carries it is over.
type Ack = futures::channel::oneshot::Sender<Result<(), CoreError>>;

pub struct Coordinator {
    pub(super) run: RunRecord,
    /// The run as last saved: what readers see, so that nobody acts on a
    /// state the store does not have yet.
    saved: Arc<RunRecord>,
    pub(super) deps: Arc<CoordinatorDeps>,
    pub(super) faults: FaultPlan,
    pending_events: Vec<RunEvent>,
    /// Events for live subscribers only, published with the next save.
    pending_live: Vec<RunEvent>,
    saving: bool,
    dirty: bool,
    /// Node requests are in flight.
    pub(super) busy: bool,
    /// Agent hosts whose restore failed while their session ended or was
    /// absent: the restores the run leaves pending on them are applied when
    /// it ends, if they are back (see `apply_pending_restores`).
    pub(super) unreached_restores: Vec<(crate::domain::Environment, uuid::Uuid)>,
    /// A wait (bake, health-check delay, smoke-test poll) is armed.
    pub(super) timer: Option<SpawnHandle>,
    /// Verbs waiting for the save that makes them durable before they are
    /// acknowledged; answered with the save's outcome.
    acks: Vec<Ack>,
    /// Pause before repeating a step that met a store outage.
    pub(super) store_backoff: Duration,
    /// Health checks repeated because a node was down.
    pub(super) check_retries: u32,
    /// When the analysis provider first failed to answer in the current
    /// step; the step fails once `Patience::timeout` has passed since.
    pub(super) analysis_unanswered_since: Option<std::time::Instant>,
    /// The nodes a blue-green smoke test last said it waits for (hostnames):
    /// it says so again only when they change.
    pub(super) smoke_waiting_for: Vec<String>,
    /// This incarnation's span of the run, a child of the span the run was created in.
    span: tracing::Span,
    /// The span of the stage (or rollback) in progress, with its name.
    step_span: Option<(String, tracing::Span)>,
    /// An approval to store with the next save (see `request_approval`).
    pub(super) opening: Option<ApprovalRecord>,
    /// The poll of the store for a decision on the run's approval.
    pub(super) approval_poll: Option<SpawnHandle>,
    /// Set by an abort: the node requests of the step in progress stop
    /// waiting for hosts whose agents are away.
    pub(super) interrupt: StepInterrupt,
    guard: ExitGuard,
}

/// Registers the coordinator of a stored run with the supervisor. Every
/// incarnation, the first included, reads the run from the store and resumes
/// at its checkpoint (a run just created: see `spawn_coordinator_of_admitted`).
/// After too many crashes the supervisor escalates: a last incarnation
/// restores every node the run changed and ends it Failed.
pub fn spawn_coordinator(deps: Arc<CoordinatorDeps>, tenant: TenantId, id: Uuid) {
    spawn_child(deps, tenant, id, None, None);
}

/// Registers the coordinator of a run just admitted, whose stored record is
/// `run` itself: the first incarnation starts from it instead of reading it
/// back (one store round trip per run created). Nothing else writes a run
/// before its coordinator registers: verbs meanwhile are relayed through the
/// store, not written into the run. Every later incarnation reads the store.
pub fn spawn_coordinator_of_admitted(deps: Arc<CoordinatorDeps>, run: RunRecord) {
    let (tenant, id) = (run.tenant_id, run.execution_id);
    spawn_child(deps, tenant, id, None, Some(run));
}

fn spawn_child(
    deps: Arc<CoordinatorDeps>,
    tenant: TenantId,
    id: Uuid,
    unwind_reason: Option<String>,
    admitted: Option<RunRecord>,
) {
    let child_id = match unwind_reason {
        None => format!("run:{id}"),
        Some(_) => format!("run:{id}:unwind"),
    };
    let start_deps = deps.clone();
    let reason = unwind_reason.clone();
    let admitted = Arc::new(parking_lot::Mutex::new(admitted));
    let start = Arc::new(move |guard: ExitGuard| {
        let deps = start_deps.clone();
        let reason = reason.clone();
        let admitted = admitted.lock().take();
        actix::spawn(async move {
            let run = match admitted {
                Some(run) => run,
                None => match load_run(&deps, tenant, id).await {
                    Some(run) => run,
                    None => return,
                },
            };
            let coordinator = Coordinator::new(run, deps.clone(), reason, guard);
            let addr = deps.threads.start(move |_| coordinator);
            deps.runs.insert(id, addr);
        });
    });
    let escalate_deps = deps.clone();
    let on_escalate: Arc<dyn Fn(String) + Send + Sync> = match unwind_reason {
        None => Arc::new(move |reason: String| {
            let why = format!("coordinator kept crashing ({reason}); rolled back what the run changed");
            spawn_child(escalate_deps.clone(), tenant, id, Some(why), None);
        }),
        // The last incarnation failed too: end the run without it.
        Some(_) => Arc::new(move |reason: String| {
            let deps = escalate_deps.clone();
            actix::spawn(async move { super::give_up::give_up(deps, tenant, id, reason).await });
        }),
    };
    let on_escalate = Some(on_escalate);
    let control = Arc::new(CoordinatorControl { runs: deps.runs.clone(), id });
    deps.supervisor.do_send(StartChild(ChildSpec {
        id: child_id,
        kind: ActorKind::Coordinator,
        tenant: Some(tenant),
        start,
        on_escalate,
        control: Some(control),
    }));
}

/// The run as stored, read until the store answers; `None` when this
/// instance must not drive it (another owns it, or it is gone).
async fn load_run(deps: &CoordinatorDeps, tenant: TenantId, id: Uuid) -> Option<RunRecord> {
    let mut backoff = Duration::from_millis(50);
    loop {
        match within(deps.store_deadline, deps.store.get_run(tenant, id)).await {
            Ok(Some(run)) if run.owner.as_ref().is_some_and(|o| *o.instance != *deps.instance_id) => {
                tracing::warn!(%id, owner = ?run.owner, "run is owned by another instance; not resuming it here");
                return None;
            }
            Ok(Some(run)) => return Some(run),
            Ok(None) => {
                tracing::error!(%id, "run vanished from the store; its coordinator stops");
                return None;
            }
            Err(e) => {
                tracing::warn!(%id, error = %e, "cannot load run; retrying");
                actix::clock::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

struct CoordinatorControl {
    runs: Arc<RunDirectory>,
    id: Uuid,
}

impl ChildControl for CoordinatorControl {
    fn stop(&self) -> bool {
        match self.runs.get(self.id) {
            Some(addr) => {
                addr.do_send(StopCoordinator);
                true
            }
            None => false,
        }
    }

    fn problem(&self) -> Option<String> {
        self.runs.save_trouble(self.id).map(|t| {
            format!(
                "cannot save its checkpoint since {} ({} failed attempts; retrying): {}",
                t.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                t.failed_attempts,
                t.last_error
            )
        })
    }
}

impl Coordinator {
    fn new(mut run: RunRecord, deps: Arc<CoordinatorDeps>, unwind_reason: Option<String>, guard: ExitGuard) -> Self {
        let faults = if deps.simulation {
            FaultPlan::parse(&run.request.metadata).unwrap_or_default()
        } else {
            FaultPlan::default()
        };
        let span = tracing::info_span!(
            parent: None,
            "deployment",
            otel.name = "deployment",
            execution_id = %run.execution_id,
            module.name = %run.request.module_name,
            module.version = %run.request.version,
            environment = %run.request.target_environment,
            resumed_at = run.checkpoint.phase(),
        );
        if !run.trace_parent.is_empty() {
            deps.hooks.spans.adopt(&span, &run.trace_parent);
        }
        let mut pending_events = Vec::new();
        if let Some(message) = unwind_reason {
            match run.checkpoint {
                Checkpoint::Done => {}
                // A manual rollback puts back only the nodes that still run
                // this run's version; the last incarnation does the same, never
                // a blind unwind that would undo later runs' deployments.
                Checkpoint::ManualRollback => {
                    pending_events.push(event(&run, "CoordinatorEscalated", message, json!({})));
                }
                _ => {
                    run.checkpoint = Checkpoint::Unwinding { status: RunStatus::Failed, message: message.clone() };
                    pending_events.push(event(&run, "CoordinatorEscalated", message, json!({})));
                }
            }
        }
        Coordinator {
            saved: Arc::new(run.clone()),
            run,
            deps,
            faults,
            pending_events,
            pending_live: Vec::new(),
            saving: false,
            dirty: false,
            busy: false,
            unreached_restores: Vec::new(),
            timer: None,
            acks: Vec::new(),
            store_backoff: Duration::ZERO,
            check_retries: 0,
            analysis_unanswered_since: None,
            smoke_waiting_for: Vec::new(),
            span,
            step_span: None,
            opening: None,
            approval_poll: None,
            interrupt: StepInterrupt::default(),
            guard,
        }
    }

    /// Queues events that only live subscribers see; built only while someone listens.
    pub(super) fn live(&mut self, make: impl FnOnce(&RunRecord) -> Vec<RunEvent>) {
        if self.deps.bus_stats.listening() {
            let events = make(&self.run);
            self.pending_live.extend(events);
        }
    }

    /// The span of the stage the checkpoint is in (node calls are its
    /// children); a new one whenever the stage changes.
    pub(super) fn step_span(&mut self) -> tracing::Span {
        let name = match &self.run.checkpoint {
            Checkpoint::SecurityScan => SECURITY_SCAN_STAGE.to_string(),
            Checkpoint::RequestApproval | Checkpoint::AwaitingApproval { .. } => APPROVAL_STAGE.to_string(),
            Checkpoint::Deploy { environment, .. } => deploy_stage_name(*environment),
            Checkpoint::Validation => VALIDATION_STAGE.to_string(),
            Checkpoint::Restoring { environment, .. } => format!("rollback {environment}"),
            Checkpoint::Unwinding { .. } | Checkpoint::ManualRollback => "rollback".to_string(),
            Checkpoint::Done => return self.span.clone(),
        };
        match &self.step_span {
            Some((current, span)) if *current == name => span.clone(),
            _ => {
                let otel_name = if name.starts_with("rollback") { name.clone() } else { format!("stage {name}") };
                let span = tracing::info_span!(parent: &self.span, "stage", otel.name = %otel_name, stage.name = %name);
                self.step_span = Some((name, span.clone()));
                span
            }
        }
    }

    /// Saves the run with its new events, retrying while the store is down,
    /// then takes the next step.
    pub(super) fn save_checkpoint(&mut self, events: impl IntoIterator<Item = RunEvent>, ctx: &mut Context<Self>) {
        self.pending_events.extend(events);
        self.enter_stage();
        if self.saving {
            self.dirty = true;
            return;
        }
        self.saving = true;
        self.run.revision += 1;
        let snapshot = Arc::new(self.run.clone());
        let saving = snapshot.clone();
        let events = std::mem::take(&mut self.pending_events);
        let live = std::mem::take(&mut self.pending_live);
        let acks = std::mem::take(&mut self.acks);
        let store = self.deps.store.clone();
        let deadline = self.deps.store_deadline;
        let opening = self.opening.take();
        let runs = self.deps.runs.clone();
        let save = async move {
            let mut backoff = Duration::from_millis(50);
            let mut failures = 0;
            loop {
                let saved = match &opening {
                    Some(approval) => within(deadline, store.open_approval(approval, &saving, &events)).await,
                    None => within(deadline, store.save_run(&saving, &events)).await,
                };
                let error = match saved {
                    Ok(()) => {
                        runs.save_settled(saving.execution_id);
                        return Ok((snapshot, events, live));
                    }
                    Err(StoreError::Unavailable(e)) => {
                        runs.save_failed(saving.tenant_id, saving.execution_id, &e);
                        tracing::warn!(run = %saving.execution_id, error = %e, ?backoff, "store unavailable; retrying checkpoint");
                        actix::clock::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                    Err(StoreError::NotFound(e) | StoreError::Fenced(e)) => return Err(SaveFailure::Gone(e)),
                    Err(StoreError::Stale(e)) => {
                        // A save whose COMMIT reached the database but whose
                        // answer was lost is refused as stale when repeated:
                        // then the stored run is exactly ours.
                        match store.get_run(saving.tenant_id, saving.execution_id).await {
                            Ok(Some(stored)) if stored == *saving => {
                                runs.save_settled(saving.execution_id);
                                return Ok((snapshot, events, live));
                            }
                            _ => return Err(SaveFailure::Refused(format!("stale write: {e}"))),
                        }
                    }
                    Err(e) => e,
                };
                runs.save_failed(saving.tenant_id, saving.execution_id, &error.to_string());
                failures += 1;
                if failures >= SAVE_ATTEMPTS {
                    return Err(SaveFailure::Refused(error.to_string()));
                }
                tracing::warn!(run = %saving.execution_id, error = %error, attempt = failures, ?backoff, "checkpoint refused; retrying");
                actix::clock::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        };
        ctx.spawn(save.into_actor(self).map(move |saved, act, ctx| {
            act.saving = false;
            for ack in acks {
                let outcome = match &saved {
                    Ok(_) => Ok(()),
                    Err(e) => Err(CoreError::Unavailable(format!("the verb could not be recorded: {}", e.reason()))),
                };
                // The caller may have given up waiting; nothing to tell then.
                let _ = ack.send(outcome);
            }
            let saved = saved.map(|(snapshot, events, live)| {
                act.store_backoff = Duration::ZERO;
                act.saved = snapshot.clone();
                report(&act.deps, snapshot, events, live)
            });
            match saved {
                Ok(()) if act.dirty => {
                    act.dirty = false;
                    act.save_checkpoint([], ctx);
                }
                Ok(()) => act.advance(ctx),
                Err(SaveFailure::Gone(e)) => {
                    tracing::error!(run = %act.run.execution_id, error = %e, "run no longer stored or no longer ours; coordinator stops");
                    ctx.stop();
                }
                Err(SaveFailure::Refused(e)) => {
                    // Never a silent, final stop: this incarnation fails, and
                    // the supervisor starts another from what the store holds
                    // (or, past its limit, the one that restores and ends the run).
                    tracing::error!(run = %act.run.execution_id, error = %e, "checkpoint refused; coordinator restarts from the store");
                    act.guard.fail(format!("checkpoint refused: {e}"));
                    ctx.stop();
                }
            }
        }));
    }

    /// Starts the stage the checkpoint has moved into (a deploy stage or
    /// Validation), in the save that moves it there: saved only with the
    /// stage's first step, a stage showed Pending to every client while its
    /// first wave or its verification ran (seconds on real hosts), and a
    /// save of its own would cost every run a write per stage. A paused or
    /// aborted run has not entered it.
    fn enter_stage(&mut self) {
        if self.run.status != RunStatus::Running || self.run.intent.abort {
            return;
        }
        let entered = match &self.run.checkpoint {
            Checkpoint::Deploy { environment, .. } => deploy_stage_name(*environment),
            Checkpoint::Validation => VALIDATION_STAGE.to_string(),
            _ => return,
        };
        if let Some(started) = super::stages::start_stage(&mut self.run, &entered) {
            self.pending_events.push(started);
        }
    }

    /// Saves the run with `events` and answers once the save is over: what a
    /// verb changed is durable before the caller hears it was accepted.
    fn save_checkpoint_durably(
        &mut self,
        events: impl IntoIterator<Item = RunEvent>,
        ctx: &mut Context<Self>,
    ) -> futures::channel::oneshot::Receiver<Result<(), CoreError>> {
        let (tx, rx) = futures::channel::oneshot::channel();
        self.acks.push(tx);
        self.save_checkpoint(events, ctx);
        rx
    }

    /// Keeps an event to be saved with the next checkpoint.
    pub(super) fn note(&mut self, event: RunEvent) {
        self.pending_events.push(event);
    }

    pub(super) fn idle(&self) -> bool {
        !self.busy && !self.saving && self.timer.is_none()
    }

    fn cancel_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.timer.take() {
            ctx.cancel_future(handle);
        }
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Without baselines and wave plans: a line per node of a large cluster.
        tracing::info!(run = %self.run.execution_id, checkpoint = ?self.run.checkpoint.without_node_records(), "coordinator started");
        if self.pending_events.is_empty() {
            self.advance(ctx);
        } else {
            self.save_checkpoint([], ctx);
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.deps.runs.remove(self.run.execution_id);
        self.deps.runs.save_settled(self.run.execution_id);
    }
}

/// The run as last saved, without a store round trip.
#[derive(Message)]
#[rtype(result = "Arc<RunRecord>")]
pub struct GetRun;

impl Handler<GetRun> for Coordinator {
    type Result = MessageResult<GetRun>;
    fn handle(&mut self, _: GetRun, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.saved.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Pause,
    Resume,
    Promote,
    Abort,
}

impl Verb {
    /// The verb [`Verb::as_str`] names.
    pub fn parse(name: &str) -> Option<Verb> {
        [Verb::Pause, Verb::Resume, Verb::Promote, Verb::Abort].into_iter().find(|v| v.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Promote => "promote",
            Verb::Abort => "abort",
        }
    }
}

#[derive(Debug, Clone)]
pub struct VerbReply {
    pub status: RunStatus,
    pub message: String,
}

/// A verb and who used it, for the audit trail.
pub struct Steer {
    pub verb: Verb,
    pub actor: AuditActor,
}

impl Message for Steer {
    type Result = Result<VerbReply, CoreError>;
}

impl Handler<Steer> for Coordinator {
    type Result = ResponseFuture<Result<VerbReply, CoreError>>;

    fn handle(&mut self, Steer { verb, actor }: Steer, ctx: &mut Self::Context) -> Self::Result {
        let by = actor_data(&actor);
        let status = self.run.status;
        let refuse = |why: &str| -> Self::Result {
            let refused = CoreError::WrongState {
                message: format!("cannot {} a deployment that is {}: {why}", verb.as_str(), status.as_str()),
                status,
            };
            Box::pin(async move { Err(refused) })
        };
        if !status.is_active() || matches!(self.run.checkpoint, Checkpoint::Done) {
            return refuse("it has finished");
        }
        let restoring = self.run.checkpoint.is_restoring();
        let reply = |status: RunStatus, message: &str| -> Self::Result {
            let reply = VerbReply { status, message: message.to_string() };
            Box::pin(async move { Ok(reply) })
        };
        // Answers once the change is saved; a verb is never acknowledged
        // before the store holds it.
        let durable = |saved: futures::channel::oneshot::Receiver<Result<(), CoreError>>,
                       status: RunStatus,
                       message: &str|
         -> Self::Result {
            let reply = VerbReply { status, message: message.to_string() };
            Box::pin(async move {
                match saved.await {
                    Ok(Ok(())) => Ok(reply),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(CoreError::Unavailable("the deployment's coordinator stopped; try again".into())),
                }
            })
        };
        match verb {
            Verb::Abort => {
                if self.run.intent.abort || restoring {
                    // Saved again so that the caller's answer also waits for
                    // the store (the first abort's save may still be under way).
                    self.run.intent.abort = true;
                    let saved = self.save_checkpoint_durably([], ctx);
                    return durable(saved, status, "abort already under way; nodes are being restored");
                }
                self.run.intent.abort = true;
                self.run.intent.aborted_by = Some(actor.clone());
                self.interrupt.interrupt();
                let ev = event(&self.run, "VerbAccepted", "abort requested", json!({ "verb": "abort", ACTOR_KEY: by }));
                if self.timer.is_some() {
                    self.cancel_timer(ctx);
                }
                let saved = self.save_checkpoint_durably([ev], ctx);
                durable(saved, status, "abort accepted: the run stops and restores every node it changed")
            }
            _ if restoring => refuse("it is restoring nodes"),
            _ if self.run.intent.abort => refuse("an abort is under way"),
            Verb::Pause => match status {
                RunStatus::Paused => reply(status, "already paused"),
                RunStatus::Running => {
                    self.run.status = RunStatus::Paused;
                    let ev = event(
                        &self.run,
                        "DeploymentStatusChanged",
                        "paused",
                        json!({ "status": "Paused", "verb": "pause", ACTOR_KEY: by }),
                    );
                    let saved = self.save_checkpoint_durably([ev], ctx);
                    durable(saved, RunStatus::Paused, "paused: the run holds after the step in progress")
                }
                _ => refuse("only a running deployment can be paused"),
            },
            Verb::Resume => match status {
                RunStatus::Running => reply(status, "already running"),
                RunStatus::Paused => {
                    self.run.status = RunStatus::Running;
                    let ev = event(
                        &self.run,
                        "DeploymentStatusChanged",
                        "resumed",
                        json!({ "status": "Running", "verb": "resume", ACTOR_KEY: by }),
                    );
                    let saved = self.save_checkpoint_durably([ev], ctx);
                    durable(saved, RunStatus::Running, "resumed")
                }
                _ => refuse("only a paused deployment can be resumed"),
            },
            Verb::Promote => match status {
                RunStatus::Running => {
                    // A promote skips a wait of the stage under way only: one
                    // noted during a load in Staging must not skip the first
                    // canary bake in Production (it did).
                    let Some(stage_env) = self.stage_with_waits() else {
                        return refuse(
                            "no stage under way has a wait to skip (promote skips a rolling health-check delay or a canary bake)",
                        );
                    };
                    let ev = event(
                        &self.run,
                        "VerbAccepted",
                        "promote requested",
                        json!({ "verb": "promote", ACTOR_KEY: by }),
                    );
                    if self.skip_wait(ctx) {
                        let saved = self.save_checkpoint_durably([ev], ctx);
                        durable(saved, status, "promoted: the current wait was skipped")
                    } else {
                        self.run.intent.promote = true;
                        let saved = self.save_checkpoint_durably([ev], ctx);
                        let noted = format!(
                            "promote noted: the next wait of {} will be skipped (a promote does not carry into the next stage)",
                            deploy_stage_name(stage_env)
                        );
                        durable(saved, status, &noted)
                    }
                }
                RunStatus::Paused => refuse("pause takes precedence over promote; resume first"),
                _ => refuse("only a running deployment can be promoted"),
            },
        }
    }
}
