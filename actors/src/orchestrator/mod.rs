//! The one entry point the adapters use: start the actor system's parts,
//! create and steer runs, and read clusters. Approval decisions are in
//! `approvals`, cluster reads and metric samples in `clusters`.

mod agents;
mod approvals;
mod clusters;
mod desired_state;
pub mod downgrade;
pub mod dry_run;
mod leases;
mod memory_release;
mod reconciler;
mod relay;
mod scan_checks;
mod supervision;

use clusters::MetricsSampler;
pub use clusters::SamplerStats;

pub use crate::node::DriftOutcome;
pub use agents::HostArrival;
pub use approvals::{Decider, Verdict};
pub use clusters::{ClusterDetail, ClusterPage, ClusterSummary, MetricsPoint, NodeFilter, NodeView};
pub use dry_run::DeploymentPlan;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use uuid::Uuid;

use crate::approval::ApprovalDeps;
use crate::audit::{actor_data, ACTOR_KEY};
use crate::cluster::{ClusterSettings, TaskLease, TaskLeases};
use crate::coordinator::{
    plan, spawn_coordinator, spawn_coordinator_of_admitted, Checkpoint, CoordinatorDeps, GetRun, RunDirectory, Steer,
    Verb, VerbReply,
};
use crate::domain::{
    AuditActor, DeploymentRequest, Quota, RollbackState, RunOwner, RunRecord, RunStatus, RunSummary, TenantId,
    DEFAULT_TENANT,
};
use crate::error::CoreError;
use crate::events::{BusStats, EventBus, Publish};
use crate::hooks::CoreHooks;
use crate::node::{ClusterDirectory, HeartbeatTicker};
use crate::settings::{
    validate_canary_steps, ApprovalSettings, InFlightPolicy, PipelineSettings, RecoverySettings, SimulationSettings,
    SupervisionSettings,
};
use crate::simulation::FaultPlan;
use crate::store::{Page, RunEvent, RunFilter, SharedStore};
use crate::supervision::{install_panic_hook, ActorKind, ActorThreads, Supervisor};
use crate::tenant::{Clusters, TenantSettings, Tenants};

#[derive(Debug, Clone, Default)]
pub struct CoreSettings {
    pub pipeline: PipelineSettings,
    pub simulation: SimulationSettings,
    pub supervision: SupervisionSettings,
    pub recovery: RecoverySettings,
    pub approvals: ApprovalSettings,
    /// Record cluster metric samples on `simulation.metrics_sample_interval`.
    pub sample_metrics: bool,
    pub tenants: TenantSettings,
    pub cluster: ClusterSettings,
}

#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    clusters: Arc<ClusterDirectory>,
    runs: Arc<RunDirectory>,
    deps: Arc<CoordinatorDeps>,
    node_supervisor: Addr<Supervisor>,
    run_supervisor: Addr<Supervisor>,
    approval_supervisor: Addr<Supervisor>,
    approvals: Arc<ApprovalDeps>,
    tenant_supervisor: Addr<Supervisor>,
    tenants: Tenants,
    bus: Addr<EventBus>,
    bus_stats: Arc<BusStats>,
    hooks: CoreHooks,
    settings: CoreSettings,
    sampler: Arc<SamplerStats>,
    /// This instance's name in run leases (`cluster.instance_id`, resolved).
    instance_id: Arc<str>,
    /// The cluster-wide tasks this instance competes for.
    task_leases: Arc<TaskLeases>,
    /// Wakes the look for verbs other instances relayed to this one.
    relay_wake: tokio::sync::Notify,
    /// Every node actor's state writes go through it, in batches.
    slot_writer: crate::node::SlotWriter,
    /// Times freed memory was given back after the last run ended.
    memory_releases: memory_release::ReleaseCount,
}

#[derive(Debug, Clone)]
pub struct RollbackAccepted {
    pub rollback_id: Uuid,
    pub nodes_affected: u32,
}

