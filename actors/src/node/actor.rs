use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use tracing::Instrument;

use super::agent_link::{host_health, NodeKind};
use super::agent_node::RecordCertainty;
use super::messages::*;
use super::NodeEntry;
use super::SlotWriter;
use super::StepInterrupt;
use crate::domain::{AgentCommand, ModuleSlots, NodeHealth, NodeMetrics};
use crate::settings::SimulationSettings;
use crate::simulation::{baseline_metrics, LoadFault};
use crate::store::{within, RunFence, SharedStore, SlotWrite, StoreError};
use crate::supervision::{ActorKind, ActorThreads, ChildControl, ChildSpec, ExitGuard, StartChild, Supervisor};

pub struct NodeActor {
    pub(super) entry: Arc<NodeEntry>,
    pub(super) store: SharedStore,
    /// Records new slots, batched with other nodes' writes.
    writer: SlotWriter,
    settings: Arc<SimulationSettings>,
    /// Deadline of each store call.
    store_deadline: std::time::Duration,
    pub(super) modules: BTreeMap<String, ModuleSlots>,
    /// For a host: which of `modules` are known to be what the host has.
    pub(super) certainty: RecordCertainty,
    _guard: ExitGuard,
}

/// Registers a node with its supervisor, which starts it now and again after
/// every panic. Each incarnation reloads its module state from the store.
pub fn spawn_node(
    supervisor: &Addr<Supervisor>,
    threads: &ActorThreads,
    entry: Arc<NodeEntry>,
    writer: &SlotWriter,
    settings: Arc<SimulationSettings>,
) {
    let (store, store_deadline, writer) = (writer.store(), writer.deadline(), writer.clone());
    let threads = threads.clone();
    let id = format!("node:{}", entry.hostname);
    let start_entry = entry.clone();
    let start = Arc::new(move |guard: ExitGuard| {
        let actor = NodeActor {
            entry: start_entry.clone(),
            store: store.clone(),
            writer: writer.clone(),
            settings: settings.clone(),
            store_deadline,
            modules: BTreeMap::new(),
            certainty: RecordCertainty::default(),
            _guard: guard,
        };
        // Each incarnation on the next thread in turn.
        let (addr, thread) = threads.start_placed(move |_| actor);
        start_entry.set_addr(addr, thread);
    });
    let control = Arc::new(NodeControl(entry.clone()));
    supervisor.do_send(StartChild(ChildSpec {
        id,
        kind: ActorKind::Node,
        tenant: Some(entry.tenant_id),
        start,
        on_escalate: None,
        control: Some(control),
    }));
}

struct NodeControl(Arc<NodeEntry>);

impl ChildControl for NodeControl {
    fn stop(&self) -> bool {
        match self.0.addr() {
            Some(addr) => {
                addr.do_send(StopNode);
                true
            }
            None => false,
        }
    }

    fn backlog(&self) -> Option<usize> {
        Some(self.0.backlog())
    }
}

impl NodeActor {
    pub(super) fn store_deadline(&self) -> std::time::Duration {
        self.store_deadline
    }

    fn tick(&self) -> u64 {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        secs / self.settings.metrics_sample_interval.as_secs().max(1)
    }

    /// Metrics as the node reports them, with the faults of the versions it serves.
    fn metrics(&self, standby_of: Option<&str>) -> (NodeMetrics, bool) {
        let mut metrics = baseline_metrics(&self.entry.hostname, self.tick());
        let mut unhealthy = false;
        for (module, slots) in &self.modules {
            let serving = if standby_of == Some(module.as_str()) { &slots.standby } else { &slots.active };
            if let Some(slot) = serving {
                metrics = slot.faults.apply(metrics);
                unhealthy |= slot.faults.unhealthy;
            }
        }
        (metrics, unhealthy)
    }

