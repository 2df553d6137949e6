//! Desired state kept by the server and enforced on hosts: an agent
//! SIGKILLed in the middle of a rolling batch fails the batch, the stage is
//! restored but for that host (named as not restored, never counted as
//! restored while away), and the restarted agent reports the version its link really
//! serves and is brought back to the desired (previous) one; a host changed
//! by hand is put back (`drift = "reconcile"`) or flagged (`drift = "flag"`).

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::agents::{
    audit_messages, enrolment_token, logging_hooks, node_view, publish, trusted_key, wait_joined, Agent,
};
use crate::process::{free_port, Server};
use crate::support::poll::eventually;
use crate::support::requests::deployment;

/// `dev_nodes` simulated nodes in Development (a run passes through it) and
/// none in QA.
async fn server(root: &Path, drift: &str, dev_nodes: u32) -> Server {
    let vars = [
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", dev_nodes.to_string()),
        ("HOTSWAP__SIMULATION__NODES__QA", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__AGENT__COMMAND_TIMEOUT", "60s".to_string()),
        ("HOTSWAP__AGENT__DRIFT", drift.to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.join("artifacts").display().to_string()),
    ];
    Server::start(free_port(), &vars, root.join("server.log")).await
}

/// Logging hooks whose activation of 2.0.0 on `slow_host` never finishes by
/// itself: it notes its pid and sleeps, so the test can kill the agent
/// while the activation is under way.
fn hooks_hanging_on(slow_host: &str) -> Value {
    let mut hooks = logging_hooks(false);
    let logging = hooks["activate"].as_str().unwrap().to_string();
    hooks["activate"] = json!(format!(
        r#"if [ "$HOTSWAP_NODE" = "{slow_host}" ] && [ "$HOTSWAP_VERSION" = "2.0.0" ]; then echo "activating $HOTSWAP_VERSION" >> "$HOOK_LOG"; echo $$ > "$HOOK_LOG.pid"; exec sleep 120; fi; {logging}"#
    ));
    hooks
}

async fn deploy(server: &Server, module: &str, version: &str, env: &str) -> String {
    let (status, run) = server.post("/api/v1/deployments", &deployment(module, version, env)).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    run["executionId"].as_str().unwrap().to_string()
}

async fn wait_current(agent: &Agent, module: &str, version: &str) {
    eventually(Duration::from_secs(60), &format!("{} serves {module} {version}", agent.hostname), async || {
        agent.current(module).as_deref() == Some(version)
    })
    .await;
}

/// Waits for an audit entry of `event_type` whose message contains `text`
/// (it is written once the host has answered).
async fn audited(server: &Server, event_type: &str, text: &str) {
    eventually(Duration::from_secs(30), &format!("{event_type}: {text}"), async || {
        audit_messages(server, event_type).await.iter().any(|m| m.contains(text))
    })
    .await;
}

#[actix_web::test]
async fn an_agent_killed_mid_batch_is_restored_to_the_desired_version_when_it_returns() {
    let root = tempfile::tempdir().unwrap();
    let server = server(root.path(), "reconcile", 1).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "QA").await;
    let mut agents = Vec::new();
    for host in ["qa-a", "qa-b", "qa-c"] {
        agents.push(Agent::start(&server, &token, host, root.path()));
        wait_joined(&server, "QA", host).await;
    }
    publish(&server, &key, "kmod-kill", "1.0.0", hooks_hanging_on("qa-b")).await;
    publish(&server, &key, "kmod-kill", "2.0.0", hooks_hanging_on("qa-b")).await;
    let first = server.finished(&deploy(&server, "kmod-kill", "1.0.0", "QA").await, Duration::from_secs(120)).await;
    assert_eq!(first["status"], "Succeeded", "{first:#}");

    // 2.0.0: qa-b hangs in its activate hook (after the link swap); SIGKILL it there.
    let run = deploy(&server, "kmod-kill", "2.0.0", "QA").await;
    let pid_file = agents[1].dir.join("hooks.log.pid");
    eventually(Duration::from_secs(60), "qa-b is activating 2.0.0", async || pid_file.exists()).await;
    let hook_pid = std::fs::read_to_string(&pid_file).unwrap();
    let slow = agents.remove(1);
    drop(slow); // SIGKILL
    let _ = std::process::Command::new("kill").arg("-KILL").arg(hook_pid.trim()).status();
    std::fs::remove_file(&pid_file).unwrap();

    let failed = server.finished(&run, Duration::from_secs(120)).await;
    assert_eq!(failed["status"], "Failed", "{failed:#}");
    // The killed host was sent 2.0.0 and never answered: its restore is not
    // counted until it confirms, so the stage names it as not restored
    // (however often the restore is retried while the agent is away).
    assert_eq!(failed["nodesLeftOnNewVersion"], json!(["qa-b"]), "{failed:#}");
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(message.contains("Could not restore: qa-b is not reachable: its agent is not connected"), "{message}");
    let stage = failed["stages"].as_array().unwrap().iter().find(|s| s["name"] == "Deploy to QA").cloned();
    let stage = stage.unwrap_or_else(|| panic!("the QA stage: {failed:#}"));
    assert!(!stage["message"].as_str().unwrap_or_default().contains("Rolled back every node"), "{stage:#}");
    for agent in &agents {
        assert_eq!(agent.current("kmod-kill").as_deref(), Some("1.0.0"), "{}", agent.log());
    }
    // The server never heard qa-b confirm 2.0.0: its view keeps 1.0.0, while
    // on disk the link already names 2.0.0 (the activation was cut off).
    let away = node_view(&server, "QA", "qa-b").await;
    assert_eq!(away["status"], "Unreachable", "{away:#}");
    assert_eq!(away["modules"]["kmod-kill"], "1.0.0", "{away:#}");
    let b_dir = root.path().join("qa-b");
    let on_disk = std::fs::read_link(b_dir.join("data/modules/kmod-kill/current")).unwrap();
    assert_eq!(on_disk.to_str(), Some("2.0.0"));

    // Restarted: it reports 2.0.0 (its true state) and gets the restore it missed.
    let b = Agent::start(&server, "hse_not-needed-any-more", "qa-b", root.path());
    wait_current(&b, "kmod-kill", "1.0.0").await;
    audited(&server, "AgentRestoreApplied", "qa-b kmod-kill: desired 1.0.0, the host runs 2.0.0").await;
    let hooks = b.hook_log();
    let after_kill = hooks.split("activating 2.0.0").nth(1).unwrap_or_default().to_string();
    assert!(after_kill.contains("deactivate kmod-kill 2.0.0 qa-b"), "{hooks}");
    assert!(after_kill.contains("activate kmod-kill 1.0.0 qa-b"), "{hooks}");
    eventually(Duration::from_secs(10), "the server sees qa-b on 1.0.0", async || {
        let view = node_view(&server, "QA", "qa-b").await;
        view["status"] == "Running" && view["modules"]["kmod-kill"] == "1.0.0"
    })
    .await;

    // Changed by hand while the agent was stopped: put back (drift = reconcile).
    drop(b);
    Agent::stopped("qa-b", root.path()).relink_by_hand("kmod-kill", "2.0.0");
    let b = Agent::start(&server, "hse_not-needed-any-more", "qa-b", root.path());
    wait_current(&b, "kmod-kill", "1.0.0").await;
    audited(&server, "AgentDriftReconciled", "qa-b kmod-kill: desired 1.0.0, the host runs 2.0.0").await;
    assert_eq!(node_view(&server, "QA", "qa-b").await["drift"], json!({}));
}

