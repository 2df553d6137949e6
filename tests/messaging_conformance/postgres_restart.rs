//! HotSwap on PostgreSQL, killed (SIGKILL) and started again: no publish it
//! acknowledged is lost, the ack it took is kept, and a delivery leased but
//! not acked before the kill is delivered again once its lease runs out.
//! Also the bus's refusals of bad input, over HTTP on this back-end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::process::{free_port, Server};
use crate::support::TestDb;

fn vars(db: &TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__MESSAGING__BACKEND", "postgres".to_string()),
    ]
}

async fn consume(server: &Server, sub: &str, max: u32, wait_ms: u64) -> Vec<Value> {
    let path = format!("/api/v1/messages/consume/orders?subscriptionId={sub}&max={max}&waitMs={wait_ms}");
    let (status, body) = server.get(&path).await.expect("consume");
    assert_eq!(status, StatusCode::OK, "{body}\n{}", server.log_text());
    body["messages"].as_array().expect("messages").clone()
}

#[actix_web::test]
async fn a_killed_instance_loses_no_acknowledged_publish_and_redelivers_unacked_leases() {
    let Some(db) = TestDb::create("messaging_conformance::postgres_restart").await else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut first = Server::start(port, &vars(&db), dir.path().join("first.log")).await;

    let (status, body) = first.post("/api/v1/topics", &json!({ "name": "orders" })).await.expect("topic");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sub_body = json!({ "topicName": "orders", "consumerGroup": "g", "consumerEndpoint": "pull",
                           "ackTimeout": "5s", "maxRetries": 3 });
    let (status, sub) = first.post("/api/v1/subscriptions", &sub_body).await.expect("subscription");
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let sub = sub["subscriptionId"].as_str().expect("subscriptionId").to_string();
    let mut ids = Vec::new();
    for payload in ["m1", "m2", "m3"] {
        let (status, msg) =
            first.post("/api/v1/messages", &json!({ "topicName": "orders", "payload": payload })).await.expect("pub");
        assert_eq!(status, StatusCode::CREATED, "{msg}");
        ids.push(msg["messageId"].as_str().expect("messageId").to_string());
    }
    let leased = consume(&first, &sub, 2, 0).await;
    let leased_payloads: Vec<&str> = leased.iter().map(|d| d["payload"].as_str().unwrap()).collect();
    assert_eq!(leased_payloads, ["m1", "m2"]);
    let (status, body) =
        first.post(&format!("/api/v1/messages/{}/ack?subscriptionId={sub}", ids[0]), &Value::Null).await.expect("ack");
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    first.kill();

    let second = Server::start(port, &vars(&db), dir.path().join("second.log")).await;
    // Every acknowledged publish is still there.
    for id in &ids {
        let (status, msg) = second.get(&format!("/api/messages/{id}")).await.expect("get message");
        assert_eq!(status, StatusCode::OK, "{id} lost: {msg}");
    }
    // m3 was never leased; m2's lease runs out 5 s after the first consume
    // (then 100 ms of backoff) and it comes back as its second attempt.
    // m1 was acked and must never come again.
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while seen.len() < 2 {
        assert!(Instant::now() < deadline, "redeliveries missing: saw {seen:?}\n{}", second.log_text());
        for d in consume(&second, &sub, 10, 1000).await {
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
    assert!(consume(&second, &sub, 10, 300).await.is_empty(), "nothing else is left");
    let (_, metrics) = second.get("/api/v1/topics/orders/metrics").await.expect("metrics");
    assert_eq!(metrics["published"], 3, "{metrics}");
    assert_eq!(metrics["acknowledged"], 3, "{metrics}");

    bad_input_is_refused_over_http(&second).await;
}

/// The bad input on this back-end: unknown topic 404, priority 10
/// 400, a payload over 1 MiB 413.
async fn bad_input_is_refused_over_http(server: &Server) {
    let (status, err) =
        server.post("/api/v1/messages", &json!({ "topicName": "nowhere", "payload": "x" })).await.expect("publish");
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let body = json!({ "topicName": "orders", "payload": "x", "priority": 10 });
    let (status, err) = server.post("/api/v1/messages", &body).await.expect("publish");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let big = "x".repeat(1024 * 1024 + 1);
    let (status, err) =
        server.post("/api/v1/messages", &json!({ "topicName": "orders", "payload": big })).await.expect("publish");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
}
