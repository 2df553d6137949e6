//! POST /api/v1/deployments/batch: module versions deployed in the release
//! plan's order, one run after the runs it depends on; the first failure
//! stops the batch; the status and the audit trail are readable.

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::db::poll::eventually_ok;
use crate::registry_support::{descriptor, publish, trust, KeyPair};
use crate::support::{spawn_app, TestApp, VIEWER};

/// bbase <- bapi <- bweb, published and trusted.
async fn three_dependent_modules(app: &TestApp) {
    let key = KeyPair::generate();
    trust(app, "batch-key", &key).await;
    publish(app, &key, &descriptor("bbase", "1.0.0")).await;
    let mut api = descriptor("bapi", "1.0.0");
    api["dependencies"] = json!({ "bbase": "^1.0" });
    publish(app, &key, &api).await;
    let mut web = descriptor("bweb", "1.0.0");
    web["dependencies"] = json!({ "bapi": ">=1.0.0" });
    publish(app, &key, &web).await;
}

fn batch(extra: Value) -> Value {
    let mut body = json!({
        "modules": [
            { "module": "bweb", "version": "1.0.0" },
            { "module": "bapi", "version": "1.0.0" },
            { "module": "bbase", "version": "1.0.0" }
        ],
        "targetEnvironment": "Development",
        "requesterEmail": "ops@example.com",
    });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

async fn ended(app: &TestApp, id: &str) -> Value {
    eventually_ok(std::time::Duration::from_secs(60), "the batch ends", async || {
        let (_, b) = app.get(&format!("/api/v1/deployments/batch/{id}")).await;
        (b["status"] != "Running").then_some(b.clone()).ok_or(b.to_string())
    })
    .await
}

async fn audited(app: &TestApp, event: &str) -> usize {
    let (_, page) = app.get(&format!("/api/v1/auditlogs?eventType={event}&limit=100")).await;
    page["items"].as_array().map_or(0, |items| items.len())
}

#[actix_web::test]
async fn a_batch_deploys_each_module_after_the_ones_it_depends_on() {
    let app = spawn_app(&[]).await;
    three_dependent_modules(&app).await;
    let (status, created) = app.post("/api/v1/deployments/batch", &batch(json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let order: Vec<&str> = created["steps"].as_array().unwrap().iter().map(|s| s["module"].as_str().unwrap()).collect();
    assert_eq!(order, ["bbase", "bapi", "bweb"]);
    let id = created["batchId"].as_str().unwrap().to_string();

    let done = ended(&app, &id).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    // Each run started only after the run it depends on had finished.
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let mut previous_end = None;
    for step in done["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "Succeeded", "{done:#}");
        let run_id = step["executionId"].as_str().unwrap();
        let (_, run) = app.get(&format!("/api/v1/deployments/{run_id}")).await;
        assert_eq!(run["status"], "Succeeded");
        if let Some(end) = previous_end {
            assert!(time(&run["startTime"]) >= end, "{run:#} started before {end}");
        }
        previous_end = Some(time(&run["endTime"]));
    }
    assert_eq!(audited(&app, "DeploymentBatchCreated").await, 1);
    assert_eq!(audited(&app, "DeploymentBatchSucceeded").await, 1);
    assert_eq!(audited(&app, "DeploymentBatchStepStarted").await, 3);
    // A Viewer reads it; another tenant's id or a malformed one is 404.
    let viewer = app.as_user(VIEWER).await;
    assert_eq!(viewer.get(&format!("/api/v1/deployments/batch/{id}")).await.0, StatusCode::OK);
    assert_eq!(viewer.post("/api/v1/deployments/batch", &batch(json!({}))).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/deployments/batch/not-a-uuid").await.0, StatusCode::NOT_FOUND);
    let unknown = format!("/api/v1/deployments/batch/{}", uuid::Uuid::new_v4());
    assert_eq!(app.get(&unknown).await.0, StatusCode::NOT_FOUND);
    // The list: newest first, cut at the limit, which must be 1 to 100.
    let (status, again) = app.post("/api/v1/deployments/batch", &batch(json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    let (status, listed) = viewer.get("/api/v1/deployments/batch").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|b| b["batchId"].as_str().unwrap()).collect();
    assert_eq!(ids, [again["batchId"].as_str().unwrap(), id.as_str()]);
    let (_, newest) = viewer.get("/api/v1/deployments/batch?limit=1").await;
    assert_eq!(newest.as_array().map(Vec::len), Some(1), "{newest}");
    // The next page starts after the last batch of this one.
    let (status, older) = viewer.get(&format!("/api/v1/deployments/batch?limit=1&before={}", ids[0])).await;
    assert_eq!(status, StatusCode::OK, "{older}");
    assert_eq!(older[0]["batchId"], id.as_str(), "{older}");
    assert_eq!(older.as_array().map(Vec::len), Some(1), "{older}");
    let (_, none) = viewer.get(&format!("/api/v1/deployments/batch?before={id}")).await;
    assert_eq!(none, json!([]), "nothing is older than the first batch");
    let ghost = uuid::Uuid::new_v4();
    let (status, reply) = viewer.get(&format!("/api/v1/deployments/batch?before={ghost}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    assert_eq!(reply["message"], format!("Deployment batch {ghost} not found (before)"), "{reply}");
    for bad in ["limit=0", "limit=101", "limit=many", "page=2", "before=yesterday"] {
        let (status, reply) = viewer.get(&format!("/api/v1/deployments/batch?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {reply}");
        assert!(reply["traceId"].is_string(), "{reply}");
    }
}

#[actix_web::test]
async fn the_first_failure_stops_the_batch_before_its_dependents_start() {
    let app = spawn_app(&[]).await;
    three_dependent_modules(&app).await;
    let failing = batch(json!({ "metadata": { "simulateDeployFailure": "1" } }));
    let (status, created) = app.post("/api/v1/deployments/batch", &failing).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let done = ended(&app, created["batchId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "Failed", "{done:#}");
    assert!(done["message"].as_str().unwrap().starts_with("bbase 1.0.0 failed: run "), "{done:#}");
    let steps = done["steps"].as_array().unwrap();
    assert_eq!(steps[0]["status"], "Failed");
    for later in &steps[1..] {
        assert_eq!(later["status"], "Stopped", "{done:#}");
        assert_eq!(later["executionId"], Value::Null, "never started: {done:#}");
    }
    assert_eq!(audited(&app, "DeploymentBatchFailed").await, 1);
}

#[actix_web::test]
async fn bad_batches_are_refused_before_anything_runs() {
    let app = spawn_app(&[]).await;
    three_dependent_modules(&app).await;
    let (status, reply) = app.post("/api/v1/deployments/batch", &batch(json!({ "targetEnvironment": "Moon" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let (status, reply) = app.post("/api/v1/deployments/batch", &batch(json!({ "modules": [] }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let ghost = json!({ "modules": [{ "module": "bghost", "version": "1.0.0" }] });
    assert_eq!(app.post("/api/v1/deployments/batch", &batch(ghost)).await.0, StatusCode::BAD_REQUEST);
    let bad_metadata = json!({ "metadata": { "simulateDeployFailure": "lots" } });
    let (status, reply) = app.post("/api/v1/deployments/batch", &batch(bad_metadata)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    // The metadata every run carries follows a single run's rules.
    let oversized = json!({ "metadata": { " ": "x", "note": "v".repeat(501) } });
    let (status, reply) = app.post("/api/v1/deployments/batch", &batch(oversized)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(
        reply["details"],
        json!(["metadata keys must not be blank", "metadata value of 'note' is longer than 500 characters"]),
        "{reply:#}"
    );
    assert_eq!(audited(&app, "DeploymentBatchCreated").await, 0);
}
