//! What the message bus's API keeps and refuses beyond the basics: a PUT
//! changes only what it names, enum fields in the original's forms, the
//! server's own topic, payloads at their limit, publishes dead on arrival,
//! filters that would never apply, a suspended tenant's consumers, query
//! values that do not parse, and a socket consumer whose subscription goes.

use std::time::Duration;

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::messaging_api::{publish, subscribe, topic};
use crate::support::{spawn_app, TestApp};
use crate::tenants::provision;
use crate::ws_support::WsClient;

fn refused(reply: (StatusCode, Value), status: StatusCode, words: &[&str]) -> Value {
    let (got, body) = reply;
    assert_eq!(got, status, "{body}");
    let text = body.to_string();
    for w in words {
        assert!(text.contains(w), "'{w}' missing from {body}");
    }
    body
}

#[actix_web::test]
async fn a_topic_put_changes_only_the_fields_it_names() {
    let app = spawn_app(&[]).await;
    topic(
        &app,
        json!({ "name": "once", "type": "Queue", "deliveryGuarantee": "ExactlyOnce", "retentionPeriod": "1h",
                        "partitionCount": 4, "config": { "ordered": true } }),
    )
    .await;
    let (status, put) =
        app.put("/api/v1/topics/once", &json!({ "name": "once", "description": "just a description" })).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(
        (&put["description"], &put["type"], &put["deliveryGuarantee"], &put["retentionPeriod"], &put["partitionCount"]),
        (&json!("just a description"), &json!("Queue"), &json!("ExactlyOnce"), &json!("1h"), &json!(4)),
        "{put}"
    );
    assert_eq!((&put["config"]["ordered"], &put["effectiveRoutingStrategy"]), (&json!(true), &json!("LoadBalanced")));

    // Named fields change; null clears the optional ones.
    let body = json!({ "name": "once", "description": null, "config": { "routingStrategy": "FanOut" } });
    let (status, put) = app.put("/api/v1/topics/once", &body).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!((&put["description"], &put["effectiveRoutingStrategy"]), (&Value::Null, &json!("FanOut")), "{put}");
    assert_eq!((&put["config"]["ordered"], &put["deliveryGuarantee"]), (&json!(true), &json!("ExactlyOnce")));
    let body = json!({ "name": "once", "config": { "routingStrategy": null } });
    let (_, put) = app.put("/api/v1/topics/once", &body).await;
    assert_eq!(put["effectiveRoutingStrategy"], "LoadBalanced", "back to the type's default: {put}");

    // The de-duplication the guarantee gives survives a description edit.
    let body = json!({ "topicName": "once", "payload": "x" });
    let key = [("Idempotency-Key", "k1")];
    let first = app.request_with(awc::http::Method::POST, "/api/v1/messages", &key, Some(body.clone())).await;
    let again = app.request_with(awc::http::Method::POST, "/api/v1/messages", &key, Some(body)).await;
    assert_eq!((first.status, again.status), (StatusCode::CREATED, StatusCode::OK), "{}", again.text);
}

#[actix_web::test]
async fn topic_enums_take_any_case_and_the_originals_positions_and_config_keys_are_checked() {
    let app = spawn_app(&[]).await;
    let created = topic(&app, json!({ "name": "o1", "type": "queue", "deliveryGuarantee": "exactly_once" })).await;
    assert_eq!((&created["type"], &created["deliveryGuarantee"]), (&json!("Queue"), &json!("ExactlyOnce")));
    // The original's positions: TopicType { Queue, PubSub }, DeliveryGuarantee { AtMostOnce, AtLeastOnce, ExactlyOnce }.
    let created = topic(&app, json!({ "name": "o2", "type": 1, "deliveryGuarantee": 0 })).await;
    assert_eq!((&created["type"], &created["deliveryGuarantee"]), (&json!("PubSub"), &json!("AtMostOnce")));

    let reply = app.post("/api/v1/topics", &json!({ "name": "o3", "type": "stream" })).await;
    let body = refused(reply, StatusCode::BAD_REQUEST, &["type: ", "Queue, PubSub", "0 Queue, 1 PubSub"]);
    assert_eq!(body["code"], "validation_failed");
    let reply = app.post("/api/v1/topics", &json!({ "name": "o3", "deliveryGuarantee": 3 })).await;
    refused(reply, StatusCode::BAD_REQUEST, &["deliveryGuarantee: 3", "AtMostOnce, AtLeastOnce, ExactlyOnce"]);
    let reply = app.post("/api/v1/topics", &json!({ "name": "o3", "config": { "foo": "bar" } })).await;
    refused(reply, StatusCode::BAD_REQUEST, &["unknown field `foo`"]);
    // An array is not a config (serde's struct reading took one, field by field).
    let reply = app.post("/api/v1/topics", &json!({ "name": "o3", "config": [null, null] })).await;
    refused(reply, StatusCode::BAD_REQUEST, &["config must be an object"]);
    assert_eq!(app.get("/api/v1/topics/o3").await.0, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn hotswap_deployments_is_the_servers_to_publish_and_no_schema_binds_it() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "hotswap.deployments" })).await;
    let forged = json!({ "topicName": "hotswap.deployments", "payload": "{\"event\":\"RunFinished\"}",
                         "headers": { "hotswap-event": "RunFinished" } });
    for path in ["/api/v1/messages", "/api/messages/publish"] {
        let body = refused(app.post(path, &forged).await, StatusCode::FORBIDDEN, &["hotswap.deployments", "reserved"]);
        assert_eq!(body["code"], "reserved_topic", "{path}");
    }
    let (_, metrics) = app.get("/api/v1/topics/hotswap.deployments/metrics").await;
    assert_eq!(metrics["published"], 0, "{metrics}");

    let schema = json!({ "schemaId": "strict", "schemaDefinition": { "type": "object", "required": ["nope"] } });
    let (status, registered) = app.post("/api/v1/schemas", &schema).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let bind = json!({ "name": "hotswap.deployments", "schemaId": "strict" });
    refused(app.put("/api/v1/topics/hotswap.deployments", &bind).await, StatusCode::BAD_REQUEST, &["run events"]);
    assert_eq!(app.get("/api/v1/topics/hotswap.deployments").await.1["schemaId"], Value::Null);
}

