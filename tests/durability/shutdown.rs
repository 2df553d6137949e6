//! A clean stop (SIGTERM) closes the live WebSocket as a stopping server
//! should: a close frame with 1001 (going away) and the reason, sent at once,
//! so clients reconnect elsewhere; before, the graceful stop waited for the
//! open socket until its timeout and then cut it (the client saw 1006).

use std::time::Duration;

use awc::ws::{CloseCode, Frame, Message};
use futures::{SinkExt, StreamExt};

use crate::process::{free_port, Server};

#[actix_web::test]
async fn sigterm_closes_a_live_socket_with_going_away() {
    let logs = tempfile::tempdir().expect("log dir");
    let mut server = Server::start(free_port(), &[], logs.path().join("server.log")).await;
    let url = format!("{}/api/v1/ws", server.base.replacen("http", "ws", 1));
    let (_, mut socket) =
        awc::Client::new().ws(url).bearer_auth(server.token()).connect().await.expect("the live socket opens");
    socket.send(Message::Text(r#"{"type":"subscribe","all":true}"#.into())).await.expect("subscribe sent");
    let subscribed = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
    assert!(
        matches!(&subscribed, Ok(Some(Ok(Frame::Text(t)))) if String::from_utf8_lossy(t).contains("subscribed")),
        "no 'subscribed' answer: {subscribed:?}"
    );

    let ended = server.terminate();
    assert!(ended.success(), "SIGTERM ended the server with {ended}; log:\n{}", server.log_text());
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Frame::Close(reason)) => return Some(reason),
                Ok(_) => continue,
                Err(e) => panic!("the socket broke instead of closing: {e}"),
            }
        }
        None
    })
    .await
    .expect("the socket's end within 10 s");
    let reason = close.expect("a close frame, not a dropped connection").expect("a close code");
    assert_eq!(reason.code, CloseCode::Away, "close reason: {reason:?}");
    assert_eq!(reason.description.as_deref(), Some("The server is shutting down."));
}
