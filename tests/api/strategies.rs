//! Each strategy on its success, failure and rollback paths; node versions
//! after every run are part of what is asserted.

use hotswap_actors::domain::Environment::{self, *};
use serde_json::json;

use crate::support::{spawn_app, stage};

const M: &str = "kmod-net";

#[actix_web::test]
async fn direct_deploys_every_development_node() {
    let app = spawn_app(&[]).await;
    let id = app.deploy(M, "1.0.0", "Development", json!({})).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    let dev = stage(&run, "Deploy to Development");
    assert_eq!(dev["strategy"], "Direct");
    assert_eq!(dev["nodesDeployed"], 3);
    assert_eq!(stage(&run, "Validation")["status"], "Succeeded");
    app.assert_all_active(Development, M, Some("1.0.0")).await;
    app.assert_all_active(Qa, M, None).await;
    // The replaced version is kept as previous.
    app.deploy_ok(M, "1.1.0", "Development").await;
    for (_, slots) in app.slots(Development, M).await {
        assert_eq!(slots.previous.map(|p| p.version).as_deref(), Some("1.0.0"));
    }
}

/// Nodes that took the version but turn out unhealthy fail the Validation
/// stage: the target environment is restored, and the run names Validation
/// as the stage it failed at (it named the deploy stage, shown RolledBack).
#[actix_web::test]
async fn a_failed_validation_restores_the_target_and_is_named_as_where_the_run_failed() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "Development").await;
    let id = app.deploy(M, "2.0.0", "Development", json!({ "metadata": { "simulateUnhealthy": "true" } })).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed", "{run:#}");
    assert_eq!(stage(&run, "Validation")["status"], "Failed", "{run:#}");
    assert_eq!(stage(&run, "Deploy to Development")["status"], "RolledBack", "{run:#}");
    let message = run["message"].as_str().unwrap();
    assert!(message.starts_with("Pipeline failed at Validation stage: Validation failed: "), "{message}");
    app.assert_all_active(Development, M, Some("1.0.0")).await;
}

#[actix_web::test]
async fn direct_failure_restores_every_node_that_took_the_version() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "Development").await;
    let id = app
        .deploy(M, "2.0.0", "Development", json!({ "metadata": { "simulateFailNodes": "development-node-02" } }))
        .await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed");
    let dev = stage(&run, "Deploy to Development");
    assert_eq!(dev["status"], "RolledBack", "{run:#}");
    assert_eq!(dev["nodesFailed"], 1);
    assert!(dev["message"].as_str().unwrap().contains("development-node-02"));
    assert_eq!(stage(&run, "Validation")["status"], "Skipped");
    app.assert_all_active(Development, M, Some("1.0.0")).await;
}

#[actix_web::test]
async fn rolling_failure_restores_the_successful_nodes_of_the_failing_batch_too() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "QA").await;
    // Batches of two in hostname order: (01,02) (03,04) (05); 04 fails in the second.
    let id = app.deploy(M, "2.0.0", "QA", json!({ "metadata": { "simulateFailNodes@QA": "qa-node-04" } })).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed");
    let qa = stage(&run, "Deploy to QA");
    assert_eq!(qa["status"], "RolledBack", "{run:#}");
    assert!(qa["message"].as_str().unwrap().contains("batch 2 of 3"), "{qa}");
    app.assert_all_active(Qa, M, Some("1.0.0")).await;
    // Environments before the failing one keep the new version.
    assert_eq!(stage(&run, "Deploy to Development")["status"], "Succeeded");
    app.assert_all_active(Development, M, Some("2.0.0")).await;
}

#[actix_web::test]
async fn rolling_health_check_failure_rolls_the_stage_back() {
    let app = spawn_app(&[]).await;
    let id = app.deploy(M, "2.0.0", "QA", json!({ "metadata": { "simulateUnhealthy@QA": "true" } })).await;
    let run = app.finished(&id).await;
    let qa = stage(&run, "Deploy to QA");
    assert_eq!(qa["status"], "RolledBack", "{run:#}");
    assert!(qa["message"].as_str().unwrap().starts_with("Health check after batch 1 of 3 failed"), "{qa}");
    app.assert_all_active(Qa, M, None).await;
}

