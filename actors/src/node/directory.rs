//! Where the node actors of each tenant and environment can be found, and how
//! a cluster's health follows from its nodes'.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use chrono::{DateTime, TimeZone, Utc};
use parking_lot::RwLock;
use uuid::Uuid;

use super::agent_link::{AgentLink, NodeKind};
use super::NodeActor;
use crate::domain::{Environment, TenantId};

/// One node as the rest of the system sees it. The address changes when the
/// node's supervisor restarts it; the heartbeat is written by the node itself.
pub struct NodeEntry {
    pub tenant_id: TenantId,
    pub node_id: Uuid,
    pub hostname: String,
    pub environment: Environment,
    pub kind: NodeKind,
    /// The agent's connection while it is connected (agent nodes only).
    link: RwLock<Option<Arc<dyn AgentLink>>>,
    addr: RwLock<Option<Addr<NodeActor>>>,
    /// The pool thread the current incarnation runs on ([`NO_THREAD`]: the
    /// arbiter that started it); requests to the node are relayed through it.
    thread: AtomicUsize,
    last_heartbeat_ms: AtomicI64,
    /// Requests sent to the node and not answered yet: its mailbox backlog.
    pending: AtomicUsize,
    /// Modules whose host state differs from the desired state and was left
    /// so (`[agent] drift = "flag"`), with what differs (agent nodes only).
    drift: RwLock<BTreeMap<String, String>>,
    /// Until when (ms since the epoch) requests wait for the agent to connect.
    grace_until_ms: AtomicI64,
    /// How long a request waits for an agent that is away to come back
    /// (`pipeline.node_request_timeout`, set when the host attaches).
    link_wait_ms: AtomicI64,
    /// Woken each time the agent connects or goes away.
    link_changed: tokio::sync::Notify,
}

/// The node's actor runs on the arbiter that started it, not on a pool thread.
const NO_THREAD: usize = usize::MAX;

/// How long after a restart the hosts known from before have to reconnect
/// before a request finds them unreachable: a few of the agents' capped
/// reconnection backoffs.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(10);

/// Counts one request as pending until dropped.
pub(crate) struct PendingRequest(Arc<NodeEntry>);

impl Drop for PendingRequest {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

impl NodeEntry {
    pub fn new(tenant_id: TenantId, node_id: Uuid, hostname: String, environment: Environment) -> Self {
        Self::of_kind(tenant_id, node_id, hostname, environment, NodeKind::Simulated)
    }

    pub fn of_kind(
        tenant_id: TenantId,
        node_id: Uuid,
        hostname: String,
        environment: Environment,
        kind: NodeKind,
    ) -> Self {
        NodeEntry {
            tenant_id,
            node_id,
            hostname,
            environment,
            kind,
            link: RwLock::new(None),
            addr: RwLock::new(None),
            thread: AtomicUsize::new(NO_THREAD),
            last_heartbeat_ms: AtomicI64::new(0),
            pending: AtomicUsize::new(0),
            drift: RwLock::new(BTreeMap::new()),
            grace_until_ms: AtomicI64::new(0),
            link_wait_ms: AtomicI64::new(0),
            link_changed: tokio::sync::Notify::new(),
        }
    }

    /// The node of a host known from before this process started: its
    /// agent is given [`RECONNECT_GRACE`] to reconnect before a request
    /// finds it unreachable, so that a resumed run carries on with it.
    pub fn awaiting_agent(tenant_id: TenantId, node_id: Uuid, hostname: String, environment: Environment) -> Self {
        let entry = Self::of_kind(tenant_id, node_id, hostname, environment, NodeKind::Agent);
        let until = Utc::now() + chrono::Duration::from_std(RECONNECT_GRACE).unwrap_or_default();
        entry.grace_until_ms.store(until.timestamp_millis(), Ordering::Relaxed);
        entry
    }

    /// How long a request may still wait for the agent to (re)connect.
    pub fn reconnect_grace(&self) -> Duration {
        let left = self.grace_until_ms.load(Ordering::Relaxed) - Utc::now().timestamp_millis();
        Duration::from_millis(left.max(0) as u64)
    }

