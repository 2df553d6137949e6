use std::collections::BTreeMap;

use actix::dev::{MessageResponse, OneshotSender};
use actix::{Actor, Message};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::step_interrupt::StepInterrupt;
use crate::domain::{Environment, ModuleSlots, NodeHealth, NodeMetrics, VersionSlot};
use crate::simulation::LoadFault;
use crate::store::RunFence;

/// Why a node could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The node refused or failed; the strategy treats the node as failed.
    #[error("{0}")]
    Failed(String),
    /// The node could not record the change because the store is down; the
    /// request is worth repeating once the store is back.
    #[error("{0}")]
    StoreUnavailable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadTarget {
    /// Replace the serving version; the old one becomes `previous`.
    Active,
    /// Load into the blue-green standby slot; serving is untouched.
    Standby,
}

/// Load a version. Loading the version a slot already holds changes nothing,
/// so a resumed coordinator can repeat the request safely.
#[derive(Message)]
#[rtype(result = "Result<(), NodeError>")]
pub struct LoadVersion {
    pub module: String,
    pub slot: VersionSlot,
    pub target: LoadTarget,
    pub fault: LoadFault,
    /// The artifact's SHA-256 as the registry holds it; the node refuses an
    /// artifact with another. `None` when the module is not registered.
    pub digest: Option<String>,
    /// Simulated time the load takes before it is recorded.
    pub delay: std::time::Duration,
    /// The run and lease epoch the change is made under: the store refuses
    /// it once another instance took the run. `None`: not for a run.
    pub fence: Option<RunFence>,
    /// Ends a wait for the host's away agent when the run is aborted.
    pub interrupt: StepInterrupt,
}

/// Make the standby slot serve and keep the old active version in standby.
#[derive(Message)]
#[rtype(result = "Result<(), NodeError>")]
pub struct SwitchToStandby {
    pub module: String,
    pub expected_version: String,
    pub fence: Option<RunFence>,
    /// Ends a wait for the host's away agent when the run is aborted.
    pub interrupt: StepInterrupt,
}

/// Put a module's slots back exactly as they were.
#[derive(Message)]
#[rtype(result = "Result<(), NodeError>")]
pub struct RestoreModule {
    pub module: String,
    pub slots: ModuleSlots,
    pub fence: Option<RunFence>,
}

/// Take `slots` as the module's state without storing them: they are what
/// the store holds, changed by another instance while this one's copy of the
/// node aged (a run taken over mid-rollout).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AdoptModule {
    pub module: String,
    pub slots: ModuleSlots,
}

/// Health of the node. With `standby_of`, health as it would be if the
/// standby slot of that module were serving (the blue-green smoke test).
#[derive(Message)]
#[rtype(result = "NodeHealth")]
pub struct CheckHealth {
    pub standby_of: Option<String>,
}

/// Succeeds when the node serves `version` of `module` and is healthy;
/// otherwise says what is wrong.
#[derive(Message)]
#[rtype(result = "Result<(), NodeError>")]
pub struct VerifyModule {
    pub module: String,
    pub version: String,
    /// Simulated time the check takes.
    pub delay: std::time::Duration,
    /// Ends a wait for the host's away agent when the run is aborted.
    pub interrupt: StepInterrupt,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSnapshot {
    pub node_id: Uuid,
    pub hostname: String,
    pub environment: Environment,
    pub modules: BTreeMap<String, ModuleSlots>,
    pub metrics: NodeMetrics,
    pub health: NodeHealth,
    pub last_heartbeat: Option<DateTime<Utc>>,
}

#[derive(Message)]
#[rtype(result = "NodeSnapshot")]
pub struct Snapshot;

/// A node's metrics and health, all a cluster's metrics sample needs: the
/// answer is a few dozen bytes, where a [`Snapshot`] copies the hostname and
/// every module's slots (a sample of 100,000 nodes held hundreds of MiB of
/// snapshots at once).
#[derive(Message)]
#[rtype(result = "MetricsReading")]
pub struct ReadMetrics;

#[derive(Debug, Clone, Copy)]
pub struct MetricsReading {
    pub metrics: NodeMetrics,
    pub healthy: bool,
}

/// Makes the actor panic; lets tests and operators see supervision at work.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Crash;

/// Stops the actor normally; its supervisor decides what comes next.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopNode;

/// A message with the span of the call that sent it: the node handles it,
/// and does its store writes, inside that span, so a trace follows the call
/// across the actor boundary.
pub struct Traced<M> {
    pub msg: M,
    pub span: tracing::Span,
}

impl<M: Message> Message for Traced<M> {
    type Result = M::Result;
}

impl<A: Actor, M: Message<Result = NodeHealth>> MessageResponse<A, M> for NodeHealth {
    fn handle(self, _ctx: &mut A::Context, tx: Option<OneshotSender<NodeHealth>>) {
        if let Some(tx) = tx {
            let _ = tx.send(self);
        }
    }
}
