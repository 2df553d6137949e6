//! Live updates: /api/v1/ws (one actor per connection, JSON messages) and
//! the SignalR-compatible hub at /hubs/deployment. Both read the runs'
//! events from the core's event bus through a bounded feed per connection.
//! This is the only module that uses the actor-based actix-web-actors crate.

pub mod backplane;
mod consumer;
pub mod identity;
mod quota;
pub mod revalidation;
mod session;
pub mod settings;
pub mod shutdown;
pub mod signalr;
pub mod wire;

use std::sync::Arc;

use actix::{Actor, StreamHandler};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use hotswap_actors::events::open_feed;

use crate::auth::OverrideUse;
use crate::metrics::Metrics;
use crate::web::path_template::PathTemplate;
use crate::web::ApiError;
use crate::web::AppState;
use identity::authenticate_upgrade;
use session::LiveSession;
pub use settings::WebsocketSettings;

/// What the live endpoints share.
pub struct LiveState {
    pub settings: Arc<WebsocketSettings>,
    pub metrics: Arc<Metrics>,
    pub negotiations: signalr::Negotiations,
    /// The hub's Server-Sent Events and Long Polling connections.
    pub polled: Arc<signalr::PolledConnections>,
    /// Open sessions per tenant (the websocketSessions quota).
    pub sessions: Arc<quota::SessionCounts>,
    /// Announced when the server stops: every session closes then.
    pub shutdown: shutdown::ShutdownNotice,
}

impl LiveState {
    /// With `redis`, SignalR's negotiated tokens are good on every instance.
    pub fn new(
        settings: WebsocketSettings,
        metrics: Arc<Metrics>,
        redis: Option<Arc<crate::redis::Redis>>,
        shutdown: shutdown::ShutdownNotice,
    ) -> Self {
        LiveState {
            shutdown,
            settings: Arc::new(settings),
            metrics,
            negotiations: signalr::Negotiations::new(redis),
            polled: Default::default(),
            sessions: Default::default(),
        }
    }

    /// Live sessions the tenant holds open now.
    pub fn open_sessions(&self, tenant: hotswap_actors::domain::TenantId) -> u64 {
        self.sessions.open(tenant)
    }
}

/// The live updates' WebSocket.
pub const WEBSOCKET_PATH: &str = "/api/v1/ws";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(WEBSOCKET_PATH, web::get().to(websocket)).configure(signalr::routes);
}

/// The live endpoints, which also take the token from the `access_token`
/// query parameter (browsers cannot set headers on a WebSocket).
pub fn token_in_query_paths() -> Vec<PathTemplate> {
    [WEBSOCKET_PATH, signalr::HUB_PATH, signalr::NEGOTIATE_PATH].into_iter().map(PathTemplate::new).collect()
}

async fn websocket(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
    live: web::Data<LiveState>,
) -> Result<HttpResponse, ApiError> {
    if !is_websocket_upgrade(&req) {
        // A browser is not told why its handshake was refused: the same
        // request without the upgrade answers with the refusal an upgrade
        // would get now (a suspended tenant, the live-session quota), so that
        // the dashboard can say why it is not live. It takes no place and
        // starts no session (nor audits one).
        let identity = authenticate_upgrade(&req, OverrideUse::WithinAuditedSession).await?;
        quota::check(&state, &live.sessions, identity.home_tenant_id).await?;
        return Err(ApiError::BadRequest(format!(
            "GET {WEBSOCKET_PATH} must be a WebSocket upgrade (one would be admitted now)"
        )));
    }
    // AUTH: live connection.
    let mut identity = authenticate_upgrade(&req, OverrideUse::Audited).await?;
    identity.slot = Some(Arc::new(quota::admit(&state, &live.sessions, identity.home_tenant_id).await?));
    let orchestrator = &state.orchestrator;
    let feed = open_feed(identity.tenant_id, live.settings.send_buffer, orchestrator.bus_stats().clone());
    let tenant = identity.tenant_id;
    let mut session =
        LiveSession::new(identity, orchestrator.bus().clone(), feed, live.settings.clone(), live.metrics.clone())
            .with_run_lookup(orchestrator.store().clone())
            .closing_on(live.shutdown.clone());
    if let Some(bus) = req.app_data::<web::Data<crate::messaging::MessageBus>>() {
        let principal = crate::auth::principal_of(&req).ok();
        let refusal = consumer::SocketConsumers::refusal_for(principal.as_deref());
        let consumers = consumer::SocketConsumers::new(bus.clone(), tenant, refusal, live.settings.max_subscriptions);
        session = session.with_consumers(consumers);
    }
    upgrade(session, &req, stream, &live)
}

fn is_websocket_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Completes the handshake and starts the session actor. Frames up to a few
/// times the message limit are read (and answered with an error when too
/// large); larger ones close the socket with 1009.
fn upgrade<A>(session: A, req: &HttpRequest, stream: web::Payload, live: &LiveState) -> Result<HttpResponse, ApiError>
where
    A: Actor<Context = ws::WebsocketContext<A>> + StreamHandler<Result<ws::Message, ws::ProtocolError>>,
{
    let frame_limit = (live.settings.max_message_bytes * 16).max(64 << 10);
    ws::WsResponseBuilder::new(session, req, stream)
        .frame_size(frame_limit)
        // A browser that offers protocols needs one selected back, or it
        // drops the connection: the dashboard offers this one beside its token.
        .protocols(&[crate::auth::bearer::LIVE_PROTOCOL])
        .start()
        .map_err(|e| ApiError::BadRequest(format!("the WebSocket handshake failed: {e}")))
}
