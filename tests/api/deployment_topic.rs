//! The system topic `hotswap.deployments`: a run's start, stage changes and
//! end arrive as messages to the tenant's subscribers, in order, and never
//! to another tenant's.

use std::time::Duration;

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::db::poll::eventually;
use crate::messaging_api::{subscribe, topic};
use crate::support::{spawn_app, TestApp};
use crate::tenants::provision;

const TOPIC: &str = "hotswap.deployments";

/// One long-poll of the subscription; acks what it gets and answers each
/// message's payload (parsed) and headers.
async fn consume_once(app: &TestApp, sub: &str) -> Vec<Value> {
    let path = format!("/api/v1/messages/consume/{TOPIC}?subscriptionId={sub}&max=50&waitMs=1000");
    let (status, body) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut out = Vec::new();
    for m in body["messages"].as_array().unwrap() {
        let id = m["messageId"].as_str().unwrap();
        let (status, _) = app.post(&format!("/api/v1/messages/{id}/ack?subscriptionId={sub}"), &json!({})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let payload: Value = serde_json::from_str(m["payload"].as_str().unwrap()).unwrap();
        out.push(json!({ "payload": payload, "headers": m["headers"] }));
    }
    out
}

/// Consumes until a message's payload satisfies `last`.
async fn consume_until(app: &TestApp, sub: &str, last: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    eventually(Duration::from_secs(60), "the awaited event arrives", async || {
        seen.extend(consume_once(app, sub).await);
        seen.iter().any(|m| last(&m["payload"]))
    })
    .await;
    seen
}

#[actix_web::test]
async fn a_runs_events_reach_subscribers_of_the_system_topic_in_order() {
    let app = spawn_app(&[]).await;
    // The topic appears with a tenant's first run; creating it beforehand is allowed.
    topic(&app, json!({ "name": TOPIC })).await;
    let sub = subscribe(&app, TOPIC, json!({})).await;
    let other_tenant = provision(&app, "deploy-topic-other", "Starter").await;
    let other = app.new_user("deploy-topic-other-admin", &["Admin"], Some(other_tenant)).await;
    topic(&other, json!({ "name": TOPIC })).await;
    let other_sub = subscribe(&other, TOPIC, json!({})).await;

    let run = app.deploy("kmod-topic", "1.0.0", "Development", json!({})).await;
    app.finished(&run).await;
    let seen = consume_until(&app, &sub, |p| p["event"] == "RunFinished").await;
    let events: Vec<&str> = seen.iter().map(|m| m["payload"]["event"].as_str().unwrap()).collect();
    assert_eq!(events.first(), Some(&"RunStarted"), "{seen:#?}");
    assert_eq!(events.last(), Some(&"RunFinished"), "{seen:#?}");
    assert!(events.contains(&"StageChanged"), "{seen:#?}");
    for m in &seen {
        assert_eq!(m["payload"]["executionId"], run.as_str(), "{m}");
        assert_eq!(m["payload"]["moduleName"], "kmod-topic");
        assert_eq!(m["headers"]["execution-id"], run.as_str());
        assert_eq!(m["headers"]["hotswap-event"], m["payload"]["event"]);
    }
    let last = &seen.last().unwrap()["payload"];
    assert_eq!(last["status"], "Succeeded", "{last}");
    let stages: Vec<&Value> = seen.iter().filter(|m| m["payload"]["event"] == "StageChanged").collect();
    assert!(stages.iter().all(|m| m["payload"]["stage"].is_string()), "{stages:#?}");

    // Published in order by one task: nothing of this run went to the other tenant.
    let (status, body) =
        other.get(&format!("/api/v1/messages/consume/{TOPIC}?subscriptionId={other_sub}&max=50")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["messages"], json!([]), "{body}");
    let (_, metrics) = other.get(&format!("/api/v1/topics/{TOPIC}/metrics")).await;
    assert_eq!(metrics["published"], 0, "{metrics}");
}

#[actix_web::test]
async fn the_topic_is_created_by_the_first_run() {
    let app = spawn_app(&[("HOTSWAP__MESSAGING__AUTO_CREATE_TOPICS", "false")]).await;
    assert_eq!(app.get(&format!("/api/v1/topics/{TOPIC}")).await.0, StatusCode::NOT_FOUND);
    let run = app.deploy("kmod-topic-first", "1.0.0", "Development", json!({})).await;
    app.finished(&run).await;
    let path = format!("/api/v1/topics/{TOPIC}/metrics");
    eventually(Duration::from_secs(30), "the system topic counts the run's events", async || {
        let (status, metrics) = app.get(&path).await;
        status == StatusCode::OK && metrics["published"].as_u64() >= Some(2)
    })
    .await;
}