impl Orchestrator {
    /// Starts supervisors, the simulated clusters (when enabled) and the
    /// coordinators of every run that was in flight when the process stopped.
    /// Must run inside the actix System.
    pub async fn start(store: SharedStore, settings: CoreSettings) -> Result<Orchestrator, CoreError> {
        Self::start_with(store, settings, CoreHooks::default()).await
    }

    /// Like [`Orchestrator::start`], with the adapters' observer and span context.
    pub async fn start_with(
        store: SharedStore,
        settings: CoreSettings,
        hooks: CoreHooks,
    ) -> Result<Orchestrator, CoreError> {
        install_panic_hook();
        let instance_id: Arc<str> = settings.cluster.resolved_instance_id().into();
        let sup = &settings.supervision;
        let node_supervisor = Supervisor::new("nodes", [(ActorKind::Node, sup.node.clone())])
            .with_observer(hooks.observer.clone())
            .start();
        let run_supervisor = Supervisor::new("deployments", [(ActorKind::Coordinator, sup.coordinator.clone())])
            .with_observer(hooks.observer.clone())
            .start();
        let approval_supervisor = Supervisor::new("approvals", [(ActorKind::Approval, sup.approval.clone())])
            .with_observer(hooks.observer.clone())
            .start();
        let tenant_supervisor = Supervisor::new("tenants", [(ActorKind::Tenant, sup.tenant.clone())])
            .with_observer(hooks.observer.clone())
            .start();
        let threads = ActorThreads::new(sup.actor_threads);
        let bus_stats = Arc::new(BusStats::default());
        let bus = EventBus::new(bus_stats.clone()).start();
        let clusters = Arc::new(ClusterDirectory::default());
        let runs = Arc::new(RunDirectory::default());
        let approvals = Arc::new(ApprovalDeps {
            store: store.clone(),
            runs: runs.clone(),
            supervisor: approval_supervisor.clone(),
            directory: Arc::default(),
        });
        let deps = Arc::new(CoordinatorDeps {
            store: store.clone(),
            clusters: clusters.clone(),
            pipeline: settings.pipeline.clone(),
            simulation: settings.simulation.enabled,
            heartbeat_timeout: settings.simulation.heartbeat_timeout,
            store_deadline: settings.recovery.store_call_timeout,
            runs: runs.clone(),
            supervisor: run_supervisor.clone(),
            bus: bus.clone(),
            bus_stats: bus_stats.clone(),
            hooks: hooks.clone(),
            approvals: approvals.clone(),
            approval_settings: settings.approvals.clone(),
            threads: threads.clone(),
            analysis: hooks.analysis.clone().unwrap_or_else(|| {
                Arc::new(crate::analysis::NodeReported::new(&settings.pipeline.canary))
                    as Arc<dyn crate::analysis::MetricsProvider>
            }),
            instance_id: instance_id.clone(),
        });
        let slot_writer = crate::node::SlotWriter::new(store.clone(), settings.recovery.store_call_timeout);
        let tenants = Tenants::new(crate::tenant::actor_deps(
            store.clone(),
            tenant_supervisor.clone(),
            Clusters {
                store: store.clone(),
                node_supervisor: node_supervisor.clone(),
                directory: clusters.clone(),
                simulation: Arc::new(settings.simulation.clone()),
                slot_writer: slot_writer.clone(),
                threads: threads.clone(),
            },
            runs.clone(),
            settings.tenants.clone(),
            settings.simulation.enabled,
        ));
        let task_leases = TaskLeases::new(store.clone(), instance_id.clone());
        let orchestrator = Orchestrator {
            inner: Arc::new(Inner {
                store,
                clusters,
                runs,
                deps,
                node_supervisor,
                run_supervisor,
                approval_supervisor,
                approvals,
                tenant_supervisor,
                tenants,
                bus,
                bus_stats,
                hooks,
                settings,
                sampler: Arc::default(),
                task_leases,
                relay_wake: tokio::sync::Notify::new(),
                instance_id,
                slot_writer,
                memory_releases: Default::default(),
            }),
        };
        // Every live tenant's actor, with its clusters when simulating.
        orchestrator.inner.tenants.start().await?;
        // Cheap when there are no clusters; clusters may also be provisioned later.
        let interval = orchestrator.inner.settings.simulation.heartbeat_interval;
        HeartbeatTicker::new(orchestrator.inner.clusters.clone(), interval).start();
        if orchestrator.inner.settings.simulation.enabled && orchestrator.inner.settings.sample_metrics {
            MetricsSampler::new(orchestrator.clone()).start();
        }
        orchestrator.resume_runs().await?;
        leases::LeaseKeeper::new(orchestrator.clone()).start();
        orchestrator.start_relay_inbox();
        let woken = orchestrator.clone();
        orchestrator.inner.hooks.wake_up.listen(Arc::new(move |run| {
            let orchestrator = woken.clone();
            actix::spawn(async move { orchestrator.woken(run).await });
        }));
        if !orchestrator.inner.settings.recovery.reconcile_interval.is_zero() {
            reconciler::Reconciler::new(orchestrator.clone()).start();
        }
        memory_release::start(&orchestrator);
        Ok(orchestrator)
    }

