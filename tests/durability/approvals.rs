//! Approval timers across a SIGKILL on PostgreSQL: the approval actor is
//! recreated from the store with its stored deadline, and an approval that
//! ran out while no process was up expires at start-up.

use std::time::{Duration, Instant};

use awc::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::process::{free_port, Server};
use crate::support::TestDb;

async fn pending(server: &Server, module: &str) -> (String, Value) {
    let body = json!({
        "moduleName": module, "version": "1.0.0", "targetEnvironment": "Staging",
        "requesterEmail": "ops@example.com", "requireApproval": true,
    });
    let (status, reply) = server.post("/api/v1/deployments", &body).await.expect("create");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let id = reply["executionId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, approval) = server.get(&format!("/api/v1/approvals/deployments/{id}")).await.expect("read");
        if status == StatusCode::OK {
            assert_eq!(approval["status"], "Pending");
            return (id, approval);
        }
        assert!(Instant::now() < deadline, "no approval was opened");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a time: {v}"))
}

fn vars(db: &TestDb, timeout: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__APPROVALS__TIMEOUT", timeout.to_string()),
    ]
}

#[actix_web::test]
async fn a_pending_approval_keeps_its_deadline_across_a_restart() {
    let Some(db) = TestDb::create("durability::approval_deadline").await else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut first = Server::start(port, &vars(&db, "8s"), dir.path().join("first.log")).await;
    let (id, approval) = pending(&first, "kmod-deadline").await;
    let timeout_at = time(&approval["timeoutAt"]);
    first.kill();
    // Down for 3 s: the deadline is then 5 s after the restart, while a timer
    // armed afresh by the new process would fire 8 s after it.
    let down_until = Utc::now() + chrono::Duration::seconds(3);
    while Utc::now() < down_until {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let restarted_at = Utc::now();
    let second = Server::start(port, &vars(&db, "8s"), dir.path().join("second.log")).await;
    let run = second.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "Failed", "{run:#}");
    let (_, approval) = second.get(&format!("/api/v1/approvals/deployments/{id}")).await.unwrap();
    assert_eq!(approval["status"], "Expired");
    assert_eq!(time(&approval["timeoutAt"]), timeout_at, "the deadline is the stored one");
    let expired_at = time(&approval["respondedAt"]);
    assert!(expired_at >= timeout_at, "not before the deadline: {expired_at} < {timeout_at}");
    assert!(
        expired_at < restarted_at + chrono::Duration::seconds(7),
        "re-armed from the stored deadline, not from the restart: expired {expired_at}, restarted {restarted_at}"
    );
    let (_, nodes) = second.get("/api/v1/clusters/Development").await.unwrap();
    assert!(nodes["nodes"].as_array().unwrap().iter().all(|n| n["modules"].get("kmod-deadline").is_none()));
}

#[actix_web::test]
async fn an_approval_that_ran_out_while_down_expires_at_start_up() {
    let Some(db) = TestDb::create("durability::approval_expired_while_down").await else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut first = Server::start(port, &vars(&db, "2s"), dir.path().join("first.log")).await;
    let (id, approval) = pending(&first, "kmod-downtime").await;
    let timeout_at = time(&approval["timeoutAt"]);
    first.kill();
    // No process runs until the deadline has passed.
    while Utc::now() < timeout_at + chrono::Duration::milliseconds(200) {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // Restarted with a longer timeout: the stored deadline holds, and the
    // message says how long this approval had (it said the new setting's 1h).
    let second = Server::start(port, &vars(&db, "1h"), dir.path().join("second.log")).await;
    let run = second.finished(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "Failed", "{run:#}");
    let message = run["message"].as_str().unwrap();
    assert!(message.starts_with("Approval request expired after 2s without a decision"), "{message}");
    let (_, approval) = second.get(&format!("/api/v1/approvals/deployments/{id}")).await.unwrap();
    assert_eq!(approval["status"], "Expired");
    // The audit trail has the request and the expiry, by the system.
    let (status, trail) = second.get(&format!("/api/v1/auditlogs/approvals/{id}")).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{trail}");
    let kinds: Vec<_> = trail.as_array().unwrap().iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ApprovalRequested", "ApprovalExpired"], "{trail:#}");
    assert!(trail.as_array().unwrap().iter().all(|e| e["actor"]["name"] == "system"));
}
