//! One supervised actor per pending approval. It owns the approval's timer,
//! serialises the decisions taken in this process, and tells the run's
//! coordinator when the approval is settled. The store decides which of
//! several concurrent decisions wins, so instances never disagree.

mod actor;

pub(crate) use actor::{decide_directly, expire_overdue};
pub use actor::{
    spawn_approval, ApprovalActor, ApprovalDeps, ApprovalDirectory, ApprovalSettled, Decide, SettledListeners,
    StopApproval,
};