    /// Creates a tenant's simulated clusters with the configured sizes
    /// (tenants provisioned through [`Tenants`] get theirs sized by tier).
    pub async fn provision_clusters(&self, tenant: TenantId) -> Result<(), CoreError> {
        let clusters = Clusters {
            store: self.inner.store.clone(),
            node_supervisor: self.inner.node_supervisor.clone(),
            directory: self.inner.clusters.clone(),
            simulation: Arc::new(self.inner.settings.simulation.clone()),
            slot_writer: self.inner.slot_writer.clone(),
            threads: self.inner.deps.threads.clone(),
        };
        clusters.provision(tenant, &Quota::UNLIMITED).await
    }

    /// Tenants: provisioning, lifecycle, quotas and usage.
    pub fn tenants(&self) -> &Tenants {
        &self.inner.tenants
    }

    /// Takes the runs in flight that no live instance holds (their lease
    /// expired, they have none yet, or this instance held them in a former
    /// life under the same id) and gives each a coordinator again.
    async fn resume_runs(&self) -> Result<(), CoreError> {
        let me = &*self.inner.instance_id;
        let released = self.inner.store.release_runs(me).await?;
        if released > 0 {
            tracing::info!(
                runs = released,
                instance = me,
                "taking back the runs this instance held before it restarted"
            );
        }
        let claimed = self.inner.store.claim_runs(me, u32::MAX).await?;
        self.resume_claimed(claimed).await
    }

    /// Gives every run just claimed a coordinator. With the rollback policy,
    /// runs still deploying are first turned into unwinding runs; runs
    /// already restoring nodes finish doing so either way.
    async fn resume_claimed(&self, claimed: Vec<crate::store::ClaimedRun>) -> Result<(), CoreError> {
        for claim in claimed {
            let Some(mut run) = self.inner.store.get_run(claim.tenant_id, claim.execution_id).await? else { continue };
            let policy = self.inner.settings.recovery.in_flight;
            // A run at its approval gate has changed no node: it waits on.
            let gated = matches!(run.checkpoint, Checkpoint::RequestApproval | Checkpoint::AwaitingApproval { .. });
            // The run's history says it was interrupted and by whom it was
            // picked up: a gap in its events (a canary judged right after a
            // restart) is explained there, not only in a server's log.
            let resumed = resumed_event(&run, &self.inner.instance_id, claim.epoch);
            if policy == InFlightPolicy::Rollback && !run.checkpoint.is_restoring() && !gated {
                run.checkpoint = Checkpoint::Unwinding {
                    status: RunStatus::Failed,
                    message: "Interrupted by a restart; every node the run changed was restored (recovery.in_flight = rollback)"
                        .into(),
                };
            }
            run.revision += 1;
            self.inner.store.save_run(&run, &[resumed]).await?;
            self.adopt_stored_slots(run.tenant_id, &run.request.module_name).await?;
            tracing::info!(run = %run.execution_id, checkpoint = ?run.checkpoint.without_node_records(), ?policy, epoch = claim.epoch,
                "picking up run after restart or takeover");
            spawn_coordinator(self.inner.deps.clone(), run.tenant_id, run.execution_id);
        }
        Ok(())
    }

