//! Message-bus consumers on the live WebSocket: subscribe to a pull
//! subscription, receive its deliveries, ack and nack them on the same
//! socket; prefetch bounds what a socket holds; roles and tenants apply.

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::messaging_api::{publish, subscribe, topic};
use crate::support::{spawn_app, TestApp, VIEWER};
use crate::tenants::provision;
use crate::ws_support::WsClient;

async fn metrics(app: &TestApp, topic: &str) -> Value {
    let (status, m) = app.get(&format!("/api/v1/topics/{topic}/metrics")).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    m
}

#[actix_web::test]
async fn a_socket_receives_deliveries_and_settles_them() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "jobs" })).await;
    let sub = subscribe(&app, "jobs", json!({ "maxRetries": 3 })).await;
    let mut ws = WsClient::connect(&app, "/api/v1/ws").await;
    ws.send(&json!({ "type": "subscribe", "subscriptionId": sub, "prefetch": 2 })).await;
    let subscribed = ws.json().await;
    assert_eq!(
        (subscribed["type"].as_str(), subscribed["subscriptionId"].as_str()),
        (Some("subscribed"), Some(sub.as_str()))
    );

    for n in 1..=3 {
        publish(&app, "jobs", &format!("job {n}")).await;
    }
    let first = ws.json().await;
    let second = ws.json().await;
    for (frame, payload) in [(&first, "job 1"), (&second, "job 2")] {
        assert_eq!(frame["type"], "message", "{frame}");
        assert_eq!(frame["subscriptionId"], sub.as_str());
        assert_eq!(frame["message"]["payload"], payload, "{frame}");
        assert_eq!(frame["message"]["deliveryAttempts"], 1);
    }
    // Prefetch 2: the third stays queued until one of them is settled.
    assert_eq!(metrics(&app, "jobs").await["delivered"], 2);

    let first_id = first["message"]["messageId"].as_str().unwrap().to_string();
    ws.send(&json!({ "type": "ack", "subscriptionId": sub, "messageId": first_id })).await;
    let frames = ws.until(|f| f["type"] == "message").await;
    assert!(frames.iter().any(|f| f["type"] == "acked" && f["messageId"] == first_id.as_str()), "{frames:#?}");
    let third = frames.last().unwrap();
    assert_eq!(third["message"]["payload"], "job 3", "{third}");
    // Acking again is harmless, as over REST.
    ws.send(&json!({ "type": "ack", "subscriptionId": sub, "messageId": first_id })).await;
    assert_eq!(ws.json().await["type"], "acked");

    // A nack without requeue dead-letters at once.
    let second_id = second["message"]["messageId"].as_str().unwrap();
    ws.send(
        &json!({ "type": "nack", "subscriptionId": sub, "messageId": second_id, "requeue": false, "reason": "bad" }),
    )
    .await;
    let nacked = ws.until(|f| f["type"] == "nacked").await;
    assert_eq!(nacked.last().unwrap()["messageId"], second_id);
    let (_, dlq) = app.get("/api/v1/topics/jobs/dlq").await;
    assert_eq!(dlq.as_array().unwrap().len(), 1, "{dlq}");

    // A nack with requeue comes back as a second attempt on the socket.
    let third_id = third["message"]["messageId"].as_str().unwrap().to_string();
    ws.send(&json!({ "type": "nack", "subscriptionId": sub, "messageId": third_id })).await;
    let again = ws.until(|f| f["type"] == "message").await;
    let redelivered = again.last().unwrap();
    assert_eq!(
        (redelivered["message"]["messageId"].as_str(), redelivered["message"]["deliveryAttempts"].as_u64()),
        (Some(third_id.as_str()), Some(2))
    );
    ws.send(&json!({ "type": "ack", "subscriptionId": sub, "messageId": third_id })).await;
    ws.until(|f| f["type"] == "acked").await;
    let m = metrics(&app, "jobs").await;
    assert_eq!((m["acknowledged"].as_u64(), m["deadLettered"].as_u64()), (Some(2), Some(1)), "{m}");

    // Settling what this subscription never leased is an error frame, not a close.
    ws.send(&json!({ "type": "ack", "subscriptionId": sub, "messageId": "no-such-message" })).await;
    let err = ws.json().await;
    assert_eq!(err["type"], "error", "{err}");
    ws.send(&json!({ "type": "unsubscribe", "subscriptionId": sub })).await;
    assert_eq!(ws.json().await["type"], "unsubscribed");
    ws.close().await;
}

#[actix_web::test]
async fn only_deployers_of_the_subscriptions_tenant_consume() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "jobs" })).await;
    let sub = subscribe(&app, "jobs", json!({})).await;

    let viewer = app.as_user(VIEWER).await;
    let mut ws = WsClient::connect(&viewer, "/api/v1/ws").await;
    ws.send(&json!({ "type": "subscribe", "subscriptionId": sub })).await;
    let refused = ws.json().await;
    // A role refusal, as a refused settle is: Forbidden, not BadRequest.
    assert_eq!((refused["type"].as_str(), refused["error"].as_str()), (Some("error"), Some("Forbidden")), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("Deployer"), "{refused}");
    ws.close().await;

    let other_tenant = provision(&app, "ws-consumer-other", "Starter").await;
    let other = app.new_user("ws-consumer-other-admin", &["Admin"], Some(other_tenant)).await;
    let mut ws = WsClient::connect(&other, "/api/v1/ws").await;
    ws.send(&json!({ "type": "subscribe", "subscriptionId": sub })).await;
    let ended = ws.json().await;
    assert_eq!(
        (ended["type"].as_str(), ended["error"].as_str()),
        (Some("error"), Some("SubscriptionEnded")),
        "{ended}"
    );
    assert!(ended["message"].as_str().unwrap().contains("not found"), "{ended}");
    // Nothing was leased for the other tenant's socket.
    publish(&app, "jobs", "still here").await;
    let (_, consumed) = app.get(&format!("/api/v1/messages/consume/jobs?subscriptionId={sub}&max=5")).await;
    assert_eq!(consumed["messages"].as_array().unwrap().len(), 1, "{consumed}");
    ws.close().await;
}
