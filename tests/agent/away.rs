//! A host whose agent is away when a step asks it: the node waits for the
//! agent up to `pipeline.node_request_timeout`. Back within that bound, the
//! step goes on and succeeds; still away, the step fails once it has passed.

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

#[actix_web::test]
async fn a_step_waits_for_an_away_agent_up_to_the_node_request_timeout() {
    let root = tempfile::tempdir().unwrap();
    let vars = vec![
        ("HOTSWAP__SIMULATION__NODES__QA", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", format!("{}s", TIMEOUT.as_secs())),
        ("HOTSWAP__AGENT__HEARTBEAT_INTERVAL", "1s".to_string()),
        ("HOTSWAP__AGENT__HEARTBEAT_TIMEOUT", "3s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.path().join("artifacts").display().to_string()),
    ];
    let server = Server::start(free_port(), &vars, root.path().join("server.log")).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "QA").await;
    let mut agent = Agent::start(&server, &token, "qa-away", root.path());
    wait_joined(&server, "QA", "qa-away").await;
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