    /// Gives this instance's node actors the tenant's slots of `module` as
    /// stored: another instance may have changed them since these actors
    /// loaded theirs, and a run taken over must see what its nodes run.
    async fn adopt_stored_slots(&self, tenant: TenantId, module: &str) -> Result<(), CoreError> {
        let nodes: Vec<_> = crate::domain::Environment::ALL
            .into_iter()
            .flat_map(|env| self.inner.clusters.nodes(tenant, env).iter().cloned().collect::<Vec<_>>())
            .collect();
        if nodes.is_empty() {
            return Ok(());
        }
        let ids: Vec<_> = nodes.iter().map(|n| n.node_id).collect();
        let slots = self.inner.store.module_slots(tenant, &ids, module).await?;
        for (node, slots) in nodes.iter().zip(slots) {
            if let Some(addr) = node.addr() {
                // Awaited, so that the node has them before the coordinator's first call.
                // A node that stopped meanwhile reloads its slots from the store when restarted.
                if let Err(e) = addr.send(crate::node::AdoptModule { module: module.to_string(), slots }).await {
                    tracing::debug!(node = %node.hostname, error = %e, "node stopped before adopting the run's slots");
                }
            }
        }
        Ok(())
    }

    /// This instance's name in run leases and on the runs it drives.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// The lease of the cluster-wide task `name`, renewed with the run
    /// leases: a task whose passes ask it runs on one instance at a time.
    pub fn task_lease(&self, name: &'static str) -> TaskLease {
        self.inner.task_leases.lease(name)
    }