    /// Persists the new slots first and adopts them only once the store has them.
    pub(super) fn persist(
        &mut self,
        module: String,
        slots: ModuleSlots,
        fence: Option<RunFence>,
    ) -> ResponseActFuture<Self, Result<(), NodeError>> {
        let writer = self.writer.clone();
        // A run's write carries its lease's fence (a former owner must not
        // change the node); the writer checks it in the batch's transaction.
        let write = SlotWrite {
            tenant: self.entry.tenant_id,
            node_id: self.entry.node_id,
            module: module.clone(),
            slots: slots.clone(),
            fence,
        };
        // A child of the call's span when the message came traced; none when
        // it came without one (a call to too many nodes to trace each), which
        // would otherwise start a trace of its own per node.
        let span = if tracing::Span::current().is_none() {
            tracing::Span::none()
        } else {
            tracing::info_span!("node.persist", node.hostname = %self.entry.hostname, module = %module)
        };
        let lane = self.entry.thread().unwrap_or(0);
        let saving = async move { writer.write(lane, write).await };
        Box::pin(saving.instrument(span).into_actor(self).map(move |saved, act, _ctx| match saved {
            Ok(()) => {
                act.entry.beat();
                if slots.is_empty() {
                    act.modules.remove(&module);
                } else {
                    act.modules.insert(module, slots);
                }
                Ok(())
            }
            Err(StoreError::Unavailable(e)) => {
                Err(NodeError::StoreUnavailable(format!("{} could not record the change: {e}", act.entry.hostname)))
            }
            Err(e) => Err(NodeError::Failed(format!("{} could not record the change: {e}", act.entry.hostname))),
        }))
    }
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // No message is handled until the module state is back from the store;
        // while the store is down the node keeps trying rather than start empty.
        let store = self.store.clone();
        let deadline = self.store_deadline;
        let (tenant, node_id, hostname) = (self.entry.tenant_id, self.entry.node_id, self.entry.hostname.clone());
        let load = async move {
            let mut delay = std::time::Duration::from_millis(50);
            loop {
                match within(deadline, store.get_node(tenant, node_id)).await {
                    Err(StoreError::Unavailable(e)) => {
                        tracing::warn!(node = %hostname, error = %e, "store unavailable; retrying node state");
                        actix::clock::sleep(delay).await;
                        delay = (delay * 2).min(std::time::Duration::from_secs(5));
                    }
                    other => return other,
                }
            }
        };
        ctx.wait(load.into_actor(self).map(|loaded, act, ctx| match loaded {
            Ok(Some(record)) => act.modules = record.modules,
            Ok(None) => {}
            Err(e) => {
                tracing::error!(node = %act.entry.hostname, error = %e, "cannot load node state; stopping");
                ctx.stop();
            }
        }));
        // A host's heartbeats come from its agent. A simulated node beats now,
        // and then on the clusters' heartbeat ticker (one timer for every node
        // rather than one per node) for as long as this actor lives.
        if self.entry.kind == NodeKind::Simulated {
            self.entry.beat();
        }
    }
}

impl Handler<LoadVersion> for NodeActor {
    type Result = AtomicResponse<Self, Result<(), NodeError>>;

    fn handle(&mut self, msg: LoadVersion, _ctx: &mut Self::Context) -> Self::Result {
        if self.entry.kind == NodeKind::Agent {
            let command = AgentCommand::Load {
                module: msg.module,
                version: msg.slot.version,
                digest: msg.digest,
                standby: msg.target == LoadTarget::Standby,
            };
            return AtomicResponse::new(self.ask_agent(command, msg.interrupt));
        }
        match msg.fault {
            LoadFault::Panic => panic!(
                "node {} crashed while loading {} {} (simulated)",
                self.entry.hostname, msg.module, msg.slot.version
            ),
            LoadFault::Fail => {
                let err =
                    format!("{} failed to load {} {} (simulated)", self.entry.hostname, msg.module, msg.slot.version);
                return AtomicResponse::new(Box::pin(fut::ready(Err(NodeError::Failed(err)))));
            }
            LoadFault::None | LoadFault::Tampered => {}
        }
        if let Some(expected) = &msg.digest {
            let received = received_digest(expected, msg.fault);
            if &received != expected {
                let err = format!(
                    "{} refused {} {}: the artifact it received has SHA-256 {received}, not the registry's {expected}",
                    self.entry.hostname, msg.module, msg.slot.version
                );
                tracing::warn!(node = %self.entry.hostname, module = %msg.module, "artifact digest mismatch; load refused");
                return AtomicResponse::new(Box::pin(fut::ready(Err(NodeError::Failed(err)))));
            }
        }
        let current = self.modules.get(&msg.module).cloned().unwrap_or_default();
        let already = match msg.target {
            LoadTarget::Active => current.active.as_ref() == Some(&msg.slot),
            LoadTarget::Standby => current.standby.as_ref() == Some(&msg.slot),
        };
        if already {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        let mut next = current.clone();
        match msg.target {
            LoadTarget::Active => {
                next.previous = current.active;
                next.active = Some(msg.slot);
            }
            LoadTarget::Standby => next.standby = Some(msg.slot),
        }
        if msg.delay.is_zero() {
            return AtomicResponse::new(self.persist(msg.module, next, msg.fence));
        }
        // A timer, not a sleep: the node's thread stays free for others.
        let slow = actix::clock::sleep(msg.delay)
            .into_actor(self)
            .then(move |(), act, _ctx| act.persist(msg.module, next, msg.fence));
        AtomicResponse::new(Box::pin(slow))
    }
}

/// The digest of the artifact as a simulated node receives it: the
/// registry's, unless the simulation alters the bytes in transit.
fn received_digest(expected: &str, fault: LoadFault) -> String {
    if fault != LoadFault::Tampered {
        return expected.to_string();
    }
    // Any other 64 hex digits will do; flipping each one keeps the shape.
    expected.chars().map(|c| c.to_digit(16).and_then(|d| char::from_digit(15 - d, 16)).unwrap_or('0')).collect()
}

impl Handler<SwitchToStandby> for NodeActor {
    type Result = AtomicResponse<Self, Result<(), NodeError>>;

