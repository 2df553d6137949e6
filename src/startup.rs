//! Builds the running service from settings: store, orchestrator, HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition, NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};
use hotswap_actors::audit::AuditRetention;
use hotswap_actors::hooks::{CoreHooks, NoNotifier, Notifier};
use hotswap_actors::orchestrator::CoreSettings;
use hotswap_actors::store::{MemoryStore, SharedStore, StoreError};
use hotswap_actors::Orchestrator;
use tracing_actix_web::TracingLogger;

use crate::auth::client::TrustedProxies;
use crate::auth::headers::{security_headers, SecurityHeaders};
use crate::auth::rate_limit::{self, RateLimits};
use crate::auth::{authenticate, metrics_guard, AuthState};
use crate::config::{CorsSettings, Settings, StoreBackend, TlsSettings};
use crate::http::{self, RouteOptions};
use crate::live::LiveState;
use crate::metrics::{Metrics, PoolProbe, PoolUse};
use crate::notify::WebhookNotifier;
use crate::store::postgres::{migrate, PgStore};
use crate::telemetry::OtelSpans;
use crate::web::trace::assign_trace_id;
use crate::web::AppState;

/// How often idle rate-limit windows and expired token revocations are dropped.
const RATE_LIMIT_SWEEP: Duration = Duration::from_secs(60);
const REVOCATION_SWEEP: Duration = Duration::from_secs(600);

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
}

impl Application {
    /// Opens the store, starts the orchestration core and binds the HTTP
    /// server; nothing is served until `run` is awaited. Must run inside the
    /// actix System.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let (store, pool) = open_store(&settings).await?;
        let auth = AuthState::new(&settings.auth, store.clone()).await.map_err(StartupError::Auth)?;
        if settings.auth.demo_users {
            auth.seed_demo_users().await.map_err(|e| StartupError::Auth(format!("seeding demo users: {e}")))?;
        } else {
            auth.retire_demo_users().await.map_err(|e| StartupError::Auth(format!("retiring demo users: {e}")))?;
        }
        let auth = web::Data::new(auth);
        let secrets = open_secrets(&settings, store.clone(), auth.clone()).await?;
        let proxies = TrustedProxies::new(&settings.rate_limit.trusted_proxies);
        let tls = settings.server.tls.enabled().then(|| load_tls(&settings.server.tls)).transpose()?;
        let client_addresses = web::Data::new(proxies.clone());
        let headers = SecurityHeaders::new(&settings.security_headers, tls.is_some(), proxies)
            .map(web::Data::new)
            .map_err(StartupError::Config)?;
        let limits = RateLimits::new(&settings.rate_limit).map(web::Data::new);
        spawn_sweeps(store.clone(), limits.clone());
        {
            use actix::Actor;
            AuditRetention { store: store.clone(), settings: settings.audit.clone() }.start();
        }
        let core = CoreSettings {
            pipeline: settings.pipeline.clone(),
            simulation: settings.simulation.clone(),
            supervision: settings.supervision.clone(),
            recovery: settings.recovery.clone(),
            approvals: settings.approvals.clone(),
            sample_metrics: true,
            tenants: settings.tenants.clone(),
        };
        let metrics = Metrics::new();
        let notifier: Arc<dyn Notifier> = match WebhookNotifier::start(&settings.notifications) {
            Some(webhooks) => webhooks,
            None => Arc::new(NoNotifier),
        };
        let registry = open_registry(&settings, store.clone()).await?;
        let verifier = Arc::new(crate::registry::RegistryVerifier { registry: registry.clone() });
        let hooks = CoreHooks { observer: metrics.clone(), spans: Arc::new(OtelSpans), notifier, verifier };
        let registry = web::Data::new(registry);
        {
            use actix::Actor;
            let (interval, grace) = (settings.registry.gc_interval, settings.registry.gc_grace);
            crate::registry::ArtifactSweeper { registry: registry.clone(), interval, grace }.start();
        }
        let orchestrator = Orchestrator::start_with(store, core, hooks).await?;
        metrics.watch(orchestrator.clone(), pool);
        let prometheus = metrics.http_middleware(&settings.metrics.path);
        // With an address of its own, /metrics is served there and not on the API.
        let metrics_server = match settings.metrics.bind.trim() {
            "" => None,
            _ if !settings.metrics.enabled => None,
            bind => Some(serve_metrics_apart(bind, &settings.metrics.path, metrics.clone())?),
        };
        let serve_metrics = settings.metrics.enabled && metrics_server.is_none();
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
        let options = RouteOptions {
            json_limit: settings.server.json_limit,
            api_docs: settings.api_docs.enabled,
            swagger_ui: settings.api_docs.enabled && settings.api_docs.swagger_ui,
        };
        let route_access = web::Data::new(http::route_access(crate::live::token_in_query_paths()));
        let cors_settings = settings.cors.clone();
        let metrics_settings = settings.metrics.clone();
        let mut server = HttpServer::new(move || {
            let mut app = App::new()
                .app_data(state.clone())
                .app_data(auth.clone())
                .app_data(route_access.clone())
                .app_data(headers.clone())
                .app_data(live.clone())
                .app_data(client_addresses.clone())
                .app_data(registry.clone())
                .app_data(secrets.clone());
            if let Some(limits) = &limits {
                app = app.app_data(limits.clone());
            }
            // Outermost last: logging, trace id, path normalisation (which must
            // see the request before anything holds a copy of it), security
            // headers, CORS, authentication, rate limits per user, then the
            // /metrics role guard and the Prometheus middleware that serves it.
            app.wrap(Condition::new(serve_metrics, prometheus.clone()))
                .wrap(metrics_guard(&metrics_settings))
                .wrap(from_fn(rate_limit::limit))
                .wrap(from_fn(authenticate))
                .wrap(cors(&cors_settings))
                .wrap(from_fn(security_headers))
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(from_fn(assign_trace_id))
                .wrap(TracingLogger::default())
                // The Prometheus middleware answers this path itself, after the
                // route; a route of its own keeps it from counting as a 404.
                .configure(|cfg| {
                    if serve_metrics {
                        cfg.route(&metrics_path, web::get().to(actix_web::HttpResponse::Ok));
                    }
                })
                .configure(crate::live::routes)
                .configure(http::configure(options))
        })
        .client_request_timeout(settings.server.client_request_timeout)
        // Live updates are many small writes: without this, Nagle's algorithm
        // meets the client's delayed ACKs and holds frames back up to 40 ms.
        .tcp_nodelay(true)
        .shutdown_timeout(5);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let bind_error = |source| StartupError::Bind { addr: settings.server.bind.clone(), source };
        let https = tls.is_some();
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config).map_err(bind_error)?,
            None => server.listen(listener).map_err(bind_error)?,
        }
        .run();
        tracing::info!(%addr, https, profile = %settings.profile, store = ?settings.store.backend, "HotSwap is serving");
        if let Some((_, metrics_addr)) = &metrics_server {
            tracing::info!(%metrics_addr, "serving /metrics on its own address, without a token");
        }
        Ok(Application { server, addr, metrics_server, orchestrator, metrics })
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
        let Some((metrics, _)) = self.metrics_server else { return self.server.await };
        // The metrics server lives as long as the API's: when a signal or a
        // handle stops the API, it stops too.
        let handle = metrics.handle();
        actix_web::rt::spawn(metrics);
        let served = self.server.await;
        handle.stop(true).await;
        served
    }
}

