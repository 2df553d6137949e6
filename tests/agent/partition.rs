//! A network partition between server and host: the agent runs in its own
//! network namespace, joined to the test's by a veth pair. The link is cut
//! while the host is activating a version in the middle of a rolling batch:
//! the node turns Unreachable, the run is rolled back, and once the link is
//! back the agent reconnects and gets the restore it missed. Making
//! namespaces needs root and `ip`; without them the test says so and stops.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::agents::{
    audit_messages, enrolment_token, logging_hooks, node_view, publish, trusted_key, wait_joined, Agent,
};
use crate::process::{free_port, Server};
use crate::support::poll::eventually;
use crate::support::requests::deployment;

/// A namespace and the veth pair into it; removed on drop.
struct Netns {
    name: String,
    host_side: String,
    /// The test's end of the pair: where the agent finds the server.
    host_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Netns {
    fn create() -> Result<Netns, String> {
        let tag = std::process::id() % 100_000;
        let subnet = 20 + std::process::id() % 200;
        let ns = Netns {
            name: format!("hs-part-{tag}"),
            host_side: format!("hsp{tag}h"),
            host_ip: format!("10.231.{subnet}.1"),
        };
        let agent_side = format!("hsp{tag}n");
        let agent_ip = format!("10.231.{subnet}.2/30");
        let (name, host_side) = (ns.name.as_str(), ns.host_side.as_str());
        ip(&["netns", "add", name])?;
        ip(&["link", "add", host_side, "type", "veth", "peer", "name", &agent_side])?;
        ip(&["link", "set", &agent_side, "netns", name])?;
        ip(&["addr", "add", &format!("{}/30", ns.host_ip), "dev", host_side])?;
        ip(&["link", "set", host_side, "up"])?;
        ip(&["netns", "exec", name, "ip", "addr", "add", &agent_ip, "dev", &agent_side])?;
        ip(&["netns", "exec", name, "ip", "link", "set", &agent_side, "up"])?;
        ip(&["netns", "exec", name, "ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn link(&self, up: bool) {
        ip(&["link", "set", &self.host_side, if up { "up" } else { "down" }]).unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_side]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

#[actix_web::test]
async fn a_partitioned_host_is_rolled_back_and_restored_when_the_link_returns() {
    let ns = match Netns::create() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("SKIPPED partition test: cannot make a network namespace ({why}); it needs root and iproute2");
            return;
        }
    };
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let vars = [
        // Reachable from the namespace through the veth pair, and from the test on loopback.
        ("HOTSWAP__SERVER__BIND", format!("0.0.0.0:{port}")),
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "1".to_string()),
        ("HOTSWAP__SIMULATION__NODES__QA", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__AGENT__COMMAND_TIMEOUT", "60s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.path().join("artifacts").display().to_string()),
    ];
    let server = Server::start(port, &vars, root.path().join("server.log")).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "QA").await;
    let local = Agent::start(&server, &token, "qa-local", root.path());
    let url = format!("http://{}:{port}", ns.host_ip);
    let wrapper = ["ip", "netns", "exec", ns.name.as_str()];
    let remote = Agent::start_via(&url, &wrapper, &token, "qa-remote", root.path());
    wait_joined(&server, "QA", "qa-local").await;
    wait_joined(&server, "QA", "qa-remote").await;

    // 2.0.0 takes a few seconds to activate on qa-remote: the link is cut meanwhile.
    let mut hooks = logging_hooks(false);
    let logging = hooks["activate"].as_str().unwrap().to_string();
    hooks["activate"] = json!(format!(
        r#"if [ "$HOTSWAP_NODE" = qa-remote ] && [ "$HOTSWAP_VERSION" = 2.0.0 ]; then touch "$HOOK_LOG.started"; sleep 4; fi; {logging}"#
    ));
    publish(&server, &key, "kmod-part", "1.0.0", hooks.clone()).await;
    publish(&server, &key, "kmod-part", "2.0.0", hooks).await;
    let deploy = async |version: &str| {
        let (status, run) = server.post("/api/v1/deployments", &deployment("kmod-part", version, "QA")).await.unwrap();
        assert_eq!(status.as_u16(), 202, "{run}");
        run["executionId"].as_str().unwrap().to_string()
    };
    let first = server.finished(&deploy("1.0.0").await, Duration::from_secs(120)).await;
    assert_eq!(first["status"], "Succeeded", "{first:#}\n{}", remote.log());

    let run = deploy("2.0.0").await;
    let started = remote.dir.join("hooks.log.started");
    eventually(Duration::from_secs(60), "qa-remote is activating 2.0.0", async || started.exists()).await;
    ns.link(false);
    eventually(Duration::from_secs(10), "qa-remote is unreachable", async || {
        node_view(&server, "QA", "qa-remote").await["status"] == "Unreachable"
    })
    .await;
    let failed = server.finished(&run, Duration::from_secs(120)).await;
    assert_eq!(failed["status"], "Failed", "{failed:#}");
    assert_eq!(local.current("kmod-part").as_deref(), Some("1.0.0"), "{}", local.log());
    // Cut off, the host finished activating 2.0.0 on its own.
    eventually(Duration::from_secs(30), "qa-remote finishes its activation", async || {
        remote.current("kmod-part").as_deref() == Some("2.0.0")
            && remote.hook_log().contains("activate kmod-part 2.0.0")
    })
    .await;
    assert_eq!(node_view(&server, "QA", "qa-remote").await["modules"]["kmod-part"], "1.0.0", "never confirmed");

    ns.link(true);
    eventually(Duration::from_secs(90), "qa-remote is restored to 1.0.0", async || {
        remote.current("kmod-part").as_deref() == Some("1.0.0")
    })
    .await;
    eventually(Duration::from_secs(30), "the restore is audited", async || {
        let applied = audit_messages(&server, "AgentRestoreApplied").await;
        applied.iter().any(|m| m.contains("qa-remote kmod-part: desired 1.0.0, the host runs 2.0.0"))
    })
    .await;
    eventually(Duration::from_secs(10), "the server sees qa-remote back on 1.0.0", async || {
        let view = node_view(&server, "QA", "qa-remote").await;
        view["status"] == "Running" && view["modules"]["kmod-part"] == "1.0.0"
    })
    .await;
}
