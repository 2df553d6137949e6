//! The tenants' part of the storage contract, and the counts of a tenant's
//! runs that quotas and usage reports are derived from. Capacity is never
//! kept in counters: it is counted from the runs as stored, so nothing can
//! leak when a run ends in an unusual way or the process restarts.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreResult;
use crate::domain::{NewAuditEntry, TenantId, TenantRecord, TenantStatus};

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
    /// Stores a new tenant with its audit entry; `Conflict` when the id or
    /// the subdomain (ignoring case, deleted tenants included) is taken.
    async fn create_tenant(&self, tenant: &TenantRecord, audit: &NewAuditEntry) -> StoreResult<()>;
    async fn get_tenant(&self, tenant: TenantId) -> StoreResult<Option<TenantRecord>>;
    /// Oldest first, optionally only those with `status`.
    async fn list_tenants(&self, status: Option<TenantStatus>) -> StoreResult<Vec<TenantRecord>>;
    /// Replaces the stored tenant with a newer revision, with its audit entry:
    /// `NotFound`, or `Stale` when the stored revision is not older.
    async fn save_tenant(&self, tenant: &TenantRecord, audit: &NewAuditEntry) -> StoreResult<()>;
    /// Counts of the tenant's runs; `since` bounds `created_since`.
    async fn run_counts(&self, tenant: TenantId, since: DateTime<Utc>, module: &str) -> StoreResult<RunCounts>;
    /// The runs created in `[from, to]` and the approval events of that period.
    async fn usage_counts(&self, tenant: TenantId, from: DateTime<Utc>, to: DateTime<Utc>) -> StoreResult<UsageCounts>;
}
