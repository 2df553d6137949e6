//! Enrolments the server refuses, with the reason the agent prints: a host an
//! Admin removed, back with the (multi-use, still valid) token it joined with
//! (a new token enrols it again, under the same node id), and a hostname
//! another node of the tenant already has (an agent's or a simulated node's).
//! A host that is away keeps its last heartbeat in the listing.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::agents::{enrolment_token, wait_joined, Agent};
use crate::process::{free_port, Server};
use crate::support::poll::eventually;

async fn server(root: &Path) -> Server {
    let vars = [
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "1".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.join("artifacts").display().to_string()),
    ];
    Server::start(free_port(), &vars, root.join("server.log")).await
}

async fn agents(server: &Server) -> Vec<Value> {
    let (_, listed) = server.get("/api/v1/agents").await.unwrap();
    listed.as_array().cloned().unwrap_or_default()
}

/// Waits until the agent's log says `text` (the reason it was refused).
async fn says(agent: &Agent, text: &str) {
    eventually(Duration::from_secs(30), &format!("{} logs '{text}'", agent.hostname), async || {
        agent.log().contains(text)
    })
    .await;
}

#[actix_web::test]
async fn a_removed_host_cannot_enrol_again_with_the_token_it_joined_with() {
    let root = tempfile::tempdir().unwrap();
    let server = server(root.path()).await;
    let token = enrolment_token(&server, "Development").await;
    let mut agent = Agent::start(&server, &token, "dev-removed", root.path());
    wait_joined(&server, "Development", "dev-removed").await;
    let node_id = agents(&server).await[0]["nodeId"].as_str().unwrap().to_string();

    // Removed while its agent runs: its credential is refused, and the token
    // it falls back to does not take it back.
    let (status, body) = server.delete(&format!("/api/v1/agents/{node_id}")).await.unwrap();
    assert_eq!(status.as_u16(), 204, "{body}");
    says(&agent, "an Admin removed this host; enrolling it again needs a new enrolment token").await;
    assert_eq!(agents(&server).await, Vec::<Value>::new(), "{}", agent.log());
    let (_, cluster) = server.get("/api/v1/clusters/Development").await.unwrap();
    let nodes = cluster["nodes"].as_array().unwrap();
    assert!(nodes.iter().all(|n| n["hostname"] != "dev-removed"), "{cluster:#}");

    // A new token enrols it again, under the node id its data directory keeps.
    agent.stop();
    let fresh = enrolment_token(&server, "Development").await;
    let mut agent = Agent::start(&server, &fresh, "dev-removed", root.path());
    wait_joined(&server, "Development", "dev-removed").await;
    let listed = agents(&server).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["nodeId"], node_id.as_str());

    // Away, it is still listed with the last heartbeat heard from it.
    agent.stop();
    eventually(Duration::from_secs(30), "the host is listed as disconnected", async || {
        agents(&server).await.first().is_some_and(|a| a["connected"] == false)
    })
    .await;
    let away = agents(&server).await;
    assert!(away[0]["lastHeartbeat"].is_string(), "{away:?}");
}

#[actix_web::test]
async fn a_hostname_another_node_of_the_tenant_has_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let server = server(root.path()).await;
    let token = enrolment_token(&server, "Development").await;
    let _first = Agent::start(&server, &token, "dev-twin", root.path());
    wait_joined(&server, "Development", "dev-twin").await;

    // Other hosts (their own data directories, so other node ids) under names already taken.
    let twin = Agent::start(&server, &token, "dev-twin", &root.path().join("second"));
    says(&twin, "the hostname dev-twin is taken by another node (Development)").await;
    let qa_token = enrolment_token(&server, "QA").await;
    let elsewhere = Agent::start(&server, &qa_token, "dev-twin", &root.path().join("third"));
    says(&elsewhere, "the hostname dev-twin is taken by another node (Development)").await;
    let simulated = Agent::start(&server, &token, "development-node-01", root.path());
    says(&simulated, "the hostname development-node-01 is taken by another node (Development)").await;

    let listed = agents(&server).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (_, cluster) = server.get("/api/v1/clusters/Development").await.unwrap();
    let mut names: Vec<&str> =
        cluster["nodes"].as_array().unwrap().iter().filter_map(|n| n["hostname"].as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["dev-twin", "development-node-01"], "{cluster:#}");
}

/// Walkthrough w2 #4: a new host past the tier's nodes per environment is
/// refused with the quota named, and the cluster stays within it.
#[actix_web::test]
async fn a_host_past_the_tiers_nodes_per_environment_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut server = server(root.path()).await;
    // Free: two nodes per environment; Development starts with one simulated node.
    let free = serde_json::json!({ "name": "Small", "subdomain": "small", "tier": "Free", "contactEmail": "ops@small.example.com" });
    let (status, tenant) = server.post("/api/tenants", &free).await.unwrap();
    assert_eq!(status.as_u16(), 201, "{tenant}");
    server.act_for(Some(tenant["tenantId"].as_str().unwrap()));
    let token = enrolment_token(&server, "Development").await;
    let _first = Agent::start(&server, &token, "small-dev-1", root.path());
    wait_joined(&server, "Development", "small-dev-1").await;

    let second = Agent::start(&server, &token, "small-dev-2", root.path());
    says(&second, "nodesPerEnvironment quota exceeded: Development has 2 nodes").await;
    let (_, cluster) = server.get("/api/v1/clusters/Development").await.unwrap();
    assert_eq!(cluster["totalNodes"], 2, "{cluster:#}");
    let listed = agents(&server).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
}
