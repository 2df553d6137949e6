//! `GraphSyncStore`: the store the actors write through. It forwards every
//! call to the real store and, once a change is durable there, writes what
//! it means for the graph (a run's node change updates the graph, not a
//! periodic copy). A graph write that fails is logged and left for
//! `hotswap graph rebuild`: the change itself has been acknowledged.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::service::GraphService;
use super::system;
use super::write_queue::GraphWriteQueue;
use crate::domain::{AgentRecord, DesiredModule, EnrolmentToken};
use crate::domain::{
    ApprovalDecision, ApprovalRecord, AuditEntry, AuditQuery, DecisionOutcome, Environment, GraphChange, GraphEntity,
    GraphRelationship, GraphSchema, GraphSnapshot, LockoutPolicy, ModuleSlots, ModuleVersion, NewAuditEntry,
    NodeRecord, QuotaExceeded, RunRecord, RunSummary, SigningKey, TenantId, TenantRecord, TenantStatus, UserRecord,
};
use crate::store::AgentStore;
use crate::store::{
    Admission, AdmissionCheck, ApprovalStore, AuditStore, ClaimedRun, ClusterSample, GraphStore, LeaseStore,
    MetricsStore, NodeStore, Page, RegistryStore, RevokedTokenStore, RunCounts, RunEvent, RunFilter, RunStore,
    SharedStore, Store, StoreResult, TenantStore, TokenHolder, UsageCounts, UserStore, VersionCheck,
};

pub struct GraphSyncStore {
    inner: SharedStore,
    graph: Arc<GraphService>,
    /// The graph's writes, grouped per tenant.
    writes: Arc<GraphWriteQueue>,
    /// What the graph last got of each unfinished run (see [`RunShape`]): a
    /// checkpoint that changes none of it needs no graph write.
    synced_runs: parking_lot::Mutex<HashMap<Uuid, RunShape>>,
}

/// All of a run that `system::run_items` reads and can change while it runs
/// (its status and the nodes it changed, which only grow), with the lease
/// epoch it was saved under, so that a run that moved between instances is
/// written again.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RunShape {
    status: crate::domain::RunStatus,
    changes: usize,
    epoch: Option<u64>,
}

impl RunShape {
    fn of(run: &RunRecord) -> Self {
        RunShape { status: run.status, changes: run.changes.len(), epoch: run.owner.as_ref().map(|o| o.epoch) }
    }
}

/// Unfinished runs remembered at most; past it the memory starts afresh
/// (which costs one graph write per run, nothing else).
const SYNCED_RUNS_CAP: usize = 100_000;

impl GraphSyncStore {
    /// Wraps `graph`'s store; hand the result to the actors.
    pub fn wrap(graph: Arc<GraphService>) -> SharedStore {
        Arc::new(GraphSyncStore {
            inner: graph.store().clone(),
            writes: GraphWriteQueue::new(graph.clone()),
            graph,
            synced_runs: Default::default(),
        })
    }

    /// Writes `change` to the graph (logged when it fails); answers whether it was written.
    async fn sync(&self, tenant: TenantId, change: GraphChange) -> bool {
        self.writes.write(tenant, change).await
    }

    /// Writes a saved run to the graph unless the graph already has all of
    /// it that the graph shows.
    async fn sync_run(&self, run: &RunRecord) {
        let shape = RunShape::of(run);
        let previous = self.synced_runs.lock().get(&run.execution_id).copied();
        if previous == Some(shape) {
            return;
        }
        // The changes only grow: under the same lease the graph has the
        // first ones already, and gets the run and its newer changes.
        let first_change = match previous {
            Some(p) if p.epoch == shape.epoch && p.changes <= shape.changes => p.changes,
            _ => 0,
        };
        let synced = self.sync(run.tenant_id, system::run_items_from(run, first_change)).await;
        let mut runs = self.synced_runs.lock();
        if !synced || run.finished_at.is_some() {
            runs.remove(&run.execution_id);
            return;
        }
        if runs.len() >= SYNCED_RUNS_CAP {
            runs.clear();
        }
        runs.insert(run.execution_id, shape);
    }
}