#[actix_web::test]
async fn rolling_checks_the_last_batch_as_well() {
    // One batch holding every node is also the last, and it is still checked.
    let app = spawn_app(&[("HOTSWAP__PIPELINE__ROLLING_BATCH_SIZE", "5")]).await;
    let id = app.deploy(M, "2.0.0", "QA", json!({ "metadata": { "simulateErrorRate@QA": "9" } })).await;
    let run = app.finished(&id).await;
    let qa = stage(&run, "Deploy to QA");
    assert_eq!(qa["status"], "RolledBack", "{run:#}");
    assert!(qa["message"].as_str().unwrap().contains("batch 1 of 1"), "{qa}");
    app.assert_all_active(Qa, M, None).await;
}

#[actix_web::test]
async fn blue_green_switches_all_nodes_and_keeps_the_old_version_in_standby() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "Staging").await;
    app.deploy_ok(M, "2.0.0", "Staging").await;
    for (host, slots) in app.slots(Staging, M).await {
        assert_eq!(slots.active.as_ref().map(|v| v.version.as_str()), Some("2.0.0"), "{host}");
        assert_eq!(slots.standby.as_ref().map(|v| v.version.as_str()), Some("1.0.0"), "{host}: instant switch-back");
    }
}

#[actix_web::test]
async fn blue_green_load_failure_changes_no_active_version() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "Staging").await;
    let before = app.slots(Staging, M).await;
    let id = app
        .deploy(M, "2.0.0", "Staging", json!({ "metadata": { "simulateFailNodes@Staging": "staging-node-03" } }))
        .await;
    let run = app.finished(&id).await;
    assert_eq!(stage(&run, "Deploy to Staging")["status"], "RolledBack", "{run:#}");
    assert_eq!(app.slots(Staging, M).await, before, "slots are exactly as before");
}

#[actix_web::test]
async fn blue_green_smoke_test_failure_keeps_traffic_on_the_serving_version() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "Staging").await;
    let before = app.slots(Staging, M).await;
    let id = app.deploy(M, "2.0.0", "Staging", json!({ "metadata": { "simulateErrorRate@Staging": "25" } })).await;
    let run = app.finished(&id).await;
    let st = stage(&run, "Deploy to Staging");
    assert_eq!(st["status"], "RolledBack", "{run:#}");
    assert!(st["message"].as_str().unwrap().starts_with("Smoke test failed"), "{st}");
    assert_eq!(app.slots(Staging, M).await, before);
}

/// A smoke test that waits says for which nodes and why, in an event and
/// in the stage's message, rather than wait in silence until its deadline.
#[actix_web::test]
async fn a_waiting_smoke_test_names_the_unhealthy_nodes_and_why() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "Staging").await;
    let id = app.deploy(M, "2.0.0", "Staging", json!({ "metadata": { "simulateErrorRate@Staging": "25" } })).await;
    let run = app.finished(&id).await;
    assert_eq!(stage(&run, "Deploy to Staging")["status"], "RolledBack", "{run:#}");
    let events = app.get(&format!("/api/v1/deployments/{id}/events")).await.1;
    let waiting: Vec<_> = events.as_array().unwrap().iter().filter(|e| e["kind"] == "SmokeTestWaiting").collect();
    // Once: the nodes it waits for never changed.
    assert_eq!(waiting.len(), 1, "{events:#}");
    let message = waiting[0]["message"].as_str().unwrap();
    assert!(message.starts_with("Smoke test in Staging waits for 10 of 10 nodes until "), "{message}");
    assert!(message.contains("staging-node-01 unhealthy on standby: error rate 25.00% above 5%"), "{message}");
    assert_eq!(waiting[0]["data"]["nodeCount"], 10);
    assert_eq!(waiting[0]["data"]["nodes"][0], "staging-node-01");
}

/// A canary step that passes records what each node was judged on.
#[actix_web::test]
async fn a_passing_canary_step_records_the_readings_it_was_judged_on() {
    let app = spawn_app(&[]).await;
    let id = app.deploy(M, "3.1.4", "Production", json!({})).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    let events = app.get(&format!("/api/v1/deployments/{id}/events")).await.1;
    let first = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "WaveCompleted" && e["data"]["environment"] == "Production")
        .cloned()
        .unwrap_or_else(|| panic!("a passed step: {events:#}"));
    let message = first["message"].as_str().unwrap();
    assert!(message.starts_with("step 1 of 4 passed; judged on production-node-01: error rate "), "{message}");
    assert!(message.contains("% (from ") && message.contains("latency ") && message.contains("CPU "), "{message}");
    let last = stage(&run, "Deploy to Production")["message"].as_str().unwrap().to_string();
    assert!(last.starts_with("Deployed to all 20 nodes with the Canary strategy; judged on "), "{last}");
}

