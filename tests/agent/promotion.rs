//! A signed module promoted Development → Production to three agents (and
//! the simulated nodes beside them); a failing hook and an untrusted
//! signature leave the host on its previous version.

use std::time::Duration;

use serde_json::json;

use crate::agents::{enrolment_token, key_pair, logging_hooks, publish, trusted_key, wait_joined, Agent};
use crate::process::{free_port, Server};
use crate::support::requests::deployment;

async fn server(root: &std::path::Path) -> Server {
    let vars = [
        // Development mixes simulated nodes and an agent; QA and Production are agents only.
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "2".to_string()),
        ("HOTSWAP__SIMULATION__NODES__QA", "0".to_string()),
        ("HOTSWAP__SIMULATION__NODES__STAGING", "2".to_string()),
        ("HOTSWAP__SIMULATION__NODES__PRODUCTION", "0".to_string()),
        // A step on a host downloads, checks and runs hooks.
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.join("artifacts").display().to_string()),
    ];
    Server::start(free_port(), &vars, root.join("server.log")).await
}

#[actix_web::test]
async fn a_signed_module_is_promoted_to_three_agents_and_simulated_nodes() {
    let root = tempfile::tempdir().unwrap();
    let server = server(root.path()).await;
    let key = trusted_key(&server).await;
    let mut agents = Vec::new();
    for (env, host) in [("Development", "dev-host-1"), ("QA", "qa-host-1"), ("Production", "prod-host-1")] {
        let token = enrolment_token(&server, env).await;
        agents.push(Agent::start(&server, &token, host, root.path()));
        wait_joined(&server, env, host).await;
    }
    publish(&server, &key, "kmod-agent", "1.0.0", logging_hooks(false)).await;
    let (status, run) =
        server.post("/api/v1/deployments", &deployment("kmod-agent", "1.0.0", "Production")).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    let id = run["executionId"].as_str().unwrap().to_string();
    let done = server.finished(&id, Duration::from_secs(180)).await;
    let logs: Vec<String> = agents.iter().map(|a| a.log()).collect();
    assert_eq!(done["status"], "Succeeded", "{done:#}\nagents:\n{logs:#?}");
    for agent in &agents {
        assert_eq!(agent.current("kmod-agent").as_deref(), Some("1.0.0"), "{}", agent.log());
        let hooks = agent.hook_log();
        assert!(hooks.contains(&format!("activate kmod-agent 1.0.0 {}", agent.hostname)), "{hooks}");
    }
    // The simulated nodes of Development took the version too.
    let dev = server.versions("Development", "kmod-agent").await;
    assert_eq!(dev, vec![Some("1.0.0".to_string()); 3], "{dev:?}");
    // The agents are listed, connected, with their modules.
    let (_, listed) = server.get("/api/v1/agents").await.unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed
        .iter()
        .all(|a| a["connected"] == true && a["modules"]["kmod-agent"]["active"]["version"] == "1.0.0"));
}

#[actix_web::test]
async fn a_failing_hook_or_an_untrusted_signature_leaves_the_previous_version() {
    let root = tempfile::tempdir().unwrap();
    let server = server(root.path()).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "Development").await;
    let agent = Agent::start(&server, &token, "dev-host-9", root.path());
    wait_joined(&server, "Development", "dev-host-9").await;
    publish(&server, &key, "kmod-undo", "1.0.0", logging_hooks(false)).await;
    publish(&server, &key, "kmod-undo", "2.0.0", logging_hooks(true)).await;
    let deploy = async |version: &str| {
        let (_, run) =
            server.post("/api/v1/deployments", &deployment("kmod-undo", version, "Development")).await.unwrap();
        let id = run["executionId"].as_str().unwrap().to_string();
        server.finished(&id, Duration::from_secs(120)).await
    };
    assert_eq!(deploy("1.0.0").await["status"], "Succeeded", "{}", agent.log());
    let failed = deploy("2.0.0").await;
    assert_eq!(failed["status"], "Failed", "{failed:#}");
    assert!(failed.to_string().contains("Invalid module format"), "the hook's output is in the run: {failed:#}");
    assert_eq!(agent.current("kmod-undo").as_deref(), Some("1.0.0"), "{}", agent.log());

    // Signed, but by a key the agent was never given: the server (not
    // strict in the test profile) stores it, the agent refuses it.
    let (stranger, _) = key_pair().await;
    let stranger = hotswap::crypto::rsa_sig::parse_private_key(&stranger).unwrap();
    publish(&server, &stranger, "kmod-undo", "3.0.0", json!({})).await;
    let refused = deploy("3.0.0").await;
    assert_eq!(refused["status"], "Failed", "{refused:#}");
    assert!(refused.to_string().contains("does not verify"), "{refused:#}");
    assert_eq!(agent.current("kmod-undo").as_deref(), Some("1.0.0"), "{}", agent.log());
    assert!(!agent.dir.join("data/modules/kmod-undo/3.0.0/artifact").exists(), "a refused artifact is never stored");
}