#[actix_web::test]
async fn a_payload_at_max_payload_bytes_is_published_and_one_over_names_the_setting() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "big" })).await;
    const MAX: usize = 1 << 20;
    // Escaped, a payload of quotes is twice its size in the body; control characters six times.
    for filler in ["a", "\"", "\u{1}"] {
        let (status, reply) =
            app.post("/api/v1/messages", &json!({ "topicName": "big", "payload": filler.repeat(MAX) })).await;
        assert_eq!(status, StatusCode::CREATED, "{filler:?}: {reply}");
    }
    let (status, reply) =
        app.post("/api/messages/publish", &json!({ "topicName": "big", "payload": "\"".repeat(MAX) })).await;
    assert_eq!(status, StatusCode::CREATED, "the original's route: {reply}");
    let over = json!({ "topicName": "big", "payload": "a".repeat(MAX + 1) });
    refused(app.post("/api/v1/messages", &over).await, StatusCode::PAYLOAD_TOO_LARGE, &["messaging.max_payload_bytes"]);
}

#[actix_web::test]
async fn a_publish_already_expired_is_refused() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "events" })).await;
    subscribe(&app, "events", json!({})).await;
    let body = json!({ "topicName": "events", "payload": "late", "expiresAt": "2020-01-01T00:00:00Z" });
    for path in ["/api/v1/messages", "/api/messages/publish"] {
        refused(app.post(path, &body).await, StatusCode::BAD_REQUEST, &["expiresAt", "already past"]);
    }
    assert_eq!(app.get("/api/v1/topics/events/metrics").await.1["published"], 0);
    let later = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let (status, reply) =
        app.post("/api/v1/messages", &json!({ "topicName": "events", "payload": "on time", "expiresAt": later })).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

#[actix_web::test]
async fn a_filter_on_a_topic_that_does_not_route_by_content_is_refused() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "fan" })).await;
    topic(&app, json!({ "name": "content", "config": { "routingStrategy": "ContentBased" } })).await;
    let only_eu = |topic: &str| json!({ "topicName": topic, "consumerGroup": "only-eu", "filter": { "headerMatches": { "region": "eu" } } });
    let body = refused(
        app.post("/api/v1/subscriptions", &only_eu("fan")).await,
        StatusCode::BAD_REQUEST,
        &["filter", "FanOut", "ContentBased"],
    );
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(app.get("/api/v1/subscriptions?topicName=fan").await.1, json!([]));
    let (status, sub) = app.post("/api/v1/subscriptions", &only_eu("content")).await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    subscribe(&app, "fan", json!({ "filter": null })).await;
}

