//! Reading clusters: node snapshots, cluster summaries, recorded metric
//! history, and the sampler that records it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::Orchestrator;
use crate::domain::{Environment, NodeMetrics, TenantId};
use crate::error::CoreError;
use crate::node::{cluster_is_healthy, gather_until, NodeActor, NodeEntry, NodeKind};
use crate::node::{MetricsReading, NodeSnapshot, ReadMetrics, Snapshot};
use crate::store::ClusterSample;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    pub environment: Environment,
    pub total_nodes: usize,
    pub healthy_nodes: usize,
    pub is_healthy: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub node_id: Uuid,
    pub hostname: String,
    /// "simulated" or "agent" (a real host).
    pub kind: &'static str,
    pub status: &'static str,
    pub is_healthy: bool,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub metrics: Option<NodeMetrics>,
    pub modules: BTreeMap<String, String>,
    pub health_messages: Vec<String>,
    /// Modules whose host state differs from the desired state (agent nodes
    /// under `[agent] drift = "flag"`): module → what differs.
    pub drift: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDetail {
    pub summary: ClusterSummary,
    pub metrics: NodeMetrics,
    pub nodes: Vec<NodeView>,
}

/// Which nodes a cluster page lists; `None` admits every node.
#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    pub healthy: Option<bool>,
    /// Nodes whose active version of this module is `version`, or that run
    /// it at all when no version is given.
    pub module: Option<String>,
    /// Nodes running this version (of `module`, or of any module).
    pub version: Option<String>,
}

impl NodeFilter {
    fn admits(&self, healthy: bool, snap: Option<&NodeSnapshot>) -> bool {
        if self.healthy.is_some_and(|want| want != healthy) {
            return false;
        }
        if self.module.is_none() && self.version.is_none() {
            return true;
        }
        let Some(snap) = snap else { return false };
        let version_ok = |v: Option<&str>| match &self.version {
            Some(want) => v == Some(want.as_str()),
            None => v.is_some(),
        };
        match &self.module {
            Some(module) => version_ok(snap.modules.get(module).and_then(|s| s.active_version())),
            None => snap.modules.values().any(|s| version_ok(s.active_version())),
        }
    }
}

/// A page of a cluster's nodes and the summary of the whole cluster.
#[derive(Debug, Clone)]
pub struct ClusterPage {
    pub summary: ClusterSummary,
    pub metrics: NodeMetrics,
    /// Nodes that pass the filter, on every page.
    pub matching: usize,
    pub nodes: Vec<NodeView>,
}

