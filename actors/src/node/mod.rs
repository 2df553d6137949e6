//! A node of a cluster as an actor: it holds each module's slots, persists
//! every change before it answers, sends heartbeats and reports metrics.

mod actor;
mod messages;

pub use actor::{spawn_node, NodeActor};
pub use messages::{
    CheckHealth, Crash, LoadTarget, LoadVersion, NodeError, NodeSnapshot, RestoreModule, Snapshot, StopNode,
    SwitchToStandby, Traced, VerifyModule,
};
