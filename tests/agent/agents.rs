//! Starting agent processes and reading what they left on disk.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use awc::http::StatusCode;
use base64::Engine;
use hotswap::crypto::rsa_sig;
use hotswap::registry::statement::statement;
use hotswap_actors::domain::{ModuleHooks, SignatureAlgorithm};
use serde_json::{json, Value};

use crate::process::Server;
use crate::support::poll::eventually_ok;
use crate::support::requests::deployment;

/// One `hotswap agent` process with its own data directory.
pub struct Agent {
    child: Option<Child>,
    pub hostname: String,
    pub dir: PathBuf,
}

/// Hooks that log what they do to `$HOOK_LOG`, and a health hook that
/// reports figures; `activate_fails` makes activation exit 1.
pub fn logging_hooks(activate_fails: bool) -> Value {
    let activate = if activate_fails {
        r#"echo "activate $HOTSWAP_MODULE $HOTSWAP_VERSION $HOTSWAP_NODE" >> "$HOOK_LOG"; echo "insmod: Invalid module format" >&2; exit 1"#
    } else {
        r#"echo "activate $HOTSWAP_MODULE $HOTSWAP_VERSION $HOTSWAP_NODE $(wc -c < "$HOTSWAP_ARTIFACT")" >> "$HOOK_LOG""#
    };
    json!({
        "activate": activate,
        "deactivate": r#"echo "deactivate $HOTSWAP_MODULE $HOTSWAP_VERSION $HOTSWAP_NODE" >> "$HOOK_LOG""#,
        // No errors: the host's baseline (before any health hook ran) is no errors either.
        "health": r#"echo '{"errorRate": 0}'"#,
        "prepareStandby": r#"echo "standby $HOTSWAP_MODULE $HOTSWAP_VERSION $HOTSWAP_NODE" >> "$HOOK_LOG""#,
    })
}

impl Agent {
    pub fn start(server: &Server, token: &str, hostname: &str, root: &Path) -> Agent {
        Agent::start_via(&server.base, &[], token, hostname, root)
    }

    /// An agent reaching the server at `server_url`, its command line run
    /// through `wrapper` (such as `ip netns exec NAME`).
    pub fn start_via(server_url: &str, wrapper: &[&str], token: &str, hostname: &str, root: &Path) -> Agent {
        Agent::launch(server_url, wrapper, token, hostname, root, "")
    }

    /// An agent whose config file has `settings` (TOML lines) besides the usual ones.
    pub fn start_with_settings(server: &Server, token: &str, hostname: &str, root: &Path, settings: &str) -> Agent {
        Agent::launch(&server.base, &[], token, hostname, root, settings)
    }

    fn launch(server_url: &str, wrapper: &[&str], token: &str, hostname: &str, root: &Path, settings: &str) -> Agent {
        let dir = root.join(hostname);
        std::fs::create_dir_all(&dir).unwrap();
        // The health hook judges these hosts: the test machine's own load has
        // nothing to do with the module.
        let usual = "host_metrics = false\nhook_timeout = \"20s\"\nmax_backoff = \"1s\"\n";
        std::fs::write(dir.join("agent.toml"), format!("{usual}{settings}\n")).unwrap();
        let log = std::fs::File::create(dir.join("agent.log")).unwrap();
        let binary = env!("CARGO_BIN_EXE_hotswap");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let child = command
            .args(["agent", "--server", server_url, "--token", token, "--hostname", hostname])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--config")
            .arg(dir.join("agent.toml"))
            .env("HOOK_LOG", dir.join("hooks.log"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the agent starts");
        Agent { child: Some(child), hostname: hostname.to_string(), dir }
    }

    /// Where `DIR/modules/{module}/current` points.
    pub fn current(&self, module: &str) -> Option<String> {
        let link = self.dir.join("data/modules").join(module).join("current");
        std::fs::read_link(link).ok().map(|t| t.to_string_lossy().into_owned())
    }

    pub fn hook_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("hooks.log")).unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }
}

