//! Operator verbs, their precedence, manual rollback and the one-run-per-module rule.

use crate::db::requests::deployment;
use awc::http::StatusCode;
use hotswap_actors::domain::Environment::*;
use serde_json::{json, Value};

use crate::support::{spawn_app, stage};

const M: &str = "kmod-io";

/// A canary bake long enough that the run is certainly waiting while verbs arrive.
const LONG_BAKE: [(&str, &str); 1] = [("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "60s")];

fn baking(run: &serde_json::Value) -> bool {
    stage(run, "Deploy to Production")["status"] == "Running"
        && stage(run, "Deploy to Production")["nodesDeployed"].as_u64().unwrap_or(0) >= 2
}

#[actix_web::test]
async fn pause_resume_and_promote_steer_a_canary() {
    let app = spawn_app(&LONG_BAKE).await;
    let id = app.deploy(M, "1.0.0", "Production", json!({})).await;
    app.wait_for(&id, baking).await;
    let verb = |v: &'static str| format!("/api/v1/deployments/{id}/{v}");

    let (status, body) = app.post(&verb("pause"), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "Paused");
    // Repeating a verb is harmless.
    assert_eq!(app.post(&verb("pause"), &json!({})).await.0, StatusCode::ACCEPTED);
    // Pause wins over promote.
    let (status, body) = app.post(&verb("promote"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["currentStatus"], "Paused");
    app.wait_for(&id, |r| r["status"] == "Paused").await;

    assert_eq!(app.post(&verb("resume"), &json!({})).await.1["status"], "Running");
    // Each promote skips the current 60 s bake; four steps, four promotes.
    let mut promotes = 0;
    let run = loop {
        let (_, run) = app.get(&format!("/api/v1/deployments/{id}")).await;
        if run["status"] != "Running" || promotes > 50 {
            break run;
        }
        let (status, body) = app.post(&verb("promote"), &json!({})).await;
        // Past the last bake (Validation) there is no wait left to skip.
        let nothing_to_skip = status == StatusCode::CONFLICT
            && body["message"].as_str().is_some_and(|m| m.contains("no stage under way has a wait to skip"));
        assert!(status == StatusCode::ACCEPTED || nothing_to_skip, "{status} {body}");
        promotes += 1;
        app.wait_for(&id, |r| r["status"] != "Running" || stage(r, "Deploy to Production")["status"] == "Running")
            .await;
        actix_web::rt::time::sleep(std::time::Duration::from_millis(30)).await;
    };
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    app.assert_all_active(Production, M, Some("1.0.0")).await;
    // Verbs on a finished run do not apply.
    let (status, body) = app.post(&verb("pause"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["currentStatus"], "Succeeded");
}

/// A promote skips a wait of the stage under way. Sent while Staging's
/// blue-green stage was loading (nothing there to skip), it was answered
/// "noted: the next wait will be skipped" and then skipped Production's first
/// canary bake: a 10 % canary judged on metrics read right after its load.
/// It is refused now, and the canary bakes.
#[actix_web::test]
async fn a_promote_with_no_wait_to_skip_in_the_stage_under_way_is_refused() {
    let app = spawn_app(&LONG_BAKE).await;
    let slow_staging = json!({ "metadata": { "simulateNodeDelayMs@Staging": "600" } });
    let id = app.deploy(M, "1.0.0", "Production", slow_staging).await;
    app.wait_for(&id, |r| stage(r, "Deploy to Staging")["status"] == "Running").await;
    let (status, body) = app.post(&format!("/api/v1/deployments/{id}/promote"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["currentStatus"], "Running", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("no stage under way has a wait to skip"), "{body}");
    // The first canary step waits out its bake (60 s here) rather than passing at once.
    let run = app.wait_for(&id, baking).await;
    let production = stage(&run, "Deploy to Production");
    assert_eq!(production["nodesDeployed"], 2, "{run:#}");
}

#[actix_web::test]
async fn abort_wins_over_pause_and_restores_everything_the_run_changed() {
    let app = spawn_app(&LONG_BAKE).await;
    app.deploy_ok(M, "1.0.0", "Staging").await;
    let id = app.deploy(M, "2.0.0", "Production", json!({})).await;
    app.wait_for(&id, baking).await;
    assert_eq!(app.post(&format!("/api/v1/deployments/{id}/pause"), &json!({})).await.0, StatusCode::ACCEPTED);
    let (status, body) = app.post(&format!("/api/v1/deployments/{id}/abort"), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Cancelled", "{run:#}");
    assert_eq!(stage(&run, "Deploy to Production")["status"], "RolledBack");
    assert_eq!(stage(&run, "Deploy to Development")["status"], "RolledBack");
    for env in [Development, Qa, Staging] {
        app.assert_all_active(env, M, Some("1.0.0")).await;
    }
    app.assert_all_active(Production, M, None).await;
    // A cancelled run has nothing left to roll back.
    assert_eq!(app.post(&format!("/api/v1/deployments/{id}/rollback"), &json!({})).await.0, StatusCode::CONFLICT);
}

#[actix_web::test]
async fn manual_rollback_restores_every_environment_the_run_touched() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "QA").await;
    let id = app.deploy(M, "2.0.0", "QA", json!({})).await;
    let finished = app.finished(&id).await;
    assert_eq!(finished["status"], "Succeeded");
    let (status, body) = app.post(&format!("/api/v1/deployments/{id}/rollback"), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "InProgress");
    assert_eq!(body["nodesAffected"], 8, "3 Development + 5 QA nodes");
    assert!(body["rollbackId"].is_string());
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "RolledBack", "{run:#}");
    assert_eq!(run["rollback"]["status"], "Completed");
    // The run keeps its own end and duration; the rollback's are its own.
    assert_eq!(run["endTime"], finished["endTime"], "{run:#}");
    assert_eq!(run["duration"], finished["duration"]);
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(time(&run["rollback"]["finishedAt"]) > time(&finished["endTime"]), "{run:#}");
    let (_, listed) = app.get(&format!("/api/v1/deployments?moduleName={M}&status=RolledBack")).await;
    let listed = listed.as_array().unwrap().iter().find(|r| r["executionId"] == id.as_str()).cloned().unwrap();
    assert_eq!(listed["endTime"], finished["endTime"], "{listed:#}");
    assert_eq!(listed["duration"], finished["duration"]);
    app.assert_all_active(Development, M, Some("1.0.0")).await;
    app.assert_all_active(Qa, M, Some("1.0.0")).await;
    app.assert_all_active(Production, M, None).await;
    let (status, _) = app.post(&format!("/api/v1/deployments/{id}/rollback"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "already rolled back");
}

#[actix_web::test]
async fn rollback_leaves_nodes_a_later_run_changed() {
    let app = spawn_app(&[]).await;
    let first = app.deploy(M, "1.0.0", "QA", json!({})).await;
    app.finished(&first).await;
    app.deploy_ok(M, "2.0.0", "Development").await;
    let (status, body) = app.post(&format!("/api/v1/deployments/{first}/rollback"), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["nodesAffected"], 5, "only the QA nodes still run 1.0.0");
    app.finished(&first).await;
    app.assert_all_active(Development, M, Some("2.0.0")).await;
    app.assert_all_active(Qa, M, None).await;
}

#[actix_web::test]
async fn rollback_and_verbs_refuse_what_does_not_apply() {
    let app = spawn_app(&LONG_BAKE).await;
    let id = app.deploy(M, "1.0.0", "Production", json!({})).await;
    app.wait_for(&id, baking).await;
    let (status, body) = app.post(&format!("/api/v1/deployments/{id}/rollback"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "Conflict");
    assert_eq!(body["currentStatus"], "Running");
    assert!(body["traceId"].as_str().is_some_and(|t| t.len() == 32));
    let (status, _) = app.post(&format!("/api/v1/deployments/{id}/resume"), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "resume of a running run is a harmless repeat");
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/v1/deployments/{unknown}/rollback"),
        format!("/api/v1/deployments/{unknown}/abort"),
        "/api/v1/deployments/not-a-uuid/pause".to_string(),
    ] {
        let (status, body) = app.post(&path, &json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"], "Not Found");
    }
    app.post(&format!("/api/v1/deployments/{id}/abort"), &json!({})).await;
    assert_eq!(app.finished(&id).await["status"], "Cancelled");
}

#[actix_web::test]
async fn one_active_run_per_module() {
    let app = spawn_app(&LONG_BAKE).await;
    let first = app.deploy(M, "1.0.0", "Production", json!({})).await;
    let body = deployment(M, "1.0.1", "QA");
    let (status, reply) = app.post("/api/v1/deployments", &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert_eq!(reply["activeExecutionId"], first.as_str());
    assert!(reply["message"].as_str().unwrap().contains(&first));
    // Another module proceeds in parallel.
    let other = app.deploy("kmod-fs", "1.0.0", "Development", json!({})).await;
    assert_eq!(app.finished(&other).await["status"], "Succeeded");
    app.post(&format!("/api/v1/deployments/{first}/abort"), &json!({})).await;
    app.finished(&first).await;
    // Once the first run has ended the module is free again.
    app.deploy(M, "1.0.1", "Development", json!({})).await;
}

#[actix_web::test]
async fn a_rollback_of_a_run_that_left_no_node_on_its_version_is_refused_and_keeps_its_outcome() {
    let app = spawn_app(&[]).await;
    // Every Development node fails to load it: the stage restores them all.
    let meta = json!({ "metadata": { "simulateFailNodes@Development": "development-node-01,development-node-02,development-node-03" } });
    let id = app.deploy("kmod-nothing", "1.0.0", "Development", meta).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed", "{run:#}");
    let (status, refused) = app.post(&format!("/api/v1/deployments/{id}/rollback"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("nothing to roll back"), "{refused}");
    let after = app.get(&format!("/api/v1/deployments/{id}")).await.1;
    assert_eq!((after["status"].clone(), after["message"].clone()), (run["status"].clone(), run["message"].clone()));
}
