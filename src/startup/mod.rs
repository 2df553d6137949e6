//! Builds the running service from settings: the adapters, the background
//! work, the orchestration core, then the HTTP server.
//!
//! - `adapters`: store, identity, secrets, registry
//! - `background`: sweeps and retention
//! - `http_server`: middleware, state and routes; /metrics apart

mod adapters;
mod background;
mod graph_peers;
mod http_server;
mod wake_up;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Server;
use hotswap_actors::hooks::{CoreHooks, NoNotifier, Notifier};
use hotswap_actors::orchestrator::CoreSettings;
use hotswap_actors::Orchestrator;

pub use adapters::{open_store, Adapters, OpenedStore};
pub use http_server::cors;
use http_server::RequestLayers;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::notify::WebhookNotifier;
use crate::registry::RegistryVerifier;
use crate::telemetry::OtelSpans;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(String),
    #[error("store: {0}")]
    Store(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("{0}")]
    Core(#[from] hotswap_actors::CoreError),
    #[error("auth: {0}")]
    Auth(String),
    #[error("server.tls: {0}")]
    Tls(String),
}

pub struct Application {
    server: Server,
    addr: SocketAddr,
    /// /metrics on an address of its own (`metrics.bind`), when configured.
    metrics_server: Option<(Server, SocketAddr)>,
    pub orchestrator: Orchestrator,
    pub metrics: Arc<Metrics>,
    /// Told to live sessions when a signal stops the server.
    shutdown: crate::live::shutdown::ShutdownNotice,
}

impl Application {
    /// Opens the adapters, starts the background work and the orchestration
    /// core, and binds the HTTP server; nothing is served until `run` is
    /// awaited. Must run inside the actix System.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let adapters = Adapters::open(&settings).await?;
        let layers = RequestLayers::new(&settings, &adapters)?;
        let metrics = Metrics::new();
        let orchestrator = start_core(&settings, &adapters, metrics.clone()).await?;
        background::start(&settings, &adapters, layers.limits.clone(), &orchestrator);
        metrics.watch(orchestrator.clone(), adapters.pool.clone());
        // Drives stored deployment batches, those of a previous process included.
        // A zero interval turns it off, as it does the reconciler: a runner
        // ticking every 0s would spin a core on an idle server.
        if settings.recovery.reconcile_interval.is_zero() {
            tracing::warn!(
                "recovery.reconcile_interval = 0s: this instance neither reconciles runs nor drives deployment \
                 batches; another instance with an interval must"
            );
        } else {
            hotswap_actors::batch::BatchRunner::start(orchestrator.clone(), settings.recovery.reconcile_interval);
        }
        if let Some(redis) = &adapters.redis {
            crate::live::backplane::start(redis.clone(), orchestrator.bus().clone());
        }
        // The run pipeline's events on the message bus's system topic.
        crate::messaging::deployment_events::start(
            adapters.bus.clone(),
            orchestrator.bus(),
            adapters.deployment_outbox.clone(),
        );
        // With an address of its own, /metrics is served there and not on the API.
        let metrics_server = match settings.metrics.bind.trim() {
            "" => None,
            _ if !settings.metrics.enabled => None,
            bind => Some(http_server::serve_metrics_apart(bind, &settings.metrics.path, metrics.clone())?),
        };
        let serve_metrics = settings.metrics.enabled && metrics_server.is_none();
        let shutdown = crate::live::shutdown::ShutdownNotice::default();
        let (server, addr) = http_server::serve_api(
            &settings,
            &adapters,
            layers,
            orchestrator.clone(),
            metrics.clone(),
            serve_metrics,
            shutdown.clone(),
        )?;
        if let Some((_, metrics_addr)) = &metrics_server {
            tracing::info!(%metrics_addr, "serving /metrics on its own address, without a token");
        }
        Ok(Application { server, addr, metrics_server, orchestrator, metrics, shutdown })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where /metrics is served apart from the API, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|(_, addr)| *addr)
    }

    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run(self) -> std::io::Result<()> {
        actix_web::rt::spawn(stop_on_signal(self.server.handle(), self.shutdown.clone()));
        let served = match self.metrics_server {
            None => self.server.await,
            Some((metrics, _)) => {
                // The metrics server lives as long as the API's: when a signal or a
                // handle stops the API, it stops too.
                let handle = metrics.handle();
                actix_web::rt::spawn(metrics);
                let served = self.server.await;
                handle.stop(true).await;
                served
            }
        };
        // A clean stop hands this instance's runs to the others at once
        // rather than after their leases run out.
        match self.orchestrator.hand_over().await {
            Ok(0) => {}
            Ok(runs) => tracing::info!(runs, "handed the runs in flight over to the other instances"),
            Err(e) => tracing::warn!(error = %e, "could not hand runs over; others take them when their leases expire"),
        }
        served
    }
}

/// SIGTERM or SIGINT (Ctrl-C) stops the server gracefully, live sessions
/// first: they close as a stopping server's should (see `live::shutdown`),
/// and the graceful stop then has no long-lived connection left to wait for.
/// actix-web's own signal handling is off for this reason (`serve_api`).
async fn stop_on_signal(server: actix_web::dev::ServerHandle, shutdown: crate::live::shutdown::ShutdownNotice) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        return tracing::error!("cannot listen for SIGTERM; stop the server with SIGKILL");
    };
    let signal = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    };
    tracing::info!(signal, "stopping: live sessions are closed, requests under way finish");
    shutdown.announce();
    server.stop(true).await;
}

/// The orchestration core with its hooks: metrics, spans, webhooks and the
/// registry's verifier for the Security Scan.
async fn start_core(
    settings: &Settings,
    adapters: &Adapters,
    metrics: Arc<Metrics>,
) -> Result<Orchestrator, StartupError> {
    let core = CoreSettings {
        pipeline: settings.pipeline.clone(),
        simulation: settings.simulation.clone(),
        supervision: settings.supervision.clone(),
        recovery: settings.recovery.clone(),
        approvals: settings.approvals.clone(),
        sample_metrics: true,
        tenants: settings.tenants.clone(),
        cluster: settings.cluster.clone(),
    };
    let notifier: Arc<dyn Notifier> = match WebhookNotifier::start(&settings.notifications) {
        Some(webhooks) => webhooks,
        None => Arc::new(NoNotifier),
    };
    let verifier = hotswap_actors::graph::DependencyCheckedVerifier::wrap(
        Arc::new(RegistryVerifier { registry: adapters.registry.get_ref().clone() }),
        adapters.graph.clone().into_inner(),
    );
    let analysis =
        crate::analysis::provider(&settings.analysis, adapters.store.clone()).map_err(StartupError::Config)?;
    let wake_up = match &adapters.redis {
        Some(redis) => wake_up::RedisWakeUp::shared(redis.clone()),
        None => Arc::new(hotswap_actors::cluster::PollOnly),
    };
    let hooks = CoreHooks {
        observer: metrics,
        spans: Arc::new(OtelSpans),
        notifier,
        verifier,
        analysis,
        wake_up,
        memory_release: Arc::new(crate::allocator::MimallocRelease),
    };
    Ok(Orchestrator::start_with(adapters.store.clone(), core, hooks).await?)
}
