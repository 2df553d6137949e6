//! A host whose agent is away when a step asks it: the node waits for the
//! agent up to `pipeline.node_request_timeout`. Back within that bound, the
//! step goes on and succeeds; still away, the step fails once it has passed;
//! an abort ends the wait at once.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::agents::{enrolment_token, logging_hooks, publish, trusted_key, wait_joined, Agent};
use crate::process::{free_port, Server};
use crate::support::poll::eventually_ok;
use crate::support::requests::deployment;

const M: &str = "kmod-away";
const TIMEOUT: Duration = Duration::from_secs(12);

/// Waits until `server` says no session of `hostname` is open.
async fn gone(server: &Server, hostname: &str) {
    eventually_ok(Duration::from_secs(30), &format!("{hostname}'s session ends"), async || {
        let (_, agents) = server.get("/api/v1/agents").await?;
        let agent = agents.as_array().and_then(|a| a.iter().find(|a| a["hostname"] == hostname).cloned());
        match agent {
            Some(a) if a["connected"] == false => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

async fn start_run(server: &Server, version: &str) -> String {
    let (status, run) = server.post("/api/v1/deployments", &deployment(M, version, "QA")).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    run["executionId"].as_str().unwrap().to_string()
}

/// A server whose QA cluster is one agent, `hostname`, connected; steps wait
/// for an away host up to `timeout`. Answers the server, its trusted
/// signing key, the enrolment token and the agent.
async fn one_agent_in_qa(root: &Path, timeout: Duration, hostname: &str) -> (Server, rsa::PrivateKey, String, Agent) {
    let vars = vec![
        ("HOTSWAP__SIMULATION__NODES__QA", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", format!("{}s", timeout.as_secs())),
        ("HOTSWAP__AGENT__HEARTBEAT_INTERVAL", "1s".to_string()),
        ("HOTSWAP__AGENT__HEARTBEAT_TIMEOUT", "3s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.join("artifacts").display().to_string()),
    ];
    let server = Server::start(free_port(), &vars, root.join("server.log")).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "QA").await;
    let agent = Agent::start(&server, &token, hostname, root);
    wait_joined(&server, "QA", hostname).await;
    (server, key, token, agent)
}

#[actix_web::test]
async fn a_step_waits_for_an_away_agent_up_to_the_node_request_timeout() {
    let root = tempfile::tempdir().unwrap();
    let (server, key, token, mut agent) = one_agent_in_qa(root.path(), TIMEOUT, "qa-away").await;
    publish(&server, &key, M, "1.0.0", logging_hooks(false)).await;
    publish(&server, &key, M, "2.0.0", logging_hooks(false)).await;

    // Away when the run starts, back within the timeout: the step waits for it.
    agent.stop();
    gone(&server, "qa-away").await;
    let id = start_run(&server, "1.0.0").await;
    let agent = Agent::start(&server, &token, "qa-away", root.path());
    let done = server.finished(&id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}\n{}", server.log_text(), agent.log());
    assert_eq!(agent.current(M).as_deref(), Some("1.0.0"), "{}", agent.log());

    // Away and not back: the step fails once the timeout has passed, not before.
    let mut agent = agent;
    agent.stop();
    gone(&server, "qa-away").await;
    let started = Instant::now();
    let id = start_run(&server, "2.0.0").await;
    let done = server.finished(&id, Duration::from_secs(120)).await;
    let took = started.elapsed();
    assert!(matches!(done["status"].as_str(), Some("Failed" | "RolledBack")), "{done:#}");
    assert!(took >= TIMEOUT, "the step failed after {took:?}, before the {TIMEOUT:?} timeout: {done}");
    assert!(took < TIMEOUT * 4, "the step failed only after {took:?}");
    assert_eq!(agent.current(M).as_deref(), Some("1.0.0"), "the host was not changed");
}

/// Long enough that a run ending by the timeout could not pass for one cut
/// short by the abort.
const LONG_TIMEOUT: Duration = Duration::from_secs(60);

#[actix_web::test]
async fn an_abort_ends_a_step_waiting_for_an_away_agent_at_once() {
    let root = tempfile::tempdir().unwrap();
    let (server, key, _, mut agent) = one_agent_in_qa(root.path(), LONG_TIMEOUT, "qa-aborted").await;
    publish(&server, &key, M, "1.0.0", logging_hooks(false)).await;
    agent.stop();
    gone(&server, "qa-aborted").await;

    let id = start_run(&server, "1.0.0").await;
    // The QA stage has recorded the nodes it changes: its load is waiting for the host.
    eventually_ok(Duration::from_secs(30), "the QA stage is under way", async || {
        let (_, run) = server.get(&format!("/api/v1/deployments/{id}")).await?;
        let stages = run["stages"].as_array().cloned().unwrap_or_default();
        match stages.iter().find(|s| s["name"] == "Deploy to QA") {
            Some(stage) if stage["status"] == "Running" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let aborted = Instant::now();
    let (status, reply) =
        server.post(&format!("/api/v1/deployments/{id}/abort"), &serde_json::json!({})).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{reply}");
    let done = server.finished(&id, LONG_TIMEOUT * 2).await;
    let took = aborted.elapsed();
    assert_eq!(done["status"], "Cancelled", "{done:#}");
    assert!(
        took < LONG_TIMEOUT / 4,
        "the aborted run ended {took:?} after the abort: it waited for the host ({LONG_TIMEOUT:?} timeout)"
    );
    assert_eq!(agent.current(M), None, "the host away during the run was not changed");
}
