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

use super::StoreResult;
use crate::domain::TenantId;

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
}
