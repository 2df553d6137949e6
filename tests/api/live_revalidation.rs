//! Finding 3: open live sessions are checked again while they last. Logout,
//! a password reset, disabling the user and suspending the tenant close the
//! sessions concerned within a second, with 1008 on /api/v1/ws and a close
//! message carrying the reason on the SignalR hub.

use std::time::Duration;

use awc::http::StatusCode;
use serde_json::json;

use crate::support::{spawn_app, TestApp};
use crate::ws_support::WsClient;

const WITHIN: Duration = Duration::from_secs(1);

async fn open_ws(user: &TestApp) -> WsClient {
    let mut ws = WsClient::connect(user, "/api/v1/ws").await;
    ws.send(&json!({ "type": "ping" })).await;
    assert_eq!(ws.json().await["type"], "pong");
    ws
}

async fn user_id(user: &TestApp) -> String {
    user.get("/api/v1/authentication/me").await.1["id"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn logout_reset_disable_and_suspension_close_websocket_sessions_within_a_second() {
    let admin = spawn_app(&[]).await;

    let leaver = admin.new_user("ws-leaver", &["Viewer"], None).await;
    let mut ws = open_ws(&leaver).await;
    assert_eq!(leaver.post("/api/v1/authentication/logout", &json!(null)).await.0, StatusCode::NO_CONTENT);
    assert_eq!(ws.until_closed(WITHIN).await.0, Some(1008), "logout");

    let reset = admin.new_user("ws-reset", &["Viewer"], None).await;
    let mut ws = open_ws(&reset).await;
    let id = user_id(&reset).await;
    let (status, _) =
        admin.post(&format!("/api/v1/users/{id}/password"), &json!({ "password": "another-long-password" })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(ws.until_closed(WITHIN).await.0, Some(1008), "password reset");

    let disabled = admin.new_user("ws-disabled", &["Viewer"], None).await;
    let mut ws = open_ws(&disabled).await;
    let id = user_id(&disabled).await;
    assert_eq!(admin.post(&format!("/api/v1/users/{id}/disable"), &json!(null)).await.0, StatusCode::OK);
    assert_eq!(ws.until_closed(WITHIN).await.0, Some(1008), "disabled");

    let tenant = crate::tenants::provision(&admin, "ws-suspended", "Free").await;
    let member = admin.new_user("ws-member", &["Viewer"], Some(tenant)).await;
    let mut ws = open_ws(&member).await;
    let (status, reply) =
        admin.post(&format!("/api/tenants/{tenant}/suspend"), &json!({ "reason": "unpaid invoice" })).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(ws.until_closed(WITHIN).await.0, Some(1008), "tenant suspended");
    // Reconnecting with the same token is refused while the tenant is
    // suspended, on the WebSocket and at the hub's negotiate alike.
    let refused = crate::ws_support::WsClient::connect_with(&member, "/api/v1/ws", &[]).await.err();
    assert_eq!(refused, Some(StatusCode::FORBIDDEN), "a new session of a suspended tenant");
    let (status, body) = member.post("/hubs/deployment/negotiate?negotiateVersion=1", &json!(null)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("suspended"), "{body}");

    // Someone else's logout leaves a session alone.
    let stayer = admin.new_user("ws-stayer", &["Viewer"], None).await;
    let mut ws = open_ws(&stayer).await;
    let other = admin.new_user("ws-other", &["Viewer"], None).await;
    assert_eq!(other.post("/api/v1/authentication/logout", &json!(null)).await.0, StatusCode::NO_CONTENT);
    assert!(ws.recv_within(Duration::from_millis(500)).await.is_none(), "the session stays open");
    ws.send(&json!({ "type": "ping" })).await;
    assert_eq!(ws.json().await["type"], "pong");
}

#[actix_web::test]
async fn logout_closes_a_signalr_session_with_a_close_message() {
    const RS: char = '\u{1e}';
    let admin = spawn_app(&[]).await;
    let user = admin.new_user("hub-leaver", &["Viewer"], None).await;
    let (_, negotiated) = user.post("/hubs/deployment/negotiate?negotiateVersion=1", &json!({})).await;
    let token = negotiated["connectionToken"].as_str().unwrap();
    let mut hub = WsClient::connect(&user, &format!("/hubs/deployment?id={token}")).await;
    hub.send_text(format!("{}{RS}", json!({ "protocol": "json", "version": 1 }))).await;
    hub.raw_until(|f| f.contains("{}")).await;
    assert_eq!(user.post("/api/v1/authentication/logout", &json!(null)).await.0, StatusCode::NO_CONTENT);
    let (code, frames) = hub.raw_until_closed(WITHIN).await;
    assert_eq!(code, Some(1008), "{frames:?}");
    let close: serde_json::Value = frames
        .iter()
        .flat_map(|f| f.split(RS).filter(|r| !r.is_empty()).map(|r| serde_json::from_str(r).unwrap()))
        .find(|m: &serde_json::Value| m["type"] == 7)
        .expect("a close message");
    assert!(close["error"].as_str().is_some_and(|e| e.contains("revoked")), "{close}");
}

/// The hub's Server-Sent Events stream outlives its requests as a WebSocket
/// does; logout ends it with the hub's close message.
#[actix_web::test]
async fn logout_ends_a_signalr_event_stream() {
    use futures::StreamExt;
    let admin = spawn_app(&[]).await;
    let leaver = admin.new_user("sse-leaver", &["Viewer"], None).await;
    let (status, negotiated) = leaver.post("/hubs/deployment/negotiate?negotiateVersion=1", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{negotiated}");
    let id = negotiated["connectionToken"].as_str().unwrap();
    let bearer = leaver.token.clone().unwrap();
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let mut stream = client
        .get(format!("{}/hubs/deployment?id={id}&access_token={bearer}", leaver.base))
        .insert_header(("Accept", "text/event-stream"))
        .send()
        .await
        .expect("the event stream opens");
    assert_eq!(stream.status(), StatusCode::OK);
    let posted = client
        .post(format!("{}/hubs/deployment?id={id}", leaver.base))
        .bearer_auth(&bearer)
        .send_body("{\"protocol\":\"json\",\"version\":1}\u{1e}")
        .await
        .expect("the handshake is posted");
    assert_eq!(posted.status(), StatusCode::OK);
    assert_eq!(leaver.post("/api/v1/authentication/logout", &json!(null)).await.0, StatusCode::NO_CONTENT);
    let mut received = String::new();
    let ended = tokio::time::timeout(WITHIN * 3, async {
        while let Some(chunk) = stream.next().await {
            received.push_str(&String::from_utf8_lossy(&chunk.expect("a chunk")));
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream still runs after logout: {received}");
    assert!(received.contains("data: {}\u{1e}"), "the handshake reply came first: {received}");
    assert!(received.contains("\"type\":7") && received.contains("access ended"), "{received}");
}

/// A role change counts at the session's next check. Every role grants read
/// access, so moving an Admin to Viewer keeps the session; a user record left
/// with no role at all (the roles route refuses an empty list, but a record
/// edited in the database or written by another instance can hold one) closes
/// both the WebSocket and the SignalR session within a second.
#[actix_web::test]
async fn a_role_change_that_removes_read_access_closes_live_sessions_within_a_second() {
    use hotswap_actors::domain::{AuditActor, AuditCategory, NewAuditEntry, DEFAULT_TENANT};
    const RS: char = '\u{1e}';
    let admin = spawn_app(&[]).await;
    let user = admin.new_user("ws-demoted", &["Admin"], None).await;
    let id = user_id(&user).await;
    let mut ws = open_ws(&user).await;
    let (_, negotiated) = user.post("/hubs/deployment/negotiate?negotiateVersion=1", &json!({})).await;
    let token = negotiated["connectionToken"].as_str().unwrap();
    let mut hub = WsClient::connect(&user, &format!("/hubs/deployment?id={token}")).await;
    hub.send_text(format!("{}{RS}", json!({ "protocol": "json", "version": 1 }))).await;
    hub.raw_until(|f| f.contains("{}")).await;

    let (status, reply) = admin.put(&format!("/api/v1/users/{id}/roles"), &json!({ "roles": ["Viewer"] })).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let heard = ws.recv_within(Duration::from_millis(1500)).await;
    assert!(heard.is_none(), "a Viewer may still read: {heard:?}");
    ws.send(&json!({ "type": "ping" })).await;
    assert_eq!(ws.json().await["type"], "pong");

    let store = admin.orchestrator.store();
    let uuid = id.parse().unwrap();
    let mut record = store.get_user(DEFAULT_TENANT, uuid).await.unwrap().expect("the user is stored");
    record.roles.clear();
    let entry = NewAuditEntry::new(DEFAULT_TENANT, AuditActor::system(), AuditCategory::UserManagement, "UserUpdated");
    store.update_user(&record, &entry).await.unwrap();

    assert_eq!(ws.until_closed(WITHIN).await.0, Some(1008), "no role left (WebSocket)");
    let (code, frames) = hub.raw_until_closed(WITHIN).await;
    assert_eq!(code, Some(1008), "{frames:?}");
    let closed_for_reading =
        frames.iter().flat_map(|f| f.split(RS)).any(|m| m.contains("\"type\":7") && m.contains("may no longer read"));
    assert!(closed_for_reading, "the hub says why: {frames:?}");
}

/// With the poll set to a minute, only the signals that logout, disable
/// and suspension send can close the sessions within a second: the
/// WebSocket, the SignalR hub, and every session of a suspended tenant.
#[actix_web::test]
async fn signals_close_sessions_within_a_second_when_the_poll_is_slow() {
    const RS: char = '\u{1e}';
    let admin = spawn_app(&[("HOTSWAP__WEBSOCKET__REVALIDATE_INTERVAL", "60s")]).await;

    let leaver = admin.new_user("slow-leaver", &["Viewer"], None).await;
    let mut ws = open_ws(&leaver).await;
    let (_, negotiated) = leaver.post("/hubs/deployment/negotiate?negotiateVersion=1", &json!({})).await;
    let token = negotiated["connectionToken"].as_str().unwrap();
    let mut hub = WsClient::connect(&leaver, &format!("/hubs/deployment?id={token}")).await;
    hub.send_text(format!("{}{RS}", json!({ "protocol": "json", "version": 1 }))).await;
    hub.raw_until(|f| f.contains("{}")).await;
    assert_eq!(leaver.post("/api/v1/authentication/logout", &json!(null)).await.0, StatusCode::NO_CONTENT);
    assert_eq!(ws.until_closed(WITHIN).await.0, Some(1008), "logout (WebSocket)");
    assert_eq!(hub.raw_until_closed(WITHIN).await.0, Some(1008), "logout (SignalR)");

    let disabled = admin.new_user("slow-disabled", &["Viewer"], None).await;
    let mut ws = open_ws(&disabled).await;
    let id = user_id(&disabled).await;
    assert_eq!(admin.post(&format!("/api/v1/users/{id}/disable"), &json!(null)).await.0, StatusCode::OK);
    assert_eq!(ws.until_closed(WITHIN).await.0, Some(1008), "disabled");

    let tenant = crate::tenants::provision(&admin, "slow-suspended", "Free").await;
    let (one, two) = (
        admin.new_user("slow-member-1", &["Viewer"], Some(tenant)).await,
        admin.new_user("slow-member-2", &["Viewer"], Some(tenant)).await,
    );
    let (mut ws_one, mut ws_two) = (open_ws(&one).await, open_ws(&two).await);
    let bystander = admin.new_user("slow-bystander", &["Viewer"], None).await;
    let mut ws_bystander = open_ws(&bystander).await;
    let (status, reply) = admin.post(&format!("/api/tenants/{tenant}/suspend"), &json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(ws_one.until_closed(WITHIN).await.0, Some(1008), "tenant suspended (first member)");
    assert_eq!(ws_two.until_closed(WITHIN).await.0, Some(1008), "tenant suspended (second member)");
    // The default tenant's sessions heard nothing that concerns them.
    ws_bystander.send(&json!({ "type": "ping" })).await;
    assert_eq!(ws_bystander.json().await["type"], "pong");
}