#[async_trait]
impl RunStore for GraphSyncStore {
    async fn create_run(&self, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()> {
        self.inner.create_run(run, events).await?;
        self.sync(run.tenant_id, system::run_items(run)).await;
        Ok(())
    }
    async fn save_run(&self, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()> {
        self.inner.save_run(run, events).await?;
        self.sync_run(run).await;
        Ok(())
    }
    async fn get_run(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Option<RunRecord>> {
        self.inner.get_run(tenant, execution_id).await
    }
    async fn list_runs(&self, tenant: TenantId, filter: &RunFilter) -> StoreResult<Page<RunSummary>> {
        self.inner.list_runs(tenant, filter).await
    }
    async fn runs_in_flight(&self) -> StoreResult<Vec<RunRecord>> {
        self.inner.runs_in_flight().await
    }
    async fn run_events(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Vec<RunEvent>> {
        self.inner.run_events(tenant, execution_id).await
    }
}

#[async_trait]
impl NodeStore for GraphSyncStore {
    async fn register_node(&self, node: &NodeRecord) -> StoreResult<NodeRecord> {
        let stored = self.inner.register_node(node).await?;
        self.sync(stored.tenant_id, system::node_items(&stored)).await;
        Ok(stored)
    }
    async fn get_node(&self, tenant: TenantId, node_id: Uuid) -> StoreResult<Option<NodeRecord>> {
        self.inner.get_node(tenant, node_id).await
    }
    async fn set_module_slots(
        &self,
        tenant: TenantId,
        node_id: Uuid,
        module: &str,
        slots: &ModuleSlots,
    ) -> StoreResult<()> {
        self.inner.set_module_slots(tenant, node_id, module, slots).await?;
        self.sync(tenant, system::slot_items(tenant, node_id, module, slots)).await;
        Ok(())
    }
    fn groups_node_writes(&self) -> bool {
        self.inner.groups_node_writes()
    }
    async fn set_module_slots_batch(&self, writes: &[crate::store::SlotWrite]) -> StoreResult<()> {
        self.inner.set_module_slots_batch(writes).await?;
        // One graph write per tenant for the whole wave, not one per node,
        // when no node's module is written twice (then the order matters).
        let mut seen = std::collections::HashSet::new();
        if !writes.iter().all(|w| seen.insert((w.tenant, w.node_id, w.module.as_str()))) {
            for w in writes {
                self.sync(w.tenant, system::slot_items(w.tenant, w.node_id, &w.module, &w.slots)).await;
            }
            return Ok(());
        }
        let mut changes: Vec<(TenantId, GraphChange)> = Vec::new();
        for w in writes {
            let items = system::slot_items(w.tenant, w.node_id, &w.module, &w.slots);
            match changes.iter_mut().find(|(t, _)| *t == w.tenant) {
                Some((_, change)) => change.extend(items),
                None => changes.push((w.tenant, items)),
            }
        }
        for (tenant, change) in changes {
            self.sync(tenant, change).await;
        }
        Ok(())
    }
    async fn module_slots(&self, tenant: TenantId, node_ids: &[Uuid], module: &str) -> StoreResult<Vec<ModuleSlots>> {
        self.inner.module_slots(tenant, node_ids, module).await
    }
    async fn nodes_in(&self, tenant: TenantId, environment: Environment) -> StoreResult<Vec<NodeRecord>> {
        self.inner.nodes_in(tenant, environment).await
    }
    async fn forget_nodes(&self, tenant: TenantId, node_ids: &[Uuid]) -> StoreResult<usize> {
        let forgotten = self.inner.forget_nodes(tenant, node_ids).await?;
        // The nodes leave the graph with their relationships, as a removed host's does.
        let change = GraphChange { delete_entities: node_ids.to_vec(), ..GraphChange::default() };
        self.sync(tenant, change).await;
        Ok(forgotten)
    }
    async fn module_placements(
        &self,
        tenant: TenantId,
        module: &str,
    ) -> StoreResult<Vec<(Environment, String, ModuleSlots)>> {
        self.inner.module_placements(tenant, module).await
    }
    async fn versions_held(&self, tenant: TenantId, module: &str) -> StoreResult<Vec<String>> {
        self.inner.versions_held(tenant, module).await
    }
}

#[async_trait]
impl MetricsStore for GraphSyncStore {
    async fn record_sample(&self, sample: &ClusterSample, retain: usize) -> StoreResult<()> {
        self.inner.record_sample(sample, retain).await
    }
    async fn samples(
        &self,
        tenant: TenantId,
        environment: Environment,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<ClusterSample>> {
        self.inner.samples(tenant, environment, from, to).await
    }
}

#[async_trait]
impl UserStore for GraphSyncStore {
    async fn create_user(&self, user: &UserRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        self.inner.create_user(user, audit).await
    }
    async fn get_user(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<UserRecord>> {
        self.inner.get_user(tenant, id).await
    }
    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.inner.find_user_by_username(username).await
    }
    async fn list_users(&self, tenant: TenantId) -> StoreResult<Vec<UserRecord>> {
        self.inner.list_users(tenant).await
    }
    async fn update_user(&self, user: &UserRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        self.inner.update_user(user, audit).await
    }
    async fn record_failed_login(
        &self,
        tenant: TenantId,
        id: Uuid,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<UserRecord>> {
        self.inner.record_failed_login(tenant, id, now, policy, audit).await
    }
    async fn record_successful_login(
        &self,
        tenant: TenantId,
        id: Uuid,
        now: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<()> {
        self.inner.record_successful_login(tenant, id, now, audit).await
    }
}

#[async_trait]
impl RevokedTokenStore for GraphSyncStore {
    async fn revoke_token(
        &self,
        tenant: TenantId,
        jti: &str,
        expires_at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<()> {
        self.inner.revoke_token(tenant, jti, expires_at, audit).await
    }
    async fn is_token_revoked(&self, tenant: TenantId, jti: &str) -> StoreResult<bool> {
        self.inner.is_token_revoked(tenant, jti).await
    }
    async fn token_holder(&self, tenant: TenantId, user_id: Uuid, jti: &str) -> StoreResult<TokenHolder> {
        self.inner.token_holder(tenant, user_id, jti).await
    }
    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.purge_expired_tokens(now).await
    }
}

#[async_trait]
impl AuditStore for GraphSyncStore {
    async fn append_audit(&self, entries: &[NewAuditEntry]) -> StoreResult<()> {
        self.inner.append_audit(entries).await
    }
    async fn list_audit(&self, tenant: TenantId, query: &AuditQuery) -> StoreResult<Page<AuditEntry>> {
        self.inner.list_audit(tenant, query).await
    }
    async fn purge_audit(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
        self.inner.purge_audit(cutoff, batch).await
    }
}

#[async_trait]
impl ApprovalStore for GraphSyncStore {
    async fn open_approval(&self, approval: &ApprovalRecord, run: &RunRecord, events: &[RunEvent]) -> StoreResult<()> {
        self.inner.open_approval(approval, run, events).await?;
        self.sync_run(run).await;
        Ok(())
    }
    async fn decide_approval(
        &self,
        tenant: TenantId,
        approval_id: Uuid,
        decision: &ApprovalDecision,
        audit: &NewAuditEntry,
    ) -> StoreResult<DecisionOutcome> {
        self.inner.decide_approval(tenant, approval_id, decision, audit).await
    }
    async fn get_approval(&self, tenant: TenantId, approval_id: Uuid) -> StoreResult<Option<ApprovalRecord>> {
        self.inner.get_approval(tenant, approval_id).await
    }
    async fn approval_for_run(&self, tenant: TenantId, execution_id: Uuid) -> StoreResult<Option<ApprovalRecord>> {
        self.inner.approval_for_run(tenant, execution_id).await
    }
    async fn pending_approvals(&self, tenant: TenantId) -> StoreResult<Vec<ApprovalRecord>> {
        self.inner.pending_approvals(tenant).await
    }
}

#[async_trait]
impl TenantStore for GraphSyncStore {
    async fn create_tenant(&self, tenant: &TenantRecord, audit: &[NewAuditEntry]) -> StoreResult<()> {
        self.inner.create_tenant(tenant, audit).await?;
        self.sync(tenant.tenant_id, system::tenant_items(tenant)).await;
        Ok(())
    }
    async fn get_tenant(&self, tenant: TenantId) -> StoreResult<Option<TenantRecord>> {
        self.inner.get_tenant(tenant).await
    }
    async fn list_tenants(&self, status: Option<TenantStatus>) -> StoreResult<Vec<TenantRecord>> {
        self.inner.list_tenants(status).await
    }
    async fn save_tenant(&self, tenant: &TenantRecord, audit: &[NewAuditEntry]) -> StoreResult<()> {
        self.inner.save_tenant(tenant, audit).await?;
        self.sync(tenant.tenant_id, system::tenant_items(tenant)).await;
        Ok(())
    }
    async fn admit_run(
        &self,
        run: &RunRecord,
        events: &[RunEvent],
        since: DateTime<Utc>,
        check: AdmissionCheck<'_>,
    ) -> StoreResult<Result<(), QuotaExceeded>> {
        let admitted = self.inner.admit_run(run, events, since, check).await?;
        if admitted.is_ok() {
            self.sync(run.tenant_id, system::run_items(run)).await;
        }
        Ok(admitted)
    }
    async fn admit_runs(
        &self,
        batch: &[Admission<'_>],
        since: DateTime<Utc>,
        check: AdmissionCheck<'_>,
    ) -> Vec<StoreResult<Result<(), QuotaExceeded>>> {
        let results = self.inner.admit_runs(batch, since, check).await;
        // One graph write for the whole batch, per tenant (a batch is one tenant's).
        let mut changes: Vec<(TenantId, GraphChange)> = Vec::new();
        for (one, result) in batch.iter().zip(&results) {
            if !matches!(result, Ok(Ok(()))) {
                continue;
            }
            let items = system::run_items(one.run);
            match changes.iter_mut().find(|(t, _)| *t == one.run.tenant_id) {
                Some((_, change)) => change.extend(items),
                None => changes.push((one.run.tenant_id, items)),
            }
        }
        for (tenant, change) in changes {
            self.sync(tenant, change).await;
        }
        results
    }
    async fn run_counts(&self, tenant: TenantId, since: DateTime<Utc>, module: &str) -> StoreResult<RunCounts> {
        self.inner.run_counts(tenant, since, module).await
    }
    async fn usage_counts(&self, tenant: TenantId, from: DateTime<Utc>, to: DateTime<Utc>) -> StoreResult<UsageCounts> {
        self.inner.usage_counts(tenant, from, to).await
    }
}

#[async_trait]
impl RegistryStore for GraphSyncStore {
    async fn add_module_version(&self, version: &ModuleVersion, audit: &NewAuditEntry) -> StoreResult<()> {
        self.inner.add_module_version(version, audit).await?;
        self.sync(version.tenant_id, system::version_items(version)).await;
        Ok(())
    }
    async fn admit_module_version(
        &self,
        version: &ModuleVersion,
        audit: &NewAuditEntry,
        check: VersionCheck<'_>,
    ) -> StoreResult<Result<(), QuotaExceeded>> {
        let admitted = self.inner.admit_module_version(version, audit, check).await?;
        if admitted.is_ok() {
            self.sync(version.tenant_id, system::version_items(version)).await;
        }
        Ok(admitted)
    }
    async fn get_module_version(
        &self,
        tenant: TenantId,
        name: &str,
        version: &str,
    ) -> StoreResult<Option<ModuleVersion>> {
        self.inner.get_module_version(tenant, name, version).await
    }
    async fn module_versions(&self, tenant: TenantId, name: &str) -> StoreResult<Vec<ModuleVersion>> {
        self.inner.module_versions(tenant, name).await
    }
    async fn all_module_versions(&self, tenant: TenantId) -> StoreResult<Vec<ModuleVersion>> {
        self.inner.all_module_versions(tenant).await
    }
    async fn artifact_in_use(&self, sha256: &str) -> StoreResult<bool> {
        self.inner.artifact_in_use(sha256).await
    }
    async fn delete_module_version(
        &self,
        tenant: TenantId,
        name: &str,
        version: &str,
        audit: &NewAuditEntry,
    ) -> StoreResult<bool> {
        let stored = self.inner.get_module_version(tenant, name, version).await?;
        let deleted = self.inner.delete_module_version(tenant, name, version, audit).await?;
        if let (true, Some(v)) = (deleted, stored) {
            // The registry's facts go (its dependencies); the version itself
            // stays while a node runs it or a run names it, as a rebuild keeps it.
            let deps = system::version_items(&v).upsert_relationships;
            let change = GraphChange {
                delete_relationships: deps
                    .into_iter()
                    .filter(|r| r.relationship_type == super::schema::types::DEPENDS_ON)
                    .map(|r| r.id)
                    .collect(),
                ..GraphChange::default()
            };
            self.sync(tenant, change).await;
            if let Err(e) = self.graph.drop_unreferenced_version(tenant, name, version).await {
                tracing::warn!(%tenant, error = %e, "the knowledge graph kept a deleted version");
            }
            let mut modules: Vec<&str> = v.descriptor.dependencies.keys().map(String::as_str).collect();
            modules.push(name);
            if let Err(e) = self.graph.drop_unreferenced_modules(tenant, &modules).await {
                tracing::warn!(%tenant, error = %e, "the knowledge graph kept a module without versions");
            }
        }
        Ok(deleted)
    }
    async fn add_signing_key(&self, key: &SigningKey, audit: &NewAuditEntry) -> StoreResult<()> {
        self.inner.add_signing_key(key, audit).await
    }
    async fn get_signing_key(&self, tenant: TenantId, key_id: &str) -> StoreResult<Option<SigningKey>> {
        self.inner.get_signing_key(tenant, key_id).await
    }
    async fn list_signing_keys(&self, tenant: TenantId) -> StoreResult<Vec<SigningKey>> {
        self.inner.list_signing_keys(tenant).await
    }
    async fn revoke_signing_key(
        &self,
        tenant: TenantId,
        key_id: &str,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<SigningKey>> {
        self.inner.revoke_signing_key(tenant, key_id, at, audit).await
    }
}

/// Graph reads and writes pass straight through: the service itself writes
/// the graph.
#[async_trait]
impl GraphStore for GraphSyncStore {
    async fn graph_schema(&self, tenant: TenantId) -> StoreResult<Option<GraphSchema>> {
        self.inner.graph_schema(tenant).await
    }
    async fn save_graph_schema(&self, schema: &GraphSchema, audit: &NewAuditEntry) -> StoreResult<()> {
        self.inner.save_graph_schema(schema, audit).await
    }
    async fn write_graph(
        &self,
        tenant: TenantId,
        change: &GraphChange,
        audit: Option<&NewAuditEntry>,
    ) -> StoreResult<()> {
        self.inner.write_graph(tenant, change, audit).await
    }
    async fn graph_entities(&self, tenant: TenantId, ids: &[Uuid]) -> StoreResult<Vec<GraphEntity>> {
        self.inner.graph_entities(tenant, ids).await
    }
    async fn graph_entity(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<GraphEntity>> {
        self.inner.graph_entity(tenant, id).await
    }
    async fn graph_relationships(&self, tenant: TenantId, ids: &[Uuid]) -> StoreResult<Vec<GraphRelationship>> {
        self.inner.graph_relationships(tenant, ids).await
    }
    async fn load_graph(&self, tenant: TenantId) -> StoreResult<GraphSnapshot> {
        self.inner.load_graph(tenant).await
    }
    async fn graph_entity_ids_where(
        &self,
        tenant: TenantId,
        entity_type: Option<&str>,
        property: &str,
        value: &serde_json::Value,
    ) -> StoreResult<Vec<Uuid>> {
        self.inner.graph_entity_ids_where(tenant, entity_type, property, value).await
    }
    fn graph_has_property_index(&self) -> bool {
        self.inner.graph_has_property_index()
    }
}

/// Batches pass straight through: a batch's runs sync the graph themselves.
#[async_trait]
impl crate::store::BatchStore for GraphSyncStore {
    async fn save_batch(&self, batch: &crate::domain::BatchRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        self.inner.save_batch(batch, audit).await
    }
    async fn get_batch(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<crate::domain::BatchRecord>> {
        self.inner.get_batch(tenant, id).await
    }
    async fn recent_batches(
        &self,
        tenant: TenantId,
        limit: usize,
        before: Option<crate::domain::BatchCursor>,
    ) -> StoreResult<Vec<crate::domain::BatchRecord>> {
        self.inner.recent_batches(tenant, limit, before).await
    }
    async fn batches_in_flight(&self) -> StoreResult<Vec<crate::domain::BatchRecord>> {
        self.inner.batches_in_flight().await
    }
}

/// Agents and desired state are not in the graph: they pass straight through.
#[async_trait]
impl AgentStore for GraphSyncStore {
    async fn create_enrolment_token(&self, token: &EnrolmentToken, audit: &NewAuditEntry) -> StoreResult<()> {
        self.inner.create_enrolment_token(token, audit).await
    }
    async fn list_enrolment_tokens(&self, tenant: TenantId) -> StoreResult<Vec<EnrolmentToken>> {
        self.inner.list_enrolment_tokens(tenant).await
    }
    async fn get_enrolment_token(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<EnrolmentToken>> {
        self.inner.get_enrolment_token(tenant, id).await
    }
    async fn revoke_enrolment_token(
        &self,
        tenant: TenantId,
        id: Uuid,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<EnrolmentToken>> {
        self.inner.revoke_enrolment_token(tenant, id, at, audit).await
    }
    async fn find_enrolment_token(&self, token_hash: &str) -> StoreResult<Option<EnrolmentToken>> {
        self.inner.find_enrolment_token(token_hash).await
    }
    async fn prune_enrolment_tokens(&self, dead_before: DateTime<Utc>) -> StoreResult<usize> {
        self.inner.prune_enrolment_tokens(dead_before).await
    }
    async fn save_agent(&self, agent: &AgentRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        self.inner.save_agent(agent, audit).await
    }
    async fn find_agent_by_session(&self, session_hash: &str) -> StoreResult<Option<AgentRecord>> {
        self.inner.find_agent_by_session(session_hash).await
    }
    async fn list_agents(&self, tenant: TenantId) -> StoreResult<Vec<AgentRecord>> {
        self.inner.list_agents(tenant).await
    }
    async fn remove_agent(&self, tenant: TenantId, node_id: Uuid, audit: &NewAuditEntry) -> StoreResult<bool> {
        let removed = self.inner.remove_agent(tenant, node_id, audit).await?;
        if removed {
            // The host's node leaves the graph with its relationships (its
            // cluster's, what it ran, the runs that touched it).
            let change = GraphChange { delete_entities: vec![node_id], ..GraphChange::default() };
            self.sync(tenant, change).await;
        }
        Ok(removed)
    }
    async fn was_removed(&self, tenant: TenantId, node_id: Uuid, token_id: Uuid) -> StoreResult<bool> {
        self.inner.was_removed(tenant, node_id, token_id).await
    }
    async fn set_desired_module(&self, desired: &DesiredModule) -> StoreResult<()> {
        self.inner.set_desired_module(desired).await
    }
    async fn desired_modules(&self, tenant: TenantId, node_id: Uuid) -> StoreResult<Vec<DesiredModule>> {
        self.inner.desired_modules(tenant, node_id).await
    }
}

#[async_trait]
impl LeaseStore for GraphSyncStore {
    async fn claim_runs(&self, owner: &str, limit: u32) -> StoreResult<Vec<ClaimedRun>> {
        self.inner.claim_runs(owner, limit).await
    }
    async fn renew_runs(&self, owner: &str) -> StoreResult<Vec<Uuid>> {
        self.inner.renew_runs(owner).await
    }
    async fn release_runs(&self, owner: &str) -> StoreResult<u64> {
        self.inner.release_runs(owner).await
    }
    async fn hold_task(&self, task: &str, owner: &str) -> StoreResult<bool> {
        self.inner.hold_task(task, owner).await
    }
    async fn set_module_slots_fenced(
        &self,
        node_id: Uuid,
        module: &str,
        slots: &ModuleSlots,
        fence: &crate::store::RunFence,
    ) -> StoreResult<()> {
        self.inner.set_module_slots_fenced(node_id, module, slots, fence).await?;
        self.sync(fence.tenant_id, system::slot_items(fence.tenant_id, node_id, module, slots)).await;
        Ok(())
    }
    async fn take_finished_run(&self, tenant: TenantId, execution_id: Uuid, owner: &str) -> StoreResult<Option<u64>> {
        self.inner.take_finished_run(tenant, execution_id, owner).await
    }
    async fn relay_verb(&self, verb: &crate::store::RelayedVerb) -> StoreResult<()> {
        self.inner.relay_verb(verb).await
    }
    async fn relayed_verbs(&self, runs: &[Uuid]) -> StoreResult<Vec<crate::store::RelayedVerb>> {
        self.inner.relayed_verbs(runs).await
    }
    async fn answer_relayed_verb(&self, request_id: Uuid, answer: &crate::store::RelayedAnswer) -> StoreResult<()> {
        self.inner.answer_relayed_verb(request_id, answer).await
    }
    async fn take_relayed_answer(&self, request_id: Uuid) -> StoreResult<Option<crate::store::RelayedAnswer>> {
        self.inner.take_relayed_answer(request_id).await
    }
    async fn withdraw_relayed_verb(&self, request_id: Uuid) -> StoreResult<bool> {
        self.inner.withdraw_relayed_verb(request_id).await
    }
}

#[async_trait]
impl Store for GraphSyncStore {
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
