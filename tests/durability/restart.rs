//! SIGKILL during a canary bake; the next process picks the run up.

use std::time::Duration;

use awc::http::StatusCode;
use serde_json::json;

use crate::process::{free_port, Server};
use crate::support::TestDb;

const M: &str = "kmod-durable";

async fn in_bake(server: &Server, id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, run) = server.get(&format!("/api/v1/deployments/{id}")).await.expect("run read");
        let prod =
            run["stages"].as_array().and_then(|s| s.iter().find(|st| st["name"] == "Deploy to Production")).cloned();
        if prod.as_ref().is_some_and(|p| p["status"] == "Running" && p["nodesDeployed"].as_u64().unwrap_or(0) >= 2) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never reached the bake: {run:#}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills the process during the first canary bake and starts it again with
/// `recovery_policy`; returns the run as it ended, with the second server.
async fn kill_during_bake(
    test: &str,
    recovery_policy: &str,
) -> Option<(TestDb, serde_json::Value, Server, tempfile::TempDir)> {
    let db = TestDb::create(test).await?;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let vars = |policy: &str| {
        vec![
            ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
            ("HOTSWAP__STORE__URL", db.url.clone()),
            ("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "4s".to_string()),
            ("HOTSWAP__RECOVERY__IN_FLIGHT", policy.to_string()),
        ]
    };
    let mut first = Server::start(port, &vars("resume"), dir.path().join("first.log")).await;
    let body = json!({ "moduleName": M, "version": "1.0.0", "targetEnvironment": "Development", "requesterEmail": "ops@example.com" });
    let (status, reply) = first.post("/api/v1/deployments", &body).await.expect("create");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    first.finished(reply["executionId"].as_str().unwrap(), Duration::from_secs(30)).await;

    let body = json!({ "moduleName": M, "version": "2.0.0", "targetEnvironment": "Production", "requesterEmail": "ops@example.com" });
    let (status, reply) = first.post("/api/v1/deployments", &body).await.expect("create");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let id = reply["executionId"].as_str().unwrap().to_string();
    in_bake(&first, &id).await;
    first.kill();

    let second = Server::start(port, &vars(recovery_policy), dir.path().join("second.log")).await;
    let run = second.finished(&id, Duration::from_secs(60)).await;
    // Callers bind the database first, so it is dropped after the server.
    Some((db, run, second, dir))
}

#[actix_web::test]
async fn a_killed_process_resumes_its_canary_and_finishes_it() {
    let Some((_db, run, server, _logs)) =
        kill_during_bake("a_killed_process_resumes_its_canary_and_finishes_it", "resume").await
    else {
        return;
    };
    assert_eq!(run["status"], "Succeeded", "{run:#}\n{}", server.log_text());
    for env in ["Development", "QA", "Staging", "Production"] {
        let versions = server.versions(env, M).await;
        assert!(versions.iter().all(|v| v.as_deref() == Some("2.0.0")), "{env}: {versions:?}");
    }
    assert!(server.log_text().contains("picking up run after restart"), "{}", server.log_text());
    // The run's own history says so too, naming where it was: not only the server's log.
    let id = run["executionId"].as_str().unwrap();
    let (_, events) = server.get(&format!("/api/v1/deployments/{id}/events")).await.unwrap();
    let resumed: Vec<_> = events.as_array().unwrap().iter().filter(|e| e["kind"] == "RunResumed").collect();
    assert_eq!(resumed.len(), 1, "{events:#}");
    let message = resumed[0]["message"].as_str().unwrap();
    assert!(message.starts_with("Picked up by instance "), "{message}");
    assert!(message.ends_with("(lease epoch 2) during Deploy to Production"), "{message}");
    // The second process saved the resumed run: its saves and the
    // transactions that wrote them are counted (several saves may share one).
    let metrics = server.text("/metrics").await;
    let count = |unit: &str| -> u64 {
        let series = format!("hotswap_store_run_saves_total{{unit=\"{unit}\"}} ");
        let line =
            metrics.lines().find(|l| l.starts_with(&series)).unwrap_or_else(|| panic!("no {series}in\n{metrics}"));
        line[series.len()..].trim().parse().expect("a count")
    };
    let (saves, transactions) = (count("saves"), count("transactions"));
    assert!(saves > 0 && (1..=saves).contains(&transactions), "saves {saves}, transactions {transactions}");
}

#[actix_web::test]
async fn a_killed_process_rolls_back_its_run_under_the_rollback_policy() {
    let Some((_db, run, server, _logs)) =
        kill_during_bake("a_killed_process_rolls_back_its_run_under_the_rollback_policy", "rollback").await
    else {
        return;
    };
    assert_eq!(run["status"], "Failed", "{run:#}");
    assert!(run["message"].as_str().unwrap().contains("Interrupted by a restart"), "{run:#}");
    assert!(server.versions("Development", M).await.iter().all(|v| v.as_deref() == Some("1.0.0")));
    for env in ["QA", "Staging", "Production"] {
        let versions = server.versions(env, M).await;
        assert!(versions.iter().all(Option::is_none), "{env}: {versions:?}");
    }
}
