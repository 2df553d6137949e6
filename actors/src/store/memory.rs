use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use uuid::Uuid;

use super::*;
use crate::domain::TenantRecord;

mod agents;
mod batches;
mod compact;
mod graph;
mod leases;
mod node_shards;
mod roster;
mod runs;
mod tenants;

use runs::Runs;

// The registry's half of the store, in a file of its own.
mod module_registry;

/// How many finished runs (with their events) each tenant keeps in memory.
pub const DEFAULT_FINISHED_RUNS: usize = 10_000;

struct Window(usize);

struct LeaseTtl(std::time::Duration);

impl Default for LeaseTtl {
    fn default() -> Self {
        LeaseTtl(DEFAULT_LEASE_TTL)
    }
}

impl Default for Window {
    fn default() -> Self {
        Window(DEFAULT_FINISHED_RUNS)
    }
}

/// The embedded store: everything in process memory, lost on exit. It is the
/// default so that a fresh checkout runs without a database.
#[derive(Default)]
pub struct MemoryStore {
    runs: RwLock<Runs>,
    events: RwLock<HashMap<(TenantId, Uuid), Vec<RunEvent>>>,
    nodes: node_shards::NodeShards,
    samples: RwLock<HashMap<(TenantId, Environment), VecDeque<ClusterSample>>>,
    users: RwLock<HashMap<(TenantId, Uuid), UserRecord>>,
    revoked: RwLock<HashMap<(TenantId, String), DateTime<Utc>>>,
    /// Oldest first; ids increase.
    audit: RwLock<Vec<AuditEntry>>,
    approvals: RwLock<HashMap<(TenantId, Uuid), ApprovalRecord>>,
    tenants: RwLock<HashMap<TenantId, TenantRecord>>,
    registry: RwLock<module_registry::Registry>,
    graphs: RwLock<graph::Graphs>,
    batches: RwLock<batches::Batches>,
    agents: RwLock<agents::Agents>,
    /// Finished runs kept per tenant (and finished deployment batches).
    finished_window: Window,
    /// How long a run or task lease lasts unless renewed.
    lease_ttl: LeaseTtl,
    /// The cluster-wide task leases: owner and expiry.
    task_leases: parking_lot::Mutex<HashMap<String, (String, std::time::Instant)>>,
    /// Verbs relayed to a run's owner, with the owner's answer once given.
    relayed: parking_lot::Mutex<Vec<(crate::store::RelayedVerb, Option<crate::store::RelayedAnswer>)>>,
    /// Failures injected by tests; `None` in every real use.
    faults: Option<std::sync::Arc<dyn FaultHook>>,
    /// Whether node writes are gathered into batches as a database's are
    /// (see [`NodeStore::groups_node_writes`]); off unless a test asks.
    grouped_node_writes: bool,
}

