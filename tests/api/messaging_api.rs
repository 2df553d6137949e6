//! The message bus's REST API on the memory back-end: topics, subscriptions,
//! publish, consume, ack/nack, retries into the dead-letter queue and
//! replay, the original /api/messages API, bad input and tenant isolation.

use std::time::Duration;

use awc::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::db::poll::eventually_ok;
use crate::support::{spawn_app, TestApp, VIEWER};
use crate::tenants::provision;

/// Creates a topic; panics unless it is created.
pub async fn topic(app: &TestApp, body: Value) -> Value {
    let r = app.call(Method::POST, "/api/v1/topics", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

/// Subscribes to `topic` and answers the subscription's id.
pub async fn subscribe(app: &TestApp, topic: &str, extra: Value) -> String {
    let mut body = json!({ "topicName": topic, "consumerGroup": "g", "consumerEndpoint": "pull" });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, sub) = app.post("/api/v1/subscriptions", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    sub["subscriptionId"].as_str().unwrap().to_string()
}

pub async fn publish(app: &TestApp, topic: &str, payload: &str) -> Value {
    let (status, msg) = app.post("/api/v1/messages", &json!({ "topicName": topic, "payload": payload })).await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");
    msg
}

async fn consume(app: &TestApp, topic: &str, sub: &str, wait_ms: u64) -> Vec<Value> {
    let (status, body) =
        app.get(&format!("/api/v1/messages/consume/{topic}?subscriptionId={sub}&max=10&waitMs={wait_ms}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["messages"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn topics_are_created_read_updated_and_deleted_with_their_rules() {
    let app = spawn_app(&[]).await;
    let created = topic(
        &app,
        json!({ "name": "orders", "type": "Queue", "deliveryGuarantee": "AtLeastOnce",
                "retentionPeriod": "01:00:00", "partitionCount": 4, "config": { "routingStrategy": "fanout" } }),
    )
    .await;
    assert_eq!(created["retentionPeriod"], "1h");
    assert_eq!(created["config"]["routingStrategy"], "FanOut");
    assert_eq!(created["effectiveRoutingStrategy"], "FanOut");

    let (status, listed) = app.as_user(VIEWER).await.get("/api/v1/topics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("metrics").is_none(), "counters only when asked for: {listed}");
    // With the counters, as the topic's own metrics route answers them.
    publish(&app, "orders", "one").await;
    let (status, with) = app.get("/api/v1/topics?include=metrics").await;
    assert_eq!(status, StatusCode::OK, "{with}");
    let (_, own) = app.get("/api/v1/topics/orders/metrics").await;
    for counter in ["topicName", "published", "delivered", "acknowledged", "unrouted", "depth"] {
        assert_eq!(with[0]["metrics"][counter], own[counter], "{counter}: {with} against {own}");
    }
    assert_eq!(with[0]["metrics"]["published"], 1, "{with}");
    for bad in ["include=everything", "page=2"] {
        assert_eq!(app.get(&format!("/api/v1/topics?{bad}")).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }

    let update = json!({ "name": "orders", "description": "all orders", "retentionPeriod": "2h" });
    let (status, updated) = app.put("/api/v1/topics/orders", &update).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["description"], "all orders");
    let (status, err) = app.put("/api/v1/topics/orders", &json!({ "name": "other" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");

    let sub = subscribe(&app, "orders", json!({})).await;
    let r = app.call(Method::DELETE, "/api/v1/topics/orders", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "deleting a topic with subscriptions: {}", r.body);
    let r = app.call(Method::DELETE, &format!("/api/v1/subscriptions/{sub}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.call(Method::DELETE, "/api/v1/topics/orders", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/topics/orders").await.0, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn bad_topics_and_messages_are_refused_with_the_reason() {
    let app = spawn_app(&[]).await;
    let (status, err) =
        app.post("/api/v1/topics", &json!({ "name": "t", "config": { "routingStrategy": "Random" } })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["details"][0].as_str().unwrap().contains("Random"), "{err}");
    let (status, _) = app.post("/api/v1/topics", &json!({ "name": "bad name!" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.post("/api/v1/topics", &json!({ "name": "t", "partitionCount": 17 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    topic(&app, json!({ "name": "t" })).await;

    let (status, err) = app.post("/api/v1/messages", &json!({ "topicName": "nowhere", "payload": "x" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, err) =
        app.post("/api/v1/messages", &json!({ "topicName": "t", "payload": "x", "priority": 10 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, _) = app.post("/api/v1/messages", &json!({ "payload": "x" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a publish without a topic");
    let big = "x".repeat(1024 * 1024 + 1);
    let (status, err) = app.post("/api/v1/messages", &json!({ "topicName": "t", "payload": big })).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");

    let (status, _) =
        app.post("/api/v1/subscriptions", &json!({ "topicName": "t", "consumerGroup": "g", "maxRetries": 11 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body = json!({ "topicName": "t", "consumerGroup": "g", "type": "Push", "consumerEndpoint": "not a url" });
    let (status, err) = app.post("/api/v1/subscriptions", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err.to_string().contains("consumerEndpoint"), "{err}");
    let (status, _) = app.post("/api/v1/subscriptions", &json!({ "topicName": "none", "consumerGroup": "g" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let viewer = app.as_user(VIEWER).await;
    assert_eq!(viewer.post("/api/v1/topics", &json!({ "name": "v" })).await.0, StatusCode::FORBIDDEN);
}

/// A retention past ten years made the JetStream sweep overflow: refused
/// with 400 on every back-end; ten years is accepted.
#[actix_web::test]
async fn a_retention_beyond_ten_years_is_refused() {
    let app = spawn_app(&[]).await;
    for too_long in ["100000000days", "3651days", "3651.00:00:00", "99999999999999999.00:00:00"] {
        let (status, err) = app.post("/api/v1/topics", &json!({ "name": "t", "retentionPeriod": too_long })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{too_long}: {err}");
    }
    let (status, err) = app.post("/api/v1/topics", &json!({ "name": "t", "retentionPeriod": "100000000days" })).await;
    assert!(err.to_string().contains("at most 3650 days"), "{status}: {err}");
    assert_eq!(topic(&app, json!({ "name": "t", "retentionPeriod": "3650days" })).await["retentionPeriod"], "3650days");
    let (status, err) = app.put("/api/v1/topics/t", &json!({ "name": "t", "retentionPeriod": "4000days" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
}

/// Every text field that reaches a store: NUL (`\u0000`) is refused with 400
/// naming the field, whichever back-end serves the request.
async fn nul_is_refused_in_every_text_field(app: &TestApp) {
    let refused = |(status, err): (StatusCode, Value), field: &str| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {err}");
        assert!(err.to_string().contains(&format!("{field} must not contain the NUL character")), "{field}: {err}");
    };
    refused(app.post("/api/v1/topics", &json!({ "name": "nul", "description": "a\u{0}b" })).await, "description");
    topic(app, json!({ "name": "nul" })).await;
    refused(app.put("/api/v1/topics/nul", &json!({ "name": "nul", "description": "\u{0}" })).await, "description");
    let body = json!({ "topicName": "nul", "consumerGroup": "g\u{0}", "consumerEndpoint": "pull" });
    refused(app.post("/api/v1/subscriptions", &body).await, "consumerGroup");
    let sub = subscribe(app, "nul", json!({ "maxRetries": 0 })).await;
    for (extra, field) in [
        (json!({ "payload": "{\"a\":\"\u{0}\"}" }), "payload"),
        (json!({ "headers": { "h": "v\u{0}" } }), "headers.h"),
        (json!({ "messageId": "m\u{0}" }), "messageId"),
        (json!({ "partitionKey": "\u{0}" }), "partitionKey"),
        (json!({ "correlationId": "c\u{0}" }), "correlationId"),
    ] {
        let mut body = json!({ "topicName": "nul", "payload": "ok" });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        refused(app.post("/api/v1/messages", &body).await, field);
        refused(app.post("/api/messages/publish", &body).await, field);
    }
    let schema = json!({ "schemaId": "nul", "schemaDefinition": { "properties": { "a\u{0}": {} } } });
    refused(app.post("/api/v1/schemas", &schema).await, "schemaDefinition");
    let schema = json!({ "schemaId": "nul", "schemaDefinition": { "const": "\u{0}" } });
    refused(app.post("/api/v1/schemas", &schema).await, "schemaDefinition");

    // A nack whose reason holds NUL is refused and the lease kept: the
    // consumer nacks again with another reason and the message is dead-lettered.
    let id = publish(app, "nul", "m").await["messageId"].as_str().unwrap().to_string();
    let (status, leased) = app.get(&format!("/api/v1/messages/consume/nul?subscriptionId={sub}")).await;
    assert_eq!((status, leased["messages"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{leased}");
    let nack = format!("/api/v1/messages/{id}/nack?subscriptionId={sub}");
    refused(app.post(&nack, &json!({ "reason": "bad\u{0}", "requeue": false })).await, "reason");
    let (status, body) = app.post(&nack, &json!({ "reason": "bad", "requeue": false })).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, letters) = app.get("/api/v1/topics/nul/dlq").await;
    assert_eq!(letters.as_array().map(Vec::len), Some(1), "{letters}");
}

#[actix_web::test]
async fn nul_text_is_refused_on_the_memory_back_end() {
    nul_is_refused_in_every_text_field(&spawn_app(&[]).await).await;
}

#[actix_web::test]
async fn nul_text_is_refused_on_the_postgres_back_end() {
    let Some(db) = crate::db::TestDb::create("api::nul_text_is_refused_on_the_postgres_back_end").await else {
        return;
    };
    let overrides = [
        ("HOTSWAP__STORE__BACKEND", "postgres"),
        ("HOTSWAP__STORE__URL", db.url.as_str()),
        ("HOTSWAP__MESSAGING__BACKEND", "postgres"),
    ];
    nul_is_refused_in_every_text_field(&spawn_app(&overrides).await).await;
}

#[actix_web::test]
async fn pull_consumers_lease_ack_and_see_expired_leases_redelivered() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "jobs" })).await;
    let sub = subscribe(&app, "jobs", json!({ "ackTimeout": "00:00:01" })).await;
    let first = publish(&app, "jobs", "one").await;
    let id = first["messageId"].as_str().unwrap();

    let got = consume(&app, "jobs", &sub, 0).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["payload"], "one");
    assert_eq!(got[0]["deliveryAttempts"], 1);
    assert!(consume(&app, "jobs", &sub, 0).await.is_empty(), "a leased message is not handed out twice");

    // Not acked within the second: redelivered once, with attempts + 1.
    let again = eventually_ok(Duration::from_secs(5), "the expired lease is redelivered", async || {
        let got = consume(&app, "jobs", &sub, 500).await;
        got.into_iter().next().ok_or_else(|| "nothing yet".to_string())
    })
    .await;
    assert_eq!(again["deliveryAttempts"], 2);
    let r = app.call(Method::POST, &format!("/api/v1/messages/{id}/ack?subscriptionId={sub}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app.call(Method::POST, &format!("/api/v1/messages/{id}/ack?subscriptionId={sub}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "acks are idempotent");

    // A long poll answers as soon as something is published.
    let waiting = consume(&app, "jobs", &sub, 1500);
    let (got, _) = futures::join!(waiting, publish(&app, "jobs", "two"));
    assert_eq!(got.len(), 1, "the long poll got the publish");

    let (_, metrics) = app.get("/api/v1/topics/jobs/metrics").await;
    assert_eq!(metrics["published"], 2, "{metrics}");
    assert_eq!(metrics["acknowledged"], 1, "{metrics}");
    let (status, _) = app.get(&format!("/api/v1/messages/consume/jobs?subscriptionId={sub}&max=101")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get(&format!("/api/v1/messages/consume/other?subscriptionId={sub}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn nacks_retry_with_backoff_then_dead_letter_and_replay_moves_it_back() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "work" })).await;
    let sub = subscribe(&app, "work", json!({ "maxRetries": 1 })).await;
    let id = publish(&app, "work", "p").await["messageId"].as_str().unwrap().to_string();
    for attempt in 1..=2 {
        let got = eventually_ok(Duration::from_secs(5), "a (re)delivery", async || {
            consume(&app, "work", &sub, 500).await.into_iter().next().ok_or_else(|| "none".to_string())
        })
        .await;
        assert_eq!(got["deliveryAttempts"], attempt);
        let path = format!("/api/v1/messages/{id}/nack?subscriptionId={sub}");
        let r = app.call(Method::POST, &path, Some(json!({ "reason": "boom" }))).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }
    let (_, dlq) = app.get("/api/v1/topics/work/dlq").await;
    let letters = dlq.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{dlq}");
    assert_eq!(letters[0]["headers"]["X-Original-Topic"], "work");
    assert_eq!(letters[0]["headers"]["X-Delivery-Attempts"], "2");
    // Paged: the count of every letter rides along; the page size has limits.
    let r = app.call(Method::GET, "/api/v1/topics/work/dlq?limit=1&offset=1", None).await;
    assert_eq!((r.status, r.header("X-Total-Count")), (StatusCode::OK, Some("1")), "{}", r.text);
    assert_eq!(r.body, json!([]), "past the only letter");
    for bad in ["limit=0", "limit=1001", "offset=-1", "offset=100000001", "page=2"] {
        let r = app.call(Method::GET, &format!("/api/v1/topics/work/dlq?{bad}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }

    let r = app.call(Method::POST, &format!("/api/v1/topics/work/dlq/{id}/replay"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(app.get("/api/v1/topics/work/dlq").await.1, json!([]), "replay leaves no copy");
    let got = consume(&app, "work", &sub, 1000).await;
    assert_eq!(got[0]["deliveryAttempts"], 1, "attempts reset");
    let path = format!("/api/v1/messages/{id}/nack?subscriptionId={sub}");
    app.call(Method::POST, &path, Some(json!({ "requeue": false }))).await;
    let r = app.call(Method::DELETE, &format!("/api/v1/topics/work/dlq/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.call(Method::DELETE, &format!("/api/v1/topics/work/dlq/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// A nack body that does not parse is refused with the lease kept, not taken
/// as no body: a mistyped `requeue: false` must not requeue a poison message.
#[actix_web::test]
async fn a_nack_body_that_does_not_parse_is_refused_and_no_body_means_the_defaults() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "poison" })).await;
    let sub = subscribe(&app, "poison", json!({ "maxRetries": 3 })).await;
    let id = publish(&app, "poison", "p").await["messageId"].as_str().unwrap().to_string();
    assert_eq!(consume(&app, "poison", &sub, 0).await.len(), 1);
    let path = format!("/api/v1/messages/{id}/nack?subscriptionId={sub}");
    for bad in [&br#"{"requeue":"false","reason":"poison"}"#[..], b"this is not json", br#"{"requeu":false}"#] {
        let (status, body) = app.post_raw(&path, "application/json", bad.to_vec()).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{body}");
    }
    let (status, body) = app.post(&path, &json!({ "requeue": false, "reason": "poison" })).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the lease was kept: {body}");
    let (_, letters) = app.get("/api/v1/topics/poison/dlq").await;
    assert_eq!(letters[0]["headers"]["X-DLQ-Reason"], "poison", "{letters}");

    // No body at all: the retry policy decides (a retry here, not the DLQ).
    let second = publish(&app, "poison", "q").await["messageId"].as_str().unwrap().to_string();
    assert_eq!(consume(&app, "poison", &sub, 0).await.len(), 1);
    let r = app.call(Method::POST, &format!("/api/v1/messages/{second}/nack?subscriptionId={sub}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.get("/api/v1/topics/poison/dlq").await.1.as_array().map(Vec::len), Some(1));
}

#[actix_web::test]
async fn paused_subscriptions_keep_their_backlog_and_exactly_once_publishes_dedupe() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "once", "deliveryGuarantee": "ExactlyOnce" })).await;
    let sub = subscribe(&app, "once", json!({})).await;
    let (status, paused) = app.post(&format!("/api/v1/subscriptions/{sub}/pause"), &json!({})).await;
    assert_eq!((status, paused["paused"].clone()), (StatusCode::OK, json!(true)));
    let body = json!({ "topicName": "once", "payload": "x" });
    let first =
        app.request_with(Method::POST, "/api/v1/messages", &[("Idempotency-Key", "k1")], Some(body.clone())).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = app.request_with(Method::POST, "/api/v1/messages", &[("Idempotency-Key", "k1")], Some(body)).await;
    assert_eq!(again.status, StatusCode::OK, "a repeat answers the first message");
    assert_eq!(again.body["messageId"], first.body["messageId"]);
    assert!(consume(&app, "once", &sub, 0).await.is_empty(), "paused");
    app.post(&format!("/api/v1/subscriptions/{sub}/resume"), &json!({})).await;
    assert_eq!(consume(&app, "once", &sub, 500).await.len(), 1, "one delivery after resume, not two");
}

#[actix_web::test]
async fn the_original_messages_api_keeps_its_statuses() {
    let app = spawn_app(&[]).await;
    let r =
        app.call(Method::POST, "/api/messages/publish", Some(json!({ "topicName": "legacy", "payload": "a" }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["messageId"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), Some(format!("/api/messages/{id}").as_str()));
    assert_eq!(app.get("/api/v1/topics/legacy").await.1["config"]["routingStrategy"], "FanOut", "created on first use");
    app.call(Method::POST, "/api/messages/publish", Some(json!({ "topicName": "legacy", "payload": "b" }))).await;

    let (_, listed) = app.get("/api/messages/topic/legacy?limit=5000").await;
    let payloads: Vec<&str> = listed.as_array().unwrap().iter().map(|m| m["payload"].as_str().unwrap()).collect();
    assert_eq!(payloads, ["b", "a"], "newest first");
    let r = app.call(Method::POST, &format!("/api/messages/{id}/acknowledge"), None).await;
    assert_eq!((r.status, r.body["status"].clone()), (StatusCode::OK, json!("Acknowledged")));
    let (_, listed) = app.get("/api/messages/topic/legacy").await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "no duplicates after an ack");
    assert_eq!(app.call(Method::DELETE, &format!("/api/messages/{id}"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::DELETE, &format!("/api/messages/{id}"), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/messages/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.anonymous().get("/api/messages/topic/legacy").await.0, StatusCode::UNAUTHORIZED);

    let off = spawn_app(&[("HOTSWAP__MESSAGING__AUTO_CREATE_TOPICS", "false")]).await;
    let r = off.call(Method::POST, "/api/messages/publish", Some(json!({ "topicName": "x", "payload": "a" }))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// The body an original client sends (its whole Message model, with the
/// string `schemaVersion` and integer enums) and the fields it reads back.
#[actix_web::test]
async fn the_original_clients_message_is_published_and_answered_with_its_fields() {
    let app = spawn_app(&[]).await;
    let original = json!({
        "messageId": "", "topicName": "orders.v1", "payload": "{\"a\":1}", "schemaVersion": "1.0", "priority": 5,
        "timestamp": "0001-01-01T00:00:00", "headers": {}, "correlationId": "conv-7", "expiresAt": null,
        "deliveryAttempts": 0, "status": 0, "partitionKey": null, "partition": null, "deliveredAt": null,
        "acknowledgedAt": null, "ackDeadline": null,
    });
    let (status, published) = app.post("/api/messages/publish", &original).await;
    assert_eq!(status, StatusCode::CREATED, "{published}");
    assert_eq!(published["schemaVersion"], "1.0", "{published}");
    assert_eq!(published["correlationId"], "conv-7", "{published}");
    assert_eq!(published["status"], "Pending", "{published}");
    assert_eq!(published["acknowledgedAt"], Value::Null, "{published}");
    assert_eq!(published["timestamp"], published["publishedAt"], "{published}");
    assert_ne!(published["timestamp"], "0001-01-01T00:00:00", "the client's timestamp is replaced");
    let id = published["messageId"].as_str().unwrap().to_string();
    assert!(!id.is_empty(), "a blank id is given one");

    let (status, read) = app.get(&format!("/api/messages/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    for field in ["schemaVersion", "correlationId", "status", "timestamp", "priority", "acknowledgedAt"] {
        assert_eq!(read[field], published[field], "{field}: {read}");
    }
    let (status, acked) = app.post(&format!("/api/messages/{id}/acknowledge"), &json!({})).await;
    assert_eq!((status, acked["status"].as_str()), (StatusCode::OK, Some("Acknowledged")), "{acked}");
    let at = acked["acknowledgedAt"].as_str().expect("acknowledgedAt once acknowledged").to_string();
    let (_, again) = app.post(&format!("/api/messages/{id}/acknowledge"), &json!({})).await;
    assert_eq!(again["acknowledgedAt"].as_str(), Some(at.as_str()), "the first acknowledgement's time stays");
    let (_, listed) = app.get("/api/messages/topic/orders.v1").await;
    assert_eq!(listed[0]["acknowledgedAt"].as_str(), Some(at.as_str()), "{listed}");

    // "N", "N.0" and N name version N, and are answered as "N.0"; the v1
    // route takes them too and keeps the correlation id.
    for (given, answered) in [(json!("2"), "2.0"), (json!(3), "3.0"), (json!("0.0"), "0.0")] {
        let body = json!({ "topicName": "orders.v1", "payload": "x", "schemaVersion": given });
        let (status, m) = app.post("/api/messages/publish", &body).await;
        assert_eq!((status, m["schemaVersion"].as_str()), (StatusCode::CREATED, Some(answered)), "{given}: {m}");
    }
    let body = json!({ "topicName": "orders.v1", "payload": "x", "schemaVersion": "4.0", "correlationId": "c" });
    let (status, m) = app.post("/api/v1/messages", &body).await;
    assert_eq!(
        (status, m["schemaVersion"].as_u64(), m["correlationId"].as_str()),
        (StatusCode::CREATED, Some(4), Some("c"))
    );
    let (_, read) = app.get(&format!("/api/messages/{}", m["messageId"].as_str().unwrap())).await;
    assert_eq!((read["schemaVersion"].as_str(), read["correlationId"].as_str()), (Some("4.0"), Some("c")), "{read}");

    // Any other text names no registry version: 400 saying what is taken.
    for text in ["1.1", "v2", "", "01", "1.00", "1234567890", " 1"] {
        let body = json!({ "topicName": "orders.v1", "payload": "x", "schemaVersion": text });
        for path in ["/api/messages/publish", "/api/v1/messages"] {
            let (status, err) = app.post(path, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {text:?}: {err}");
            assert!(err["message"].as_str().unwrap().contains(r#""N" or "N.0""#), "{path} {text:?}: {err}");
        }
    }
    let body = json!({ "topicName": "orders.v1", "payload": "x", "schemaVersion": true });
    assert_eq!(app.post("/api/messages/publish", &body).await.0, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn another_tenants_topics_subscriptions_and_messages_are_not_found() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "mine" })).await;
    let sub = subscribe(&app, "mine", json!({})).await;
    let id = publish(&app, "mine", "secret").await["messageId"].as_str().unwrap().to_string();

    let other_tenant = provision(&app, "msg-other", "Starter").await;
    let other = app.new_user("msg-other-admin", &["Admin"], Some(other_tenant)).await;
    assert_eq!(other.get("/api/v1/topics").await.1, json!([]));
    for path in [
        "/api/v1/topics/mine".to_string(),
        "/api/v1/topics/mine/metrics".to_string(),
        "/api/v1/topics/mine/dlq".to_string(),
        format!("/api/v1/subscriptions/{sub}"),
        format!("/api/messages/{id}"),
        format!("/api/v1/messages/consume/mine?subscriptionId={sub}"),
    ] {
        assert_eq!(other.get(&path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let r = other.call(Method::POST, &format!("/api/v1/messages/{id}/ack?subscriptionId={sub}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = other.call(Method::DELETE, &format!("/api/messages/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Their own topic of the same name is theirs alone.
    topic(&other, json!({ "name": "mine" })).await;
    assert_eq!(app.get("/api/messages/topic/mine").await.1.as_array().unwrap().len(), 1);
}

/// A tenant may hold `messaging.max_topics_per_tenant` topics and
/// `max_subscriptions_per_tenant` subscriptions; one more is 409 until one is
/// deleted, and the original API's topic-on-first-publish obeys the same
/// limit. Another tenant's count is its own.
#[actix_web::test]
async fn a_tenant_holds_at_most_the_configured_topics_and_subscriptions() {
    let app = spawn_app(&[
        ("HOTSWAP__MESSAGING__MAX_TOPICS_PER_TENANT", "2"),
        ("HOTSWAP__MESSAGING__MAX_SUBSCRIPTIONS_PER_TENANT", "1"),
    ])
    .await;
    topic(&app, json!({ "name": "first" })).await;
    topic(&app, json!({ "name": "second" })).await;
    let r = app.call(Method::POST, "/api/v1/topics", Some(json!({ "name": "third" }))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "the tenant has 2 topics, the most it may have (messaging.max_topics_per_tenant = 2); delete one first"
    );
    let r =
        app.call(Method::POST, "/api/messages/publish", Some(json!({ "topicName": "third", "payload": "a" }))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a publish does not create a topic past the limit: {}", r.body);
    assert_eq!(app.get("/api/v1/topics/third").await.0, StatusCode::NOT_FOUND);
    // A publish to a topic that exists is not a creation.
    let r =
        app.call(Method::POST, "/api/messages/publish", Some(json!({ "topicName": "first", "payload": "a" }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    subscribe(&app, "first", json!({})).await;
    let body = json!({ "topicName": "second", "consumerGroup": "g", "consumerEndpoint": "pull" });
    let (status, refused) = app.post("/api/v1/subscriptions", &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("max_subscriptions_per_tenant = 1"), "{refused}");

    // Room again once one is deleted.
    assert_eq!(app.call(Method::DELETE, "/api/v1/topics/second", None).await.status, StatusCode::NO_CONTENT);
    topic(&app, json!({ "name": "third" })).await;
    // Another tenant starts from nothing.
    let other_tenant = provision(&app, "msg-limits", "Starter").await;
    let other = app.new_user("msg-limits-admin", &["Admin"], Some(other_tenant)).await;
    topic(&other, json!({ "name": "first" })).await;
}
