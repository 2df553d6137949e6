//! Prometheus metrics. HTTP metrics come from actix-web-prom by route pattern;
//! domain metrics come from the core through its `Observer` hook, so the
//! core knows nothing of Prometheus; gauges that describe a moment (backlogs,
//! sessions, pool use) are read when /metrics is scraped.

// Metric definitions are constants: building or registering one fails only on a
// programming error (a bad name, a name used twice), which every test would show.
#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use actix_web_prom::{PrometheusMetrics, PrometheusMetricsBuilder};
use hotswap_actors::domain::{ApprovalStatus, Environment, RunStatus, StageStatus, Strategy};
use hotswap_actors::hooks::Observer;
use hotswap_actors::supervision::ActorKind;
use hotswap_actors::Orchestrator;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use serde::Deserialize;

const NAMESPACE: &str = "hotswap";
const STRATEGIES: [Strategy; 4] = [Strategy::Direct, Strategy::Rolling, Strategy::BlueGreen, Strategy::Canary];

/// `[metrics]`: whether and where Prometheus metrics are served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// "" serves /metrics on server.bind, behind a token; an address serves it
    /// there instead, without a token (keep that address private).
    pub bind: String,
    /// The role a token needs for /metrics on server.bind.
    pub role: String,
    /// Serve Prometheus metrics at all.
    pub enabled: bool,
    /// Where they are served; the role guard covers "/metrics".
    pub path: String,
}

impl MetricsSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !self.bind.trim().is_empty() && self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("metrics.bind '{}' is not an address such as 127.0.0.1:9090", self.bind));
        }
        if self.role.parse::<hotswap_actors::domain::Role>().is_err() {
            return Err(format!("metrics.role '{}' is not Admin, Deployer or Viewer", self.role));
        }
        if !self.path.starts_with('/') {
            return Err(format!("metrics.path '{}' must start with /", self.path));
        }
        Ok(())
    }
}

/// How many connections the store's pool holds and how many of them are in
/// use; and, since the store opened, how many run saves it wrote and in how
/// many transactions (several saves share one when they arrive together).
#[derive(Debug, Clone, Copy)]
pub struct PoolUse {
    pub max: usize,
    pub open: usize,
    pub in_use: usize,
    pub run_saves: u64,
    pub run_save_transactions: u64,
}

pub type PoolProbe = Arc<dyn Fn() -> PoolUse + Send + Sync>;

