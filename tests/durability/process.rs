//! Starting and killing the real `hotswap` binary, and talking to it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use serde_json::Value;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// One `hotswap serve` process with the test profile and extra variables.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    log: PathBuf,
    client: awc::Client,
    /// The demo admin's bearer token, sent with every request.
    token: String,
    /// The tenant the admin acts for (`X-Tenant-Id`), if not its own.
    acting_for: Option<String>,
}

impl Server {
    pub async fn start(port: u16, vars: &[(&str, String)], log: PathBuf) -> Server {
        Self::start_signed_in(port, vars, log, None).await
    }

    /// Started with `token` (another instance's) instead of a login of its
    /// own: an instance that cannot reach Redis refuses logins.
    #[allow(dead_code)] // Used by the agent tests, which share this file.
    pub async fn start_with_token(port: u16, vars: &[(&str, String)], log: PathBuf, token: &str) -> Server {
        Self::start_signed_in(port, vars, log, Some(token.to_string())).await
    }

    async fn start_signed_in(port: u16, vars: &[(&str, String)], log: PathBuf, token: Option<String>) -> Server {
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotswap"));
        cmd.arg("serve")
            .env("HOTSWAP_ENV", "test")
            .env("HOTSWAP_CONFIG_DIR", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"))
            .env("HOTSWAP__SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("HOTSWAP__LOGGING__LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("hotswap starts");
        let server = Server {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            log,
            client: awc::Client::builder().timeout(Duration::from_secs(10)).finish(),
            token: String::new(),
            acting_for: None,
        };
        let mut server = server;
        server.wait_ready().await;
        server.token = match token {
            Some(token) => token,
            None => server.login().await,
        };
        server
    }

    async fn login(&self) -> String {
        let body = serde_json::json!({ "username": "admin", "password": "Admin123!" });
        let mut res = self
            .client
            .post(format!("{}/api/v1/authentication/login", self.base))
            .send_json(&body)
            .await
            .expect("login request");
        let reply: Value = res.json().await.expect("login reply");
        assert_eq!(res.status(), StatusCode::OK, "{reply}");
        reply["token"].as_str().expect("token").to_string()
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(res) = self.client.get(format!("{}/health/ready", self.base)).send().await {
                if res.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "server never became ready; log:\n{}", self.log_text());
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no shutdown hook, no flush; only what was committed survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL delivered");
            child.wait().expect("child reaped");
        }
    }

    /// SIGTERM, then waits for the process to end: the clean stop.
    #[allow(dead_code)] // Used by the live tests; the other suites share this file.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().expect("the process runs");
        child.wait().expect("child reaped")
    }

    /// Sends `signal` (such as "STOP" or "CONT") to the process.
    #[allow(dead_code)] // Used by the cluster tests, which share this file.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the process runs").id();
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("kill runs");
        assert!(sent.success(), "SIG{signal} to {pid} was not delivered");
    }

    /// The process id, while it runs.
    #[allow(dead_code)] // Used by the overload test; the cluster tests share this file.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the process runs").id()
    }

    /// Sends every later request for `tenant` (the system tenant's admin
    /// acting for another tenant), or again for its own with `None`.
    #[allow(dead_code)] // Used by the tenant tests; the other suites share this file.
    pub fn act_for(&mut self, tenant: Option<&str>) {
        self.acting_for = tenant.map(str::to_string);
    }

    /// The demo admin's bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Result<(StatusCode, Value), String> {
        self.request(awc::http::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<(StatusCode, Value), String> {
        self.request(awc::http::Method::POST, path, Some(body)).await
    }

    #[allow(dead_code)] // Used by the cluster tests; the other suites share this file.
    pub async fn put(&self, path: &str, body: &Value) -> Result<(StatusCode, Value), String> {
        self.request(awc::http::Method::PUT, path, Some(body)).await
    }

    #[allow(dead_code)] // Used by the agent tests; the other suites share this file.
    pub async fn delete(&self, path: &str) -> Result<(StatusCode, Value), String> {
        self.request(awc::http::Method::DELETE, path, None).await
    }

    /// One request as the demo admin; the body as JSON (`Null` when it is not).
    async fn request(
        &self,
        method: awc::http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), String> {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(tenant) = &self.acting_for {
            req = req.insert_header(("X-Tenant-Id", tenant.as_str()));
        }
        let sent = match body {
            Some(body) => req.send_json(body).await,
            None => req.send().await,
        };
        let mut res = sent.map_err(|e| e.to_string())?;
        let body = res.body().limit(16 << 20).await.map_err(|e| e.to_string())?;
        Ok((res.status(), serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// The body of a GET as the demo admin, as text (such as `/metrics`).
    #[allow(dead_code)] // Used by the restart tests; the cluster tests share this file.
    pub async fn text(&self, path: &str) -> String {
        let mut res =
            self.client.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await.expect("sent");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let body = res.body().limit(16 << 20).await.expect("body");
        String::from_utf8_lossy(&body).into_owned()
    }

    /// Polls a run until it has ended, for at most `limit`.
    pub async fn finished(&self, id: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok((StatusCode::OK, run)) = self.get(&format!("/api/v1/deployments/{id}")).await {
                if !matches!(run["status"].as_str(), Some("Running" | "PendingApproval" | "Paused")) {
                    return run;
                }
                assert!(Instant::now() < deadline, "run {id} never ended: {run:#}\nlog:\n{}", self.log_text());
            }
            assert!(Instant::now() < deadline, "run {id} unreadable\nlog:\n{}", self.log_text());
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The active version of `module` on each node of `environment`.
    pub async fn versions(&self, environment: &str, module: &str) -> Vec<Option<String>> {
        let (_, cluster) = self.get(&format!("/api/v1/clusters/{environment}")).await.expect("cluster read");
        cluster["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["modules"][module].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
