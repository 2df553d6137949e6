//! The live connection a watch follows: /api/v1/ws, subscribed to one run or
//! to every run of the tenant, answering the server's pings on the way.

use std::collections::VecDeque;
use std::time::Duration;

use awc::ws::{Frame, Message};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};

use awc::error::WsClientError;
use awc::http::StatusCode;

use super::api::Api;
use super::Failure;

type Socket = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

/// An open live connection.
pub struct Live {
    socket: Socket,
    /// Events read while waiting for an acknowledgement.
    early: VecDeque<Value>,
}

fn ws_url(server: &str) -> String {
    let base = if let Some(rest) = server.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = server.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        server.to_string()
    };
    format!("{base}{LIVE_PATH}")
}

/// The live connection's path on the server.
const LIVE_PATH: &str = "/api/v1/ws";

impl Live {
    pub async fn connect(api: &Api) -> Result<Live, Failure> {
        let token = api.require_token()?;
        let url = ws_url(&api.server);
        let client = api.client(Duration::from_secs(30));
        let mut request = client.ws(&url).bearer_auth(token).max_frame_size(16 << 20);
        if let Some(tenant) = &api.tenant {
            request = request.set_header(super::api::TENANT_HEADER, tenant.as_str());
        }
        let (_, socket) = match request.connect().await {
            Ok(connected) => connected,
            // A refusal (an expired token, a tenant the caller may not act
            // for) is final, as for any request; a 429 passes once the limit does.
            Err(WsClientError::InvalidResponseStatus(status))
                if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS =>
            {
                return Err(why_refused(api, token, &url, status).await)
            }
            Err(e) => return Err(Failure::general(format!("cannot open the live connection {url}: {e}"))),
        };
        Ok(Live { socket, early: VecDeque::new() })
    }

    /// Subscribes to one run (`Some`) or to every run of the tenant, and waits
    /// for the server to acknowledge it, so no later event can be missed.
    pub async fn subscribe(&mut self, id: Option<&str>) -> Result<(), Failure> {
        let message = match id {
            Some(id) => json!({ "type": "subscribe", "executionId": id }),
            None => json!({ "type": "subscribe", "all": true }),
        };
        self.send(message).await?;
        loop {
            match self.next().await? {
                Some(v) if v["type"] == "subscribed" => return Ok(()),
                // The server refused what was asked (a run id that is not one):
                // the caller's input, as a 4xx would be.
                Some(v) if v["type"] == "error" => {
                    let why = v["message"].as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                    return Err(Failure::usage(format!("the server refused to follow it: {why}")));
                }
                Some(v) => self.early.push_back(v),
                None => return Err(Failure::general("the live connection closed while subscribing")),
            }
        }
    }

    async fn send(&mut self, message: Value) -> Result<(), Failure> {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .map_err(|e| Failure::general(format!("the live connection failed: {e}")))
    }

    /// The next JSON message, answering pings on the way; `None` once closed.
    pub async fn next(&mut self) -> Result<Option<Value>, Failure> {
        if let Some(v) = self.early.pop_front() {
            return Ok(Some(v));
        }
        loop {
            match self.socket.next().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(Failure::general(format!("the live connection failed: {e}"))),
                Some(Ok(Frame::Text(bytes))) => {
                    if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                        return Ok(Some(v));
                    }
                }
                Some(Ok(Frame::Ping(payload))) => {
                    let _ = self.socket.send(Message::Pong(payload)).await;
                }
                Some(Ok(Frame::Close(_))) => return Ok(None),
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Why the server refused the handshake with `status`: the same request
/// without the upgrade is answered with the server's JSON error (the token
/// and the tenant are checked before the upgrade), which the handshake's
/// answer does not carry to the client.
async fn why_refused(api: &Api, token: &str, url: &str, status: StatusCode) -> Failure {
    let fallback = Failure::usage(format!(
        "the server refused the live connection {url} ({} {})",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    ));
    let http_url = api.url(LIVE_PATH);
    let mut request = api.client(Duration::from_secs(30)).get(&http_url).bearer_auth(token);
    if let Some(tenant) = &api.tenant {
        request = request.insert_header((super::api::TENANT_HEADER, tenant.as_str()));
    }
    let Ok(mut response) = request.send().await else {
        return fallback;
    };
    if response.status() != status {
        return fallback;
    }
    let raw = response.body().limit(1 << 20).await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&raw).unwrap_or_default();
    super::api::refusal(status, &body, &raw).context("the server refused the live connection")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(ws_url("https://h:1"), "wss://h:1/api/v1/ws");
        assert_eq!(ws_url("http://h"), "ws://h/api/v1/ws");
    }
}
