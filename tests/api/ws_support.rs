//! A small WebSocket client for the live-update tests.

use std::time::Duration;

use awc::ws::{CloseCode, Frame, Message};
use futures::{SinkExt, StreamExt};
use serde_json::Value;

use crate::support::TestApp;

type Conn = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

pub struct WsClient {
    conn: Conn,
    /// Answer the server's pings (a silent client is dropped).
    pub answer_pings: bool,
}

/// What the server sent, pings aside.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(Option<u16>),
}

impl WsClient {
    pub async fn connect(app: &TestApp, path: &str) -> WsClient {
        Self::connect_with(app, path, &[]).await.expect("upgrade")
    }

    /// An upgrade with extra request headers; the status of a refused one.
    pub async fn connect_with(
        app: &TestApp,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<WsClient, awc::http::StatusCode> {
        let url = format!("{}{path}", app.base.replacen("http://", "ws://", 1));
        let mut ws = awc::Client::new().ws(url).max_frame_size(1 << 20);
        if let Some(token) = &app.token {
            ws = ws.bearer_auth(token);
        }
        for (name, value) in headers {
            ws = ws.set_header(*name, *value);
        }
        match ws.connect().await {
            Ok((res, conn)) => {
                assert_eq!(res.status(), awc::http::StatusCode::SWITCHING_PROTOCOLS);
                Ok(WsClient { conn, answer_pings: true })
            }
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status),
            Err(e) => panic!("upgrade: {e}"),
        }
    }

    pub async fn send(&mut self, value: &Value) {
        self.send_text(value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.conn.send(Message::Text(text.into())).await.expect("sent");
    }

    /// The next message within `timeout`; None when nothing came.
    pub async fn recv_within(&mut self, timeout: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.conn.next()).await.ok()?;
            match frame {
                None => return Some(Received::Closed(None)),
                Some(Err(e)) => panic!("websocket error: {e}"),
                Some(Ok(Frame::Text(t))) => {
                    return Some(Received::Json(serde_json::from_slice(&t).expect("server sends JSON")))
                }
                Some(Ok(Frame::Ping(p))) => {
                    if self.answer_pings {
                        self.conn.send(Message::Pong(p)).await.expect("pong");
                    }
                }
                Some(Ok(Frame::Close(reason))) => return Some(Received::Closed(reason.map(|r| u16::from(r.code)))),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Text frames as they come (the SignalR hub's are not plain JSON), until one satisfies `last`.
    pub async fn raw_until(&mut self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let frame = tokio::time::timeout_at(deadline, self.conn.next()).await;
            let frame = match frame {
                Ok(Some(Ok(f))) => f,
                other => panic!("no frame satisfied the test: {other:?}; saw {seen:#?}"),
            };
            match frame {
                Frame::Text(t) => {
                    let text = String::from_utf8(t.to_vec()).expect("UTF-8");
                    let done = last(&text);
                    seen.push(text);
                    if done {
                        return seen;
                    }
                }
                Frame::Ping(p) => self.conn.send(Message::Pong(p)).await.expect("pong"),
                Frame::Close(reason) => panic!("closed: {reason:?}; saw {seen:#?}"),
                _ => {}
            }
        }
    }

    /// Text frames until the server closes, within `timeout`: the close code and the texts.
    pub async fn raw_until_closed(&mut self, timeout: Duration) -> (Option<u16>, Vec<String>) {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.conn.next()).await {
                Ok(Some(Ok(f))) => f,
                Ok(None) => return (None, seen),
                other => panic!("the server did not close within {timeout:?}: {other:?}; saw {seen:#?}"),
            };
            match frame {
                Frame::Text(t) => seen.push(String::from_utf8(t.to_vec()).expect("UTF-8")),
                Frame::Ping(p) => self.conn.send(Message::Pong(p)).await.expect("pong"),
                Frame::Close(reason) => return (reason.map(|r| u16::from(r.code)), seen),
                _ => {}
            }
        }
    }

    /// The next JSON message; panics on a close or a timeout.
    pub async fn json(&mut self) -> Value {
        match self.recv_within(Duration::from_secs(10)).await {
            Some(Received::Json(v)) => v,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Reads until the server closes; returns the close code and what came before.
    pub async fn until_closed(&mut self, timeout: Duration) -> (Option<u16>, Vec<Value>) {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_within(left).await {
                Some(Received::Json(v)) => seen.push(v),
                Some(Received::Closed(code)) => return (code, seen),
                None => panic!("the server did not close within {timeout:?}; saw {seen:#?}"),
            }
        }
    }

    /// Collects messages until one satisfies `last`.
    pub async fn until(&mut self, last: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let v = self.json().await;
            let done = last(&v);
            seen.push(v);
            if done {
                return seen;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.conn.send(Message::Close(Some(CloseCode::Normal.into()))).await;
    }
}
