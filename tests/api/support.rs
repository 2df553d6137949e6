use std::path::PathBuf;
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use hotswap::config::Settings;
use hotswap::startup::Application;
use hotswap_actors::domain::{Environment, ModuleSlots, DEFAULT_TENANT};
use hotswap_actors::Orchestrator;
use serde_json::{json, Value};

pub struct TestApp {
    pub base: String,
    pub orchestrator: Orchestrator,
    client: awc::Client,
}

/// Starts a server with the test profile plus `overrides`, given as
/// HOTSWAP__SECTION__KEY environment-variable pairs.
pub async fn spawn_app(overrides: &[(&str, &str)]) -> TestApp {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut vars: Vec<(String, String)> = vec![("HOTSWAP__SERVER__BIND".into(), "127.0.0.1:0".into())];
    vars.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::load_from(&dir, "test", vars).expect("test settings load");
    let app = Application::build(settings).await.expect("application starts");
    let base = format!("http://{}", app.addr());
    let orchestrator = app.orchestrator.clone();
    actix_web::rt::spawn(app.run());
    TestApp { base, orchestrator, client: awc::Client::builder().timeout(Duration::from_secs(10)).finish() }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let mut res = self.client.get(format!("{}{path}", self.base)).send().await.expect("request sent");
        let body = res.body().limit(64 << 20).await.expect("body read");
        (res.status(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub async fn get_text(&self, path: &str) -> String {
        let mut res = self.client.get(format!("{}{path}", self.base)).send().await.expect("request sent");
        let body = res.body().limit(64 << 20).await.expect("body read");
        String::from_utf8(body.to_vec()).expect("UTF-8 body")
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let mut res = self.client.post(format!("{}{path}", self.base)).send_json(body).await.expect("request sent");
        let body = res.body().limit(64 << 20).await.expect("body read");
        (res.status(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let mut res = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("content-type", content_type))
            .send_body(body)
            .await
            .expect("request sent");
        let body = res.body().limit(64 << 20).await.expect("body read");
        (res.status(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Creates a run and returns its execution id; panics unless it is accepted.
    pub async fn deploy(&self, module: &str, version: &str, target: &str, extra: Value) -> String {
        let mut body = json!({
            "moduleName": module,
            "version": version,
            "targetEnvironment": target,
            "requesterEmail": "dev@example.com",
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, reply) = self.post("/api/v1/deployments", &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        reply["executionId"].as_str().expect("executionId").to_string()
    }

    /// Polls the run until `done` holds for it, for at most 20 s.
    pub async fn wait_for(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, run) = self.get(&format!("/api/v1/deployments/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{run}");
            if done(&run) {
                return run;
            }
            assert!(Instant::now() < deadline, "run never reached the expected state: {run:#}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the run has ended and returns it.
    pub async fn finished(&self, id: &str) -> Value {
        self.wait_for(id, |r| {
            let s = r["status"].as_str().unwrap_or_default();
            !matches!(s, "Running" | "PendingApproval" | "Paused") && r["rollback"]["status"] != "InProgress"
        })
        .await
    }

    /// Deploys and waits for success, to set up what a node ran before.
    pub async fn deploy_ok(&self, module: &str, version: &str, target: &str) {
        let id = self.deploy(module, version, target, json!({})).await;
        let run = self.finished(&id).await;
        assert_eq!(run["status"], "Succeeded", "{run:#}");
    }

    /// Each node of `env` with the slots it holds for `module`, from the store.
    pub async fn slots(&self, env: Environment, module: &str) -> Vec<(String, ModuleSlots)> {
        let nodes = self.orchestrator.store().nodes_in(DEFAULT_TENANT, env).await.expect("store read");
        nodes.into_iter().map(|n| (n.hostname.clone(), n.modules.get(module).cloned().unwrap_or_default())).collect()
    }

    /// The active version of `module` on every node of `env`.
    pub async fn active(&self, env: Environment, module: &str) -> Vec<Option<String>> {
        self.slots(env, module).await.into_iter().map(|(_, s)| s.active.map(|v| v.version)).collect()
    }

    pub async fn assert_all_active(&self, env: Environment, module: &str, version: Option<&str>) {
        let active = self.active(env, module).await;
        assert!(!active.is_empty(), "{env} has nodes");
        assert!(
            active.iter().all(|v| v.as_deref() == version),
            "every {env} node should run {version:?}, found {active:?}"
        );
    }
}

pub fn stage<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["stages"].as_array().and_then(|s| s.iter().find(|st| st["name"] == name)).unwrap_or(&Value::Null)
}
