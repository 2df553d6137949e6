use std::path::PathBuf;
use std::time::Duration;

use awc::http::header::HeaderMap;
use awc::http::{Method, StatusCode};
use hotswap::config::Settings;

use crate::db::poll::eventually_ok;
use hotswap::startup::Application;
use hotswap_actors::domain::{Environment, ModuleSlots, DEFAULT_TENANT};
use hotswap_actors::Orchestrator;
use serde_json::{json, Value};

/// A running server seen by one caller: every request carries `token` as a
/// bearer token (none when it is `None`). `spawn_app` logs in as the demo
/// admin; `as_user`, `anonymous` and `with_token` give the same server seen
/// by someone else.
#[derive(Clone)]
pub struct TestApp {
    pub base: String,
    pub orchestrator: Orchestrator,
    pub settings: Settings,
    pub token: Option<String>,
    client: awc::Client,
}

/// A whole answer: status, headers and the body as JSON (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub const ADMIN: (&str, &str) = ("admin", "Admin123!");
pub const DEPLOYER: (&str, &str) = ("deployer", "Deploy123!");
pub const VIEWER: (&str, &str) = ("viewer", "Viewer123!");

/// Starts a server with the test profile plus `overrides`, given as
/// HOTSWAP__SECTION__KEY environment-variable pairs, and logs in as the demo admin.
pub async fn spawn_app(overrides: &[(&str, &str)]) -> TestApp {
    let app = spawn_anonymous(overrides).await;
    app.as_user(ADMIN).await
}

/// Starts a server like `spawn_app` without logging in.
pub async fn spawn_anonymous(overrides: &[(&str, &str)]) -> TestApp {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut vars: Vec<(String, String)> = vec![("HOTSWAP__SERVER__BIND".into(), "127.0.0.1:0".into())];
    vars.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::load_from(&dir, "test", vars).expect("test settings load");
    show_server_logs(&settings);
    let app = Application::build(settings.clone()).await.expect("application starts");
    let base = format!("http://{}", app.addr());
    let orchestrator = app.orchestrator.clone();
    actix_web::rt::spawn(app.run());
    TestApp { base, orchestrator, settings, token: None, client: test_client() }
}

/// The HTTP client of every test. The server closes a connection idle for 5 s
/// (actix-web's keep-alive) while awc would reuse it for 15 s: a request sent on
/// such a connection fails with `Disconnected` on a loaded machine. Pooled
/// connections are dropped after 2 s instead.
fn test_client() -> awc::Client {
    let connector = awc::Connector::new().conn_keep_alive(Duration::from_secs(2));
    awc::Client::builder().connector(connector).timeout(Duration::from_secs(10)).finish()
}

impl TestApp {
    /// The same server, without a token.
    pub fn anonymous(&self) -> TestApp {
        TestApp { token: None, ..self.clone() }
    }

    /// The same server, sending `token` (any text) as the bearer token.
    pub fn with_token(&self, token: &str) -> TestApp {
        TestApp { token: Some(token.to_string()), ..self.clone() }
    }

    /// Logs in and answers with the token; panics unless the login succeeds.
    pub async fn login(&self, (username, password): (&str, &str)) -> String {
        let r = self
            .anonymous()
            .call(
                Method::POST,
                "/api/v1/authentication/login",
                Some(json!({ "username": username, "password": password })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login as {username}: {}", r.body);
        r.body["token"].as_str().expect("token").to_string()
    }

    /// The same server, logged in as `credentials`.
    pub async fn as_user(&self, credentials: (&str, &str)) -> TestApp {
        let token = self.login(credentials).await;
        self.with_token(&token)
    }

    /// Creates a user through the API (as whoever `self` is) in `tenant`, and
    /// answers with the server as that user sees it.
    pub async fn new_user(&self, username: &str, roles: &[&str], tenant: Option<uuid::Uuid>) -> TestApp {
        let password = "a-long-enough-password";
        let mut body = json!({ "username": username, "email": format!("{username}@example.com"), "password": password, "roles": roles });
        if let Some(t) = tenant {
            body["tenantId"] = json!(t);
        }
        let (status, reply) = self.post("/api/v1/users", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        self.as_user((username, password)).await
    }

    /// Any request; `body` is sent as JSON.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.request_with(method, path, &[], body).await
    }

    /// Any request with extra headers; `body` is sent as JSON.
    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.insert_header(("authorization", format!("Bearer {token}")));
        }
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        let sent = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        };
        Self::read(sent.expect("request sent")).await
    }

    /// A request with a raw body and content type.
    pub async fn call_raw(&self, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let mut req =
            self.client.request(method, format!("{}{path}", self.base)).insert_header(("content-type", content_type));
        if let Some(token) = &self.token {
            req = req.insert_header(("authorization", format!("Bearer {token}")));
        }
        Self::read(req.send_body(body).await.expect("request sent")).await
    }

    async fn read<S>(mut res: awc::ClientResponse<S>) -> Reply
    where
        S: futures::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
    {
        let bytes = res.body().limit(64 << 20).await.expect("body read");
        Reply {
            status: res.status(),
            headers: res.headers().clone(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.call(Method::GET, path, None).await;
        (r.status, r.body)
    }

    pub async fn get_text(&self, path: &str) -> String {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let mut res = req.send().await.expect("request sent");
        let body = res.body().limit(64 << 20).await.expect("body read");
        String::from_utf8(body.to_vec()).expect("UTF-8 body")
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self.call(Method::POST, path, Some(body.clone())).await;
        (r.status, r.body)
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self.call(Method::PUT, path, Some(body.clone())).await;
        (r.status, r.body)
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let r = self.call_raw(Method::POST, path, content_type, body).await;
        (r.status, r.body)
    }

    /// Creates a run and returns its execution id; panics unless it is accepted.
    pub async fn deploy(&self, module: &str, version: &str, target: &str, extra: Value) -> String {
        let body = crate::db::requests::deployment_with(module, version, target, extra);
        let (status, reply) = self.post("/api/v1/deployments", &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        reply["executionId"].as_str().expect("executionId").to_string()
    }

    /// Polls the run until `done` holds for it, for at most 20 s.
    pub async fn wait_for(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        eventually_ok(Duration::from_secs(20), "the run reaches the expected state", async || {
            let (status, run) = self.get(&format!("/api/v1/deployments/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{run}");
            if done(&run) {
                Ok(run)
            } else {
                Err(format!("{run:#}"))
            }
        })
        .await
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

/// `TEST_LOG=1` prints the servers' logs (at `RUST_LOG`, else the profile's
/// level) beside the test output; quiet otherwise.
fn show_server_logs(settings: &Settings) {
    static LOGS: std::sync::OnceLock<hotswap::telemetry::TelemetryGuard> = std::sync::OnceLock::new();
    if std::env::var_os("TEST_LOG").is_some() {
        LOGS.get_or_init(|| hotswap::telemetry::init(&settings.logging, &settings.telemetry));
    }
}