/// A store call a [`FaultHook`] may fail.
#[derive(Debug)]
pub enum StoreCall<'a> {
    SaveRun(&'a RunRecord),
    GetRun {
        tenant: TenantId,
        execution_id: Uuid,
    },
    ModuleSlots {
        tenant: TenantId,
        module: &'a str,
    },
    SetModuleSlots {
        node_id: Uuid,
        module: &'a str,
        slots: &'a ModuleSlots,
    },
    /// A cluster's metrics sample being recorded.
    RecordSample(&'a ClusterSample),
}

/// Lets a test make chosen calls of the memory store fail (or panic, as a
/// crashing caller would): consulted before the call; its error is the answer.
pub trait FaultHook: Send + Sync {
    fn before(&self, call: StoreCall<'_>) -> StoreResult<()>;

    /// How long the call hangs before it is answered (a half-open connection).
    fn hang(&self, _call: &StoreCall<'_>) -> Option<std::time::Duration> {
        None
    }
}

/// The uniqueness rules PostgreSQL's indexes enforce: a username across
/// tenants, an email address within its tenant, both ignoring case.
fn check_unique(users: &HashMap<(TenantId, Uuid), UserRecord>, user: &UserRecord) -> StoreResult<()> {
    let username = user.username.to_lowercase();
    let email = user.email.to_lowercase();
    for other in users.values().filter(|u| !(u.tenant_id == user.tenant_id && u.id == user.id)) {
        if other.username.to_lowercase() == username {
            return Err(StoreError::Conflict(format!("username '{}' is taken", user.username)));
        }
        if other.tenant_id == user.tenant_id && other.email.to_lowercase() == email {
            return Err(StoreError::Conflict(format!("email '{}' is taken", user.email)));
        }
    }
    Ok(())
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A memory store that keeps the newest `runs` finished runs of each
    /// tenant, with their events (at least one).
    pub fn with_finished_window(runs: usize) -> Self {
        MemoryStore { finished_window: Window(runs.max(1)), ..Self::default() }
    }

    /// The same store with leases lasting `ttl` unless renewed.
    pub fn with_lease_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.lease_ttl = LeaseTtl(ttl);
        self
    }

    /// The same store with node writes gathered into batches, as on
    /// PostgreSQL; for tests of the batches.
    pub fn with_grouped_node_writes(mut self) -> Self {
        self.grouped_node_writes = true;
        self
    }

    /// Forgets the events of runs that left the window.
    fn evict(&self, evicted: Vec<(TenantId, Uuid)>) {
        if evicted.is_empty() {
            return;
        }
        let mut events = self.events.write();
        for key in evicted {
            events.remove(&key);
        }
    }

    /// A memory store whose calls `hook` may fail; for tests.
    pub fn with_fault_hook(hook: std::sync::Arc<dyn FaultHook>) -> Self {
        MemoryStore { faults: Some(hook), ..Self::default() }
    }

    async fn inject(&self, call: StoreCall<'_>) -> StoreResult<()> {
        match &self.faults {
            Some(hook) => {
                if let Some(hang) = hook.hang(&call) {
                    tokio::time::sleep(hang).await;
                }
                hook.before(call)
            }
            None => Ok(()),
        }
    }

    /// Stores a new run under the runs' lock: refused while another run
    /// holds its module (even when this one would not hold it itself).
    fn insert_run(&self, runs: &mut Runs, run: &RunRecord) -> StoreResult<Vec<(TenantId, Uuid)>> {
        if let Some(holder) = runs.holder(run) {
            return Err(StoreError::ModuleBusy { module: run.request.module_name.clone(), execution_id: holder });
        }
        if runs.by_id.contains_key(&(run.tenant_id, run.execution_id)) {
            return Err(StoreError::Other(format!("deployment {} already exists", run.execution_id)));
        }
        runs.note_created(run);
        if run.owner.is_some() && run.holds_module() {
            runs.lease_expiry.insert((run.tenant_id, run.execution_id), std::time::Instant::now() + self.lease_ttl.0);
        }
        Ok(runs.put(run, self.finished_window.0))
    }

    /// What follows an insert outside the runs' lock: events, audit, eviction.
    fn after_insert(&self, run: &RunRecord, events: &[RunEvent], evicted: Vec<(TenantId, Uuid)>) {
        self.push_events(events);
        self.evict(evicted);
        self.push_audit(&crate::domain::audit_entries::run_entries(run, events));
    }

    fn push_events(&self, events: &[RunEvent]) {
        if events.is_empty() {
            return;
        }
        let mut all = self.events.write();
        for e in events {
            all.entry((e.tenant_id, e.execution_id)).or_default().push(e.clone());
        }
    }
}

#[async_trait]
impl RunStore for MemoryStore {
    async fn create_run(&self, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()> {
        let mut runs = self.runs.write();
        let evicted = self.insert_run(&mut runs, run)?;
        drop(runs);
        self.after_insert(run, events, evicted);
        Ok(())
    }

    async fn save_run(&self, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()> {
        self.inject(StoreCall::SaveRun(run)).await?;
        let mut runs = self.runs.write();
        let Some(stored) = runs.by_id.get(&(run.tenant_id, run.execution_id)) else {
            return Err(StoreError::NotFound(format!("deployment {} not found", run.execution_id)));
        };
        runs.check_fence(run)?;
        if stored.revision >= run.revision {
            return Err(StoreError::Stale(format!(
                "deployment {} is at revision {}, not saving revision {}",
                run.execution_id, stored.revision, run.revision
            )));
        }
        if let Some(holder) = runs.holder(run).filter(|_| run.holds_module()) {
            return Err(StoreError::ModuleBusy { module: run.request.module_name.clone(), execution_id: holder });
        }
        let evicted = runs.put(run, self.finished_window.0);
        drop(runs);
        self.push_events(events);
        self.evict(evicted);
        self.push_audit(&crate::domain::audit_entries::run_entries(run, events));
        Ok(())
    }

    async fn get_run(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Option<RunRecord>> {
        self.inject(StoreCall::GetRun { tenant, execution_id }).await?;
        Ok(self.runs.read().get(&(tenant, execution_id)))
    }

    async fn list_runs(&self, tenant: TenantId, filter: &RunFilter) -> StoreResult<Page<RunSummary>> {
        let skip = (filter.page.max(1) as usize - 1).saturating_mul(filter.page_size as usize);
        let matches = |r: &RunRecord| {
            filter.status.is_none_or(|s| r.status == s)
                && filter.module_name.as_deref().is_none_or(|m| r.request.module_name == m)
                && filter.environment.is_none_or(|e| r.request.target_environment == e)
        };
        let runs = self.runs.read();
        let (total, items) = runs.page(
            tenant,
            filter.narrows().then_some(&matches as &dyn Fn(&RunRecord) -> bool),
            skip,
            filter.page_size as usize,
        );
        Ok(Page { items, total })
    }

    async fn runs_in_flight(&self) -> StoreResult<Vec<RunRecord>> {
        let runs = self.runs.read();
        Ok(runs.active().filter_map(|r| runs.get(&(r.tenant_id, r.execution_id))).collect())
    }

    async fn run_events(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Vec<RunEvent>> {
        Ok(self.events.read().get(&(tenant, execution_id)).cloned().unwrap_or_default())
    }
}

#[async_trait]
impl NodeStore for MemoryStore {
    async fn register_node(&self, node: &NodeRecord) -> StoreResult<NodeRecord> {
        let mut nodes = self.nodes.shard(node.node_id).write();
        Ok(nodes.entry((node.tenant_id, node.node_id)).or_insert_with(|| node.clone()).clone())
    }

    async fn get_node(&self, tenant: TenantId, node_id: Uuid) -> StoreResult<Option<NodeRecord>> {
        Ok(self.nodes.get(tenant, node_id))
    }

    async fn set_module_slots(
        &self,
        tenant: TenantId,
        node_id: Uuid,
        module: &str,
        slots: &ModuleSlots,
    ) -> StoreResult<()> {
        self.inject(StoreCall::SetModuleSlots { node_id, module, slots }).await?;
        let mut nodes = self.nodes.shard(node_id).write();
        let node = nodes
            .get_mut(&(tenant, node_id))
            .ok_or_else(|| StoreError::NotFound(format!("node {node_id} not found")))?;
        if slots.is_empty() {
            node.modules.remove(module);
        } else {
            node.modules.insert(module.to_string(), slots.clone());
        }
        node.updated_at = Utc::now();
        Ok(())
    }

    async fn set_module_slots_batch(&self, writes: &[super::SlotWrite]) -> StoreResult<()> {
        for w in writes {
            self.inject(StoreCall::SetModuleSlots { node_id: w.node_id, module: &w.module, slots: &w.slots }).await?;
        }
        // All or nothing, as in one transaction: every fence and every node is checked first.
        for (fence, node_id) in super::SlotWrite::distinct_fences(writes) {
            self.check_fence(&fence, node_id)?;
        }
        let mut nodes = self.nodes.write_all();
        if let Some(missing) = writes.iter().find(|w| !nodes.contains(w.tenant, w.node_id)) {
            return Err(StoreError::NotFound(format!("node {} not found", missing.node_id)));
        }
        let now = Utc::now();
        for w in writes {
            if let Some(node) = nodes.get_mut(w.tenant, w.node_id) {
                if w.slots.is_empty() {
                    node.modules.remove(&w.module);
                } else {
                    node.modules.insert(w.module.clone(), w.slots.clone());
                }
                node.updated_at = now;
            }
        }
        Ok(())
    }

    fn groups_node_writes(&self) -> bool {
        self.grouped_node_writes
    }

    async fn module_slots(&self, tenant: TenantId, node_ids: &[Uuid], module: &str) -> StoreResult<Vec<ModuleSlots>> {
        self.inject(StoreCall::ModuleSlots { tenant, module }).await?;
        Ok(node_ids
            .iter()
            .map(|id| {
                let shard = self.nodes.shard(*id).read();
                shard.get(&(tenant, *id)).and_then(|n| n.modules.get(module).cloned()).unwrap_or_default()
            })
            .collect())
    }

    async fn nodes_in(&self, tenant: TenantId, environment: Environment) -> StoreResult<Vec<NodeRecord>> {
        let mut found = self.nodes.collect(|n| n.tenant_id == tenant && n.environment == environment);
        found.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        Ok(found)
    }

    async fn forget_nodes(&self, tenant: TenantId, node_ids: &[Uuid]) -> StoreResult<usize> {
        // An agent's node stays, even one enrolled since the caller looked.
        let agents = self.agents.read();
        let forgettable = node_ids.iter().filter(|id| !agents.has_agent(tenant, **id));
        Ok(forgettable.filter(|id| self.nodes.shard(**id).write().remove(&(tenant, **id)).is_some()).count())
    }

    async fn module_placements(
        &self,
        tenant: TenantId,
        module: &str,
    ) -> StoreResult<Vec<(Environment, String, ModuleSlots)>> {
        // Copies only the nodes that hold the module, and of those only the
        // hostname and the module's slots.
        let mut found = Vec::new();
        self.nodes.for_each_holder(tenant, module, |node, slots| {
            found.push((node.environment, node.hostname.clone(), slots.clone()));
        });
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(found)
    }

    async fn versions_held(&self, tenant: TenantId, module: &str) -> StoreResult<Vec<String>> {
        let mut versions: Vec<String> = Vec::new();
        self.nodes.for_each_holder(tenant, module, |_, slots| {
            for version in slots.served_versions() {
                if !versions.iter().any(|v| v == version) {
                    versions.push(version.to_string());
                }
            }
        });
        Ok(versions)
    }
}

#[async_trait]
impl MetricsStore for MemoryStore {
    async fn record_sample(&self, sample: &ClusterSample, retain: usize) -> StoreResult<()> {
        self.inject(StoreCall::RecordSample(sample)).await?;
        let mut all = self.samples.write();
        let series = all.entry((sample.tenant_id, sample.environment)).or_default();
        series.push_back(sample.clone());
        while series.len() > retain.max(1) {
            series.pop_front();
        }
        Ok(())
    }

    async fn samples(
        &self,
        tenant: TenantId,
        environment: Environment,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<ClusterSample>> {
        Ok(self
            .samples
            .read()
            .get(&(tenant, environment))
            .map(|s| s.iter().filter(|x| x.at >= from && x.at <= to).cloned().collect())
            .unwrap_or_default())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, user: &UserRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        let mut users = self.users.write();
        if users.values().any(|u| u.id == user.id) {
            return Err(StoreError::Conflict(format!("user {} exists", user.id)));
        }
        check_unique(&users, user)?;
        users.insert((user.tenant_id, user.id), user.clone());
        drop(users);
        self.push_audit(std::slice::from_ref(audit));
        Ok(())
    }

    async fn get_user(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<UserRecord>> {
        Ok(self.users.read().get(&(tenant, id)).cloned())
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let wanted = username.to_lowercase();
        Ok(self.users.read().values().find(|u| u.username.to_lowercase() == wanted).cloned())
    }

    async fn list_users(&self, tenant: TenantId) -> StoreResult<Vec<UserRecord>> {
        let mut found: Vec<UserRecord> =
            self.users.read().values().filter(|u| u.tenant_id == tenant).cloned().collect();
        found.sort_by_cached_key(|u| (u.username.to_lowercase(), u.id));
        Ok(found)
    }

    async fn update_user(&self, user: &UserRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        let mut users = self.users.write();
        if !users.contains_key(&(user.tenant_id, user.id)) {
            return Err(StoreError::NotFound(format!("user {} not found", user.id)));
        }
        check_unique(&users, user)?;
        users.insert((user.tenant_id, user.id), user.clone());
        drop(users);
        self.push_audit(std::slice::from_ref(audit));
        Ok(())
    }

    async fn record_failed_login(
        &self,
        tenant: TenantId,
        id: Uuid,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<UserRecord>> {
        let mut users = self.users.write();
        let Some(user) = users.get_mut(&(tenant, id)) else { return Ok(None) };
        let was_locked = user.is_locked(now);
        user.register_failed_login(now, policy);
        let after = user.clone();
        drop(users);
        let mut entries = vec![audit.clone()];
        if !was_locked && after.is_locked(now) {
            entries.push(crate::domain::audit_entries::lockout_entry(audit, &after));
        }
        self.push_audit(&entries);
        Ok(Some(after))
    }

    async fn record_successful_login(
        &self,
        tenant: TenantId,
        id: Uuid,
        now: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<()> {
        if let Some(u) = self.users.write().get_mut(&(tenant, id)) {
            u.register_successful_login(now);
        }
        self.push_audit(std::slice::from_ref(audit));
        Ok(())
    }
}

#[async_trait]
impl RevokedTokenStore for MemoryStore {
    async fn revoke_token(
        &self,
        tenant: TenantId,
        jti: &str,
        expires_at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<()> {
        let mut revoked = self.revoked.write();
        let until = revoked.entry((tenant, jti.to_string())).or_insert(expires_at);
        *until = (*until).max(expires_at);
        drop(revoked);
        self.push_audit(std::slice::from_ref(audit));
        Ok(())
    }

    async fn is_token_revoked(&self, tenant: TenantId, jti: &str) -> StoreResult<bool> {
        let revoked = self.revoked.read();
        // Skips building a key in the common case of no revocations at all.
        if revoked.is_empty() {
            return Ok(false);
        }
        Ok(revoked.contains_key(&(tenant, jti.to_string())))
    }

    async fn token_holder(&self, tenant: TenantId, user_id: Uuid, jti: &str) -> StoreResult<TokenHolder> {
        let revoked = self.is_token_revoked(tenant, jti).await?;
        let tenant_status = self.tenants.read().get(&tenant).map(|t| t.status);
        Ok(TokenHolder { revoked, user: self.users.read().get(&(tenant, user_id)).cloned(), tenant_status })
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut revoked = self.revoked.write();
        let before = revoked.len();
        revoked.retain(|_, until| *until >= now);
        Ok((before - revoked.len()) as u64)
    }
}

impl MemoryStore {
    fn push_audit(&self, entries: &[NewAuditEntry]) {
        if entries.is_empty() {
            return;
        }
        let mut audit = self.audit.write();
        let first = audit.last().map_or(1, |e| e.id + 1);
        for (id, entry) in (first..).zip(entries) {
            audit.push(AuditEntry { id, entry: entry.clone() });
        }
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, entries: &[NewAuditEntry]) -> StoreResult<()> {
        self.push_audit(entries);
        Ok(())
    }

    async fn list_audit(&self, tenant: TenantId, query: &AuditQuery) -> StoreResult<Page<AuditEntry>> {
        let audit = self.audit.read();
        let matching = audit.iter().rev().filter(|e| e.entry.tenant_id == tenant);
        let unpaged = AuditQuery { before_id: None, ..query.clone() };
        let total = matching.clone().filter(|e| unpaged.matches(e)).count();
        let items = matching
            .filter(|e| query.matches(e))
            .skip(query.offset as usize)
            .take(query.limit as usize)
            .cloned()
            .collect();
        Ok(Page { items, total: total as u64 })
    }

    async fn purge_audit(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
        let mut audit = self.audit.write();
        let mut removed = 0u32;
        audit.retain(|e| {
            let old = removed < batch && e.entry.at < cutoff;
            removed += u32::from(old);
            !old
        });
        Ok(u64::from(removed))
    }
}

#[async_trait]
impl ApprovalStore for MemoryStore {
    async fn open_approval(&self, approval: &ApprovalRecord, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()> {
        {
            let approvals = self.approvals.read();
            let other_pending = approvals.values().any(|a| {
                a.tenant_id == approval.tenant_id
                    && a.execution_id == approval.execution_id
                    && a.approval_id != approval.approval_id
                    && a.status == ApprovalStatus::Pending
            });
            if other_pending {
                return Err(StoreError::Conflict(format!(
                    "deployment {} already waits on another approval",
                    approval.execution_id
                )));
            }
        }
        self.save_run(run, events).await?;
        self.approvals.write().entry((approval.tenant_id, approval.approval_id)).or_insert_with(|| approval.clone());
        Ok(())
    }

    async fn decide_approval(
        &self,
        tenant: TenantId,
        approval_id: Uuid,
        decision: &ApprovalDecision,
        audit: &NewAuditEntry,
    ) -> StoreResult<DecisionOutcome> {
        let mut approvals = self.approvals.write();
        let Some(stored) = approvals.get_mut(&(tenant, approval_id)) else {
            return Ok(DecisionOutcome::NotFound);
        };
        if stored.status != ApprovalStatus::Pending {
            return Ok(DecisionOutcome::AlreadyDecided(stored.clone()));
        }
        stored.status = decision.status;
        stored.decided_at = Some(decision.at);
        stored.decided_by_id = decision.by_id;
        stored.decided_by_email = decision.by_email.clone();
        stored.reason = decision.reason.clone();
        let decided = stored.clone();
        drop(approvals);
        self.push_audit(std::slice::from_ref(audit));
        Ok(DecisionOutcome::Decided(decided))
    }

    async fn get_approval(&self, tenant: TenantId, approval_id: Uuid) -> StoreResult<Option<ApprovalRecord>> {
        Ok(self.approvals.read().get(&(tenant, approval_id)).cloned())
    }

    async fn approval_for_run(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Option<ApprovalRecord>> {
        let approvals = self.approvals.read();
        Ok(approvals
            .values()
            .filter(|a| a.tenant_id == tenant && a.execution_id == execution_id)
            .max_by_key(|a| (a.requested_at, a.approval_id))
            .cloned())
    }

    async fn pending_approvals(&self, tenant: TenantId) -> StoreResult<Vec<ApprovalRecord>> {
        let mut pending: Vec<_> = self
            .approvals
            .read()
            .values()
            .filter(|a| a.tenant_id == tenant && a.status == ApprovalStatus::Pending)
            .cloned()
            .collect();
        pending.sort_by_key(|a| (a.requested_at, a.approval_id));
        Ok(pending)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
    fn backend(&self) -> &'static str {
        "memory"
    }
}
