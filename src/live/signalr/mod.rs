//! A SignalR-compatible hub at /hubs/deployment, so that clients of the
//! original keep working: negotiate (version 0 and 1), the WebSockets,
//! Server-Sent Events and Long Polling transports, the JSON hub protocol.

mod connection;
mod events;
mod hub;
mod negotiations;
mod polling;
mod protocol;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use hotswap_actors::events::open_feed;
use serde_json::json;
use uuid::Uuid;

use super::identity::{authenticate_upgrade, SessionIdentity};
use super::LiveState;
use crate::auth::OverrideUse;
use crate::web::query::web_query_param;
use crate::web::ApiError;
use crate::web::AppState;
use hub::HubSession;
use negotiations::Negotiated;
pub use negotiations::Negotiations;
pub use polling::PolledConnections;
use polling::{Attach, Leave, NewConnection, Poll, PollAnswer, PolledConnection, Posted, Transport};

/// The deployment hub, and its negotiate endpoint.
pub const HUB_PATH: &str = "/hubs/deployment";
pub const NEGOTIATE_PATH: &str = "/hubs/deployment/negotiate";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(NEGOTIATE_PATH, web::post().to(negotiate)).service(
        web::resource(HUB_PATH)
            .route(web::get().to(connect))
            .route(web::post().to(send))
            .route(web::delete().to(leave)),
    );
}

async fn negotiate(
    req: HttpRequest,
    state: web::Data<AppState>,
    live: web::Data<LiveState>,
) -> Result<HttpResponse, ApiError> {
    // AUTH: live connection (SignalR negotiate sends the token as a bearer header).
    let identity = authenticate_upgrade(&req, OverrideUse::Audited).await?;
    super::quota::check(&state, &live.sessions, identity.home_tenant_id).await?;
    let version = web_query_param(req.query_string(), "negotiateVersion").and_then(|v| v.parse::<u32>().ok());
    let token = live.negotiations.issue(Negotiated::from(&identity), live.settings.signalr_negotiate_ttl).await;
    let transports = json!([
        { "transport": "WebSockets", "transferFormats": ["Text"] },
        { "transport": "ServerSentEvents", "transferFormats": ["Text"] },
        { "transport": "LongPolling", "transferFormats": ["Text"] },
    ]);
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
        return connect_over_http(req, state, live).await;
    }
    // AUTH: live connection (the WebSocket carries the token as access_token).
    // After negotiate the client names its token (negotiate audited the
    // session's start); with skipNegotiation it names none and starts here.
    let negotiated_id = web_query_param(req.query_string(), "id");
    let how = if negotiated_id.is_some() { OverrideUse::WithinAuditedSession } else { OverrideUse::Audited };
    let mut identity = authenticate_upgrade(&req, how).await?;
    if let Some(id) = negotiated_id {
        let negotiated = live.negotiations.take(&id).await.ok_or_else(no_connection)?;
        carry_over_tenant(&req, &negotiated, &mut identity);
        if negotiated.tenant_id != identity.tenant_id {
            return Err(no_connection());
        }
    }
    identity.slot =
        Some(std::sync::Arc::new(super::quota::admit(&state, &live.sessions, identity.home_tenant_id).await?));
    let orchestrator = &state.orchestrator;
    let feed = open_feed(identity.tenant_id, live.settings.send_buffer, orchestrator.bus_stats().clone());
    let session = HubSession::new(
        identity,
        orchestrator.bus().clone(),
        feed,
        live.settings.clone(),
        live.metrics.clone(),
        live.shutdown.clone(),
    );
    super::upgrade(session, &req, stream, &live)
}

/// A browser cannot set headers on a WebSocket or an EventSource: the tenant
/// a system Admin named with `X-Tenant-Id` at negotiate (audited there)
/// carries over to the connection that the same user opens with its token.
fn carry_over_tenant(req: &HttpRequest, negotiated: &Negotiated, identity: &mut SessionIdentity) {
    let header_absent = req.headers().get(crate::auth::TENANT_OVERRIDE).is_none();
    let same_user = negotiated.user == identity.user && negotiated.home_tenant_id == identity.home_tenant_id;
    if header_absent && same_user {
        identity.tenant_id = negotiated.tenant_id;
    }
}

fn no_connection() -> ApiError {
    ApiError::NotFound("No Connection with that ID".to_string())
}