    /// How long a request waits for the agent of an unreachable host to
    /// come back before the node answers "not reachable".
    pub fn link_wait(&self) -> Duration {
        Duration::from_millis(self.link_wait_ms.load(Ordering::Relaxed).max(0) as u64)
    }

    pub fn set_link_wait(&self, wait: Duration) {
        self.link_wait_ms.store(wait.as_millis().min(i64::MAX as u128) as i64, Ordering::Relaxed);
    }

    /// Resolves at the next change of the agent's link (see [`Self::set_agent_link`]).
    pub fn link_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.link_changed.notified()
    }

    pub(crate) fn track_request(self: &Arc<Self>) -> PendingRequest {
        self.pending.fetch_add(1, Ordering::Relaxed);
        PendingRequest(self.clone())
    }

    /// Requests waiting for the node or being handled by it.
    pub fn backlog(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    pub fn addr(&self) -> Option<Addr<NodeActor>> {
        self.addr.read().clone().filter(|a| a.connected())
    }

    /// Whether the node's actor is up: [`Self::addr`] without taking a copy
    /// of the address, whose counter lives on a cache line the actor's own
    /// thread writes (the heartbeat pass asks this of every node).
    pub fn is_up(&self) -> bool {
        self.addr.read().as_ref().is_some_and(|a| a.connected())
    }

    pub(crate) fn set_addr(&self, addr: Addr<NodeActor>, thread: Option<usize>) {
        let mut current = self.addr.write();
        self.thread.store(thread.unwrap_or(NO_THREAD), Ordering::Relaxed);
        *current = Some(addr);
    }

    /// Places the node on `thread` without an actor; for tests of what
    /// depends on the thread.
    #[cfg(test)]
    pub(crate) fn place_for_test(&self, thread: Option<usize>) {
        self.thread.store(thread.unwrap_or(NO_THREAD), Ordering::Relaxed);
    }

    /// The pool thread the node's actor runs on, when it has one of the pool's.
    pub fn thread(&self) -> Option<usize> {
        Some(self.thread.load(Ordering::Relaxed)).filter(|t| *t != NO_THREAD)
    }

    pub fn agent_link(&self) -> Option<Arc<dyn AgentLink>> {
        self.link.read().clone()
    }

    /// Whether the host's agent installs unsigned modules, as its latest
    /// report says; an agent never heard from is taken to require signatures
    /// (the agent's default).
    pub fn accepts_unsigned(&self) -> bool {
        self.agent_link().and_then(|l| l.last_report()).is_some_and(|r| r.accepts_unsigned)
    }

    /// The agent connected (`Some`) or went away (`None`).
    pub fn set_agent_link(&self, link: Option<Arc<dyn AgentLink>>) {
        *self.link.write() = link;
        self.link_changed.notify_waiters();
    }

    /// Records a sign of life: the node actor's own beat for simulated
    /// nodes, the agent's heartbeat for hosts.
    pub fn beat(&self) {
        self.beat_at(Utc::now().timestamp_millis());
    }

    /// A beat at `ms` since the epoch; the ticker reads the clock once for all nodes.
    pub(crate) fn beat_at(&self, ms: i64) {
        self.last_heartbeat_ms.store(ms, Ordering::Relaxed);
    }

    pub fn last_heartbeat(&self) -> Option<DateTime<Utc>> {
        match self.last_heartbeat_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Utc.timestamp_millis_opt(ms).single(),
        }
    }

    /// Modules that drifted from their desired state, with what differs.
    pub fn drift(&self) -> BTreeMap<String, String> {
        self.drift.read().clone()
    }

    pub fn set_drift(&self, module: &str, what: String) {
        self.drift.write().insert(module.to_string(), what);
    }

    /// The module is back on (or newly given) its desired state.
    pub fn clear_drift(&self, module: &str) {
        self.drift.write().remove(module);
    }

