//! A host's health as runs judge it is the cluster view's: a host whose
//! agent died says so, with its last heartbeat, rather than that it never
//! reported.

use std::time::Duration;

use crate::agents::{enrolment_token, node_view, wait_joined, Agent};
use crate::process::{free_port, Server};
use crate::support::poll::eventually;

/// Agents only in Development (no simulated node).
async fn server(root: &std::path::Path) -> Server {
    let vars = [
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__AGENT__COMMAND_TIMEOUT", "60s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.join("artifacts").display().to_string()),
    ];
    Server::start(free_port(), &vars, root.join("server.log")).await
}

#[actix_web::test]
async fn a_host_whose_agent_died_is_not_connected_since_its_last_heartbeat() {
    let root = tempfile::tempdir().unwrap();
    let server = server(root.path()).await;
    let token = enrolment_token(&server, "Development").await;
    let mut agent = Agent::start(&server, &token, "dev-gone", root.path());
    wait_joined(&server, "Development", "dev-gone").await;
    agent.stop(); // SIGKILL
    eventually(Duration::from_secs(30), "dev-gone is unreachable", async || {
        node_view(&server, "Development", "dev-gone").await["status"] == "Unreachable"
    })
    .await;
    let view = node_view(&server, "Development", "dev-gone").await;
    let messages: Vec<String> =
        view["healthMessages"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
    assert!(messages[0].starts_with("its agent is not connected (last heartbeat "), "{view:#}");
    assert!(!messages.iter().any(|m| m.contains("has not reported yet")), "{view:#}");
}