/// The connection token of an HTTP-carried connection's requests.
fn connection_token(req: &HttpRequest) -> Result<String, ApiError> {
    web_query_param(req.query_string(), "id").filter(|id| !id.is_empty()).ok_or_else(|| {
        ApiError::BadRequest("name the connection with the id query parameter that negotiate returned".into())
    })
}

/// A GET without an upgrade: the event stream of Server-Sent Events, or a
/// Long Polling poll (the first of which opens the connection).
async fn connect_over_http(
    req: HttpRequest,
    state: web::Data<AppState>,
    live: web::Data<LiveState>,
) -> Result<HttpResponse, ApiError> {
    // AUTH: live connection (SSE carries the token as access_token, Long Polling as a bearer header);
    // always after a negotiate, which audited the session's start.
    let identity = authenticate_upgrade(&req, OverrideUse::WithinAuditedSession).await?;
    let token = connection_token(&req)?;
    let event_stream = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !event_stream {
        if let Some(connection) = live.polled.find(&token, &identity) {
            return poll(connection).await;
        }
    }
    let negotiated = live.negotiations.take(&token).await.ok_or_else(no_connection)?;
    let mut identity = identity;
    carry_over_tenant(&req, &negotiated, &mut identity);
    if negotiated.tenant_id != identity.tenant_id || negotiated.user != identity.user {
        return Err(no_connection());
    }
    identity.slot =
        Some(std::sync::Arc::new(super::quota::admit(&state, &live.sessions, identity.home_tenant_id).await?));
    let orchestrator = &state.orchestrator;
    let transport = if event_stream { Transport::ServerSentEvents } else { Transport::LongPolling };
    let connection = PolledConnection::start(NewConnection {
        token,
        transport,
        identity: identity.clone(),
        registry: live.polled.clone(),
        bus: orchestrator.bus().clone(),
        subscription: open_feed(identity.tenant_id, live.settings.send_buffer, orchestrator.bus_stats().clone()),
        settings: live.settings.clone(),
        metrics: live.metrics.clone(),
        shutdown: live.shutdown.clone(),
    });
    if transport == Transport::LongPolling {
        // The first poll only confirms the connection; it answers at once.
        return Ok(HttpResponse::Ok().content_type("text/plain").finish());
    }
    let (sender, frames) = tokio::sync::mpsc::channel::<bytestring::ByteString>(live.settings.send_buffer.max(1));
    connection.do_send(Attach(sender));
    let body = futures::stream::unfold(frames, |mut frames| async move {
        let frame = frames.recv().await?;
        let event = web::Bytes::from(format!("data: {frame}\r\n\r\n"));
        Some((Ok::<_, std::convert::Infallible>(event), frames))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Proxies such as nginx must not hold events back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

async fn poll(connection: actix::Addr<PolledConnection>) -> Result<HttpResponse, ApiError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    connection.do_send(Poll(answer));
    match answered.await {
        Ok(PollAnswer::Frames(frames)) => {
            Ok(HttpResponse::Ok().content_type("text/plain").body(frames.iter().map(|f| &**f).collect::<String>()))
        }
        Ok(PollAnswer::Closed) | Err(_) => Ok(HttpResponse::NoContent().finish()),
    }
}

/// The client's messages on an HTTP-carried connection.
async fn send(req: HttpRequest, body: web::Bytes, live: web::Data<LiveState>) -> Result<HttpResponse, ApiError> {
    // AUTH: live connection.
    let identity = authenticate_upgrade(&req, OverrideUse::WithinAuditedSession).await?;
    let token = connection_token(&req)?;
    let connection = live.polled.find(&token, &identity).ok_or_else(no_connection)?;
    if body.len() > live.settings.max_message_bytes * 8 {
        return Err(ApiError::PayloadTooLarge(format!(
            "a hub message is at most {} bytes",
            live.settings.max_message_bytes * 8
        )));
    }
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::BadRequest("the JSON hub protocol is text (UTF-8)".into()))?;
    connection.do_send(Posted(text));
    Ok(HttpResponse::Ok().content_type("text/plain").finish())
}

/// The client leaves an HTTP-carried connection.
async fn leave(req: HttpRequest, live: web::Data<LiveState>) -> Result<HttpResponse, ApiError> {
    // AUTH: live connection.
    let identity = authenticate_upgrade(&req, OverrideUse::WithinAuditedSession).await?;
    let token = connection_token(&req)?;
    let connection = live.polled.find(&token, &identity).ok_or_else(no_connection)?;
    connection.do_send(Leave);
    Ok(HttpResponse::Accepted().content_type("text/plain").finish())
}
