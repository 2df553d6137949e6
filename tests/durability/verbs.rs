//! A verb acknowledged just before SIGKILL: the next process honours it.
//! Every node is slowed down (`simulateNodeDelayMs`) so that the coordinator
//! is still waiting for its nodes, with no save of its own pending, when the
//! process dies.

use std::time::Duration;

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::process::{free_port, Server};
use crate::support::poll::eventually;
use crate::support::TestDb;

fn vars(db: &TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        // Longer than the nodes' delay, so that the load is waited for, not timed out.
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "30s".to_string()),
    ]
}

/// Starts a run of `module` to `target` whose nodes take 4 s per load, waits
/// until its first deployment stage is loading, and answers its id.
async fn loading(server: &Server, module: &str, target: &str) -> String {
    let body = json!({
        "moduleName": module, "version": "1.0.0", "targetEnvironment": target,
        "requesterEmail": "ops@example.com", "metadata": { "simulateNodeDelayMs": "4000" },
    });
    let (status, reply) = server.post("/api/v1/deployments", &body).await.expect("create");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let id = reply["executionId"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(30), "the first stage is loading", async || {
        let Ok((_, run)) = server.get(&format!("/api/v1/deployments/{id}")).await else { return false };
        stage(&run, "Deploy to Development")["status"] == "Running"
    })
    .await;
    id
}

fn stage(run: &Value, name: &str) -> Value {
    run["stages"].as_array().and_then(|s| s.iter().find(|st| st["name"] == name)).cloned().unwrap_or(Value::Null)
}

#[actix_web::test]
async fn an_abort_acknowledged_before_sigkill_is_carried_out_after_restart() {
    let Some(db) = TestDb::create("an_abort_acknowledged_before_sigkill_is_carried_out_after_restart").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut first = Server::start(port, &vars(&db), dir.path().join("first.log")).await;
    let id = loading(&first, "kmod-abort-kill", "Development").await;

    let (status, reply) = first.post(&format!("/api/v1/deployments/{id}/abort"), &json!({})).await.expect("abort");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    first.kill();

    let second = Server::start(port, &vars(&db), dir.path().join("second.log")).await;
    let run = second.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "Cancelled", "{run:#}\n{}", second.log_text());
    let versions = second.versions("Development", "kmod-abort-kill").await;
    assert!(versions.iter().all(Option::is_none), "nodes left on the new version: {versions:?}");
}

#[actix_web::test]
async fn a_pause_acknowledged_before_sigkill_holds_after_restart() {
    let Some(db) = TestDb::create("a_pause_acknowledged_before_sigkill_holds_after_restart").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut first = Server::start(port, &vars(&db), dir.path().join("first.log")).await;
    let id = loading(&first, "kmod-pause-kill", "QA").await;

    let (status, reply) = first.post(&format!("/api/v1/deployments/{id}/pause"), &json!({})).await.expect("pause");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    first.kill();

    let second = Server::start(port, &vars(&db), dir.path().join("second.log")).await;
    // Long enough for the resumed load of Development to end and QA to start, were the pause lost.
    eventually(Duration::from_secs(15), "the restarted coordinator has the run", async || {
        second.log_text().contains("coordinator started")
    })
    .await;
    let (_, run) = second.get(&format!("/api/v1/deployments/{id}")).await.expect("read");
    assert_eq!(run["status"], "Paused", "{run:#}");
    let (status, reply) = second.post(&format!("/api/v1/deployments/{id}/resume"), &json!({})).await.expect("resume");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let run = second.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    let versions = second.versions("QA", "kmod-pause-kill").await;
    assert!(versions.iter().all(|v| v.as_deref() == Some("1.0.0")), "{versions:?}");
}

/// A run paused during a rolling health-check delay, SIGKILLed, and started
/// again after that delay's end: it holds, and shows no wait (it kept
/// showing the delay that had ended, which a client counts down from).
#[actix_web::test]
async fn a_run_paused_in_a_wait_and_restarted_after_its_end_shows_no_wait() {
    let Some(db) = TestDb::create("a_run_paused_in_a_wait_and_restarted_after_its_end_shows_no_wait").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut vars = vars(&db);
    vars.push(("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", "3s".to_string()));
    let mut first = Server::start(port, &vars, dir.path().join("first.log")).await;
    let body = json!({ "moduleName": "kmod-pause-wait", "version": "1.0.0", "targetEnvironment": "QA", "requesterEmail": "ops@example.com" });
    let (status, reply) = first.post("/api/v1/deployments", &body).await.expect("create");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let id = reply["executionId"].as_str().unwrap().to_string();
    let mut until = None;
    eventually(Duration::from_secs(30), "the run waits out a health-check delay", async || {
        let Ok((_, run)) = first.get(&format!("/api/v1/deployments/{id}")).await else { return false };
        until = run["currentWait"]["until"].as_str().and_then(|u| u.parse::<chrono::DateTime<chrono::Utc>>().ok());
        run["currentWait"]["kind"] == "HealthCheckDelay"
    })
    .await;
    let (status, reply) = first.post(&format!("/api/v1/deployments/{id}/pause"), &json!({})).await.expect("pause");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    first.kill();
    // Down until the delay has ended.
    let until = until.expect("the wait's end");
    while chrono::Utc::now() < until + chrono::Duration::milliseconds(200) {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let second = Server::start(port, &vars, dir.path().join("second.log")).await;
    eventually(Duration::from_secs(15), "the restarted coordinator has the run", async || {
        second.log_text().contains("coordinator started")
    })
    .await;
    let (_, run) = second.get(&format!("/api/v1/deployments/{id}")).await.expect("read");
    assert_eq!(run["status"], "Paused", "{run:#}");
    assert_eq!(run["currentWait"], Value::Null, "{run:#}");
}
