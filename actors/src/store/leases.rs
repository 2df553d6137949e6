//! Leases: which instance drives each active run, and which instance runs
//! each cluster-wide periodic task. A lease is an owner, an epoch and an
//! expiry; the owner renews it, and once it has expired any instance may take
//! it, raising the epoch. Run saves carry the epoch they were made under
//! ([`crate::domain::RunOwner`]) and the store refuses them once the epoch
//! moved on ([`super::StoreError::Fenced`]), so a paused or partitioned former
//! owner cannot write after another instance took its run.
//!
//! The length of a lease is the store's (`with_lease_ttl` on each back-end):
//! one setting for the whole cluster, and one clock, the store's, to judge
//! expiry by.

use async_trait::async_trait;
use uuid::Uuid;

use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::domain::{AuditActor, ModuleSlots, RunStatus, TenantId};

/// How long a lease lasts unless renewed, when a store is not told otherwise.
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(15);

/// A run an instance has just taken: it resumes it at its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRun {
    pub tenant_id: TenantId,
    pub execution_id: Uuid,
    /// The epoch of the new lease; the stored run names it as its owner's.
    pub epoch: u64,
}

/// The run, and the epoch of its lease, a node write is made for: the
/// store refuses the write once another instance took the run
/// ([`super::StoreError::Fenced`]), as it refuses the run's own saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunFence {
    pub tenant_id: TenantId,
    pub execution_id: Uuid,
    pub epoch: u64,
}

/// An operator verb received by an instance that does not drive the run,
/// stored for the run's owner to carry out (`RelayedVerbs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayedVerb {
    pub request_id: Uuid,
    pub tenant_id: TenantId,
    pub execution_id: Uuid,
    /// `pause`, `resume`, `promote` or `abort`.
    pub verb: String,
    pub actor: AuditActor,
}

/// What the owner made of a relayed verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayOutcome {
    /// Carried out (saved) by the owner.
    Accepted,
    /// Does not apply to the run now (a 409 on a single instance).
    Refused,
    /// The owner could not tell (its coordinator stopped meanwhile).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayedAnswer {
    pub outcome: RelayOutcome,
    /// The run's status as the owner answered (none when it could not tell).
    pub status: Option<RunStatus>,
    pub message: String,
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes at most `limit` active runs for `owner`: those whose lease has
    /// expired or that have no owner yet. Each taken run's epoch goes up by
    /// one and the stored run names the new owner. Oldest runs first.
    async fn claim_runs(&self, owner: &str, limit: u32) -> StoreResult<Vec<ClaimedRun>>;
    /// Extends every lease `owner` holds on an active run by the lease's
    /// length from now; answers the runs it still holds (those another
    /// instance took meanwhile are missing).
    async fn renew_runs(&self, owner: &str) -> StoreResult<Vec<Uuid>>;
    /// Lets every lease `owner` holds expire now, so that other instances
    /// take its runs at once (a clean shutdown). Answers how many.
    async fn release_runs(&self, owner: &str) -> StoreResult<u64>;
    /// Renews or takes the cluster-wide lease named `task` (a sweep or a
    /// timer that must run once per cluster): true when `owner` holds it now.
    async fn hold_task(&self, task: &str, owner: &str) -> StoreResult<bool>;
    /// [`super::NodeStore::set_module_slots`] for a run's step, made only
    /// while the run's lease is still at `fence.epoch`; otherwise `Fenced`.
    async fn set_module_slots_fenced(
        &self,
        node_id: Uuid,
        module: &str,
        slots: &ModuleSlots,
        fence: &RunFence,
    ) -> StoreResult<()>;
    /// Makes `owner` the driver of a finished run (a manual rollback that
    /// another instance will not renew): the epoch goes up by one and the
    /// lease starts now. `None` when the run is unknown or active (an active
    /// run keeps the owner it has).
    async fn take_finished_run(&self, tenant: TenantId, execution_id: Uuid, owner: &str) -> StoreResult<Option<u64>>;

    /// Stores a verb for the owner of its run.
    async fn relay_verb(&self, verb: &RelayedVerb) -> StoreResult<()>;
    /// The verbs not yet answered for any of `runs`, oldest first.
    async fn relayed_verbs(&self, runs: &[Uuid]) -> StoreResult<Vec<RelayedVerb>>;
    /// Records the owner's answer; a verb withdrawn meanwhile is left alone.
    async fn answer_relayed_verb(&self, request_id: Uuid, answer: &RelayedAnswer) -> StoreResult<()>;
    /// The answer once there is one, forgetting the verb; `None` while unanswered.
    async fn take_relayed_answer(&self, request_id: Uuid) -> StoreResult<Option<RelayedAnswer>>;
    /// Forgets a verb nobody answered: true when it was still unanswered (so
    /// it will never be carried out), false when an answer came first.
    async fn withdraw_relayed_verb(&self, request_id: Uuid) -> StoreResult<bool>;
}
