//! The storage contract of the core. The in-memory implementation lives here;
//! the PostgreSQL one lives with the other adapters in the root crate.

mod agents;
mod graph;
mod leases;
mod memory;
mod tenants;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{
    ApprovalDecision, ApprovalRecord, ApprovalStatus, AuditEntry, AuditQuery, DecisionOutcome, Environment,
    LockoutPolicy, ModuleSlots, NewAuditEntry, NodeMetrics, NodeRecord, RunRecord, RunStatus, RunSummary, TenantId,
    UserRecord,
};
use crate::domain::{ModuleVersion, QuotaExceeded, SigningKey};

pub use agents::AgentStore;
pub use graph::GraphStore;
pub use leases::{ClaimedRun, LeaseStore, RelayOutcome, RelayedAnswer, RelayedVerb, RunFence, DEFAULT_LEASE_TTL};
pub use memory::{FaultHook, MemoryStore, StoreCall, DEFAULT_FINISHED_RUNS};
pub use tenants::{Admission, AdmissionCheck, RunCounts, TenantStore, UsageCounts};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("module '{module}' already has an active run {execution_id}")]
    ModuleBusy { module: String, execution_id: Uuid },
    #[error("{0}")]
    NotFound(String),
    /// A unique value (a username, a tenant's email address) is taken.
    #[error("{0}")]
    Conflict(String),
    /// A writer tried to save an older revision than the one stored.
    #[error("stale write: {0}")]
    Stale(String),
    /// The run's lease has passed to another owner since the writer got it
    /// (see [`LeaseStore`]): the writer must let the run go, not retry.
    #[error("fenced: {0}")]
    Fenced(String),
    #[error("{0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A store call with a deadline: one that takes longer than `deadline` is
/// given up and answered `Unavailable`, which callers retry as an outage.
/// A zero deadline means none.
pub async fn within<T>(
    deadline: std::time::Duration,
    call: impl std::future::Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    if deadline.is_zero() {
        return call.await;
    }
    match tokio::time::timeout(deadline, call).await {
        Ok(answer) => answer,
        Err(_) => Err(StoreError::Unavailable(format!(
            "the store did not answer within {}",
            humantime::format_duration(deadline)
        ))),
    }
}

pub use crate::domain::RunEvent;

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub module_name: Option<String>,
    pub environment: Option<Environment>,
    /// 1-based.
    pub page: u32,
    pub page_size: u32,
}

