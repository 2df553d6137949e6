//! Builds the running service from settings: store, orchestrator, HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition, NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};
use hotswap_actors::hooks::CoreHooks;
use hotswap_actors::orchestrator::CoreSettings;
use hotswap_actors::store::{MemoryStore, SharedStore, StoreError};
use hotswap_actors::Orchestrator;
use tracing_actix_web::TracingLogger;

use crate::config::{Settings, StoreBackend};
use crate::http::{self, trace::assign_trace_id, AppState};
use crate::live::LiveState;
use crate::metrics::{Metrics, PoolProbe, PoolUse};
use crate::store::postgres::{migrate, PgStore};
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
}

pub struct Application {
    server: Server,
    addr: SocketAddr,
    pub orchestrator: Orchestrator,
    pub metrics: Arc<Metrics>,
}

impl Application {
    /// Opens the store, starts the orchestration core and binds the HTTP
    /// server; nothing is served until `run` is awaited. Must run inside the
    /// actix System.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let (store, pool) = open_store(&settings).await?;
        let core = CoreSettings {
            pipeline: settings.pipeline.clone(),
            simulation: settings.simulation.clone(),
            supervision: settings.supervision.clone(),
            sample_metrics: true,
        };
        let metrics = Metrics::new();
        let hooks = CoreHooks { observer: metrics.clone(), spans: Arc::new(OtelSpans) };
        let orchestrator = Orchestrator::start_with(store, core, hooks).await?;
        metrics.watch(orchestrator.clone(), pool);
        let prometheus = metrics.http_middleware(&settings.metrics.path);
        let serve_metrics = settings.metrics.enabled;
        let metrics_path = settings.metrics.path.clone();
        let live = web::Data::new(LiveState::new(settings.websocket.clone(), metrics.clone()));
        let listener = TcpListener::bind(&settings.server.bind)
            .map_err(|source| StartupError::Bind { addr: settings.server.bind.clone(), source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr: settings.server.bind.clone(), source })?;
        let state = web::Data::new(AppState {
            orchestrator: orchestrator.clone(),
            trace_url: settings.server.trace_url.clone(),
        });
        let json_limit = settings.server.json_limit;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(live.clone())
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(Condition::new(serve_metrics, prometheus.clone()))
                .wrap(from_fn(assign_trace_id))
                .wrap(TracingLogger::default())
                // The Prometheus middleware answers this path itself, after the
                // route; a route of its own keeps it from counting as a 404.
                .configure(|cfg| {
                    if serve_metrics {
                        cfg.route(&metrics_path, web::get().to(actix_web::HttpResponse::Ok));
                    }
                })
                .configure(http::configure(json_limit))
        })
        .client_request_timeout(settings.server.client_request_timeout)
        // Live updates are many small writes: without this, Nagle's algorithm
        // meets the client's delayed ACKs and holds frames back up to 40 ms.
        .tcp_nodelay(true)
        .shutdown_timeout(5);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind { addr: settings.server.bind.clone(), source })?
            .run();
        tracing::info!(%addr, profile = %settings.profile, store = ?settings.store.backend, "HotSwap is serving");
        Ok(Application { server, addr, orchestrator, metrics })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// How long start-up waits for PostgreSQL to accept connections.
const DATABASE_WAIT: Duration = Duration::from_secs(30);

/// Opens the configured store. PostgreSQL is migrated before anything is
/// served; start-up waits a while for a database that is still starting.
async fn open_store(settings: &Settings) -> Result<(SharedStore, Option<PoolProbe>), StartupError> {
    match settings.store.backend {
        StoreBackend::Memory => Ok((Arc::new(MemoryStore::new()), None)),
        StoreBackend::Postgres => {
            let url = &settings.store.url;
            let deadline = Instant::now() + DATABASE_WAIT;
            let mut delay = Duration::from_millis(200);
            loop {
                match migrate::run_pending(url).await {
                    Ok(applied) => {
                        for name in applied {
                            tracing::info!(migration = %name, "applied migration");
                        }
                        break;
                    }
                    Err(StoreError::Unavailable(e)) if Instant::now() < deadline => {
                        tracing::warn!(error = %e, ?delay, "PostgreSQL is not reachable yet; retrying");
                        actix_web::rt::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                    Err(e) => return Err(StartupError::Store(format!("migrations failed: {e}"))),
                }
            }
            let store =
                PgStore::connect(url, &settings.store.pool).await.map_err(|e| StartupError::Store(e.to_string()))?;
            let probed = store.clone();
            let probe: PoolProbe = Arc::new(move || {
                let (max, open, in_use) = probed.pool_use();
                PoolUse { max, open, in_use }
            });
            Ok((Arc::new(store), Some(probe)))
        }
    }
}
