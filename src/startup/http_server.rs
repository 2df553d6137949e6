//! The HTTP server: middleware in order, application state, the route sets of
//! `live` and `http`, TLS, and /metrics on an address of its own.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};
use hotswap_actors::Orchestrator;
use tracing_actix_web::TracingLogger;

use super::adapters::Adapters;
use super::StartupError;
use crate::auth::client::TrustedProxies;
use crate::auth::headers::{security_headers, SecurityHeaders};
use crate::auth::rate_limit::{self, RateLimits};
use crate::auth::shared_windows::SharedWindows;
use crate::auth::{authenticate, metrics_guard};
use crate::config::{CorsSettings, Settings, TlsSettings};
use crate::http::{self, RouteOptions};
use crate::live::LiveState;
use crate::metrics::Metrics;
use crate::web::trace::assign_trace_id;
use crate::web::AppState;

/// The request-facing pieces made from the settings before the server starts.
pub struct RequestLayers {
    pub tls: Option<rustls::ServerConfig>,
    pub client_addresses: web::Data<TrustedProxies>,
    pub headers: web::Data<SecurityHeaders>,
    pub limits: Option<web::Data<RateLimits>>,
}

impl RequestLayers {
    pub fn new(settings: &Settings, adapters: &Adapters) -> Result<RequestLayers, StartupError> {
        let proxies = TrustedProxies::new(&settings.rate_limit.trusted_proxies);
        let tls = settings.server.tls.enabled().then(|| load_tls(&settings.server.tls)).transpose()?;
        let headers = SecurityHeaders::new(&settings.security_headers, tls.is_some(), proxies.clone())
            .map(web::Data::new)
            .map_err(StartupError::Config)?;
        let limits = RateLimits::new(&settings.rate_limit)
            .map(|limits| match &adapters.redis {
                Some(redis) => limits.shared_through(SharedWindows::new(redis.clone())),
                None => limits,
            })
            .map(web::Data::new);
        Ok(RequestLayers { tls, client_addresses: web::Data::new(proxies), headers, limits })
    }
}

