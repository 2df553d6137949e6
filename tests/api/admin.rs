//! /api/v1/admin: the supervision tree, and restarting, stopping and
//! crashing actors through it.

use crate::db::poll::{eventually, eventually_ok};
use std::time::Duration;

use awc::http::StatusCode;
use hotswap_actors::domain::Environment::*;
use serde_json::{json, Value};

use crate::support::{spawn_app, stage, TestApp};

const M: &str = "kmod-admin";

async fn child(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/api/v1/admin/actors/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Polls an actor until `done` holds.
async fn wait_child(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually_ok(Duration::from_secs(10), &format!("{id} gets there"), async || {
        let c = child(app, id).await;
        if done(&c) {
            Ok(c)
        } else {
            Err(format!("{c:#}"))
        }
    })
    .await
}

/// Crashes through the API, retrying while the incarnation is still coming up.
async fn crash(app: &TestApp, id: &str) {
    let body = eventually_ok(Duration::from_secs(5), &format!("{id} comes up to be crashed"), async || {
        let (status, body) = app.post(&format!("/api/v1/admin/actors/{id}/crash"), &json!({})).await;
        if status == StatusCode::ACCEPTED {
            return Ok(body);
        }
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        Err(body.to_string())
    })
    .await;
    assert_eq!(body["crashed"], true);
}

#[actix_web::test]
async fn the_tree_lists_supervisors_and_their_children() {
    let app = spawn_app(&[]).await;
    let (status, tree) = app.get("/api/v1/admin/actors").await;
    assert_eq!(status, StatusCode::OK);
    let sups = tree["supervisors"].as_array().unwrap();
    let names: Vec<_> = sups.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["nodes", "deployments", "approvals", "tenants"]);
    // 3 + 5 + 10 + 20 simulated nodes.
    assert_eq!(sups[0]["children"].as_array().unwrap().len(), 38);
    assert_eq!(sups[0]["policies"]["Node"]["max_restarts"], 5, "{:#}", sups[0]["policies"]);
    let node = child(&app, "node:qa-node-01").await;
    assert_eq!(node["kind"], "Node");
    assert_eq!(node["state"], "Running");
    assert_eq!(node["restarts"], 0);
    assert_eq!(node["incarnation"], 1);
    assert_eq!(node["mailboxBacklog"], 0);
    assert!(node["startedAt"].is_string() && node["lastFailure"].is_null());
    assert!(tree["eventBus"]["subscribers"].is_number());
    // The bus counts every tenant's events: another tenant's Admin does not see it.
    let tenant = crate::tenants::provision(&app, "tree-reader", "Free").await;
    let other = app.new_user("tree-admin", &["Admin"], Some(tenant)).await;
    let (status, theirs) = other.get("/api/v1/admin/actors").await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    assert!(theirs.get("eventBus").is_none(), "{theirs:#}");

    let (status, body) = app.get("/api/v1/admin/actors/node:nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "Not Found");
    let (status, _) = app.post("/api/v1/admin/actors/node:nowhere/restart", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, sup) = app.get("/api/v1/admin/supervision").await;
    assert_eq!(sup["policies"]["Coordinator"]["max_restarts"], 3, "{sup:#}");
    assert_eq!(sup["supervisors"][0]["byState"]["Running"], 38);
}

/// The tree lists a page of each supervisor's children and counts them all,
/// an actor that restarted first: a large cluster's tree stays small.
#[actix_web::test]
async fn the_tree_pages_children_and_lists_restarted_actors_first() {
    let app = spawn_app(&[]).await;
    let ids = |tree: &Value| -> Vec<String> {
        let nodes = tree["supervisors"][0]["children"].as_array().unwrap();
        nodes.iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
    };
    let (status, page) = app.get("/api/v1/admin/actors?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["supervisors"][0]["childCount"], 38, "{page:#}");
    assert_eq!(ids(&page), ["node:development-node-01", "node:development-node-02"]);
    let (_, next) = app.get("/api/v1/admin/actors?limit=2&offset=2").await;
    assert_eq!(ids(&next), ["node:development-node-03", "node:production-node-01"]);

    crash(&app, "node:staging-node-07").await;
    wait_child(&app, "node:staging-node-07", |c| c["restarts"] == 1 && c["state"] == "Running").await;
    let (_, page) = app.get("/api/v1/admin/actors?limit=2").await;
    assert_eq!(ids(&page), ["node:staging-node-07", "node:development-node-01"], "restarted first");

    for bad in ["limit=0", "limit=5001", "offset=-1", "offset=2147483648", "limit=two", "page=1"] {
        let (status, body) = app.get(&format!("/api/v1/admin/actors?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[actix_web::test]
async fn a_node_crashed_during_a_rolling_run_restarts_intact_and_the_run_finishes() {
    let app = spawn_app(&[("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", "400ms")]).await;
    let id = app.deploy(M, "1.0.0", "QA", json!({})).await;
    // During the wait after the first batch: qa-node-01 already runs 1.0.0.
    app.wait_for(&id, |r| stage(r, "Deploy to QA")["nodesDeployed"].as_u64().unwrap_or(0) >= 2).await;
    crash(&app, "node:qa-node-01").await;
    let node = wait_child(&app, "node:qa-node-01", |c| c["restarts"] == 1 && c["state"] == "Running").await;
    assert_eq!(node["incarnation"], 2);
    assert!(node["lastFailure"].as_str().unwrap().contains("crashed on request"), "{node}");
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    let (_, cluster) = app.get("/api/v1/clusters/QA").await;
    assert_eq!(cluster["nodes"][0]["modules"][M], "1.0.0", "{cluster}");
    app.assert_all_active(Qa, M, Some("1.0.0")).await;
    let metrics = app.get_text("/metrics").await;
    assert!(metrics.contains("hotswap_actor_restarts_total{kind=\"node\"} 1"), "{metrics}");
}

#[actix_web::test]
async fn a_node_crashed_past_its_restart_limit_is_escalated_and_can_be_restarted_by_hand() {
    let app = spawn_app(&[("HOTSWAP__SUPERVISION__NODE__MAX_RESTARTS", "1")]).await;
    app.deploy_ok(M, "1.0.0", "Development").await;
    crash(&app, "node:development-node-03").await;
    wait_child(&app, "node:development-node-03", |c| c["restarts"] == 1 && c["state"] == "Running").await;
    crash(&app, "node:development-node-03").await;
    let failed = wait_child(&app, "node:development-node-03", |c| c["state"] == "Failed").await;
    assert_eq!(failed["restarts"], 1);
    let (_, sup) = app.get("/api/v1/admin/supervision").await;
    assert_eq!(sup["totalEscalations"], 1, "{sup:#}");
    assert_eq!(sup["supervisors"][0]["byState"]["Failed"], 1);
    let metrics = app.get_text("/metrics").await;
    assert!(metrics.contains("hotswap_actor_escalations_total{kind=\"node\"} 1"), "{metrics}");
    // A run now refuses to start on a cluster with a dead node.
    let id = app.deploy(M, "2.0.0", "Development", json!({})).await;
    assert_eq!(app.finished(&id).await["status"], "Failed");
    // An operator brings it back, with its modules.
    let (status, body) = app.post("/api/v1/admin/actors/node:development-node-03/restart", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_child(&app, "node:development-node-03", |c| c["state"] == "Running").await;
    let (_, dev) = app.get("/api/v1/clusters/Development").await;
    assert_eq!(dev["nodes"][2]["modules"][M], "1.0.0", "{dev}");
    app.deploy_ok(M, "2.0.0", "Development").await;
}

#[actix_web::test]
async fn a_coordinator_crashed_through_the_api_resumes_its_run() {
    let app = spawn_app(&[("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "500ms")]).await;
    let id = app.deploy(M, "1.0.0", "Production", json!({})).await;
    app.wait_for(&id, |r| stage(r, "Deploy to Production")["status"] == "Running").await;
    let child_id = format!("run:{id}");
    crash(&app, &child_id).await;
    wait_child(&app, &child_id, |c| c["restarts"] == 1 && c["state"] == "Running").await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    app.assert_all_active(Production, M, Some("1.0.0")).await;
    // A finished run's coordinator leaves the tree.
    eventually(Duration::from_secs(5), "the finished run's coordinator leaves the tree", async || {
        app.get(&format!("/api/v1/admin/actors/{child_id}")).await.0 == StatusCode::NOT_FOUND
    })
    .await;
}

/// Stopping a run's coordinator by hand left the run Running for ever with
/// nothing driving it (the reconciler leaves what an operator stopped), its
/// module held and its verbs answering 503 after 5 s. It is refused, naming
/// the verbs that steer a run; the run goes on.
#[actix_web::test]
async fn a_run_s_coordinator_is_not_stopped_by_hand() {
    let app = spawn_app(&[("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "500ms")]).await;
    let id = app.deploy(M, "1.0.0", "Production", json!({})).await;
    app.wait_for(&id, |r| stage(r, "Deploy to Production")["status"] == "Running").await;
    let child_id = format!("run:{id}");
    let (status, body) = app.post(&format!("/api/v1/admin/actors/{child_id}/stop"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("POST /api/v1/deployments/{id}/pause or /abort")), "{body}");
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
}

#[actix_web::test]
async fn a_node_can_be_stopped_and_restarted_by_hand() {
    let app = spawn_app(&[]).await;
    app.deploy_ok(M, "1.0.0", "Development").await;
    let (status, body) = app.post("/api/v1/admin/actors/node:development-node-01/stop", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["state"], "Stopping");
    wait_child(&app, "node:development-node-01", |c| c["state"] == "Stopped").await;
    let (_, dev) = app.get("/api/v1/clusters/Development").await;
    assert_eq!(dev["nodes"][0]["status"], "Failed", "{dev}");
    // Stopping again is harmless.
    let (status, _) = app.post("/api/v1/admin/actors/node:development-node-01/stop", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = app.post("/api/v1/admin/actors/node:development-node-01/restart", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let node = wait_child(&app, "node:development-node-01", |c| c["state"] == "Running").await;
    assert_eq!(node["incarnation"], 2);
    // A restart of a running node replaces its incarnation.
    let (status, _) = app.post("/api/v1/admin/actors/node:development-node-01/restart", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_child(&app, "node:development-node-01", |c| c["state"] == "Running" && c["incarnation"] == 3).await;
    let (_, dev) = app.get("/api/v1/clusters/Development").await;
    assert_eq!(dev["nodes"][0]["modules"][M], "1.0.0", "{dev}");
}

#[actix_web::test]
async fn crashing_needs_simulation() {
    let app = spawn_app(&[("HOTSWAP__SIMULATION__ENABLED", "false")]).await;
    let (status, body) = app.post("/api/v1/admin/actors/node:qa-node-01/crash", &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains("simulation"));
}

#[actix_web::test]
async fn a_coordinator_restarted_by_hand_resumes_its_run() {
    let app = spawn_app(&[("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "400ms")]).await;
    let id = app.deploy(M, "1.0.0", "Production", json!({})).await;
    app.wait_for(&id, |r| stage(r, "Deploy to Production")["status"] == "Running").await;
    let child_id = format!("run:{id}");
    let body = eventually_ok(Duration::from_secs(5), "the coordinator accepts a restart", async || {
        let (status, body) = app.post(&format!("/api/v1/admin/actors/{child_id}/restart"), &json!({})).await;
        if status == StatusCode::ACCEPTED {
            return Ok(body);
        }
        // 503 while an incarnation is still loading its run.
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        Err(body.to_string())
    })
    .await;
    assert_eq!(body["state"], "Stopping", "{body}");
    wait_child(&app, &child_id, |c| c["incarnation"] == 2 && c["state"] == "Running").await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    app.assert_all_active(Production, M, Some("1.0.0")).await;
}
