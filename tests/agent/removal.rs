//! An Admin retires a host: refused while a run may still deploy to its
//! environment or a rollback may still restore it; once removed, its node
//! leaves the cluster, the listing and the knowledge graph, runs to its
//! environment no longer wait for it, and what it ran no longer counts (a
//! module whose dependency it lacked deploys).

use std::time::{Duration, Instant};

use crate::agents::{
    audit_messages, enrolment_token, logging_hooks, publish, publish_descriptor, run_to_end, trusted_key, wait_joined,
    Agent,
};
use crate::process::{free_port, Server};
use crate::support::poll::eventually_ok;
use crate::support::requests::deployment;

const M: &str = "kmod-retired";

fn rollback_reason() -> serde_json::Value {
    serde_json::json!({ "reason": "the removal test" })
}
/// How long a step would wait for an away host: far longer than the run
/// after the removal may take.
const AWAY_WAIT: Duration = Duration::from_secs(60);

#[actix_web::test]
async fn a_retired_host_leaves_its_cluster_and_runs_no_longer_wait_for_it() {
    let root = tempfile::tempdir().unwrap();
    let vars = vec![
        ("HOTSWAP__SIMULATION__NODES__QA", "1".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", format!("{}s", AWAY_WAIT.as_secs())),
        ("HOTSWAP__AGENT__HEARTBEAT_INTERVAL", "1s".to_string()),
        ("HOTSWAP__AGENT__HEARTBEAT_TIMEOUT", "3s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.path().join("artifacts").display().to_string()),
    ];
    let server = Server::start(free_port(), &vars, root.path().join("server.log")).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "QA").await;
    let mut agent = Agent::start(&server, &token, "qa-retired", root.path());
    wait_joined(&server, "QA", "qa-retired").await;
    publish(&server, &key, M, "1.0.0", logging_hooks(false)).await;
    publish(&server, &key, M, "2.0.0", logging_hooks(false)).await;
    let (_, agents) = server.get("/api/v1/agents").await.unwrap();
    let node_id = agents[0]["nodeId"].as_str().unwrap_or_else(|| panic!("an agent: {agents}")).to_string();

    // A run waiting at Staging's gate still has QA, the host's environment, ahead of it.
    let mut gated = deployment(M, "1.0.0", "Staging");
    gated["requireApproval"] = true.into();
    let (status, run) = server.post("/api/v1/deployments", &gated).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    let run = run["executionId"].as_str().unwrap().to_string();
    let (status, refused) = server.delete(&format!("/api/v1/agents/{node_id}")).await.unwrap();
    assert_eq!(status.as_u16(), 409, "{refused}");
    assert!(refused["message"].as_str().unwrap_or_default().contains(&run), "{refused}");
    server.post(&format!("/api/v1/deployments/{run}/abort"), &serde_json::json!({})).await.unwrap();
    server.finished(&run, Duration::from_secs(60)).await;

    // A finished run's rollback may still restore the host: the agent is
    // away, so the rollback waits for it, and the removal is refused.
    let first = run_to_end(&server, M, "1.0.0", "QA").await;
    assert_eq!(first["status"], "Succeeded", "{first:#}\n{}", agent.log());
    let first = first["executionId"].as_str().unwrap().to_string();
    agent.stop();
    let (status, body) =
        server.post(&format!("/api/v1/deployments/{first}/rollback"), &rollback_reason()).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{body}");
    let (status, refused) = server.delete(&format!("/api/v1/agents/{node_id}")).await.unwrap();
    assert_eq!(status.as_u16(), 409, "a rollback in progress may restore the host: {refused}");
    assert!(refused["message"].as_str().unwrap_or_default().contains(&first), "{refused}");
    // The agent comes back, the rollback restores it and ends; then the host is retired.
    let mut agent = Agent::start(&server, &token, "qa-retired", root.path());
    eventually_ok(Duration::from_secs(60), "the rollback ends", async || {
        let (_, run) = server.get(&format!("/api/v1/deployments/{first}")).await?;
        (run["status"] == "RolledBack").then_some(()).ok_or(format!("{run}"))
    })
    .await;

    // The host is gone for good: its agent stopped, an Admin removes it.
    agent.stop();
    let node_in_graph = format!("/api/v1/graph/entities/{node_id}");
    let (status, entity) = server.get(&node_in_graph).await.unwrap();
    assert_eq!(status.as_u16(), 200, "the host's node is in the knowledge graph: {entity}");
    let (status, body) = server.delete(&format!("/api/v1/agents/{node_id}")).await.unwrap();
    assert_eq!(status.as_u16(), 204, "{body}");
    let (_, agents) = server.get("/api/v1/agents").await.unwrap();
    assert_eq!(agents, serde_json::json!([]), "the listing forgets the host");
    let (_, cluster) = server.get("/api/v1/clusters/QA").await.unwrap();
    let hostnames: Vec<&str> =
        cluster["nodes"].as_array().unwrap().iter().filter_map(|n| n["hostname"].as_str()).collect();
    assert_eq!(hostnames, vec!["qa-node-01"], "{cluster}");
    let (status, _) = server.delete(&format!("/api/v1/agents/{node_id}")).await.unwrap();
    assert_eq!(status.as_u16(), 404);
    assert!(audit_messages(&server, "AgentRemoved").await.iter().any(|m| m.contains("qa-retired")));

    // A run to QA goes ahead on the nodes left, without waiting for the host.
    let started = Instant::now();
    let done = run_to_end(&server, M, "2.0.0", "QA").await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}", server.log_text());
    assert!(started.elapsed() < AWAY_WAIT / 2, "the run waited {:?}", started.elapsed());

    // What the host ran counts no more: a module that needs M 2 deploys to
    // QA, where every node left runs it (the retired host ran none of it).
    let dependent = serde_json::json!({
        "name": "kmod-needs-retired", "version": "1.0.0", "hooks": logging_hooks(false),
        "dependencies": { M: "^2.0.0" },
    });
    publish_descriptor(&server, &key, dependent, b"needs M 2".to_vec()).await;
    let done = run_to_end(&server, "kmod-needs-retired", "1.0.0", "QA").await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");

    // Nor is the host in the knowledge graph, even once rebuilt from the
    // runs that touched it.
    let (status, entity) = server.get(&node_in_graph).await.unwrap();
    assert_eq!(status.as_u16(), 404, "{entity}");
    let (status, report) = server.post("/api/v1/graph/rebuild", &serde_json::json!({})).await.unwrap();
    assert_eq!(status.as_u16(), 200, "{report}");
    let (status, entity) = server.get(&node_in_graph).await.unwrap();
    assert_eq!(status.as_u16(), 404, "rebuilt: {entity}");
}
