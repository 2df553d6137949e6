//! A SignalR-compatible hub at /hubs/deployment, so that clients of the
//! original keep working: negotiate (version 0 and 1), the WebSockets
//! transport, the JSON hub protocol. Other transports are not offered.

mod connection;
mod events;
mod hub;
mod protocol;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use hotswap_actors::events::open_feed;
use parking_lot::Mutex;
use serde_json::json;
use uuid::Uuid;

use super::identity::{authenticate_upgrade, SessionIdentity};
use super::LiveState;
use crate::web::query::web_query_param;
use crate::web::ApiError;
use crate::web::AppState;
use hub::HubSession;

/// Connection tokens handed out by negotiate, each usable once until it expires.
#[derive(Default)]
pub struct Negotiations {
    tokens: Mutex<HashMap<String, (SessionIdentity, Instant)>>,
}

impl Negotiations {
    fn issue(&self, identity: SessionIdentity, ttl: Duration) -> String {
        let token = Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        let mut tokens = self.tokens.lock();
        tokens.retain(|_, (_, until)| *until > now);
        tokens.insert(token.clone(), (identity, now + ttl));
        token
    }

    fn take(&self, token: &str) -> Option<SessionIdentity> {
        let (identity, until) = self.tokens.lock().remove(token)?;
        (until > Instant::now()).then_some(identity)
    }
}

/// The deployment hub, and its negotiate endpoint.
pub const HUB_PATH: &str = "/hubs/deployment";
pub const NEGOTIATE_PATH: &str = "/hubs/deployment/negotiate";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(NEGOTIATE_PATH, web::post().to(negotiate)).route(HUB_PATH, web::get().to(connect));
}

async fn negotiate(req: HttpRequest, live: web::Data<LiveState>) -> Result<HttpResponse, ApiError> {
    // AUTH: live connection (SignalR negotiate sends the token as a bearer header).
    let identity = authenticate_upgrade(&req)?;
    let version = web_query_param(req.query_string(), "negotiateVersion").and_then(|v| v.parse::<u32>().ok());
    let token = live.negotiations.issue(identity, live.settings.signalr_negotiate_ttl);
    let transports = json!([{ "transport": "WebSockets", "transferFormats": ["Text"] }]);
    let body = if version.unwrap_or(0) >= 1 {
        json!({
            "negotiateVersion": 1,
            "connectionId": Uuid::new_v4().simple().to_string(),
            "connectionToken": token,
            "availableTransports": transports,
        })
    } else {
        // Version 0: the connection id doubles as the token.
        json!({ "negotiateVersion": 0, "connectionId": token, "availableTransports": transports })
    };
    Ok(HttpResponse::Ok().json(body))
}

async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
    live: web::Data<LiveState>,
) -> Result<HttpResponse, ApiError> {
    if !super::is_websocket_upgrade(&req) {
        return Err(ApiError::BadRequest(
            "only the WebSockets transport is supported; connect with a WebSocket upgrade".into(),
        ));
    }
    // AUTH: live connection (the WebSocket carries the token as access_token).
    let identity = authenticate_upgrade(&req)?;
    // After negotiate the client names its token; with skipNegotiation it names none.
    if let Some(id) = web_query_param(req.query_string(), "id") {
        let negotiated =
            live.negotiations.take(&id).ok_or_else(|| ApiError::NotFound("No Connection with that ID".to_string()))?;
        if negotiated.tenant_id != identity.tenant_id {
            return Err(ApiError::NotFound("No Connection with that ID".to_string()));
        }
    }
    let mut identity = identity;
    identity.slot = Some(std::sync::Arc::new(super::quota::admit(&state, &live.sessions, identity.tenant_id).await?));
    let orchestrator = &state.orchestrator;
    let feed = open_feed(identity.tenant_id, live.settings.send_buffer, orchestrator.bus_stats().clone());
    let session =
        HubSession::new(identity, orchestrator.bus().clone(), feed, live.settings.clone(), live.metrics.clone());
    super::upgrade(session, &req, stream, &live)
}
