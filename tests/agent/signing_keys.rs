//! The signing keys an agent trusts follow the tenant's while its session is
//! open: a key added after the agent enrolled verifies the next load, and a
//! revoked key stops verifying before the next load is checked.

use std::time::Duration;

use hotswap::crypto::rsa_sig;
use serde_json::{json, Value};

use crate::agents::{enrolment_token, key_pair, logging_hooks, publish, trusted_key, wait_joined, Agent};
use crate::process::{free_port, Server};
use crate::support::requests::deployment;

fn keys_on_disk(agent: &Agent) -> usize {
    let state: Value = serde_json::from_slice(&std::fs::read(agent.dir.join("data/state.json")).unwrap()).unwrap();
    state["trustedKeys"].as_array().map_or(0, Vec::len)
}

#[actix_web::test]
async fn a_key_added_or_revoked_during_the_session_reaches_the_agent_before_its_next_load() {
    let root = tempfile::tempdir().unwrap();
    let vars = [
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.path().join("artifacts").display().to_string()),
    ];
    let server = Server::start(free_port(), &vars, root.path().join("server.log")).await;
    trusted_key(&server).await;
    let token = enrolment_token(&server, "Development").await;
    let agent = Agent::start(&server, &token, "dev-keys-1", root.path());
    wait_joined(&server, "Development", "dev-keys-1").await;
    assert_eq!(keys_on_disk(&agent), 1, "enrolled with the one key there was: {}", agent.log());

    // A second key, added while the agent is connected, signs two versions.
    let (private, public) = key_pair().await;
    let (status, added) =
        server.post("/api/v1/signing-keys", &json!({ "name": "added-later", "publicKeyPem": public })).await.unwrap();
    assert_eq!(status.as_u16(), 201, "{added}");
    let later = rsa_sig::parse_private_key(&private).unwrap();
    publish(&server, &later, "kmod-keys", "1.0.0", logging_hooks(false)).await;
    publish(&server, &later, "kmod-keys", "2.0.0", logging_hooks(false)).await;
    let deploy = async |version: &str| {
        let (_, run) =
            server.post("/api/v1/deployments", &deployment("kmod-keys", version, "Development")).await.unwrap();
        let id = run["executionId"].as_str().unwrap().to_string();
        server.finished(&id, Duration::from_secs(120)).await
    };
    let first = deploy("1.0.0").await;
    assert_eq!(first["status"], "Succeeded", "{first:#}\n{}", agent.log());
    assert_eq!(agent.current("kmod-keys").as_deref(), Some("1.0.0"), "{}", agent.log());
    assert_eq!(keys_on_disk(&agent), 2, "the added key is kept on disk: {}", agent.log());

    // Revoked: the agent is told before the next load, and refuses it.
    let id = added["id"].as_str().unwrap();
    let (status, revoked) = server.post(&format!("/api/v1/signing-keys/{id}/revoke"), &json!({})).await.unwrap();
    assert_eq!(status.as_u16(), 200, "{revoked}");
    let refused = deploy("2.0.0").await;
    assert_eq!(refused["status"], "Failed", "{refused:#}");
    assert!(refused.to_string().contains("does not verify against any key this agent trusts"), "{refused:#}");
    assert_eq!(agent.current("kmod-keys").as_deref(), Some("1.0.0"), "{}", agent.log());
    assert_eq!(keys_on_disk(&agent), 1, "the revoked key is gone from disk: {}", agent.log());
}
