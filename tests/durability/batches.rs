//! SIGKILL while a deployment batch runs; the next process carries the
//! batch on from the store: the run in progress resumes (not started twice)
//! and the step that depends on it starts after it.

use std::time::{Duration, Instant};

use awc::http::StatusCode;
use base64::Engine;
use serde_json::{json, Value};

use crate::process::{free_port, Server};
use crate::support::TestDb;

/// Uploads `name` 1.0.0, unsigned (the test profile allows it), depending on `deps`.
async fn upload(server: &Server, name: &str, deps: Value) {
    let artifact = format!("\x7fELF batch module {name} {}", uuid::Uuid::new_v4());
    let body = json!({
        "descriptor": { "name": name, "version": "1.0.0", "dependencies": deps },
        "artifact": base64::engine::general_purpose::STANDARD.encode(artifact),
    });
    let (status, reply) = server.post("/api/v1/modules", &body).await.expect("upload");
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

async fn batch_when(server: &Server, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, batch) = server.get(&format!("/api/v1/deployments/batch/{id}")).await.expect("batch read");
        if done(&batch) {
            return batch;
        }
        assert!(Instant::now() < deadline, "never: {what}: {batch:#}\nlog:\n{}", server.log_text());
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_killed_process_carries_its_batch_on_after_restart() {
    let Some(db) = TestDb::create("a_killed_process_carries_its_batch_on_after_restart").await else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let vars = vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "3s".to_string()),
    ];
    let mut first = Server::start(port, &vars, dir.path().join("first.log")).await;
    upload(&first, "kb-base", json!({})).await;
    upload(&first, "kb-app", json!({ "kb-base": "^1.0" })).await;
    let body = json!({
        "modules": [{ "module": "kb-app", "version": "1.0.0" }, { "module": "kb-base", "version": "1.0.0" }],
        "targetEnvironment": "Development",
        "requesterEmail": "ops@example.com",
        "strategy": "Canary",
    });
    let (status, created) = first.post("/api/v1/deployments/batch", &body).await.expect("create");
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["batchId"].as_str().unwrap().to_string();
    // Killed while the first step's canary bakes, before the second could start.
    let running = batch_when(&first, &id, "kb-base runs", |b| b["steps"][0]["status"] == "Running").await;
    assert_eq!(running["steps"][1]["status"], "Pending", "{running:#}");
    let base_run = running["steps"][0]["executionId"].as_str().unwrap().to_string();
    first.kill();

    let second = Server::start(port, &vars, dir.path().join("second.log")).await;
    let done = batch_when(&second, &id, "the batch ends", |b| b["status"] != "Running").await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\nlog:\n{}", second.log_text());
    assert_eq!(done["steps"][0]["executionId"], base_run.as_str(), "the same run resumed: {done:#}");
    // One run per module: nothing was started twice.
    for module in ["kb-base", "kb-app"] {
        let (_, page) = second.get(&format!("/api/v1/deployments?moduleName={module}")).await.expect("list");
        assert_eq!(page.as_array().map(Vec::len), Some(1), "{module}: {page:#}");
    }
}
