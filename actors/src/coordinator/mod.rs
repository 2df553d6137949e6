//! One coordinator actor per run. It holds a conversation with the node
//! actors (load, switch, health, restore), moves through the pipeline as a
//! state machine driven by messages and timers, and checkpoints every step so
//! that a restarted incarnation resumes where the last one stopped.

mod actor;
mod approval_gate;
mod blue_green;
mod canary;
mod control;
mod directory;
mod give_up;
mod node_calls;
pub mod plan;
mod report;
mod restore;
mod scan;
mod stages;
mod steps;

pub use crate::approval::ApprovalSettled;
pub use crate::domain::{Checkpoint, DeployStep};
pub use actor::{
    spawn_coordinator, spawn_coordinator_of_admitted, Coordinator, CoordinatorDeps, GetRun, Steer, Verb, VerbReply,
};
pub use control::{CrashCoordinator, StopCoordinator};
pub use directory::{RunDirectory, SaveTrouble};
pub use node_calls::NODE_SPANS_UP_TO;
pub(crate) use report::observe;
pub(crate) use scan::{agents_among, empty_cluster, unmet_dependencies, unreachable_nodes, unregistered_on_agents};
pub(crate) use stages::event;
pub use stages::planned_stages;