/// A second, minimal server for Prometheus on `bind`: GET `path` only, no
/// token (the address is meant to be private to the scraper).
fn serve_metrics_apart(bind: &str, path: &str, metrics: Arc<Metrics>) -> Result<(Server, SocketAddr), StartupError> {
    let bind_error = |source| StartupError::Bind { addr: bind.to_string(), source };
    let listener = TcpListener::bind(bind).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let path = path.to_string();
    let server = HttpServer::new(move || {
        let metrics = metrics.clone();
        App::new().route(
            &path,
            web::get().to(move || {
                let body = metrics.render();
                async move {
                    actix_web::HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body)
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .map_err(bind_error)?
    .run();
    Ok((server, addr))
}

/// CORS from the settings. Same-origin requests always pass (browsers send
/// Origin on them too); other origins need to be listed.
pub fn cors(settings: &CorsSettings) -> Cors {
    let mut cors = Cors::default()
        .allowed_origin_fn(|origin, req| {
            let host = req.headers.get(actix_web::http::header::HOST).and_then(|h| h.to_str().ok());
            let origin = origin.to_str().unwrap_or_default();
            host.is_some_and(|h| origin.split_once("://").is_some_and(|(_, rest)| rest == h))
        })
        .allowed_methods(settings.allowed_methods.iter().map(String::as_str))
        .allowed_headers(settings.allowed_headers.iter().map(String::as_str))
        .expose_headers([
            "X-Trace-Id",
            "X-Total-Count",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Retry-After",
            "Location",
        ])
        .max_age(Some(settings.max_age.as_secs() as usize));
    for origin in &settings.allowed_origins {
        cors = if origin == "*" { cors.allow_any_origin() } else { cors.allowed_origin(origin) };
    }
    if settings.allow_credentials {
        cors = cors.supports_credentials();
    }
    cors
}

/// The rustls configuration from the PEM files named in the settings.
fn load_tls(tls: &TlsSettings) -> Result<rustls::ServerConfig, StartupError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StartupError::Tls(format!("cannot read certificates from {}: {e}", tls.cert_file)))?;
    if certs.is_empty() {
        return Err(StartupError::Tls(format!("{} holds no certificate", tls.cert_file)));
    }
    // The key's contents never reach the message.
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| StartupError::Tls(format!("cannot read a private key from {}: {e}", tls.key_file)))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StartupError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartupError::Tls(format!("the certificate and key do not form a usable pair: {e}")))
}

/// Background sweeps: idle rate-limit windows, expired token revocations.
fn spawn_sweeps(store: SharedStore, limits: Option<web::Data<RateLimits>>) {
    if let Some(limits) = limits {
        actix_web::rt::spawn(async move {
            let mut tick = actix_web::rt::time::interval(RATE_LIMIT_SWEEP);
            loop {
                tick.tick().await;
                limits.forget_idle();
            }
        });
    }
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(REVOCATION_SWEEP);
        loop {
            tick.tick().await;
            match store.purge_expired_tokens(chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(purged = n, "forgot expired token revocations"),
                Err(e) => tracing::warn!(error = %e, "purging expired token revocations failed"),
            }
        }
    });
}