fn node_view(entry: &NodeEntry, snap: Option<&NodeSnapshot>, fresh: bool) -> NodeView {
    match snap {
        Some(s) => {
            let unreachable = entry.kind == NodeKind::Agent && entry.agent_link().is_none();
            let healthy = s.health.healthy && fresh && !unreachable;
            // A host whose agent is away says so in its health, with its last heartbeat.
            let mut messages = s.health.reasons.clone();
            if !fresh {
                messages.push("heartbeat is older than the timeout".into());
            }
            NodeView {
                node_id: s.node_id,
                hostname: s.hostname.clone(),
                kind: entry.kind.as_str(),
                status: match (unreachable, healthy) {
                    (true, _) => "Unreachable",
                    (false, true) => "Running",
                    (false, false) => "Degraded",
                },
                is_healthy: healthy,
                last_heartbeat: entry.last_heartbeat(),
                metrics: Some(s.metrics),
                modules: s
                    .modules
                    .iter()
                    .filter_map(|(m, slots)| slots.active_version().map(|v| (m.clone(), v.to_string())))
                    .collect(),
                health_messages: messages,
                drift: entry.drift(),
            }
        }
        None => NodeView {
            node_id: entry.node_id,
            hostname: entry.hostname.clone(),
            kind: entry.kind.as_str(),
            status: "Failed",
            is_healthy: false,
            last_heartbeat: entry.last_heartbeat(),
            metrics: None,
            modules: BTreeMap::new(),
            health_messages: vec!["node actor is not responding".into()],
            drift: entry.drift(),
        },
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsPoint {
    pub timestamp: DateTime<Utc>,
    pub metrics: NodeMetrics,
    pub samples: usize,
}

impl Orchestrator {
    async fn snapshots(&self, tenant: TenantId, env: Environment) -> Vec<(Arc<NodeEntry>, Option<NodeSnapshot>)> {
        self.ask_each(tenant, env, || Snapshot).await
    }

    /// Every node's metrics and health (`None`: it did not answer).
    async fn metrics_readings(
        &self,
        tenant: TenantId,
        env: Environment,
    ) -> Vec<(Arc<NodeEntry>, Option<MetricsReading>)> {
        self.ask_each(tenant, env, || ReadMetrics).await
    }

    /// Asks every node of the cluster the message `make` gives, all at once
    /// under one deadline; `None` for a node that is down or did not answer.
    async fn ask_each<M>(
        &self,
        tenant: TenantId,
        env: Environment,
        make: impl Fn() -> M,
    ) -> Vec<(Arc<NodeEntry>, Option<M::Result>)>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        NodeActor: Handler<M>,
        <NodeActor as Actor>::Context: ToEnvelope<NodeActor, M>,
    {
        let nodes: Vec<_> = self.inner.clusters.nodes(tenant, env).iter().cloned().collect();
        let timeout = self.inner.settings.pipeline.node_request_timeout.min(Duration::from_secs(2));
        let calls = nodes.iter().map(|n| {
            let (addr, msg) = (n.addr(), make());
            async move { addr?.send(msg).await.ok() }
        });
        let answers = gather_until(calls, tokio::time::Instant::now() + timeout).await;
        nodes.into_iter().zip(answers.into_iter().map(Option::flatten)).collect()
    }

    /// Puts the stored slots of each simulated node into its snapshot. A
    /// node's slots are stored before its actor adopts them, and another
    /// instance's runs change them in the store only: the stored ones are
    /// current on every instance, the actor's may be what this instance last
    /// saw. When the store does not answer, the snapshots stay as they are.
    async fn read_through(
        &self,
        tenant: TenantId,
        env: Environment,
        snapshots: &mut [(Arc<NodeEntry>, Option<NodeSnapshot>)],
        timeout: Duration,
    ) {
        if !snapshots.iter().any(|(e, s)| e.kind == NodeKind::Simulated && s.is_some()) {
            return;
        }
        let stored = match crate::store::within(timeout, self.inner.store.nodes_in(tenant, env)).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::debug!(%tenant, environment = %env, error = %e, "cluster view from the node actors alone");
                return;
            }
        };
        let mut stored: std::collections::HashMap<Uuid, _> =
            stored.into_iter().map(|n| (n.node_id, n.modules)).collect();
        for (entry, snap) in snapshots.iter_mut() {
            let (NodeKind::Simulated, Some(snap)) = (entry.kind, snap) else { continue };
            if let Some(modules) = stored.remove(&entry.node_id) {
                snap.modules.extend(modules);
            }
        }
    }

    pub async fn cluster(&self, tenant: TenantId, env: Environment) -> ClusterDetail {
        let page = self.cluster_page(tenant, env, &NodeFilter::default(), 1, usize::MAX).await;
        ClusterDetail { summary: page.summary, metrics: page.metrics, nodes: page.nodes }
    }

    /// One page of `env`'s nodes that pass `filter` (pages count from 1),
    /// with the summary of the whole cluster. Every node is asked for its
    /// state, but views are built only for the nodes of the page.
    pub async fn cluster_page(
        &self,
        tenant: TenantId,
        env: Environment,
        filter: &NodeFilter,
        page: usize,
        page_size: usize,
    ) -> ClusterPage {
        self.page_of(tenant, env, filter, page, page_size, true).await
    }

    /// `cluster_page`; `with_stored_slots` false leaves the node actors'
    /// modules as they are (for what reads no module).
    async fn page_of(
        &self,
        tenant: TenantId,
        env: Environment,
        filter: &NodeFilter,
        page: usize,
        page_size: usize,
        with_stored_slots: bool,
    ) -> ClusterPage {
        let timeout = self.inner.settings.simulation.heartbeat_timeout;
        // A tenant created on another instance gets its clusters here first.
        self.inner.tenants.here(tenant).await;
        let mut snapshots = self.snapshots(tenant, env).await;
        if with_stored_slots {
            let deadline = self.inner.settings.pipeline.node_request_timeout.min(Duration::from_secs(2));
            self.read_through(tenant, env, &mut snapshots, deadline).await;
        }
        let mut healthy = 0;
        let mut metrics = Vec::with_capacity(snapshots.len());
        let mut matching = Vec::new();
        let now_ms = Utc::now().timestamp_millis();
        for (i, (entry, snap)) in snapshots.iter().enumerate() {
            let fresh = entry.heartbeat_fresh_at(now_ms, timeout);
            let is_healthy = snap.as_ref().is_some_and(|s| s.health.healthy) && fresh;
            healthy += usize::from(is_healthy);
            if let Some(s) = snap {
                metrics.push(s.metrics);
            }
            if filter.admits(is_healthy, snap.as_ref()) {
                matching.push(i);
            }
        }
        let skip = page.saturating_sub(1).saturating_mul(page_size);
        let nodes = matching
            .iter()
            .skip(skip)
            .take(page_size)
            .map(|i| {
                let (entry, snap) = &snapshots[*i];
                node_view(entry, snap.as_ref(), entry.heartbeat_fresh_at(now_ms, timeout))
            })
            .collect();
        let total = snapshots.len();
        ClusterPage {
            summary: ClusterSummary {
                environment: env,
                total_nodes: total,
                healthy_nodes: healthy,
                is_healthy: cluster_is_healthy(healthy, total),
            },
            metrics: NodeMetrics::average(&metrics).unwrap_or_default(),
            matching: matching.len(),
            nodes,
        }
    }

    pub async fn clusters(&self, tenant: TenantId) -> Vec<ClusterSummary> {
        let mut out = Vec::new();
        for env in Environment::ALL {
            // Summaries read no module: no stored slots needed.
            out.push(self.page_of(tenant, env, &NodeFilter::default(), 1, 0, false).await.summary);
        }
        out
    }

    /// Recorded samples in `[from, to]`, averaged into buckets of `interval`.
    pub async fn cluster_metrics(
        &self,
        tenant: TenantId,
        env: Environment,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        interval: Duration,
    ) -> Result<Vec<MetricsPoint>, CoreError> {
        let samples = self.inner.store.samples(tenant, env, from, to).await?;
        let width = interval.as_millis().max(1) as i64;
        let mut buckets: BTreeMap<i64, Vec<NodeMetrics>> = BTreeMap::new();
        for s in samples {
            let offset = (s.at - from).num_milliseconds() / width;
            buckets.entry(offset).or_default().push(s.metrics);
        }
        Ok(buckets
            .into_iter()
            .filter_map(|(offset, ms)| {
                let avg = NodeMetrics::average(&ms)?;
                let per_node = NodeMetrics { requests_per_second: avg.requests_per_second / ms.len() as f64, ..avg };
                Some(MetricsPoint {
                    timestamp: from + chrono::Duration::milliseconds(offset * width),
                    metrics: per_node,
                    samples: ms.len(),
                })
            })
            .collect())
    }

    pub async fn record_samples(&self, tenant: TenantId) -> Result<(), CoreError> {
        let timeout = self.inner.settings.simulation.heartbeat_timeout;
        for env in Environment::ALL {
            // Only the averages and counts: each node answers its metrics and
            // health alone, not a whole snapshot.
            let readings = self.metrics_readings(tenant, env).await;
            if readings.is_empty() {
                continue;
            }
            let total = readings.len();
            let mut healthy = 0;
            let mut metrics = Vec::with_capacity(total);
            let now_ms = Utc::now().timestamp_millis();
            for (entry, reading) in readings {
                if let Some(r) = reading {
                    healthy += usize::from(r.healthy && entry.heartbeat_fresh_at(now_ms, timeout));
                    metrics.push(r.metrics);
                }
            }
            let sample = ClusterSample {
                tenant_id: tenant,
                environment: env,
                at: Utc::now(),
                metrics: NodeMetrics::average(&metrics).unwrap_or_default(),
                healthy_nodes: healthy as u32,
                total_nodes: total as u32,
            };
            self.inner.store.record_sample(&sample, self.inner.settings.simulation.metrics_retention).await?;
        }
        Ok(())
    }

    /// The ids of the tenant's nodes in `env`'s cluster, as this instance knows them.
    pub fn node_ids(&self, tenant: TenantId, env: Environment) -> Vec<Uuid> {
        self.inner.clusters.nodes(tenant, env).iter().map(|n| n.node_id).collect()
    }

    pub fn node(&self, tenant: TenantId, hostname: &str) -> Option<Arc<NodeEntry>> {
        self.nodes_named(tenant, hostname).into_iter().next()
    }

    /// The tenant's nodes named `hostname`, of every environment (one, or
    /// none, unless an older enrolment let a name in twice). A cluster's
    /// nodes are sorted by hostname: each is searched, not scanned.
    pub fn nodes_named(&self, tenant: TenantId, hostname: &str) -> Vec<Arc<NodeEntry>> {
        let mut found = Vec::new();
        for env in Environment::ALL {
            let nodes = self.inner.clusters.nodes(tenant, env);
            let first = nodes.partition_point(|n| n.hostname.as_str() < hostname);
            found.extend(nodes[first..].iter().take_while(|n| n.hostname == hostname).cloned());
        }
        found
    }
}