    /// Whether the last beat is at most `timeout` before `now_ms` (since the
    /// epoch). Callers that check many nodes read the clock once for all.
    pub fn heartbeat_fresh_at(&self, now_ms: i64, timeout: Duration) -> bool {
        match self.last_heartbeat_ms.load(Ordering::Relaxed) {
            0 => false,
            // A beat stamped after `now_ms` (read a moment later) is fresh.
            ms => now_ms.saturating_sub(ms) <= i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Whether the node's actor is running (cheaper than [`Self::addr`]:
    /// no address is copied).
    pub fn reachable(&self) -> bool {
        self.addr.read().as_ref().is_some_and(|a| a.connected())
    }
}

/// The nodes of one environment, sorted by hostname.
pub type ClusterNodes = Arc<Vec<Arc<NodeEntry>>>;

#[derive(Default)]
pub struct ClusterDirectory {
    clusters: RwLock<HashMap<(TenantId, Environment), ClusterNodes>>,
}

impl ClusterDirectory {
    pub fn insert(&self, tenant: TenantId, env: Environment, mut nodes: Vec<Arc<NodeEntry>>) {
        nodes.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        self.clusters.write().insert((tenant, env), Arc::new(nodes));
    }

    pub fn nodes(&self, tenant: TenantId, env: Environment) -> ClusterNodes {
        self.clusters.read().get(&(tenant, env)).cloned().unwrap_or_default()
    }

    /// Adds `node` to its cluster, or replaces the entry with its id.
    pub fn add_node(&self, node: Arc<NodeEntry>) {
        let mut clusters = self.clusters.write();
        let key = (node.tenant_id, node.environment);
        let mut nodes: Vec<Arc<NodeEntry>> = clusters
            .get(&key)
            .map(|n| n.iter().filter(|e| e.node_id != node.node_id).cloned().collect())
            .unwrap_or_default();
        nodes.push(node);
        nodes.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        clusters.insert(key, Arc::new(nodes));
    }

    /// Takes the node out of its tenant's clusters, answering its entry.
    pub fn remove_node(&self, tenant: TenantId, node_id: Uuid) -> Option<Arc<NodeEntry>> {
        let mut clusters = self.clusters.write();
        let (key, entry) = clusters
            .iter()
            .filter(|((t, _), _)| *t == tenant)
            .find_map(|(key, nodes)| nodes.iter().find(|e| e.node_id == node_id).map(|e| (*key, e.clone())))?;
        let rest: Vec<Arc<NodeEntry>> = clusters[&key].iter().filter(|e| e.node_id != node_id).cloned().collect();
        clusters.insert(key, Arc::new(rest));
        Some(entry)
    }

    /// Every cluster of every tenant.
    pub fn all(&self) -> Vec<ClusterNodes> {
        self.clusters.read().values().cloned().collect()
    }

    /// The tenants that have at least one cluster.
    pub fn tenants(&self) -> Vec<TenantId> {
        let mut found: Vec<TenantId> = self.clusters.read().keys().map(|(t, _)| *t).collect();
        found.sort();
        found.dedup();
        found
    }

    pub fn has_tenant(&self, tenant: TenantId) -> bool {
        self.clusters.read().keys().any(|(t, _)| *t == tenant)
    }

    /// Forgets every cluster of `tenant`, answering their nodes.
    pub fn remove_tenant(&self, tenant: TenantId) -> Vec<Arc<NodeEntry>> {
        let mut clusters = self.clusters.write();
        let keys: Vec<_> = clusters.keys().filter(|(t, _)| *t == tenant).copied().collect();
        keys.into_iter()
            .filter_map(|k| clusters.remove(&k))
            .flat_map(|nodes| nodes.iter().cloned().collect::<Vec<_>>())
            .collect()
    }
}

/// A cluster is healthy when no node is unhealthy or at least 80 % are healthy.
pub fn cluster_is_healthy(healthy: usize, total: usize) -> bool {
    healthy == total || healthy * 5 >= total * 4
}

#[cfg(test)]
mod tests {
    use super::cluster_is_healthy;

    #[test]
    fn eighty_percent_rule() {
        assert!(cluster_is_healthy(0, 0));
        assert!(cluster_is_healthy(16, 20));
        assert!(!cluster_is_healthy(15, 20));
        assert!(cluster_is_healthy(3, 3));
        assert!(!cluster_is_healthy(2, 3));
    }
}