#[actix_web::test]
async fn query_values_that_do_not_parse_name_their_parameter() {
    let app = spawn_app(&[]).await;
    topic(&app, json!({ "name": "q" })).await;
    let sub = subscribe(&app, "q", json!({})).await;
    for (query, name) in [
        (format!("/api/v1/messages/consume/q?subscriptionId={sub}&max=-1"), "max"),
        (format!("/api/v1/messages/consume/q?subscriptionId={sub}&waitMs=-5"), "waitMs"),
        (format!("/api/v1/messages/consume/q?subscriptionId={sub}&max=abc"), "max"),
        ("/api/v1/topics/q/dlq?offset=-1".to_string(), "offset"),
        ("/api/messages/topic/q?limit=-1".to_string(), "limit"),
    ] {
        let (status, body) = app.get(&query).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("validation_failed")),
            "{query}: {body}"
        );
        assert!(body["details"][0].as_str().unwrap().starts_with(&format!("{name}: ")), "{query}: {body}");
    }
}

#[actix_web::test]
async fn a_suspended_tenants_consumers_lease_nothing() {
    let admin = spawn_app(&[]).await;
    let tenant = provision(&admin, "bus-suspended", "Starter").await;
    let deployer = admin.new_user("bus-suspended-dep", &["Deployer"], Some(tenant)).await;
    topic(&deployer, json!({ "name": "jobs" })).await;
    let sub = subscribe(&deployer, "jobs", json!({ "maxRetries": 1 })).await;
    publish(&deployer, "jobs", "backlog").await;
    let (status, _) = admin.post(&format!("/api/tenants/{tenant}/suspend"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);

    let deployer = deployer.as_user(("bus-suspended-dep", "a-long-enough-password")).await;
    let consume = format!("/api/v1/messages/consume/jobs?subscriptionId={sub}");
    for _ in 0..3 {
        refused(deployer.get(&consume).await, StatusCode::FORBIDDEN, &["Suspended"]);
    }
    // The socket: a suspended tenant's live session is refused at the upgrade.
    let refused_socket = WsClient::connect_with(&deployer, "/api/v1/ws", &[]).await.err();
    assert_eq!(refused_socket, Some(StatusCode::FORBIDDEN));

    let (status, _) = admin.post(&format!("/api/tenants/{tenant}/activate"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let deployer = deployer.as_user(("bus-suspended-dep", "a-long-enough-password")).await;
    let (status, got) = deployer.get(&consume).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["messages"][0]["deliveryAttempts"], 1, "no attempt was spent while suspended: {got}");
}

/// A socket consumer whose subscription is deleted ends with the same words
/// on every back-end.
async fn a_deleted_subscription_ends_the_socket_consumer_plainly(app: &TestApp) {
    topic(app, json!({ "name": "ws.gone" })).await;
    let sub = subscribe(app, "ws.gone", json!({})).await;
    let mut ws = WsClient::connect(app, "/api/v1/ws").await;
    ws.send(&json!({ "type": "subscribe", "subscriptionId": sub })).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    publish(app, "ws.gone", "one").await;
    assert_eq!(ws.json().await["type"], "message");
    let r = app.call(awc::http::Method::DELETE, &format!("/api/v1/subscriptions/{sub}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let ended = ws.until(|f| f["type"] == "error").await.pop().unwrap();
    assert_eq!(ended["error"], "SubscriptionEnded", "{ended}");
    assert_eq!(ended["message"], format!("subscription '{sub}' not found (deleted, or not this tenant's)"), "{ended}");
    ws.close().await;
}

#[actix_web::test]
async fn a_deleted_subscription_ends_the_socket_consumer_plainly_on_memory() {
    a_deleted_subscription_ends_the_socket_consumer_plainly(&spawn_app(&[]).await).await;
}

#[actix_web::test]
async fn a_deleted_subscription_ends_the_socket_consumer_plainly_on_jetstream() {
    let Ok(url) = std::env::var("HOTSWAP_TEST_NATS_URL") else {
        eprintln!("skipped: HOTSWAP_TEST_NATS_URL is not set");
        return;
    };
    let prefix = format!("A{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let overrides = [
        ("HOTSWAP__MESSAGING__BACKEND", "jetstream"),
        ("HOTSWAP__MESSAGING__NATS_URL", url.as_str()),
        ("HOTSWAP__MESSAGING__NATS_PREFIX", prefix.as_str()),
    ];
    let app = spawn_app(&overrides).await;
    let outcome =
        tokio::time::timeout(Duration::from_secs(60), a_deleted_subscription_ends_the_socket_consumer_plainly(&app));
    let finished = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    remove_streams(&url, &prefix).await;
    match finished {
        Ok(done) => done.expect("finished within a minute"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The streams and bucket a JetStream test made under its prefix.
async fn remove_streams(url: &str, prefix: &str) {
    use futures::TryStreamExt;
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let names: Vec<String> = js.stream_names().try_collect().await.unwrap();
    for name in
        names.into_iter().filter(|n| n.starts_with(&format!("{prefix}_")) || *n == format!("KV_{prefix}_MESSAGING"))
    {
        js.delete_stream(&name).await.unwrap();
    }
}
