//! The tenants' part of the storage contract, and the counts of a tenant's
//! runs that quotas and usage reports are derived from. Active runs are
//! counted from the runs that hold their module (an index of a few rows), so
//! nothing can leak when a run ends in an unusual way; runs per day and the
//! modules ever run are counters kept in the same transaction as the insert,
//! so that admission costs the same after a million runs as after ten.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreResult;
use crate::domain::{NewAuditEntry, QuotaExceeded, RunEvent, RunRecord, TenantId, TenantRecord, TenantStatus};

/// What admission needs to know about a tenant's runs, read together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Runs that hold their module now (running, paused, awaiting approval, rolling back).
    pub active: u64,
    /// Runs created at or after the given moment.
    pub created_since: u64,
    /// Distinct modules the tenant has ever run.
    pub modules: u64,
    /// Whether the given module is among them.
    pub module_known: bool,
}

/// Whether one more run fits, given the tenant's counts (the tenant's
/// quota check, handed to the store so that it runs inside the admission's
/// lock).
pub type AdmissionCheck<'a> = &'a (dyn Fn(&RunCounts) -> Result<(), QuotaExceeded> + Send + Sync);

/// One new run waiting for admission, with its creation events.
#[derive(Clone, Copy)]
pub struct Admission<'a> {
    pub run: &'a RunRecord,
    pub events: &'a [RunEvent],
}

/// A tenant's runs created in a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageCounts {
    /// By status name; statuses without runs are left out.
    pub runs_by_status: BTreeMap<String, u64>,
    /// Nodes those runs changed (a node counts once per run).
    pub node_updates: u64,
    /// Approval events (requested, granted, rejected, expired) in the period.
    pub approval_events: u64,
}

/// Tenants by id. `list_tenants` is the one read across tenants: it serves
/// the system tenant's administrators and start-up.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Stores a new tenant with its audit entries, in one step; `Conflict`
    /// when the id or the subdomain (ignoring case, deleted tenants
    /// included) is taken.
    async fn create_tenant(&self, tenant: &TenantRecord, audit: &[NewAuditEntry]) -> StoreResult<()>;
    async fn get_tenant(&self, tenant: TenantId) -> StoreResult<Option<TenantRecord>>;
    /// Oldest first, optionally only those with `status`.
    async fn list_tenants(&self, status: Option<TenantStatus>) -> StoreResult<Vec<TenantRecord>>;
    /// Replaces the stored tenant with a newer revision, with its audit
    /// entries, in one step: `NotFound`, or `Stale` when the stored revision
    /// is not older.
    async fn save_tenant(&self, tenant: &TenantRecord, audit: &[NewAuditEntry]) -> StoreResult<()>;
    /// Stores a new run as [`super::RunStore::create_run`] does, if `check`
    /// passes on the tenant's counts (`since` bounds `created_since`, for the
    /// run's module). Counting and inserting are one step serialised per
    /// tenant across every instance sharing the store, so concurrent creates
    /// never admit more than the quota. `Ok(Err(_))` is a refusal: nothing
    /// was stored.
    async fn admit_run(
        &self,
        run: &RunRecord,
        events: &[RunEvent],
        since: DateTime<Utc>,
        check: AdmissionCheck<'_>,
    ) -> StoreResult<Result<(), QuotaExceeded>>;
    /// Admits several new runs of one tenant as [`Self::admit_run`] would
    /// one after the other, in the order given (each counted against the
    /// quota with the runs admitted before it), answering one result per run
    /// in that order. A store may write them in one transaction (one commit
    /// for many creates); nothing is answered before it is durable.
    async fn admit_runs(
        &self,
        batch: &[Admission<'_>],
        since: DateTime<Utc>,
        check: AdmissionCheck<'_>,
    ) -> Vec<StoreResult<Result<(), QuotaExceeded>>> {
        let mut results = Vec::with_capacity(batch.len());
        for one in batch {
            results.push(self.admit_run(one.run, one.events, since, check).await);
        }
        results
    }
    /// Counts of the tenant's runs; `since` bounds `created_since`.
    async fn run_counts(&self, tenant: TenantId, since: DateTime<Utc>, module: &str) -> StoreResult<RunCounts>;
    /// The runs created in `[from, to]` and the approval events of that period.
    async fn usage_counts(&self, tenant: TenantId, from: DateTime<Utc>, to: DateTime<Utc>) -> StoreResult<UsageCounts>;
}
