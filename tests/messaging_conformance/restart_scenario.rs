//! The scenario both restart tests (PostgreSQL and JetStream) play on the
//! real binary: three publishes, two leased, one acked, then a SIGKILL; the
//! next process must hold every acknowledged publish, never deliver the
//! acked one again, and redeliver the leased one as its second attempt.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::process::Server;

/// What the first process left behind: the subscription and the three
/// message ids (m1 acked, m2 leased, m3 never leased).
pub struct BeforeTheKill {
    pub subscription: String,
    pub message_ids: Vec<String>,
}

pub async fn consume(server: &Server, sub: &str, max: u32, wait_ms: u64) -> Vec<Value> {
    let path = format!("/api/v1/messages/consume/orders?subscriptionId={sub}&max={max}&waitMs={wait_ms}");
    let (status, body) = server.get(&path).await.expect("consume");
    assert_eq!(status, StatusCode::OK, "{body}\n{}", server.log_text());
    body["messages"].as_array().expect("messages").clone()
}

/// Topic `orders` with one pull subscription (lease 5 s), m1..m3 published,
/// m1 and m2 leased and m1 acked.
pub async fn publish_lease_and_ack_one(first: &Server) -> BeforeTheKill {
    let (status, body) = first.post("/api/v1/topics", &json!({ "name": "orders" })).await.expect("topic");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sub_body = json!({ "topicName": "orders", "consumerGroup": "g", "consumerEndpoint": "pull",
                           "ackTimeout": "5s", "maxRetries": 3 });
    let (status, sub) = first.post("/api/v1/subscriptions", &sub_body).await.expect("subscription");
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let subscription = sub["subscriptionId"].as_str().expect("subscriptionId").to_string();
    let mut message_ids = Vec::new();
    for payload in ["m1", "m2", "m3"] {
        let (status, msg) =
            first.post("/api/v1/messages", &json!({ "topicName": "orders", "payload": payload })).await.expect("pub");
        assert_eq!(status, StatusCode::CREATED, "{msg}");
        message_ids.push(msg["messageId"].as_str().expect("messageId").to_string());
    }
    let leased = consume(first, &subscription, 2, 0).await;
    let leased_payloads: Vec<&str> = leased.iter().map(|d| d["payload"].as_str().unwrap()).collect();
    assert_eq!(leased_payloads, ["m1", "m2"]);
    let (status, body) = first
        .post(&format!("/api/v1/messages/{}/ack?subscriptionId={subscription}", message_ids[0]), &Value::Null)
        .await
        .expect("ack");
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    BeforeTheKill { subscription, message_ids }
}

/// On the process started after the kill: every publish is there, m2 comes
/// back as attempt 2 once its lease runs out, m3 as attempt 1, m1 never,
/// and nothing else is left; answers the topic's metrics.
pub async fn nothing_acknowledged_is_lost(second: &Server, before: &BeforeTheKill) -> Value {
    let sub = &before.subscription;
    for id in &before.message_ids {
        let (status, msg) = second.get(&format!("/api/messages/{id}")).await.expect("get message");
        assert_eq!(status, StatusCode::OK, "{id} lost: {msg}");
    }
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while seen.len() < 2 {
        assert!(Instant::now() < deadline, "redeliveries missing: saw {seen:?}\n{}", second.log_text());
        for d in consume(second, sub, 10, 1000).await {
            let payload = d["payload"].as_str().unwrap().to_string();
            assert_ne!(payload, "m1", "an acknowledged message was delivered again");
            let id = d["messageId"].as_str().unwrap();
            let (status, _) = second
                .post(&format!("/api/v1/messages/{id}/ack?subscriptionId={sub}"), &Value::Null)
                .await
                .expect("ack");
            assert_eq!(status, StatusCode::NO_CONTENT);
            assert!(seen.insert(payload, d["deliveryAttempts"].as_u64().unwrap()).is_none(), "a duplicate");
        }
    }
    assert_eq!(seen, BTreeMap::from([("m2".to_string(), 2), ("m3".to_string(), 1)]));
    assert!(consume(second, sub, 10, 300).await.is_empty(), "nothing else is left");
    let (_, metrics) = second.get("/api/v1/topics/orders/metrics").await.expect("metrics");
    metrics
}
