//! A rolling stage killed mid-way and resumed by a process with another
//! `rolling_batch_size` carries on with the waves it started with: every node
//! ends on the new version and the stage's message is true.

use std::time::Duration;

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::process::{free_port, Server};
use crate::support::poll::eventually;
use crate::support::TestDb;

fn vars(db: &TestDb, batch: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "30s".to_string()),
        ("HOTSWAP__PIPELINE__ROLLING_BATCH_SIZE", batch.to_string()),
    ]
}

fn stage(run: &Value, name: &str) -> Value {
    run["stages"].as_array().and_then(|s| s.iter().find(|st| st["name"] == name)).cloned().unwrap_or(Value::Null)
}

#[actix_web::test]
async fn a_rolling_stage_resumed_with_another_batch_size_loads_every_node() {
    let Some(db) = TestDb::create("a_rolling_stage_resumed_with_another_batch_size_loads_every_node").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut first = Server::start(port, &vars(&db, "2"), dir.path().join("first.log")).await;
    let body = json!({
        "moduleName": "kmod-waves", "version": "1.0.0", "targetEnvironment": "QA",
        "requesterEmail": "ops@example.com", "metadata": { "simulateNodeDelayMs@QA": "1500" },
    });
    let (status, reply) = first.post("/api/v1/deployments", &body).await.expect("create");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let id = reply["executionId"].as_str().unwrap().to_string();
    // The first batch of two is in; the second is on its way.
    eventually(Duration::from_secs(30), "the first QA batch is deployed", async || {
        let Ok((_, run)) = first.get(&format!("/api/v1/deployments/{id}")).await else { return false };
        stage(&run, "Deploy to QA")["nodesDeployed"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    first.kill();

    let second = Server::start(port, &vars(&db, "3"), dir.path().join("second.log")).await;
    let run = second.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}\n{}", second.log_text());
    let qa = stage(&run, "Deploy to QA");
    assert_eq!(qa["message"], "Deployed to all 5 nodes with the Rolling strategy", "{qa:#}");
    let versions = second.versions("QA", "kmod-waves").await;
    assert!(versions.iter().all(|v| v.as_deref() == Some("1.0.0")), "nodes never loaded: {versions:?}");
}