/// The secret store, with the JWT signing key seeded from auth.jwt_secret
/// (unless the store holds it already) and installed in the token service,
/// and the rotation actor.
async fn open_secrets(
    settings: &Settings,
    store: SharedStore,
    auth: web::Data<crate::auth::AuthState>,
) -> Result<web::Data<crate::secrets::SecretManager>, StartupError> {
    use crate::config::SecretsBackend;
    use crate::secrets::manager::JWT_SIGNING_KEY;
    use crate::secrets::{
        memory::MemorySecrets, rotation::SecretRotator, vault::VaultSecrets, SecretManager, SecretValue,
    };
    let backend: Arc<dyn crate::secrets::SecretBackend> = match settings.secrets.backend {
        SecretsBackend::Memory => Arc::new(MemorySecrets::new()),
        SecretsBackend::Vault => {
            Arc::new(VaultSecrets::new(settings.secrets.vault.clone()).map_err(StartupError::Config)?)
        }
    };
    let manager = web::Data::new(SecretManager::new(backend, store.clone(), auth));
    let secret_error = |e: crate::secrets::SecretError| StartupError::Auth(format!("secret {JWT_SIGNING_KEY}: {e}"));
    let seed = SecretValue::new(settings.auth.jwt_secret.expose());
    manager
        .ensure(JWT_SIGNING_KEY, Some(settings.secrets.jwt_policy.clone()), Some(seed))
        .await
        .map_err(secret_error)?;
    manager.load_jwt_keys().await.map_err(secret_error)?;
    if settings.secrets.rotation_enabled {
        actix::Actor::start(SecretRotator::new(manager.clone().into_inner(), store, settings.secrets.check_interval));
    }
    Ok(manager)
}

/// The module registry over the store, with its artifacts in a directory or
/// in PostgreSQL. The database artifacts get a small pool of their own, so
/// that large transfers never starve run checkpoints of connections.
async fn open_registry(settings: &Settings, store: SharedStore) -> Result<crate::registry::Registry, StartupError> {
    use crate::config::ArtifactBackend;
    use crate::registry::{Artifacts, DirectoryArtifacts, Registry};
    let backend: Arc<dyn crate::registry::ArtifactBackend> = match settings.registry.artifact_backend {
        ArtifactBackend::Filesystem => Arc::new(DirectoryArtifacts::new(&settings.registry.artifact_dir)),
        ArtifactBackend::Postgres => {
            let pool = crate::store::postgres::PgPoolSettings { max_size: 4, ..settings.store.pool.clone() };
            let blobs =
                PgStore::connect(&settings.store.url, &pool).await.map_err(|e| StartupError::Store(e.to_string()))?;
            Arc::new(blobs)
        }
    };
    Ok(Registry {
        store,
        artifacts: Artifacts::new(backend),
        security: settings.security.clone(),
        max_artifact_bytes: settings.registry.max_artifact_bytes,
    })
}

/// How long start-up waits for PostgreSQL to accept connections.
const DATABASE_WAIT: Duration = Duration::from_secs(30);

/// Opens the configured store. PostgreSQL is migrated before anything is
/// served (or, for `hotswap user`, written); start-up waits a while for a database that is still starting.
pub async fn open_store(settings: &Settings) -> Result<(SharedStore, Option<PoolProbe>), StartupError> {
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