    fn handle(&mut self, msg: SwitchToStandby, _ctx: &mut Self::Context) -> Self::Result {
        if self.entry.kind == NodeKind::Agent {
            let command = AgentCommand::SwitchToStandby { module: msg.module, version: msg.expected_version };
            return AtomicResponse::new(self.ask_agent(command, msg.interrupt));
        }
        let current = self.modules.get(&msg.module).cloned().unwrap_or_default();
        if current.active_version() == Some(msg.expected_version.as_str()) {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        match &current.standby {
            Some(standby) if standby.version == msg.expected_version => {
                let next = ModuleSlots {
                    active: current.standby.clone(),
                    previous: current.active.clone(),
                    standby: current.active.clone(),
                };
                AtomicResponse::new(self.persist(msg.module, next, msg.fence))
            }
            _ => {
                let err = format!(
                    "{} has no standby {} {} to switch to",
                    self.entry.hostname, msg.module, msg.expected_version
                );
                AtomicResponse::new(Box::pin(fut::ready(Err(NodeError::Failed(err)))))
            }
        }
    }
}

impl Handler<RestoreModule> for NodeActor {
    type Result = AtomicResponse<Self, Result<(), NodeError>>;

    fn handle(&mut self, msg: RestoreModule, _ctx: &mut Self::Context) -> Self::Result {
        if self.entry.kind == NodeKind::Agent {
            // A restore is never interrupted: it is what an abort leads to.
            let command = AgentCommand::Restore { module: msg.module, slots: msg.slots };
            return AtomicResponse::new(self.ask_agent(command, StepInterrupt::default()));
        }
        if self.modules.get(&msg.module).cloned().unwrap_or_default() == msg.slots {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        AtomicResponse::new(self.persist(msg.module, msg.slots, msg.fence))
    }
}

impl Handler<AdoptModule> for NodeActor {
    type Result = ();

    fn handle(&mut self, msg: AdoptModule, _ctx: &mut Self::Context) {
        if msg.slots.is_empty() {
            self.modules.remove(&msg.module);
        } else {
            self.modules.insert(msg.module, msg.slots);
        }
    }
}

impl Handler<CheckHealth> for NodeActor {
    type Result = NodeHealth;

    fn handle(&mut self, msg: CheckHealth, _ctx: &mut Self::Context) -> Self::Result {
        if self.entry.kind == NodeKind::Agent {
            return host_health(&self.entry);
        }
        let (metrics, unhealthy) = self.metrics(msg.standby_of.as_deref());
        NodeHealth::evaluate(metrics, unhealthy)
    }
}

/// Node messages handled inside the span that came with them.
macro_rules! traced {
    ($($message:ty),* $(,)?) => {$(
        impl Handler<Traced<$message>> for NodeActor {
            type Result = <NodeActor as Handler<$message>>::Result;

            fn handle(&mut self, Traced { msg, span }: Traced<$message>, ctx: &mut Self::Context) -> Self::Result {
                let _entered = span.enter();
                <Self as Handler<$message>>::handle(self, msg, ctx)
            }
        }
    )*};
}

traced!(LoadVersion, SwitchToStandby, RestoreModule, CheckHealth, VerifyModule);
impl Handler<VerifyModule> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(), NodeError>>;

