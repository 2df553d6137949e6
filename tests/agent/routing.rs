//! Two instances on one PostgreSQL database and one Redis: an agent whose
//! session instance `b` holds gets the node calls of a run instance `a`
//! drives (over Redis); `b` is killed, the agent reconnects to `a`, and the
//! next run works.

use std::time::Duration;

use serde_json::Value;

use crate::agents::{enrolment_token, logging_hooks, publish, trusted_key, wait_joined, Agent};
use crate::process::{free_port, Server};
use crate::support::poll::eventually_ok;
use crate::support::requests::deployment;
use crate::support::TestDb;

const M: &str = "kmod-routed";

async fn instance(db: &TestDb, name: &str, root: &std::path::Path, prefix: &str) -> Server {
    let vars = vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__CLUSTER__INSTANCE_ID", name.to_string()),
        ("HOTSWAP__CLUSTER__LEASE_TTL", "3s".to_string()),
        ("HOTSWAP__REDIS__URL", "redis://127.0.0.1:6379".to_string()),
        ("HOTSWAP__REDIS__KEY_PREFIX", prefix.to_string()),
        ("HOTSWAP__SIMULATION__NODES__QA", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__AGENT__HEARTBEAT_INTERVAL", "1s".to_string()),
        ("HOTSWAP__AGENT__HEARTBEAT_TIMEOUT", "4s".to_string()),
        // One artifact directory for both, as a shared volume would be.
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.join("artifacts").display().to_string()),
    ];
    Server::start(free_port(), &vars, root.join(format!("{name}.log"))).await
}

/// Runs `version` to QA on `server`; the finished run.
async fn run(server: &Server, version: &str) -> Value {
    let (status, run) = server.post("/api/v1/deployments", &deployment(M, version, "QA")).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    server.finished(run["executionId"].as_str().unwrap(), Duration::from_secs(120)).await
}

/// Whether `server` holds a session of `hostname` itself.
async fn holds(server: &Server, hostname: &str) -> Result<(), String> {
    let (_, agents) = server.get("/api/v1/agents").await?;
    let agent = agents.as_array().and_then(|a| a.iter().find(|a| a["hostname"] == hostname).cloned());
    match agent {
        Some(a) if a["connected"] == true => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[actix_web::test]
async fn a_run_on_one_instance_reaches_an_agent_connected_to_another_and_follows_it_when_it_moves() {
    let Some(db) = TestDb::migrated("agent::routing_across_instances").await else { return };
    let root = tempfile::tempdir().unwrap();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let a = instance(&db, "a", root.path(), &prefix).await;
    let mut b = instance(&db, "b", root.path(), &prefix).await;
    let key = trusted_key(&a).await;
    let token = enrolment_token(&a, "QA").await;
    // b first; a when b does not answer.
    let servers = format!("{},{}", b.base, a.base);
    let agent = Agent::start_via(&servers, &[], &token, "qa-routed", root.path());
    eventually_ok(Duration::from_secs(60), "b holds the agent's session", async || holds(&b, "qa-routed").await).await;
    // a learns of the host from b over Redis and makes it a node of its own cluster.
    wait_joined(&a, "QA", "qa-routed").await;
    assert!(holds(&a, "qa-routed").await.is_err(), "the session is b's, not a's");
    publish(&a, &key, M, "1.0.0", logging_hooks(false)).await;
    publish(&a, &key, M, "2.0.0", logging_hooks(false)).await;

    let done = run(&a, "1.0.0").await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}\n{}\n{}", a.log_text(), b.log_text(), agent.log());
    assert_eq!(done["ownerInstance"], "a", "{done:#}");
    assert_eq!(agent.current(M).as_deref(), Some("1.0.0"), "{}", agent.log());
    assert!(agent.hook_log().contains(&format!("activate {M} 1.0.0 qa-routed")), "{}", agent.hook_log());

    b.kill();
    eventually_ok(Duration::from_secs(60), "the agent reconnects to a", async || holds(&a, "qa-routed").await).await;
    let done = run(&a, "2.0.0").await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}\n{}", a.log_text(), agent.log());
    assert_eq!(agent.current(M).as_deref(), Some("2.0.0"), "{}", agent.log());
    let hooks = agent.hook_log();
    assert_eq!(hooks.matches(&format!("activate {M} 2.0.0")).count(), 1, "activated once: {hooks}");
}