#[actix_web::test]
async fn a_host_changed_by_hand_is_flagged_as_drifted_and_left_alone() {
    let root = tempfile::tempdir().unwrap();
    let server = server(root.path(), "flag", 0).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "Development").await;
    let agent = Agent::start(&server, &token, "dev-drift", root.path());
    wait_joined(&server, "Development", "dev-drift").await;
    for version in ["1.0.0", "2.0.0"] {
        publish(&server, &key, "kmod-flag", version, logging_hooks(false)).await;
        let done = server
            .finished(&deploy(&server, "kmod-flag", version, "Development").await, Duration::from_secs(120))
            .await;
        assert_eq!(done["status"], "Succeeded", "{done:#}\n{}", agent.log());
    }
    drop(agent);
    let stopped = Agent::stopped("dev-drift", root.path());
    stopped.relink_by_hand("kmod-flag", "1.0.0");
    let agent = Agent::start(&server, "hse_not-needed-any-more", "dev-drift", root.path());
    eventually(Duration::from_secs(30), "the node is flagged as drifted", async || {
        let view = node_view(&server, "Development", "dev-drift").await;
        view["drift"]["kmod-flag"].as_str().is_some_and(|d| d.contains("desired 2.0.0, the host runs 1.0.0"))
    })
    .await;
    audited(&server, "AgentDriftDetected", "dev-drift kmod-flag: desired 2.0.0, the host runs 1.0.0").await;
    // The agent says what it found, not that a crash it cannot know of happened.
    let log = agent.log();
    assert!(
        log.contains("the current link serves 1.0.0 but the state file records 2.0.0 (changed by hand, or an activation cut off)"),
        "{log}"
    );
    assert_eq!(agent.current("kmod-flag").as_deref(), Some("1.0.0"), "flagged, not changed");
    assert_eq!(node_view(&server, "Development", "dev-drift").await["modules"]["kmod-flag"], "1.0.0");

    // A run that sets the module again clears the flag.
    let again =
        server.finished(&deploy(&server, "kmod-flag", "2.0.0", "Development").await, Duration::from_secs(120)).await;
    assert_eq!(again["status"], "Succeeded", "{again:#}");
    assert_eq!(agent.current("kmod-flag").as_deref(), Some("2.0.0"));
    assert_eq!(node_view(&server, "Development", "dev-drift").await["drift"], json!({}));
}