    fn handle(&mut self, msg: VerifyModule, _ctx: &mut Self::Context) -> Self::Result {
        if self.entry.kind == NodeKind::Agent {
            let verify =
                self.ask_agent(AgentCommand::Verify { module: msg.module, version: msg.version }, msg.interrupt);
            // The agent ran the health hook, which passed by its exit status;
            // the figures it printed (and the host's CPU and memory) are judged
            // here, as the cluster view and every health check judge them.
            return Box::pin(verify.map(|verified, act, _ctx| {
                verified?;
                let health = host_health(&act.entry);
                if health.healthy {
                    return Ok(());
                }
                Err(NodeError::Failed(format!("{} unhealthy: {}", act.entry.hostname, health.reasons.join(", "))))
            }));
        }
        // Without a simulated duration the check answers at once: a timer
        // of zero still waits for the timer wheel's next turn and costs an
        // entry in it, for each of a run's nodes.
        if msg.delay.is_zero() {
            return Box::pin(fut::ready(self.verify(&msg)));
        }
        // The check is made once the (simulated) time it takes has passed.
        Box::pin(actix::clock::sleep(msg.delay).into_actor(self).map(move |(), act, _ctx| act.verify(&msg)))
    }
}

impl NodeActor {
    fn verify(&self, msg: &VerifyModule) -> Result<(), NodeError> {
        let running = self.modules.get(&msg.module).and_then(ModuleSlots::active_version);
        if running != Some(msg.version.as_str()) {
            return Err(NodeError::Failed(format!("{} runs {}", self.entry.hostname, running.unwrap_or("nothing"))));
        }
        let (metrics, unhealthy) = self.metrics(None);
        let health = NodeHealth::evaluate(metrics, unhealthy);
        if health.healthy {
            Ok(())
        } else {
            Err(NodeError::Failed(format!("{} unhealthy: {}", self.entry.hostname, health.reasons.join(", "))))
        }
    }
}

impl Handler<Snapshot> for NodeActor {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _: Snapshot, _ctx: &mut Self::Context) -> Self::Result {
        let (metrics, health) = self.current_health();
        // A host's own latest report is the truth about its modules. It is
        // also what keeps an instance that does not hold the agent's session
        // current (the holder passes every heartbeat's report on), where this
        // actor's record changes only with the commands this instance sends.
        let reported = self.entry.agent_link().and_then(|l| l.last_report()).map(|r| r.modules);
        MessageResult(NodeSnapshot {
            node_id: self.entry.node_id,
            hostname: self.entry.hostname.clone(),
            environment: self.entry.environment,
            modules: reported.unwrap_or_else(|| self.modules.clone()),
            metrics,
            health,
            last_heartbeat: self.entry.last_heartbeat(),
        })
    }
}

impl Handler<ReadMetrics> for NodeActor {
    type Result = MessageResult<ReadMetrics>;

    fn handle(&mut self, _: ReadMetrics, _ctx: &mut Self::Context) -> Self::Result {
        let (metrics, health) = self.current_health();
        MessageResult(MetricsReading { metrics, healthy: health.healthy })
    }
}

impl NodeActor {
    /// The node's metrics now and the health they amount to: a host's as its
    /// agent last reported them, a simulated node's from its versions' faults.
    fn current_health(&self) -> (NodeMetrics, NodeHealth) {
        match self.entry.kind {
            NodeKind::Agent => {
                let health = host_health(&self.entry);
                (health.metrics, health)
            }
            NodeKind::Simulated => {
                let (metrics, unhealthy) = self.metrics(None);
                (metrics, NodeHealth::evaluate(metrics, unhealthy))
            }
        }
    }
}

impl Handler<StopNode> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: StopNode, ctx: &mut Self::Context) {
        tracing::warn!(node = %self.entry.hostname, "node actor stopped on request");
        ctx.stop();
    }
}

impl Handler<Crash> for NodeActor {
    type Result = ();

    fn handle(&mut self, _: Crash, _ctx: &mut Self::Context) {
        panic!("node {} crashed on request", self.entry.hostname);
    }
}