    /// The cluster-wide tasks this instance held at the last renewal.
    pub fn cluster_tasks_here(&self) -> Vec<&'static str> {
        self.inner.task_leases.held_here()
    }

    /// Lets every run this instance drives go to the other instances at
    /// once (a clean shutdown): its coordinators stop and its leases expire now.
    pub async fn hand_over(&self) -> Result<u64, CoreError> {
        for id in self.inner.runs.ids() {
            if let Some(addr) = self.inner.runs.get(id) {
                addr.do_send(crate::coordinator::StopCoordinator);
            }
        }
        Ok(self.inner.store.release_runs(&self.inner.instance_id).await?)
    }

    /// Runs with a live coordinator in this process (see `pipeline.max_active_runs`).
    pub fn active_runs(&self) -> usize {
        self.inner.runs.len()
    }

    /// What the metrics sampler has done so far.
    pub fn sampler_stats(&self) -> &SamplerStats {
        &self.inner.sampler
    }

    pub fn store(&self) -> &SharedStore {
        &self.inner.store
    }

    pub fn settings(&self) -> &CoreSettings {
        &self.inner.settings
    }

    /// Checks what only the core knows how to check; the adapter has already
    /// validated the shape of the request.
    pub fn check_request(&self, request: &DeploymentRequest) -> Result<(), CoreError> {
        let mut errors = Vec::new();
        if self.inner.settings.simulation.enabled {
            if let Err(e) = FaultPlan::parse(&request.metadata) {
                errors.extend(e);
            }
        }
        if let Some(steps) = &request.canary_steps {
            if let Err(e) = validate_canary_steps(steps) {
                errors.push(format!("canarySteps {e}"));
            }
            if !request.has_canary_stage() {
                errors.push(canary_steps_unused(request));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CoreError::Validation(errors))
        }
    }

    /// Creates a run on behalf of `actor`, once its tenant's actor has
    /// admitted it (tenant active, within its quotas).
    pub async fn create_deployment(
        &self,
        tenant: TenantId,
        request: DeploymentRequest,
        actor: &AuditActor,
    ) -> Result<RunRecord, CoreError> {
        self.check_request(&request)?;
        let limit = self.inner.settings.pipeline.max_active_runs;
        if self.inner.runs.at_least(limit) {
            return Err(CoreError::Overloaded {
                message: format!("{limit} deployments are already running in this process; try again shortly"),
                retry_after_secs: 5,
            });
        }
        let approval_required = self.inner.settings.approvals.required_for(&request);
        let execution_id = Uuid::new_v4();
        // The span the run is created in: a child of the caller's (the HTTP
        // request's); every coordinator incarnation's span continues it.
        let span = tracing::info_span!(
            "deployment.create",
            execution_id = %execution_id,
            module.name = %request.module_name,
            module.version = %request.version,
            environment = %request.target_environment,
        );
        let (trace_id, trace_parent) = self
            .inner
            .hooks
            .spans
            .context_of(&span)
            // Without tracing, the run continues its caller's trace id, so the
            // request's `X-Trace-Id`, the run's `traceId` and their audit entries agree.
            .unwrap_or_else(|| {
                (actor.trace_id.clone().unwrap_or_else(|| execution_id.simple().to_string()), String::new())
            });
        let mut run = RunRecord {
            trace_id,
            trace_parent,
            approval_required,
            requested_by: actor.id.as_deref().and_then(|id| Uuid::parse_str(id).ok()),
            owner: Some(RunOwner { instance: self.inner.instance_id.to_string(), epoch: 1 }),
            ..RunRecord::admitted(tenant, execution_id, request)
        };
        run.stages = crate::coordinator::planned_stages(&run);
        let created = RunEvent {
            tenant_id: tenant,
            execution_id,
            at: run.created_at,
            kind: "DeploymentCreated".into(),
            message: format!(
                "{} {} to {}",
                run.request.module_name, run.request.version, run.request.target_environment
            ),
            data: serde_json::json!({
                "requester": run.request.requester_email,
                ACTOR_KEY: actor_data(actor),
                "approvalRequired": run.approval_required,
            }),
        };
        // The store write happens in the tenant actor, inside `span`.
        self.inner.tenants.admit(run.clone(), vec![created.clone()], actor.clone(), span).await?;
        crate::coordinator::observe(self.inner.hooks.observer.as_ref(), &run, std::slice::from_ref(&created));
        // Published before the coordinator starts, so it comes first.
        self.inner.bus.do_send(Publish { run: Arc::new(run.clone()), events: vec![created] });
        spawn_coordinator_of_admitted(self.inner.deps.clone(), run.clone());
        Ok(run)
    }

    /// The newest state of a run: from its coordinator while it lives, else the store.
    pub async fn get_run(&self, tenant: TenantId, id: Uuid) -> Result<RunRecord, CoreError> {
        if let Some(addr) = self.inner.runs.get(id) {
            if let Ok(run) = addr.send(GetRun).timeout(Duration::from_secs(2)).await {
                if run.tenant_id == tenant {
                    return Ok(RunRecord::clone(&run));
                }
            }
        }
        self.inner
            .store
            .get_run(tenant, id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("Deployment execution {id} not found")))
    }

    pub async fn list_runs(&self, tenant: TenantId, filter: &RunFilter) -> Result<Page<RunSummary>, CoreError> {
        Ok(self.inner.store.list_runs(tenant, filter).await?)
    }

    pub async fn run_events(&self, tenant: TenantId, id: Uuid) -> Result<Vec<RunEvent>, CoreError> {
        self.get_run(tenant, id).await?;
        Ok(self.inner.store.run_events(tenant, id).await?)
    }

    pub async fn apply_verb(
        &self,
        tenant: TenantId,
        id: Uuid,
        verb: Verb,
        actor: &AuditActor,
    ) -> Result<VerbReply, CoreError> {
        let run = self.get_run(tenant, id).await?;
        self.inner.tenants.ensure_active_stored(tenant).await?;
        self.steer(run, verb, actor).await
    }

    /// An Admin of the system tenant aborting a run of another tenant, which
    /// may be suspended: offboarding a suspended tenant needs its active runs
    /// ended before the tenant can be deleted, and its own users may not
    /// steer them. A deleted or deprovisioning tenant's runs stay refused.
    pub async fn abort_for_platform(
        &self,
        tenant: TenantId,
        id: Uuid,
        actor: &AuditActor,
    ) -> Result<VerbReply, CoreError> {
        let run = self.get_run(tenant, id).await?;
        self.inner.tenants.ensure_active_or_suspended_stored(tenant).await?;
        self.steer(run, Verb::Abort, actor).await
    }

    /// Hands `verb` to the coordinator of `run`, here or on its owner.
    async fn steer(&self, run: RunRecord, verb: Verb, actor: &AuditActor) -> Result<VerbReply, CoreError> {
        let id = run.execution_id;
        match self.inner.runs.get(id) {
            Some(addr) => addr
                .send(Steer { verb, actor: actor.clone() })
                .timeout(relay::STEER_WAIT)
                .await
                .map_err(|e| CoreError::Unavailable(relay::unanswered(verb, &e)))?,
            // Driven by another instance, or by a coordinator of this one
            // that is restarting: the verb goes to the owner through the store.
            None if run.status.is_active() => self.relay_verb(&run, verb, actor).await,
            None => Err(CoreError::WrongState {
                message: format!("cannot {} a deployment that is {}", verb.as_str(), run.status.as_str()),
                status: run.status,
            }),
        }
    }

    /// Rolls a finished run back: every node it changed that still runs its
    /// version goes back to what it had before, in every environment.
    pub async fn rollback(
        &self,
        tenant: TenantId,
        id: Uuid,
        actor: &AuditActor,
    ) -> Result<RollbackAccepted, CoreError> {
        let mut run = self.get_run(tenant, id).await?;
        self.inner.tenants.ensure_active_stored(tenant).await?;
        let refuse = |message: &str, status| Err(CoreError::WrongState { message: message.into(), status });
        if run.status.is_active() {
            return refuse("Cannot rollback a deployment that is still in progress", run.status);
        }
        if run.rollback.as_ref().is_some_and(RollbackState::in_progress) {
            return refuse("A rollback of this deployment is already in progress", run.status);
        }
        match run.status {
            RunStatus::RolledBack => return refuse("This deployment has already been rolled back", run.status),
            // An abort restores what the run changed before it ends Cancelled
            // (and one aborted while waiting for approval changed nothing).
            RunStatus::Cancelled => {
                return refuse(
                    "This deployment was cancelled: its abort already restored every node it had changed, so there is nothing to roll back. Rollback applies to a deployment that Succeeded or Failed",
                    run.status,
                )
            }
            _ => {}
        }
        let ids: Vec<_> = run.changes.iter().map(|c| c.node_id).collect();
        let current = self.inner.store.module_slots(tenant, &ids, &run.request.module_name).await?;
        let affected =
            current.iter().filter(|s| s.active_version() == Some(run.request.version.as_str())).count() as u32;
        if affected == 0 {
            // A rollback of nothing would still have ended the run RolledBack
            // in place of its own outcome (a Security Scan's refusal, say).
            let why = if run.changes.is_empty() {
                "it changed no node"
            } else {
                "no node it changed still runs its version (its own restore or later runs replaced it)"
            };
            return refuse(&format!("There is nothing to roll back: {why}"), run.status);
        }
        let rollback_id = Uuid::new_v4();
        run.rollback = Some(RollbackState {
            rollback_id,
            status: RollbackState::IN_PROGRESS.into(),
            nodes_affected: affected,
            requested_at: Utc::now(),
            finished_at: None,
            message: String::new(),
        });
        run.checkpoint = Checkpoint::ManualRollback;
        run.revision += 1;
        // The rollback's coordinator runs here: the run's lease becomes this
        // instance's (its former owner no longer renews a finished run).
        let me = &*self.inner.instance_id;
        if let Some(epoch) = self.inner.store.take_finished_run(tenant, id, me).await? {
            run.owner = Some(RunOwner { instance: me.to_string(), epoch });
        }
        let event = RunEvent {
            tenant_id: tenant,
            execution_id: id,
            at: Utc::now(),
            kind: "RollbackRequested".into(),
            message: format!("rollback {rollback_id} of {affected} nodes requested"),
            data: serde_json::json!({ "rollbackId": rollback_id, "nodesAffected": affected, ACTOR_KEY: actor_data(actor) }),
        };
        self.inner.store.save_run(&run, std::slice::from_ref(&event)).await.map_err(|e| match e {
            crate::store::StoreError::Stale(_) => CoreError::WrongState {
                message: "the deployment changed while the rollback was requested; try again".into(),
                status: run.status,
            },
            other => other.into(),
        })?;
        // Another instance may have driven the run: this one's nodes take
        // their slots as stored before the rollback's coordinator asks them.
        self.adopt_stored_slots(tenant, &run.request.module_name).await?;
        self.inner.bus.do_send(Publish { run: Arc::new(run), events: vec![event] });
        spawn_coordinator(self.inner.deps.clone(), tenant, id);
        Ok(RollbackAccepted { rollback_id, nodes_affected: affected })
    }

    /// The event bus runs publish to; adapters subscribe to it.
    pub fn bus(&self) -> &Addr<EventBus> {
        &self.inner.bus
    }

    /// Coordinators of this instance that cannot save their checkpoint right
    /// now (they keep retrying), in every tenant: what readiness reports.
    pub fn coordinators_that_cannot_save(&self) -> Vec<crate::coordinator::SaveTrouble> {
        self.inner.runs.cannot_save()
    }

    pub fn bus_stats(&self) -> &Arc<BusStats> {
        &self.inner.bus_stats
    }

    /// Requests waiting for node actors, over every cluster.
    pub fn node_backlog(&self) -> usize {
        self.inner.clusters.all().iter().flat_map(|c| c.iter()).map(|n| n.backlog()).sum()
    }

    /// How many times the process has given freed memory back to the
    /// operating system after its last run ended (see `memory_release`).
    pub fn memory_releases(&self) -> u64 {
        self.inner.memory_releases.get()
    }

    /// Rough estimate of how long a run to `target` takes with the configured
    /// waits: the same per-stage figure a dry run's plan shows.
    pub fn estimated_duration(&self, request: &DeploymentRequest) -> Duration {
        let p = &self.inner.settings.pipeline;
        let steps = request.canary_steps.clone().unwrap_or_else(|| p.canary_steps.clone());
        request
            .target_environment
            .path()
            .into_iter()
            .map(|env| {
                let nodes = self.inner.clusters.nodes(DEFAULT_TENANT, env).len().max(1);
                let strategy = request.strategy_for(env);
                let waves = plan::waves(strategy, nodes, p.rolling_batch_size, &steps).len();
                dry_run::stage_estimate(strategy, waves, p)
            })
            .sum()
    }
}

