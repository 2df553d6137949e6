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