/// Every series HotSwap records, in one registry.
pub struct Metrics {
    pub registry: Registry,
    started: IntCounterVec,
    succeeded: IntCounterVec,
    failed: IntCounterVec,
    rolled_back: IntCounterVec,
    cancelled: IntCounterVec,
    run_duration: HistogramVec,
    stage_duration: HistogramVec,
    nodes_updated: IntCounterVec,
    approvals: [IntCounterVec; 4],
    restarts: IntCounterVec,
    escalations: IntCounterVec,
    pub ws_sessions: IntGaugeVec,
    pub ws_messages: IntCounterVec,
    pub ws_slow_closes: IntCounterVec,
    /// From the bus receiving an event to a session handing it to its socket.
    pub ws_delivery: HistogramVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help).namespace(NAMESPACE), labels).expect("valid counter");
    registry.register(Box::new(c.clone())).expect("unique counter");
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).namespace(NAMESPACE).buckets(buckets.to_vec());
    let h = HistogramVec::new(opts, labels).expect("valid histogram");
    registry.register(Box::new(h.clone())).expect("unique histogram");
    h
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let r = Registry::new();
        let es = ["environment", "strategy"];
        let m = Metrics {
            started: counter(&r, "deployments_started_total", "Deployments started", &es),
            succeeded: counter(&r, "deployments_succeeded_total", "Deployments that succeeded", &es),
            failed: counter(&r, "deployments_failed_total", "Deployments that failed", &es),
            rolled_back: counter(
                &r,
                "deployments_rolled_back_total",
                "Environments whose changed nodes a deployment put back, automatically or on request",
                &es,
            ),
            cancelled: counter(&r, "deployments_cancelled_total", "Deployments aborted by an operator", &es),
            run_duration: histogram(
                &r,
                "deployment_duration_seconds",
                "Time from a deployment's creation to its end",
                &["environment", "strategy", "status"],
                &[0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0],
            ),
            stage_duration: histogram(
                &r,
                "stage_duration_seconds",
                "Time a pipeline stage took",
                &["stage", "status"],
                &[0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0],
            ),
            nodes_updated: counter(&r, "nodes_updated_total", "Nodes that took a new version", &["environment"]),
            approvals: [
                counter(&r, "approvals_requested_total", "Approvals requested", &["environment"]),
                counter(&r, "approvals_granted_total", "Approvals granted", &["environment"]),
                counter(&r, "approvals_rejected_total", "Approvals rejected", &["environment"]),
                counter(&r, "approvals_expired_total", "Approvals that expired", &["environment"]),
            ],
            restarts: counter(&r, "actor_restarts_total", "Supervised actors restarted after a panic", &["kind"]),
            escalations: counter(
                &r,
                "actor_escalations_total",
                "Supervised actors given up after too many restarts",
                &["kind"],
            ),
            ws_sessions: {
                let g = IntGaugeVec::new(
                    Opts::new("websocket_sessions", "Open live-update sessions").namespace(NAMESPACE),
                    &["protocol"],
                )
                .expect("valid gauge");
                r.register(Box::new(g.clone())).expect("unique gauge");
                g
            },
            ws_messages: counter(&r, "websocket_messages_sent_total", "Live-update messages sent", &["protocol"]),
            ws_slow_closes: counter(
                &r,
                "websocket_slow_client_closes_total",
                "Sessions closed with 1013 because the client fell behind",
                &["protocol"],
            ),
            ws_delivery: histogram(
                &r,
                "websocket_delivery_seconds",
                "Time from the event bus receiving an event to a live session writing it",
                &["protocol"],
                &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0],
            ),
            registry: r,
        };
        // Known label values start at zero, so the series exist before the first event.
        for env in Environment::ALL {
            for strategy in STRATEGIES {
                for c in [&m.started, &m.succeeded, &m.failed, &m.rolled_back, &m.cancelled] {
                    c.with_label_values(&[env.as_str(), strategy.as_str()]);
                }
            }
            m.nodes_updated.with_label_values(&[env.as_str()]);
            for c in &m.approvals {
                c.with_label_values(&[env.as_str()]);
            }
        }
        for kind in ["node", "coordinator"] {
            m.restarts.with_label_values(&[kind]);
            m.escalations.with_label_values(&[kind]);
        }
        for protocol in ["websocket", "signalr"] {
            m.ws_sessions.with_label_values(&[protocol]);
            m.ws_messages.with_label_values(&[protocol]);
            m.ws_slow_closes.with_label_values(&[protocol]);
        }
        Arc::new(m)
    }

    /// Registers the gauges read at scrape time.
    pub fn watch(&self, orchestrator: Orchestrator, pool: Option<PoolProbe>) {
        let gauges = ScrapeGauges::new(orchestrator, pool);
        self.registry.register(Box::new(gauges)).expect("unique gauges");
    }

    /// The middleware that records HTTP metrics by route pattern and, given a
    /// path, serves them there.
    pub fn http_middleware(&self, serve_at: Option<&str>) -> PrometheusMetrics {
        let builder = PrometheusMetricsBuilder::new(NAMESPACE).registry(self.registry.clone());
        // Without a path it only counts: /metrics is then served elsewhere.
        let builder = match serve_at {
            Some(path) => builder.endpoint(path),
            None => builder,
        };
        builder.mask_unmatched_patterns("UNKNOWN").build().expect("HTTP metrics register once per registry")
    }

    /// The text exposition of every series (what /metrics serves).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}

fn kind_label(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::Node => "node",
        ActorKind::Coordinator => "coordinator",
        ActorKind::Approval => "approval",
        ActorKind::Tenant => "tenant",
    }
}

impl Observer for Metrics {
    fn deployment_started(&self, env: Environment, strategy: Strategy) {
        self.started.with_label_values(&[env.as_str(), strategy.as_str()]).inc();
    }

    fn deployment_finished(&self, env: Environment, strategy: Strategy, status: RunStatus, duration: Duration) {
        let labels = [env.as_str(), strategy.as_str()];
        match status {
            RunStatus::Succeeded => self.succeeded.with_label_values(&labels).inc(),
            RunStatus::Cancelled => self.cancelled.with_label_values(&labels).inc(),
            _ => self.failed.with_label_values(&labels).inc(),
        }
        self.run_duration
            .with_label_values(&[env.as_str(), strategy.as_str(), status.as_str()])
            .observe(duration.as_secs_f64());
    }

    fn environment_rolled_back(&self, env: Environment, strategy: Strategy) {
        self.rolled_back.with_label_values(&[env.as_str(), strategy.as_str()]).inc();
    }

