//! Panicking actors are caught, restarted with their state from the store,
//! and no run hangs because an actor died.

use crate::db::poll::{eventually, eventually_ok};
use std::time::Duration;

use hotswap_actors::domain::Environment::*;
use hotswap_actors::domain::DEFAULT_TENANT;
use serde_json::json;

use crate::support::{spawn_app, stage, TestApp};

const M: &str = "kmod-sup";

async fn restarts_of(app: &TestApp, child: &str) -> u32 {
    app.orchestrator.supervision().await.iter().find_map(|s| s.child(child).map(|c| c.restarts)).unwrap_or(0)
}

async fn wait_for_restarts(app: &TestApp, child: &str, at_least: u32) {
    eventually(Duration::from_secs(10), &format!("{child} is restarted"), async || {
        restarts_of(app, child).await >= at_least
    })
    .await;
}

#[actix_web::test]
async fn a_node_that_panics_while_loading_fails_the_attempt_and_comes_back_intact() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "QA").await;
    // 0.2 of five QA nodes, rounded up: qa-node-01 panics in the first batch.
    let id = app.deploy(M, "2.0.0", "QA", json!({ "metadata": { "simulatePanic@QA": "0.2" } })).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed");
    let qa = stage(&run, "Deploy to QA");
    assert_eq!(qa["status"], "RolledBack", "{run:#}");
    assert!(qa["message"].as_str().unwrap().contains("qa-node-01 stopped while handling the request"), "{qa}");
    wait_for_restarts(&app, "node:qa-node-01", 1).await;
    app.assert_all_active(Qa, M, Some("1.0.0")).await;
    // The restarted actor answers with the module state it reloaded.
    let (_, cluster) = app.get("/api/v1/clusters/QA").await;
    assert_eq!(cluster["nodes"][0]["modules"][M], "1.0.0", "{cluster}");
    assert_eq!(cluster["healthyNodes"], 5);
}

#[actix_web::test]
async fn a_crashed_idle_node_restarts_with_its_modules() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "Development").await;
    assert!(app.orchestrator.crash(DEFAULT_TENANT, "node:development-node-02"));
    wait_for_restarts(&app, "node:development-node-02", 1).await;
    eventually_ok(Duration::from_secs(5), "the node is back with its version and healthy", async || {
        let (_, dev) = app.get("/api/v1/clusters/Development").await;
        if dev["nodes"][1]["modules"][M] == "1.0.0" && dev["healthyNodes"] == 3 {
            Ok(())
        } else {
            Err(dev.to_string())
        }
    })
    .await;
}

#[actix_web::test]
async fn a_crashed_coordinator_resumes_its_run_from_the_checkpoint() {
    let app = spawn_app(&[("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "600ms")]).await;
    let id = app.deploy(M, "1.0.0", "Production", json!({})).await;
    app.wait_for(&id, |r| stage(r, "Deploy to Production")["status"] == "Running").await;
    assert!(app.orchestrator.crash(DEFAULT_TENANT, &format!("run:{id}")));
    wait_for_restarts(&app, &format!("run:{id}"), 1).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    app.assert_all_active(Production, M, Some("1.0.0")).await;
}

#[actix_web::test]
async fn a_coordinator_past_its_restart_limit_is_escalated_and_its_run_rolled_back() {
    let app = spawn_app(&[
        ("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "30s"),
        ("HOTSWAP__SUPERVISION__COORDINATOR__MAX_RESTARTS", "2"),
    ])
    .await;
    app.deploy_ok(M, "1.0.0", "Development").await;
    let id = app.deploy(M, "2.0.0", "Production", json!({})).await;
    app.wait_for(&id, |r| stage(r, "Deploy to Production")["nodesDeployed"].as_u64().unwrap_or(0) >= 2).await;
    let child = format!("run:{id}");
    for crash in 1..=3u32 {
        // Each incarnation must be up before it can be crashed again.
        eventually(Duration::from_secs(5), &format!("coordinator incarnation {crash} comes up"), async || {
            app.orchestrator.crash(DEFAULT_TENANT, &child)
        })
        .await;
        if crash < 3 {
            wait_for_restarts(&app, &child, crash).await;
        }
    }
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed", "{run:#}");
    assert!(run["message"].as_str().unwrap().contains("coordinator kept crashing"), "{run:#}");
    app.assert_all_active(Development, M, Some("1.0.0")).await;
    app.assert_all_active(Production, M, None).await;
}
