//! The server SIGKILLed in the middle of a rolling batch on PostgreSQL while
//! its agents activate a version: the agents finish on their own, reconnect
//! to the restarted server, the run resumes and succeeds, and no host runs
//! an activation twice (their hook logs say so).

use std::time::Duration;

use serde_json::json;

use crate::agents::{enrolment_token, logging_hooks, node_view, publish, trusted_key, wait_joined, Agent};
use crate::process::{free_port, Server};
use crate::support::poll::eventually;
use crate::support::requests::deployment;
use crate::support::TestDb;

const M: &str = "kmod-restart";

#[actix_web::test]
async fn a_server_restarted_mid_run_resumes_it_with_its_agents_and_applies_nothing_twice() {
    let Some(db) = TestDb::create("agent::server_restarted_mid_run").await else { return };
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let vars = vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "1".to_string()),
        ("HOTSWAP__SIMULATION__NODES__QA", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__AGENT__COMMAND_TIMEOUT", "60s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.path().join("artifacts").display().to_string()),
    ];
    let mut first = Server::start(port, &vars, root.path().join("first.log")).await;
    let key = trusted_key(&first).await;
    let token = enrolment_token(&first, "QA").await;
    let agents: Vec<Agent> = ["qa-r1", "qa-r2"].iter().map(|h| Agent::start(&first, &token, h, root.path())).collect();
    for agent in &agents {
        wait_joined(&first, "QA", &agent.hostname).await;
    }
    // 2.0.0 takes a few seconds to activate: long enough to kill the server meanwhile.
    let mut hooks = logging_hooks(false);
    let logging = hooks["activate"].as_str().unwrap().to_string();
    hooks["activate"] =
        json!(format!(r#"if [ "$HOTSWAP_VERSION" = 2.0.0 ]; then touch "$HOOK_LOG.started"; sleep 3; fi; {logging}"#));
    publish(&first, &key, M, "1.0.0", hooks.clone()).await;
    publish(&first, &key, M, "2.0.0", hooks).await;
    let (_, run) = first.post("/api/v1/deployments", &deployment(M, "1.0.0", "QA")).await.unwrap();
    let done = first.finished(run["executionId"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");

    let (status, run) = first.post("/api/v1/deployments", &deployment(M, "2.0.0", "QA")).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    let id = run["executionId"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(60), "both agents are activating 2.0.0", async || {
        agents.iter().all(|a| a.dir.join("hooks.log.started").exists())
    })
    .await;
    first.kill();
    // With no server to tell, the hosts finish what they were asked.
    eventually(Duration::from_secs(30), "both agents finish activating", async || {
        agents.iter().all(|a| a.hook_log().contains(&format!("activate {M} 2.0.0")))
    })
    .await;

    let second = Server::start(port, &vars, root.path().join("second.log")).await;
    let resumed = second.finished(&id, Duration::from_secs(120)).await;
    let logs: Vec<String> = agents.iter().map(|a| a.log()).collect();
    assert_eq!(resumed["status"], "Succeeded", "{resumed:#}\n{}\n{logs:#?}", second.log_text());
    for agent in &agents {
        assert_eq!(agent.current(M).as_deref(), Some("2.0.0"), "{}", agent.log());
        let hooks = agent.hook_log();
        assert_eq!(hooks.matches(&format!("activate {M} 2.0.0")).count(), 1, "activated once: {hooks}");
        assert!(!hooks.contains(&format!("deactivate {M} 2.0.0")), "never undone: {hooks}");
        let view = node_view(&second, "QA", &agent.hostname).await;
        assert_eq!(view["kind"], "agent", "{view:#}");
        assert_eq!(view["modules"][M], "2.0.0", "{view:#}");
    }
}