impl Agent {
    /// Kills the agent process (SIGKILL) and waits for it to end.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A server with `vars` (its artifacts under `root`), a signing key it
/// trusts, an enrolment token for `environment` and an agent per name in
/// `hosts`, each joined to that environment's cluster.
#[allow(dead_code)] // Not every test file of this binary starts its server so.
pub async fn server_with_agents(
    root: &Path,
    mut vars: Vec<(&'static str, String)>,
    environment: &str,
    hosts: &[&str],
) -> (Server, rsa::PrivateKey, String, Vec<Agent>) {
    vars.push(("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.join("artifacts").display().to_string()));
    let server = Server::start(crate::process::free_port(), &vars, root.join("server.log")).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, environment).await;
    let agents: Vec<Agent> = hosts.iter().map(|host| Agent::start(&server, &token, host, root)).collect();
    for host in hosts {
        wait_joined(&server, environment, host).await;
    }
    (server, key, token, agents)
}

/// A server whose Development cluster has agents only (no simulated node),
/// each step waiting up to 20 s for a host, its registry under `root`.
pub async fn agents_only_development(root: &Path) -> Server {
    let vars = [
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.join("artifacts").display().to_string()),
    ];
    Server::start(crate::process::free_port(), &vars, root.join("server.log")).await
}

/// An enrolment token for `environment`.
pub async fn enrolment_token(server: &Server, environment: &str) -> String {
    let (status, body) =
        server.post("/api/v1/agents/tokens", &json!({ "environment": environment, "expiresIn": 3600 })).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// Waits until `hostname` is a connected agent node of `environment`.
pub async fn wait_joined(server: &Server, environment: &str, hostname: &str) {
    eventually_ok(Duration::from_secs(60), &format!("{hostname} joins {environment}"), async || {
        let (_, cluster) = server.get(&format!("/api/v1/clusters/{environment}")).await?;
        let node = cluster["nodes"].as_array().and_then(|n| n.iter().find(|n| n["hostname"] == hostname).cloned());
        match node {
            Some(n) if n["kind"] == "agent" && n["isHealthy"] == true => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// A signing key the server trusts.
pub async fn trusted_key(server: &Server) -> rsa::PrivateKey {
    let (private, public) = key_pair().await;
    let (status, body) =
        server.post("/api/v1/signing-keys", &json!({ "name": "agents-test", "publicKeyPem": public })).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    rsa_sig::parse_private_key(&private).unwrap()
}

/// Creates a run of `module` `version` to `environment` on `server` and
/// answers it once it has ended.
pub async fn run_to_end(server: &Server, module: &str, version: &str, environment: &str) -> Value {
    let (_, run) = server.post("/api/v1/deployments", &deployment(module, version, environment)).await.unwrap();
    let id = run["executionId"].as_str().unwrap_or_else(|| panic!("no run was created: {run}")).to_string();
    server.finished(&id, std::time::Duration::from_secs(120)).await
}

/// A fresh RSA key pair (PEM), made off the test's thread: generating one
/// takes seconds, which would stall the HTTP client's connection pool.
pub async fn key_pair() -> (String, String) {
    actix_web::rt::task::spawn_blocking(|| rsa_sig::generate_key_pair().unwrap()).await.unwrap()
}

/// Uploads `module` `version` signed by `key`, with `hooks` in its descriptor.
pub async fn publish(server: &Server, key: &rsa::PrivateKey, module: &str, version: &str, hooks: Value) {
    let artifact = format!("kernel module {module} {version} {}", uuid::Uuid::new_v4()).into_bytes();
    publish_bytes(server, key, module, version, hooks, artifact).await;
}

/// The same with `artifact` as the module's bytes.
pub async fn publish_bytes(
    server: &Server,
    key: &rsa::PrivateKey,
    module: &str,
    version: &str,
    hooks: Value,
    artifact: Vec<u8>,
) {
    let descriptor = json!({ "name": module, "version": version, "hooks": hooks });
    publish_descriptor(server, key, descriptor, artifact).await;
}

/// Publishes `descriptor` (its `name` and `version` as given) with
/// `artifact` as the module's bytes, signed with `key`.
pub async fn publish_descriptor(server: &Server, key: &rsa::PrivateKey, descriptor: Value, artifact: Vec<u8>) {
    let field = |name: &str| descriptor[name].as_str().unwrap_or_else(|| panic!("{name} in {descriptor}")).to_string();
    let (module, version) = (field("name"), field("version"));
    let digest = hotswap::crypto::sha256_hex(&artifact);
    // The hooks the agents will run are signed with the rest.
    let hooks: ModuleHooks = match descriptor.get("hooks") {
        None | Some(Value::Null) => ModuleHooks::default(),
        Some(hooks) => serde_json::from_value(hooks.clone()).unwrap(),
    };
    let signed = statement(&module, &version, &digest, &hooks);
    let signature = rsa_sig::sign(key, SignatureAlgorithm::RsaPkcs1v15Sha256, signed.as_bytes()).unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let body = json!({
        "descriptor": descriptor,
        "artifact": b64(&artifact),
        "signature": b64(&signature),
    });
    let (status, reply) = server.post("/api/v1/modules", &body).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

impl Agent {
    /// The data directory of an agent that is not running.
    pub fn stopped(hostname: &str, root: &Path) -> Agent {
        Agent { child: None, hostname: hostname.to_string(), dir: root.join(hostname) }
    }

    /// Points `current` at `version` behind the agent's back, as an operator
    /// changing the host by hand would (the agent must be stopped).
    pub fn relink_by_hand(&self, module: &str, version: &str) {
        let dir = self.dir.join("data/modules").join(module);
        let temporary = dir.join(".by-hand");
        std::os::unix::fs::symlink(version, &temporary).unwrap();
        std::fs::rename(&temporary, dir.join("current")).unwrap();
    }
}

/// The node `hostname` of `environment` as `GET /api/v1/clusters/{environment}` shows it.
pub async fn node_view(server: &Server, environment: &str, hostname: &str) -> Value {
    let (_, cluster) = server.get(&format!("/api/v1/clusters/{environment}")).await.unwrap();
    let nodes = cluster["nodes"].as_array().cloned().unwrap_or_default();
    nodes.into_iter().find(|n| n["hostname"] == hostname).unwrap_or(Value::Null)
}

/// The messages of the tenant's audit entries of `event_type`, newest first.
pub async fn audit_messages(server: &Server, event_type: &str) -> Vec<String> {
    let (_, page) = server.get(&format!("/api/v1/auditlogs?eventType={event_type}")).await.unwrap();
    let items = page["items"].as_array().cloned().unwrap_or_default();
    items.iter().filter_map(|e| e["message"].as_str().map(str::to_string)).collect()
}