/// Why `canarySteps` would shape nothing in `request`: it was refused rather
/// than ignored, since someone who sends steps expects a canary. With no
/// strategy named, the target's own strategy decides (only Production's is
/// Canary), and the message says how to ask for one.
fn canary_steps_unused(request: &DeploymentRequest) -> String {
    let target = request.target_environment;
    match request.strategy {
        Some(named) => format!(
            "canarySteps applies only to the Canary strategy, not to the {named} strategy this request names; drop canarySteps or name the Canary strategy"
        ),
        None => format!(
            "canarySteps applies only to the Canary strategy, and no stage of a run to {target} uses it ({target} deploys with {}); name the Canary strategy to deploy {target} as a canary, or drop canarySteps",
            target.default_strategy()
        ),
    }
}

/// The event recording that `instance` picked `run` up under lease `epoch`
/// (after a restart, or from an instance whose lease expired).
fn resumed_event(run: &RunRecord, instance: &str, epoch: u64) -> crate::store::RunEvent {
    let at = match &run.checkpoint {
        Checkpoint::RequestApproval | Checkpoint::AwaitingApproval { .. } => " waiting for approval".to_string(),
        _ => match run.stages.iter().find(|s| s.status == crate::domain::StageStatus::Running) {
            Some(stage) => format!(" during {}", stage.name),
            None => String::new(),
        },
    };
    crate::coordinator::event(
        run,
        "RunResumed",
        format!("Picked up by instance {instance} after a restart or takeover (lease epoch {epoch}){at}"),
        serde_json::json!({ "instance": instance, "epoch": epoch }),
    )
}