    fn stage_finished(&self, stage: &str, status: StageStatus, duration: Duration) {
        self.stage_duration.with_label_values(&[stage, status.as_str()]).observe(duration.as_secs_f64());
    }

    fn nodes_updated(&self, env: Environment, count: u64) {
        self.nodes_updated.with_label_values(&[env.as_str()]).inc_by(count);
    }

    fn approval(&self, env: Environment, status: ApprovalStatus) {
        let counter = match status {
            ApprovalStatus::Pending => &self.approvals[0],
            ApprovalStatus::Approved => &self.approvals[1],
            ApprovalStatus::Rejected => &self.approvals[2],
            ApprovalStatus::Expired => &self.approvals[3],
        };
        counter.with_label_values(&[env.as_str()]).inc();
    }

    fn actor_restarted(&self, kind: ActorKind) {
        self.restarts.with_label_values(&[kind_label(kind)]).inc();
    }

    fn actor_escalated(&self, kind: ActorKind) {
        self.escalations.with_label_values(&[kind_label(kind)]).inc();
    }
}

/// Gauges of the present moment, read from the orchestrator when scraped.
struct ScrapeGauges {
    orchestrator: Orchestrator,
    pool: Option<PoolProbe>,
    backlog: IntGaugeVec,
    active_runs: IntGauge,
    feeds: IntGauge,
    pool_use: IntGaugeVec,
    /// Run saves written, by `unit`: `saves` and the `transactions` that
    /// wrote them. Counters kept by the store, copied here when scraped.
    run_saves: IntCounterVec,
    descs: Vec<Desc>,
}

impl ScrapeGauges {
    fn new(orchestrator: Orchestrator, pool: Option<PoolProbe>) -> Self {
        let opts = |name: &str, help: &str| Opts::new(name, help).namespace(NAMESPACE);
        let backlog = IntGaugeVec::new(
            opts(
                "actor_mailbox_backlog",
                "Messages waiting for actors: requests to node actors, events queued for live sessions",
            ),
            &["kind"],
        )
        .expect("valid gauge");
        let active_runs =
            IntGauge::with_opts(opts("deployments_active", "Runs whose coordinator is alive")).expect("valid gauge");
        let feeds = IntGauge::with_opts(opts("event_bus_subscribers", "Live subscribers of the event bus"))
            .expect("valid gauge");
        let pool_use =
            IntGaugeVec::new(opts("store_pool_connections", "Store connections by state"), &["state"]).expect("valid");
        let run_saves = IntCounterVec::new(
            opts("store_run_saves_total", "Run saves the store wrote (saves), and the transactions that wrote them"),
            &["unit"],
        )
        .expect("valid counter");
        let mut descs = Vec::new();
        descs.extend(backlog.desc().into_iter().cloned());
        descs.extend(active_runs.desc().into_iter().cloned());
        descs.extend(feeds.desc().into_iter().cloned());
        descs.extend(pool_use.desc().into_iter().cloned());
        descs.extend(run_saves.desc().into_iter().cloned());
        ScrapeGauges { orchestrator, pool, backlog, active_runs, feeds, pool_use, run_saves, descs }
    }
}

impl Collector for ScrapeGauges {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = self.orchestrator.bus_stats();
        self.backlog.with_label_values(&["node"]).set(self.orchestrator.node_backlog() as i64);
        self.backlog.with_label_values(&["event_feed"]).set(stats.backlog() as i64);
        self.active_runs.set(self.orchestrator.active_runs() as i64);
        self.feeds.set(stats.subscribers.load(Relaxed) as i64);
        let mut out = Vec::new();
        out.extend(self.backlog.collect());
        out.extend(self.active_runs.collect());
        out.extend(self.feeds.collect());
        if let Some(probe) = &self.pool {
            let used = probe();
            self.pool_use.with_label_values(&["max"]).set(used.max as i64);
            self.pool_use.with_label_values(&["open"]).set(used.open as i64);
            self.pool_use.with_label_values(&["in_use"]).set(used.in_use as i64);
            out.extend(self.pool_use.collect());
            for (unit, total) in [("saves", used.run_saves), ("transactions", used.run_save_transactions)] {
                let counter = self.run_saves.with_label_values(&[unit]);
                // The store's count only grows; the counter catches up with it.
                counter.inc_by(total.saturating_sub(counter.get()));
            }
            out.extend(self.run_saves.collect());
        }
        out
    }
}
