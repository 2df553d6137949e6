//! Tenants across a SIGKILL: the records, their clusters and the quota use
//! (counted from the stored runs) are all there again in the next process.

use std::time::Duration;

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::process::{free_port, Server};
use crate::support::TestDb;

fn used(usage: &Value, quota: &str) -> Value {
    usage["quotas"].as_array().unwrap().iter().find(|q| q["quota"] == quota).unwrap()["used"].clone()
}

#[actix_web::test]
async fn tenants_their_clusters_and_quota_use_survive_a_killed_process() {
    let Some(db) = TestDb::create("tenants_their_clusters_and_quota_use_survive_a_killed_process").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let vars = vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", "30s".to_string()),
    ];
    let mut first = Server::start(port, &vars, dir.path().join("first.log")).await;
    let body = json!({ "name": "Kept", "subdomain": "kept", "tier": "Free", "contactEmail": "ops@kept.example.com" });
    let (status, tenant) = first.post("/api/tenants", &body).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    let kept = tenant["tenantId"].as_str().unwrap().to_string();
    // The Free tier allows one run at a time: one run holds it.
    first.act_for(Some(&kept));
    let run = json!({ "moduleName": "kmod-kept", "version": "1.0.0", "targetEnvironment": "QA", "requesterEmail": "ops@example.com" });
    let (status, reply) = first.post("/api/v1/deployments", &run).await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let id = reply["executionId"].as_str().unwrap().to_string();
    first.kill();

    let mut second = Server::start(port, &vars, dir.path().join("second.log")).await;
    let (_, tenant) = second.get(&format!("/api/tenants/{kept}")).await.unwrap();
    assert_eq!((tenant["status"].as_str(), tenant["tier"].as_str()), (Some("Active"), Some("Free")), "{tenant}");
    let (_, usage) = second.get(&format!("/api/tenants/{kept}/usage")).await.unwrap();
    assert_eq!(used(&usage, "nodesPerEnvironment"), 2, "its clusters are back: {usage}");
    assert_eq!(used(&usage, "concurrentRuns"), 1, "{usage}");
    second.act_for(Some(&kept));
    let other = json!({ "moduleName": "kmod-other", "version": "1.0.0", "targetEnvironment": "Development", "requesterEmail": "ops@example.com" });
    let (status, reply) = second.post("/api/v1/deployments", &other).await.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the resumed run still holds the slot: {reply}");
    let (status, _) = second.post(&format!("/api/v1/deployments/{id}/abort"), &json!({})).await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{}", second.log_text());
    second.finished(&id, Duration::from_secs(30)).await;
    let (status, reply) = second.post("/api/v1/deployments", &other).await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
}

#[actix_web::test]
async fn a_restart_with_fewer_simulated_nodes_forgets_the_others() {
    let Some(db) = TestDb::create("durability::a_restart_with_fewer_simulated_nodes_forgets_the_others").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let vars = |development: usize| {
        vec![
            ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
            ("HOTSWAP__STORE__URL", db.url.clone()),
            ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", development.to_string()),
        ]
    };
    let nodes_in_graph = async |server: &Server| {
        let (_, stats) = server.get("/api/v1/graph/statistics").await.unwrap();
        let by_type = stats["entitiesByType"].as_array().cloned().unwrap_or_default();
        by_type.iter().find(|t| t["type"] == "Node").map(|t| t["count"].as_u64().unwrap_or(0)).unwrap_or(0)
    };
    let mut first = Server::start(port, &vars(12), dir.path().join("first.log")).await;
    let run = json!({ "moduleName": "kmod-many", "version": "1.0.0", "targetEnvironment": "Development", "requesterEmail": "ops@example.com" });
    let (status, reply) = first.post("/api/v1/deployments", &run).await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    first.finished(reply["executionId"].as_str().unwrap(), Duration::from_secs(30)).await;
    let before = nodes_in_graph(&first).await;
    first.kill();

    // The same installation with 9 Development nodes fewer.
    let second = Server::start(port, &vars(3), dir.path().join("second.log")).await;
    assert!(before >= 12, "{before} nodes in the graph");
    assert_eq!(nodes_in_graph(&second).await, before - 9, "{}", second.log_text());
}