/// Binds `server.bind` and starts serving the API (on the actix System that
/// `Application::run` then awaits). `serve_metrics`: /metrics is served here.
pub fn serve_api(
    settings: &Settings,
    adapters: &Adapters,
    layers: RequestLayers,
    orchestrator: Orchestrator,
    metrics: Arc<Metrics>,
    serve_metrics: bool,
    shutdown: crate::live::shutdown::ShutdownNotice,
) -> Result<(Server, SocketAddr), StartupError> {
    let bind_error = |source| StartupError::Bind { addr: settings.server.bind.clone(), source };
    let listener = TcpListener::bind(&settings.server.bind).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let agents = Arc::new(crate::agents::AgentHub::new(
        orchestrator.clone(),
        settings.agent.clone(),
        settings.security.accept_artifact_signatures,
    ));
    if let Some(redis) = &adapters.redis {
        agents.route_through(redis.clone());
    }
    let agents = web::Data::from(agents);
    let state = web::Data::new(AppState { orchestrator, trace_url: settings.server.trace_url.clone() });
    let options = RouteOptions {
        json_limit: settings.server.json_limit,
        api_docs: settings.api_docs.enabled,
        swagger_ui: settings.api_docs.enabled && settings.api_docs.swagger_ui,
    };
    let live =
        web::Data::new(LiveState::new(settings.websocket.clone(), metrics.clone(), adapters.redis.clone(), shutdown));
    let route_access =
        web::Data::new(crate::dashboard::public_routes(http::route_access(crate::live::token_in_query_paths())));
    // Requests are counted on the API address whether or not /metrics is served there.
    let prometheus = metrics.http_middleware(serve_metrics.then_some(settings.metrics.path.as_str()));
    let metrics_path = settings.metrics.path.clone();
    let cors_settings = settings.cors.clone();
    let metrics_settings = settings.metrics.clone();
    let (auth, registry, secrets) = (adapters.auth.clone(), adapters.registry.clone(), adapters.secrets.clone());
    let graph = adapters.graph.clone();
    let bus = adapters.bus.clone();
    let redis = adapters.redis.clone().map(web::Data::from);
    let RequestLayers { tls, client_addresses, headers, limits } = layers;
    let mut server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(state.clone())
            .app_data(auth.clone())
            .app_data(route_access.clone())
            .app_data(headers.clone())
            .app_data(live.clone())
            .app_data(client_addresses.clone())
            .app_data(registry.clone())
            .app_data(secrets.clone())
            .app_data(graph.clone())
            .app_data(agents.clone())
            .app_data(bus.clone());
        if let Some(limits) = &limits {
            app = app.app_data(limits.clone());
        }
        if let Some(redis) = &redis {
            app = app.app_data(redis.clone());
        }
        // Outermost last: logging, trace id, path normalisation (which must
        // see the request before anything holds a copy of it), security
        // headers, URLs holding NUL refused, CORS (its refusals in the JSON
        // error shape), authentication, rate limits per user, then the
        // /metrics role guard and the Prometheus middleware that serves it.
        app.wrap(prometheus.clone())
            .wrap(metrics_guard(&metrics_settings))
            .wrap(from_fn(rate_limit::limit))
            .wrap(from_fn(authenticate))
            .wrap(cors(&cors_settings))
            .wrap(from_fn(crate::web::json_refusals::as_json))
            .wrap(from_fn(crate::web::nul_in_url::refuse))
            .wrap(from_fn(security_headers))
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .wrap(from_fn(assign_trace_id))
            // The request span records the URI: it sees secrets in the query
            // string redacted, and everything inside it the real URI.
            .wrap(from_fn(crate::web::redact::restore_query_secrets))
            .wrap(from_fn(crate::auth::span_client::restore_forwarding_headers))
            .wrap(TracingLogger::<crate::web::request_span::RequestSpan>::new())
            // Its client address is the one the trusted proxies vouch for.
            .wrap(from_fn(crate::auth::span_client::present_client_address))
            .wrap(from_fn(crate::web::redact::hide_query_secrets))
            // The Prometheus middleware answers this path itself, after the
            // route; a route of its own keeps it from counting as a 404.
            .configure(|cfg| {
                if serve_metrics {
                    cfg.route(&metrics_path, web::get().to(actix_web::HttpResponse::Ok));
                }
            })
            .configure(crate::live::routes)
            .configure(crate::dashboard::routes)
            .configure(http::configure(options))
    })
    .client_request_timeout(settings.server.client_request_timeout)
    // Live updates are many small writes: without this, Nagle's algorithm
    // meets the client's delayed ACKs and holds frames back up to 40 ms.
    .tcp_nodelay(true)
    // Signals are handled by `Application::run`, which closes live sessions
    // before the graceful stop.
    .disable_signals()
    .shutdown_timeout(5);
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    let https = tls.is_some();
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config).map_err(bind_error)?,
        None => server.listen(listener).map_err(bind_error)?,
    }
    .run();
    // On stderr as well as in the log: whoever starts the process sees it
    // even when the log goes to a collector nobody reads.
    for warning in settings.safety_warnings() {
        tracing::warn!(target: "hotswap::security", "{warning}");
        eprintln!("hotswap: WARNING: {warning}");
    }
    tracing::info!(%addr, https, profile = %settings.profile, store = ?settings.store.backend, "HotSwap is serving");
    Ok((server, addr))
}

/// A second, minimal server for Prometheus on `bind`: GET `path` only, no
/// token (the address is meant to be private to the scraper).
pub fn serve_metrics_apart(
    bind: &str,
    path: &str,
    metrics: Arc<Metrics>,
) -> Result<(Server, SocketAddr), StartupError> {
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
