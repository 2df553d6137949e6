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

/// Trusts a key and publishes each (module, version) with no dependencies.
async fn published(app: &TestApp, versions: &[(&str, &str)]) {
    let key = KeyPair::generate();
    trust(app, "batch-key", &key).await;
    for (module, version) in versions {
        publish(app, &key, &descriptor(module, version)).await;
    }
}

/// A batch applies the downgrade rule of POST /deployments to every item:
/// refused (422, naming it) without allowDowngrade, audited once per item with it.
#[actix_web::test]
async fn a_batch_downgrade_needs_allow_downgrade_and_is_audited() {
    let app = spawn_app(&[]).await;
    published(&app, &[("dbase", "1.0.0"), ("dbase", "1.1.0"), ("dother", "1.0.0")]).await;
    app.deploy_ok("dbase", "1.1.0", "Development").await;
    let modules = json!({ "modules": [
        { "module": "dbase", "version": "1.0.0" },
        { "module": "dother", "version": "1.0.0" },
    ] });
    let (status, reply) = app.post("/api/v1/deployments/batch", &batch(modules.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["code"], "unprocessable", "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(message.starts_with("dbase 1.0.0 is lower than 1.1.0"), "{reply}");
    assert!(message.contains("allowDowngrade"), "{reply}");
    assert!(reply["traceId"].is_string(), "{reply}");
    assert_eq!(audited(&app, "DeploymentBatchCreated").await, 0);
    assert_eq!(audited(&app, "DowngradeAllowed").await, 0);

    let mut allowed = modules;
    allowed["allowDowngrade"] = json!(true);
    let (status, created) = app.post("/api/v1/deployments/batch", &batch(allowed)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let done = ended(&app, created["batchId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    // One entry, for the item that is a downgrade, not again when its step started.
    let (_, page) = app.get("/api/v1/auditlogs?eventType=DowngradeAllowed&limit=10").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page:#}");
    assert_eq!(items[0]["resourceId"], "dbase@1.0.0", "{page:#}");
    app.assert_all_active(hotswap_actors::domain::Environment::Development, "dbase", Some("1.0.0")).await;
}

/// A step whose version has become a downgrade by the time it starts (another
/// run went higher meanwhile) fails the batch, saying why, and changes nothing.
#[actix_web::test]
async fn a_step_that_became_a_downgrade_fails_the_batch_when_it_starts() {
    let app = spawn_app(&[]).await;
    published(&app, &[("dlate", "1.0.0"), ("dlate", "1.1.0")]).await;
    // 1.1.0 holds the module, waiting for an approval, and has changed no node yet.
    let higher = app.deploy("dlate", "1.1.0", "Staging", json!({ "requireApproval": true })).await;
    app.wait_for(&higher, |r| r["status"] == "PendingApproval").await;
    let (status, created) = app
        .post("/api/v1/deployments/batch", &batch(json!({ "modules": [{ "module": "dlate", "version": "1.0.0" }] })))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "no node runs dlate yet: {created}");
    let id = created["batchId"].as_str().unwrap().to_string();
    // The step has tried to start and met the busy module.
    crate::db::poll::eventually(std::time::Duration::from_secs(30), "the step tried to start", async || {
        audited(&app, "DeploymentBatchStepStarting").await > 0
    })
    .await;
    let (status, reply) =
        app.post(&format!("/api/v1/approvals/deployments/{higher}/approve"), &json!({ "reason": "go" })).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(app.finished(&higher).await["status"], "Succeeded");

    let done = ended(&app, &id).await;
    assert_eq!(done["status"], "Failed", "{done:#}");
    let step = &done["steps"][0];
    assert_eq!(step["status"], "Failed", "{done:#}");
    assert_eq!(step["executionId"], Value::Null, "no run was created: {done:#}");
    let message = step["message"].as_str().unwrap();
    assert!(message.starts_with("dlate 1.0.0 is lower than 1.1.0"), "{done:#}");
    assert!(message.ends_with("the batch was created without allowDowngrade"), "{done:#}");
    app.assert_all_active(hotswap_actors::domain::Environment::Development, "dlate", Some("1.1.0")).await;
}

/// A batch checks its fields as POST /deployments checks a run's (the same
/// code): the same messages, each item's own problems named with the item.
#[actix_web::test]
async fn a_batch_names_each_problem_as_a_single_create_would() {
    let app = spawn_app(&[]).await;
    three_dependent_modules(&app).await;
    let details = async |extra: Value| {
        let (status, reply) = app.post("/api/v1/deployments/batch", &batch(extra)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
        assert_eq!(reply["code"], "validation_failed", "{reply}");
        reply["details"].clone()
    };
    let single =
        crate::db::requests::deployment_with("bbase", "1.0.0", "Development", json!({ "requesterEmail": "nope" }));
    let (_, alone) = app.post("/api/v1/deployments", &single).await;
    assert_eq!(alone["details"], json!(["requesterEmail must be a valid email address"]), "{alone}");
    assert_eq!(details(json!({ "requesterEmail": "nope" })).await, alone["details"]);
    // The core's check of the metadata, with its reason, per item.
    let only_base = json!({ "modules": [{ "module": "bbase", "version": "1.0.0" }], "metadata": { "simulateDeployFailure": "abc" } });
    assert_eq!(
        details(only_base).await,
        json!(["bbase 1.0.0: metadata 'simulateDeployFailure': must be a fraction between 0 and 1"])
    );
    // An item's own module and version, named with the item; shared fields once.
    let items = json!({
        "modules": [{ "module": "Bad_Name", "version": "1.0.0" }, { "module": "bbase", "version": "one" }],
        "requesterEmail": "nope",
    });
    let listed = details(items).await;
    let listed: Vec<&str> = listed.as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed[0], "requesterEmail must be a valid email address");
    assert!(listed[1].starts_with("Bad_Name 1.0.0: moduleName must be"), "{listed:?}");
    assert!(listed[2].starts_with("bbase one: version 'one' is not a semantic version"), "{listed:?}");
    assert_eq!(audited(&app, "DeploymentBatchCreated").await, 0);
}
