//! A node of a cluster as an actor: it holds each module's slots, persists
//! every change before it answers, sends heartbeats and reports metrics.
//! The directory says where each tenant's and environment's nodes are.

mod actor;
mod agent_link;
mod agent_node;
mod directory;
mod gather;
mod heartbeat;
mod host_reconciler;
mod messages;
mod slot_writes;
mod step_interrupt;

pub use actor::{spawn_node, NodeActor};
pub use agent_link::{host_health, AgentLink, NodeKind};
pub use agent_node::AdoptHostState;
pub use directory::{cluster_is_healthy, ClusterDirectory, ClusterNodes, NodeEntry};
pub use gather::gather_until;
pub use heartbeat::HeartbeatTicker;
pub use host_reconciler::{DriftOutcome, HostReconciler, Scope as ReconcileScope};
pub use messages::{
    AdoptModule, CheckHealth, Crash, LoadTarget, LoadVersion, MetricsReading, NodeError, NodeSnapshot, ReadMetrics,
    RestoreModule, Snapshot, StopNode, SwitchToStandby, Traced, VerifyModule,
};
pub use slot_writes::SlotWriter;
pub use step_interrupt::StepInterrupt;