impl RunFilter {
    /// Whether any filter narrows the list (an unfiltered list is counted
    /// without reading the runs).
    pub fn narrows(&self) -> bool {
        self.status.is_some() || self.module_name.is_some() || self.environment.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Average metrics of one environment's nodes at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSample {
    pub tenant_id: TenantId,
    pub environment: Environment,
    pub at: DateTime<Utc>,
    pub metrics: NodeMetrics,
    pub healthy_nodes: u32,
    pub total_nodes: u32,
}

#[async_trait]
pub trait RunStore: Send + Sync {
    /// Stores a new run, unless a run of the same module in the same tenant
    /// still holds the module; that check and the insert are one atomic step.
    async fn create_run(&self, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()>;
    /// Replaces a run with a newer revision together with the events that
    /// describe the change, atomically. `Fenced` when the run names an owner
    /// whose lease epoch is no longer the stored one.
    async fn save_run(&self, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()>;
    async fn get_run(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Option<RunRecord>>;
    /// Newest first.
    async fn list_runs(&self, tenant: TenantId, filter: &RunFilter) -> StoreResult<Page<RunSummary>>;
    /// Runs of every tenant that still hold their module; read at start-up so
    /// that their coordinators can resume, and by the reconciler, which gives
    /// any of them found without a coordinator a new one.
    async fn runs_in_flight(&self) -> StoreResult<Vec<RunRecord>>;
    async fn run_events(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Vec<RunEvent>>;
}

/// One node's new slots of one module.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotWrite {
    pub tenant: TenantId,
    pub node_id: Uuid,
    pub module: String,
    pub slots: ModuleSlots,
    /// A run's step: made only while the run's lease is still at this
    /// epoch (see [`LeaseStore::set_module_slots_fenced`]).
    pub fence: Option<RunFence>,
}

impl SlotWrite {
    /// The different fences among `writes`, each with the first node that
    /// carries it (for the message when it is stale): a wave's writes share
    /// a few runs' fences, which a store checks once each.
    pub fn distinct_fences(writes: &[SlotWrite]) -> Vec<(RunFence, Uuid)> {
        let mut fences: Vec<(RunFence, Uuid)> = Vec::new();
        for w in writes {
            if let Some(fence) = w.fence.filter(|f| !fences.iter().any(|(seen, _)| seen == f)) {
                fences.push((fence, w.node_id));
            }
        }
        fences
    }
}

#[async_trait]
pub trait NodeStore: Send + Sync {
    /// Registers a node; an existing record keeps its module state.
    async fn register_node(&self, node: &NodeRecord) -> StoreResult<NodeRecord>;
    async fn get_node(&self, tenant: TenantId, node_id: Uuid) -> StoreResult<Option<NodeRecord>>;
    async fn set_module_slots(
        &self,
        tenant: TenantId,
        node_id: Uuid,
        module: &str,
        slots: &ModuleSlots,
    ) -> StoreResult<()>;
    /// Several node writes at once, all or nothing: what the node actors of
    /// one wave write together (see `node::SlotWriter`), in one transaction.
    /// A write with a fence is checked as [`LeaseStore::set_module_slots_fenced`]
    /// checks it, within the same transaction; when any fence is stale the
    /// whole batch is refused (`Fenced`) and nothing is written (the writer
    /// then writes them one by one, so that each hears its own answer).
    async fn set_module_slots_batch(&self, writes: &[SlotWrite]) -> StoreResult<()>;
    /// Whether node writes are worth gathering into batches: yes where each
    /// write on its own costs a transaction (and its commit). The memory
    /// store says no: a write there is a map update under a lock, cheaper
    /// than handing it to a batch and waiting for the batch's answer (unless
    /// a test asks it to group them).
    fn groups_node_writes(&self) -> bool {
        true
    }
    /// The slots of `module` on each of `node_ids`, in the same order.
    async fn module_slots(&self, tenant: TenantId, node_ids: &[Uuid], module: &str) -> StoreResult<Vec<ModuleSlots>>;
    async fn nodes_in(&self, tenant: TenantId, environment: Environment) -> StoreResult<Vec<NodeRecord>>;
    /// Removes the records of `node_ids` with their module slots, answering
    /// how many there were: simulated nodes a cluster no longer has (a
    /// smaller `[simulation.nodes]` or tier than when they were made). An
    /// agent's node leaves with its agent (`AgentStore::remove_agent`)
    /// instead: an id that is an agent's is kept, even one enrolled since
    /// the caller listed the nodes.
    async fn forget_nodes(&self, tenant: TenantId, node_ids: &[Uuid]) -> StoreResult<usize>;
    /// (environment, hostname, slots) of every node of the tenant that holds
    /// some version of `module`, environments in promotion order, then by
    /// hostname.
    async fn module_placements(
        &self,
        tenant: TenantId,
        module: &str,
    ) -> StoreResult<Vec<(Environment, String, ModuleSlots)>>;
    /// The versions of `module` that some node of the tenant has active or
    /// as its previous version, each once, in no set order: what a create's
    /// downgrade check compares with, answered without copying every
    /// placement (a cluster of 100,000 nodes holds 100,000).
    async fn versions_held(&self, tenant: TenantId, module: &str) -> StoreResult<Vec<String>>;
}

#[async_trait]
pub trait MetricsStore: Send + Sync {
    /// Keeps at most `retain` samples per tenant and environment.
    async fn record_sample(&self, sample: &ClusterSample, retain: usize) -> StoreResult<()>;
    /// Samples in `[from, to]`, oldest first.
    async fn samples(
        &self,
        tenant: TenantId,
        environment: Environment,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<ClusterSample>>;
}

/// Users, by tenant. Every method takes the tenant and filters on it, except
/// `find_user_by_username`: login knows no tenant yet, so usernames are
/// unique across tenants (ignoring case) and the lookup spans them all.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user; `Conflict` when the username (in any tenant, any
    /// case) or the email address (in the tenant, any case) is taken.
    async fn create_user(&self, user: &UserRecord, audit: &NewAuditEntry) -> StoreResult<()>;
    async fn get_user(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<UserRecord>>;
    /// Case-insensitive, across tenants (see above).
    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Sorted by username, ignoring case.
    async fn list_users(&self, tenant: TenantId) -> StoreResult<Vec<UserRecord>>;
    /// Replaces the stored user (same tenant and id); `NotFound` when there is
    /// none, `Conflict` when the new username or email is taken.
    async fn update_user(&self, user: &UserRecord, audit: &NewAuditEntry) -> StoreResult<()>;
    /// Counts a bad password atomically (see
    /// [`UserRecord::register_failed_login`]) and returns the user as stored
    /// afterwards, or `None` when there is no such user. Writes `audit`, and
    /// when this failure locks the account also the lockout's entry
    /// ([`crate::domain::audit_entries::lockout_entry`]).
    async fn record_failed_login(
        &self,
        tenant: TenantId,
        id: Uuid,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<UserRecord>>;
    /// Clears the failure count and the lockout, and notes the login time.
    async fn record_successful_login(
        &self,
        tenant: TenantId,
        id: Uuid,
        now: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<()>;
}

/// A bearer token's standing in the store (see `RevokedTokenStore::token_holder`).
#[derive(Debug, Clone)]
pub struct TokenHolder {
    pub revoked: bool,
    /// `None` when the tenant has no such user.
    pub user: Option<UserRecord>,
    /// The status of the token's tenant; `None` when the tenant is not stored.
    pub tenant_status: Option<crate::domain::TenantStatus>,
}

/// Tokens that were logged out before they expired, by their `jti`.
#[async_trait]
pub trait RevokedTokenStore: Send + Sync {
    /// Revokes `jti` until `expires_at`; revoking it again is harmless.
    async fn revoke_token(
        &self,
        tenant: TenantId,
        jti: &str,
        expires_at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<()>;
    async fn is_token_revoked(&self, tenant: TenantId, jti: &str) -> StoreResult<bool>;
    /// Whether `jti` was revoked in `tenant`, the user `user_id` as stored
    /// and the tenant's status: what authentication asks on every request,
    /// in one look-up.
    async fn token_holder(&self, tenant: TenantId, user_id: Uuid, jti: &str) -> StoreResult<TokenHolder>;
    /// Forgets revocations of tokens that expired before `now`, in every
    /// tenant (an expired token is refused anyway); returns how many.
    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// The append-only audit trail. Changes that other traits store write their
/// entries in the same transaction (runs: see [`crate::domain::audit_entries::run_entries`]);
/// `append_audit` is for events that change nothing else, such as a failed
/// login. There is deliberately no update and no delete by id.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entries: &[NewAuditEntry]) -> StoreResult<()>;
    /// Newest first; `total` counts every entry that matches the filters,
    /// ignoring the cursor and the paging.
    async fn list_audit(&self, tenant: TenantId, query: &AuditQuery) -> StoreResult<Page<AuditEntry>>;
    /// Deletes at most `batch` of the oldest entries written before `cutoff`,
    /// in every tenant (retention); returns how many. Called in a loop, so
    /// that no single statement holds locks for long.
    async fn purge_audit(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<u64>;
}

/// Approval gates. A run waits on at most one pending approval at a time.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Saves `run` (as [`RunStore::save_run`] does, with its events and their
    /// audit entries) and stores `approval` with it, atomically. Saving the
    /// same approval again with a newer run revision is harmless, so that a
    /// coordinator that crashed half-way can repeat the step.
    async fn open_approval(&self, approval: &ApprovalRecord, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()>;
    /// Records `decision` if the approval is still pending; exactly one of
    /// several concurrent decisions wins. `audit` is written with it.
    async fn decide_approval(
        &self,
        tenant: TenantId,
        approval_id: Uuid,
        decision: &ApprovalDecision,
        audit: &NewAuditEntry,
    ) -> StoreResult<DecisionOutcome>;
    async fn get_approval(&self, tenant: TenantId, approval_id: Uuid) -> StoreResult<Option<ApprovalRecord>>;
    /// The newest approval of a run.
    async fn approval_for_run(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Option<ApprovalRecord>>;
    /// Oldest first.
    async fn pending_approvals(&self, tenant: TenantId) -> StoreResult<Vec<ApprovalRecord>>;
}

/// Whether one more version fits the tenant's quotas, given every version
/// the tenant stores (the registry's quota check, handed to the store so
/// that it runs inside the tenant's admission lock).
pub type VersionCheck<'a> = &'a (dyn Fn(&[ModuleVersion]) -> Result<(), QuotaExceeded> + Send + Sync);

/// The module registry's metadata: versions and trusted signing keys, by
/// tenant. The artifacts' bytes live in an artifact store of their own.
/// Every change writes its audit entry atomically with it.
#[async_trait]
pub trait RegistryStore: Send + Sync {
    /// Stores a new version; `Conflict` when the tenant has that name and
    /// version already.
    async fn add_module_version(&self, version: &ModuleVersion, audit: &NewAuditEntry) -> StoreResult<()>;
    /// Stores a new version as [`Self::add_module_version`] does, if `check`
    /// passes on every version the tenant stores. A store shared by several
    /// processes checks and inserts as one step under the tenant's admission
    /// lock (the one [`TenantStore::admit_run`] takes), so that uploads to
    /// different instances never store more modules than the quota; the
    /// default, for a store of one process, relies on the caller serialising
    /// the tenant's uploads. `Ok(Err(_))` is a refusal: nothing was stored.
    async fn admit_module_version(
        &self,
        version: &ModuleVersion,
        audit: &NewAuditEntry,
        check: VersionCheck<'_>,
    ) -> StoreResult<Result<(), QuotaExceeded>> {
        if let Err(over) = check(&self.all_module_versions(version.tenant_id).await?) {
            return Ok(Err(over));
        }
        self.add_module_version(version, audit).await.map(Ok)
    }
    async fn get_module_version(
        &self,
        tenant: TenantId,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<ModuleVersion>>;
    /// Every version of `name`, in no particular order.
    async fn module_versions(&self, tenant: TenantId, name: &str) -> StoreResult<Vec<ModuleVersion>>;
    /// Every version of every module of the tenant, in no particular order.
    async fn all_module_versions(&self, tenant: TenantId) -> StoreResult<Vec<ModuleVersion>>;
    /// Whether any version of any tenant names the artifact `sha256`; the
    /// artifact sweep asks before it removes bytes (across tenants, because
    /// artifacts are stored once by digest).
    async fn artifact_in_use(&self, sha256: &str) -> StoreResult<bool>;
    /// False when there was no such version (and then nothing is audited).
    async fn delete_module_version(
        &self,
        tenant: TenantId,
        name: &str,
        version: &str,
        audit: &NewAuditEntry,
    ) -> StoreResult<bool>;
    /// `Conflict` when the tenant trusts that key (same fingerprint) already.
    async fn add_signing_key(&self, key: &SigningKey, audit: &NewAuditEntry) -> StoreResult<()>;
    async fn get_signing_key(&self, tenant: TenantId, key_id: &str) -> StoreResult<Option<SigningKey>>;
    /// Oldest first.
    async fn list_signing_keys(&self, tenant: TenantId) -> StoreResult<Vec<SigningKey>>;
    /// Marks the key revoked at `at` (a second revocation keeps the first
    /// time and writes no entry); `None` when there is no such key.
    async fn revoke_signing_key(
        &self,
        tenant: TenantId,
        key_id: &str,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<SigningKey>>;
}

/// Deployment batches (`POST /api/v1/deployments/batch`): each save writes
/// its audit entry atomically with it.
#[async_trait]
pub trait BatchStore: Send + Sync {
    /// Stores a new batch, or replaces the stored one of the same id.
    async fn save_batch(&self, batch: &crate::domain::BatchRecord, audit: &NewAuditEntry) -> StoreResult<()>;
    async fn get_batch(&self, tenant: TenantId, batch_id: Uuid) -> StoreResult<Option<crate::domain::BatchRecord>>;
    /// The tenant's batches, newest first, at most `limit`; with `before`,
    /// only those that come after it in that order (the next page).
    async fn recent_batches(
        &self,
        tenant: TenantId,
        limit: usize,
        before: Option<crate::domain::BatchCursor>,
    ) -> StoreResult<Vec<crate::domain::BatchRecord>>;
    /// Running batches of every tenant, oldest first: the batch runner's work
    /// list, read on every tick (the one method here without a tenant).
    async fn batches_in_flight(&self) -> StoreResult<Vec<crate::domain::BatchRecord>>;
}

#[async_trait]
pub trait Store:
    RunStore
    + NodeStore
    + MetricsStore
    + UserStore
    + RevokedTokenStore
    + AuditStore
    + ApprovalStore
    + TenantStore
    + RegistryStore
    + GraphStore
    + BatchStore
    + LeaseStore
    + AgentStore
{
    /// Cheap round trip used by readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    fn backend(&self) -> &'static str;
}

pub type SharedStore = Arc<dyn Store>;
