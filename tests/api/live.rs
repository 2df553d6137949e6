//! /api/v1/ws: subscriptions, the events of runs in order, keep-alive,
//! slow and misbehaving clients, token expiry.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::spawn_app;
use crate::ws_support::WsClient;

fn types(msgs: &[Value]) -> Vec<&str> {
    msgs.iter().map(|m| m["type"].as_str().unwrap()).collect()
}

/// A step of more nodes than an update lists: the first 100 named, every one counted.
#[actix_web::test]
async fn a_large_wave_lists_a_hundred_nodes_and_counts_them_all() {
    let app = spawn_app(&[("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "150")]).await;
    let mut ws = WsClient::connect(&app, "/api/v1/ws").await;
    ws.send(&json!({ "type": "subscribe", "all": true })).await;
    assert_eq!(ws.json().await, json!({ "type": "subscribed", "all": true }));
    app.deploy("kmod-wide", "1.0.0", "Development", json!({})).await;
    let msgs = ws.until(|m| m["type"] == "DeploymentCompleted").await;
    let update = msgs.iter().find(|m| m["type"] == "NodeUpdated").expect("a NodeUpdated event");
    let data = &update["data"];
    assert_eq!((data["nodeCount"].as_u64(), data["failedCount"].as_u64()), (Some(150), Some(0)), "{data}");
    let listed = data["nodes"].as_array().unwrap();
    assert_eq!(listed.len(), 100, "{data}");
    ws.close().await;
}

#[actix_web::test]
async fn a_subscriber_to_all_sees_every_event_of_a_run_in_order() {
    let app = spawn_app(&[]).await;
    let mut ws = WsClient::connect(&app, "/api/v1/ws").await;
    ws.send(&json!({ "type": "subscribe", "all": true })).await;
    assert_eq!(ws.json().await, json!({ "type": "subscribed", "all": true }));
    let id = app.deploy("kmod-live", "1.0.0", "QA", json!({})).await;
    let msgs = ws.until(|m| m["type"] == "DeploymentCompleted").await;
    assert!(msgs.iter().all(|m| m["executionId"] == id.as_str()), "{msgs:#?}");
    let run = app.get(&format!("/api/v1/deployments/{id}")).await.1;
    assert!(msgs.iter().all(|m| m["traceId"] == run["traceId"]), "{msgs:#?}");
    let kinds = types(&msgs);
    assert_eq!(kinds[0], "DeploymentStatusChanged");
    assert_eq!(msgs[0]["data"]["status"], "Running");
    assert_eq!(kinds[1], "StageStarted");
    assert_eq!(msgs[1]["data"]["stage"], "Security Scan");
    assert_eq!(kinds[kinds.len() - 2], "DeploymentStatusChanged");
    assert_eq!(msgs[kinds.len() - 2]["data"]["status"], "Succeeded");
    // Announced once: Validation's completion, saved with the run's end, does not say it again.
    let ends = msgs.iter().filter(|m| m["type"] == "DeploymentStatusChanged" && m["data"]["status"] == "Succeeded");
    assert_eq!(ends.count(), 1, "{kinds:?}");
    // 3 Development nodes and 5 QA nodes (in batches of 2), each updated once.
    let updates: Vec<_> = msgs.iter().filter(|m| m["type"] == "NodeUpdated").collect();
    assert_eq!(updates.len(), 4, "{kinds:?}");
    let nodes: Vec<_> = updates.iter().flat_map(|m| m["data"]["nodes"].as_array().unwrap()).collect();
    assert_eq!(nodes.len(), 8);
    // A step of this size lists every node; the counts say how many there were in all.
    for update in &updates {
        let listed = update["data"]["nodes"].as_array().unwrap().len();
        assert_eq!(
            (update["data"]["nodeCount"].as_u64(), update["data"]["failedCount"].as_u64()),
            (Some(listed as u64), Some(0))
        );
    }
    assert!(nodes.iter().all(|n| n["status"] == "Updated" && n["hostname"].is_string()), "{nodes:#?}");
    assert_eq!(updates[0]["data"]["environment"], "Development");
    // Each load names its wave and the stage's count of waves.
    let waves: Vec<_> = updates.iter().map(|m| (m["data"]["wave"].clone(), m["data"]["waves"].clone())).collect();
    assert_eq!(waves, [(json!(0), json!(1)), (json!(0), json!(3)), (json!(1), json!(3)), (json!(2), json!(3))]);
    let stages: Vec<_> = msgs.iter().filter(|m| m["type"] == "StageCompleted").map(|m| &m["data"]["stage"]).collect();
    assert_eq!(stages, ["Security Scan", "Deploy to Development", "Deploy to QA", "Validation"]);
    // Progress covers the whole run and only rises.
    let progress: Vec<f64> = msgs
        .iter()
        .filter(|m| m["type"] == "DeploymentProgress")
        .map(|m| m["data"]["percent"].as_f64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&100.0));
    assert!(progress[0] < 100.0 && progress[0] > 0.0, "{progress:?}");
    // Timestamps follow the order of events.
    let stamps: Vec<_> = msgs.iter().map(|m| m["timestamp"].as_str().unwrap().to_string()).collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> = stamps.iter().map(|s| s.parse().unwrap()).collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    ws.close().await;
}

#[actix_web::test]
async fn a_subscriber_to_one_run_sees_that_run_only_and_can_unsubscribe() {
    let app = spawn_app(&[("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", "200ms")]).await;
    let mut ws = WsClient::connect(&app, "/api/v1/ws").await;
    // A run slow enough to subscribe to before it ends.
    let first = app.deploy("kmod-one", "1.0.0", "QA", json!({})).await;
    ws.send(&json!({ "type": "subscribe", "executionId": first })).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    let other = app.deploy("kmod-two", "1.0.0", "Development", json!({})).await;
    let msgs = ws.until(|m| m["type"] == "DeploymentCompleted").await;
    assert!(msgs.iter().all(|m| m["executionId"] == first.as_str()), "{msgs:#?}");
    app.finished(&other).await;
    ws.send(&json!({ "type": "unsubscribe", "executionId": first })).await;
    assert_eq!(ws.json().await["type"], "unsubscribed");
    ws.send(&json!({ "type": "ping" })).await;
    assert_eq!(ws.json().await["type"], "pong");
    // Nothing more arrives for runs no longer watched.
    let third = app.deploy("kmod-one", "1.1.0", "Development", json!({})).await;
    app.finished(&third).await;
    assert!(ws.recv_within(Duration::from_millis(200)).await.is_none());
}

/// A subscription to a run the tenant has not (a mistyped id, another
/// tenant's run) was answered "subscribed" and then nothing, for ever; the
/// client is now told, after the acknowledgement, and the run is unwatched.
#[actix_web::test]
async fn a_subscriber_to_a_run_that_is_not_there_is_told_so() {
    let app = spawn_app(&[]).await;
    let mut ws = WsClient::connect(&app, "/api/v1/ws").await;
    let missing = uuid::Uuid::new_v4();
    ws.send(&json!({ "type": "subscribe", "executionId": missing })).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    let told = ws.json().await;
    assert_eq!(told["type"], "error", "{told}");
    assert_eq!(told["error"], "NotFound", "{told}");
    assert_eq!(told["executionId"], missing.to_string(), "{told}");
    // A run that is there is followed to its end, with no such error.
    let id = app.deploy("kmod-there", "1.0.0", "QA", json!({})).await;
    ws.send(&json!({ "type": "subscribe", "executionId": id })).await;
    let msgs = ws.until(|m| m["type"] == "DeploymentCompleted").await;
    assert!(msgs.iter().all(|m| m["type"] != "error"), "{msgs:#?}");
}

#[actix_web::test]
async fn malformed_and_oversized_messages_get_errors_and_repeated_abuse_closes() {
    let app = spawn_app(&[("HOTSWAP__WEBSOCKET__MAX_MESSAGE_BYTES", "100")]).await;
    let mut ws = WsClient::connect(&app, "/api/v1/ws").await;
    ws.send_text("not json".into()).await;
    let e = ws.json().await;
    assert_eq!((e["type"].as_str(), e["error"].as_str()), (Some("error"), Some("BadRequest")), "{e}");
    ws.send(&json!({ "type": "subscribe", "executionId": "nope" })).await;
    assert!(ws.json().await["message"].as_str().unwrap().contains("not a deployment id"));
    ws.send(&json!({ "type": "subscribe", "all": true, "padding": "x".repeat(200) })).await;
    assert_eq!(ws.json().await["error"], "MessageTooLarge");
    // The third strike (test profile: max_invalid_messages = 3) closes with 1008.
    let (code, _) = ws.until_closed(Duration::from_secs(2)).await;
    assert_eq!(code, Some(1008));
}

#[actix_web::test]
async fn a_silent_client_is_dropped() {
    let app = spawn_app(&[]).await;
    let mut ws = WsClient::connect(&app, "/api/v1/ws").await;
    ws.answer_pings = false;
    // Test profile: pings every 100 ms, dropped after 400 ms of silence.
    let (code, _) = ws.until_closed(Duration::from_secs(3)).await;
    assert_eq!(code, Some(1001));
}

#[actix_web::test]
async fn a_client_that_falls_behind_is_closed_with_1013() {
    let app = spawn_app(&[("HOTSWAP__WEBSOCKET__SEND_BUFFER", "1")]).await;
    let mut ws = WsClient::connect(&app, "/api/v1/ws").await;
    ws.send(&json!({ "type": "subscribe", "all": true })).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    // A run through QA: its waves save events in bursts larger than the buffer of one.
    let id = app.deploy("kmod-slow", "1.0.0", "QA", json!({})).await;
    let (code, _) = ws.until_closed(Duration::from_secs(10)).await;
    assert_eq!(code, Some(1013));
    // The run did not wait for the client.
    assert_eq!(app.finished(&id).await["status"], "Succeeded");
    let metrics = app.get_text("/metrics").await;
    assert!(metrics.contains("hotswap_websocket_slow_client_closes_total{protocol=\"websocket\"} 1"), "{metrics}");
}

#[actix_web::test]
async fn the_session_ends_when_its_token_expires() {
    // Tokens live two seconds here; the login in spawn_app has just issued one.
    // The client timeout is long so that only the token's expiry can end the
    // session: the test profile's 400 ms close a client whose pong is late on
    // a loaded machine (1001 instead of 1008).
    let app = spawn_app(&[
        ("HOTSWAP__AUTH__TOKEN_LIFETIME", "2s"),
        ("HOTSWAP__AUTH__TOKEN_LEEWAY", "0s"),
        ("HOTSWAP__WEBSOCKET__CLIENT_TIMEOUT", "30s"),
    ])
    .await;
    let token = app.token.clone().expect("logged in");
    let anonymous = app.anonymous();
    let mut ws = WsClient::connect(&anonymous, &format!("/api/v1/ws?access_token={token}")).await;
    ws.send(&json!({ "type": "ping" })).await;
    assert_eq!(ws.json().await["type"], "pong");
    let (code, _) = ws.until_closed(Duration::from_secs(5)).await;
    assert_eq!(code, Some(1008));
}

#[actix_web::test]
async fn a_plain_get_is_refused_with_a_json_error() {
    let app = spawn_app(&[]).await;
    let (status, body) = app.get("/api/v1/ws").await;
    assert_eq!(status, awc::http::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "Bad Request");
    assert!(matches!(body["traceId"].as_str(), Some(t) if t.len() == 32));
}

#[actix_web::test]
async fn a_bad_or_missing_token_is_refused_before_the_upgrade() {
    let app = spawn_app(&[]).await;
    let ws_base = app.base.replacen("http://", "ws://", 1);
    for path in ["/api/v1/ws", "/hubs/deployment?id=x"] {
        for token in [None, Some("not-a-token"), Some("eyJhbGciOiJIUzI1NiJ9.e30.c2ln")] {
            let mut ws = awc::Client::new().ws(format!("{ws_base}{path}"));
            if let Some(t) = token {
                ws = ws.bearer_auth(t);
            }
            match ws.connect().await {
                Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
                    assert_eq!(status, awc::http::StatusCode::UNAUTHORIZED, "{path} with {token:?}")
                }
                Err(other) => panic!("{path} with {token:?}: {other}"),
                Ok((res, _)) => panic!("{path} with {token:?} was upgraded: {}", res.status()),
            }
        }
        // The query-string form browsers use is checked the same way.
        let url = format!("{ws_base}{}{}access_token=forged", path, if path.contains('?') { "&" } else { "?" });
        match awc::Client::new().ws(url).connect().await {
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
                assert_eq!(status, awc::http::StatusCode::UNAUTHORIZED, "{path} with a forged access_token")
            }
            other => panic!("{path} with a forged access_token: {:?}", other.map(|(r, _)| r.status())),
        }
    }
}