#[actix_web::test]
async fn canary_reaches_every_production_node() {
    let app = spawn_app(&[]).await;
    let id = app.deploy(M, "3.1.4", "Production", json!({})).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    for env in Environment::ALL {
        app.assert_all_active(env, M, Some("3.1.4")).await;
    }
    let events = app.get(&format!("/api/v1/deployments/{id}/events")).await.1;
    let waves = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "WaveCompleted" && e["data"]["environment"] == "Production")
        .count();
    // Steps 10, 30, 50 pass as waves; the 100 % step passes as the stage's completion.
    assert_eq!(waves, 3, "{events:#}");
}

#[actix_web::test]
async fn canary_regression_restores_every_canary_node_and_names_the_metric() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "Production").await;
    let id =
        app.deploy(M, "2.0.0", "Production", json!({ "metadata": { "simulateLatencyMs@Production": "900" } })).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed");
    let prod = stage(&run, "Deploy to Production");
    assert_eq!(prod["status"], "RolledBack", "{run:#}");
    let message = prod["message"].as_str().unwrap();
    assert!(message.contains("latency rose from") && message.contains("to 900.00 ms"), "{message}");
    app.assert_all_active(Production, M, Some("1.0.0")).await;
    app.assert_all_active(Staging, M, Some("2.0.0")).await;
}

#[actix_web::test]
async fn canary_analyses_the_last_step_too() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "Production").await;
    // A single 100 % step: only the final analysis can catch the regression.
    let id = app
        .deploy(
            M,
            "2.0.0",
            "Production",
            json!({ "canarySteps": [100], "metadata": { "simulateErrorRate@Production": "3" } }),
        )
        .await;
    let run = app.finished(&id).await;
    let prod = stage(&run, "Deploy to Production");
    assert_eq!(prod["status"], "RolledBack", "{run:#}");
    assert!(prod["message"].as_str().unwrap().contains("error rate rose from"), "{prod}");
    app.assert_all_active(Production, M, Some("1.0.0")).await;
}

#[actix_web::test]
async fn canary_failing_wave_restores_its_successful_nodes() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "Production").await;
    // Second wave (nodes 03..06) includes a failing node.
    let id = app
        .deploy(
            M,
            "2.0.0",
            "Production",
            json!({ "metadata": { "simulateFailNodes@Production": "production-node-05" } }),
        )
        .await;
    let run = app.finished(&id).await;
    let prod = stage(&run, "Deploy to Production");
    assert_eq!(prod["status"], "RolledBack", "{run:#}");
    assert!(prod["message"].as_str().unwrap().contains("step 2 of 4"), "{prod}");
    app.assert_all_active(Production, M, Some("1.0.0")).await;
}

#[actix_web::test]
async fn deploy_failure_fraction_fails_the_first_nodes_by_hostname() {
    let app = spawn_app(&[]).await;
    let id = app.deploy(M, "1.0.0", "QA", json!({ "metadata": { "simulateDeployFailure@QA": "0.2" } })).await;
    let run = app.finished(&id).await;
    let qa = stage(&run, "Deploy to QA");
    assert_eq!(qa["status"], "RolledBack");
    assert!(qa["message"].as_str().unwrap().contains("qa-node-01 failed to load"), "{qa}");
    assert!(qa["message"].as_str().unwrap().contains("batch 1 of 3"), "{qa}");
    app.assert_all_active(Qa, M, None).await;
    app.assert_all_active(Development, M, Some("1.0.0")).await;
}

#[actix_web::test]
async fn strategy_override_applies_to_the_target_environment() {
    let app = spawn_app(&[]).await;
    let id = app.deploy(M, "1.0.0", "QA", json!({ "strategy": "Canary", "canarySteps": [40, 100] })).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    assert_eq!(stage(&run, "Deploy to Development")["strategy"], "Direct");
    assert_eq!(stage(&run, "Deploy to QA")["strategy"], "Canary");
    app.assert_all_active(Qa, M, Some("1.0.0")).await;
}

#[actix_web::test]
async fn a_stage_shows_running_while_its_nodes_work_not_only_once_they_are_done() {
    let app = spawn_app(&[]).await;
    // Every node call takes 600 ms (the test profile waits 1 s for a node):
    // the first wave and the validation both.
    let id = app.deploy(M, "1.0.0", "Development", json!({ "metadata": { "simulateNodeDelayMs": "600" } })).await;
    for name in ["Deploy to Development", "Validation"] {
        crate::db::poll::eventually(std::time::Duration::from_secs(20), name, async || {
            let run = app.get(&format!("/api/v1/deployments/{id}")).await.1;
            stage(&run, name)["status"] == "Running"
        })
        .await;
    }
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
}