/// Records each cluster's average metrics on an interval, for the metrics history API.
/// A pass that outlasts the interval is never joined by another: the ticks
/// that fall inside it are skipped (and counted), so a slow pass over a large
/// cluster cannot pile work up in the node actors' mailboxes. Nor does the
/// next pass start as soon as a slow one ends: passes are spaced so that
/// sampling takes at most one part in [`PASS_SHARE`] of the time, which
/// leaves the actor threads to the runs when a short interval meets a large
/// cluster (the test profile's 100 ms with 100,000 nodes kept a thread busy
/// sampling back to back).
pub(super) struct MetricsSampler {
    pub(super) orchestrator: Orchestrator,
    /// A pass is under way.
    running: bool,
    /// When the last pass started and how long it took.
    last_pass: Option<(std::time::Instant, Duration)>,
}

/// A new pass starts no sooner than this many times the last pass's
/// duration after that pass started.
const PASS_SHARE: u32 = 4;

/// What the sampler has done, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct SamplerStats {
    passes: std::sync::atomic::AtomicU64,
    skipped: std::sync::atomic::AtomicU64,
    in_flight: std::sync::atomic::AtomicU64,
    max_in_flight: std::sync::atomic::AtomicU64,
}

impl SamplerStats {
    /// Passes completed.
    pub fn passes(&self) -> u64 {
        self.passes.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// Ticks skipped because the previous pass was still running or ended
    /// too recently (see [`MetricsSampler`]).
    pub fn skipped(&self) -> u64 {
        self.skipped.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// The most passes ever under way at once (1 when passes never overlap).
    pub fn max_in_flight(&self) -> u64 {
        self.max_in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl MetricsSampler {
    pub(super) fn new(orchestrator: Orchestrator) -> Self {
        MetricsSampler { orchestrator, running: false, last_pass: None }
    }
}

impl Actor for MetricsSampler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        use std::sync::atomic::Ordering::Relaxed;
        let every = self.orchestrator.inner.settings.simulation.metrics_sample_interval;
        ctx.run_interval(every, |act, ctx| {
            let stats = act.orchestrator.inner.sampler.clone();
            let too_soon = act.last_pass.is_some_and(|(started, took)| started.elapsed() < took * PASS_SHARE);
            if act.running || too_soon {
                stats.skipped.fetch_add(1, Relaxed);
                return;
            }
            act.running = true;
            let started = std::time::Instant::now();
            let now = stats.in_flight.fetch_add(1, Relaxed) + 1;
            stats.max_in_flight.fetch_max(now, Relaxed);
            let orchestrator = act.orchestrator.clone();
            let pass = async move {
                for tenant in orchestrator.inner.clusters.tenants() {
                    if let Err(e) = orchestrator.record_samples(tenant).await {
                        tracing::warn!(error = %e, %tenant, "could not record cluster metrics");
                    }
                }
            };
            ctx.spawn(pass.into_actor(act).map(move |(), act, _ctx| {
                act.running = false;
                act.last_pass = Some((started, started.elapsed()));
                stats.in_flight.fetch_sub(1, Relaxed);
                stats.passes.fetch_add(1, Relaxed);
            }));
        });
    }
}
