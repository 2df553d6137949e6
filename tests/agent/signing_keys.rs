//! The signing keys an agent trusts follow the tenant's while its session is
//! open: a key added after the agent enrolled verifies the next load, and a
//! revoked key is gone from the agent before its next load. A version the
//! agents would refuse (unsigned, or signed with a key no longer trusted) is
//! refused by the Security Scan, naming them, before any host is asked.

use base64::Engine;
use hotswap::crypto::rsa_sig;
use serde_json::{json, Value};
use std::time::Duration;

use crate::agents::{
    agents_only_development, enrolment_token, key_pair, logging_hooks, publish, run_to_end, trusted_key, wait_joined,
    Agent,
};
use crate::support::poll::eventually_ok;
use crate::support::requests::deployment;

fn keys_on_disk(agent: &Agent) -> usize {
    let state: Value = serde_json::from_slice(&std::fs::read(agent.dir.join("data/state.json")).unwrap()).unwrap();
    state["trustedKeys"].as_array().map_or(0, Vec::len)
}

/// The server lists the host as soon as it has welcomed it; the agent writes
/// the welcome's keys to disk a moment later, so the test waits for that.
async fn welcome_recorded(agent: &Agent) -> usize {
    let recorded = async || match keys_on_disk(agent) {
        0 => Err(format!("no trusted key on disk yet: {}", agent.log())),
        keys => Ok(keys),
    };
    eventually_ok(Duration::from_secs(10), "the agent records its welcome", recorded).await
}

#[actix_web::test]
async fn a_key_added_or_revoked_during_the_session_reaches_the_agent_before_its_next_load() {
    let root = tempfile::tempdir().unwrap();
    let server = agents_only_development(root.path()).await;
    let first_key = trusted_key(&server).await;
    let token = enrolment_token(&server, "Development").await;
    let agent = Agent::start(&server, &token, "dev-keys-1", root.path());
    wait_joined(&server, "Development", "dev-keys-1").await;
    assert_eq!(welcome_recorded(&agent).await, 1, "enrolled with the one key there was: {}", agent.log());

    // A second key, added while the agent is connected, signs two versions.
    let (private, public) = key_pair().await;
    let (status, added) =
        server.post("/api/v1/signing-keys", &json!({ "name": "added-later", "publicKeyPem": public })).await.unwrap();
    assert_eq!(status.as_u16(), 201, "{added}");
    let later = rsa_sig::parse_private_key(&private).unwrap();
    publish(&server, &later, "kmod-keys", "1.0.0", logging_hooks(false)).await;
    publish(&server, &later, "kmod-keys", "2.0.0", logging_hooks(false)).await;
    let deploy = async |version: &str| run_to_end(&server, "kmod-keys", version, "Development").await;
    let first = deploy("1.0.0").await;
    assert_eq!(first["status"], "Succeeded", "{first:#}\n{}", agent.log());
    assert_eq!(agent.current("kmod-keys").as_deref(), Some("1.0.0"), "{}", agent.log());
    assert_eq!(keys_on_disk(&agent), 2, "the added key is kept on disk: {}", agent.log());

    // Revoked: the Security Scan refuses what only that key signed, naming the agent.
    let id = added["id"].as_str().unwrap();
    let (status, revoked) = server.post(&format!("/api/v1/signing-keys/{id}/revoke"), &json!({})).await.unwrap();
    assert_eq!(status.as_u16(), 200, "{revoked}");
    let refused = deploy("2.0.0").await;
    assert_eq!(refused["status"], "Failed", "{refused:#}");
    let scan = refused["stages"][0]["message"].as_str().unwrap_or_default().to_string();
    assert_eq!(refused["stages"][0]["status"], "Failed", "{refused:#}");
    assert!(scan.contains("which was revoked"), "{scan}");
    assert!(scan.contains("agents check signatures against the tenant's trusted keys themselves"), "{scan}");
    assert!(scan.contains("(agent nodes on the path: dev-keys-1)"), "{scan}");
    // The next load tells the agent: the revoked key is gone from its disk.
    publish(&server, &first_key, "kmod-keys", "3.0.0", logging_hooks(false)).await;
    let next = deploy("3.0.0").await;
    assert_eq!(next["status"], "Succeeded", "{next:#}\n{}", agent.log());
    assert_eq!(agent.current("kmod-keys").as_deref(), Some("3.0.0"), "{}", agent.log());
    assert_eq!(keys_on_disk(&agent), 1, "the revoked key is gone from disk: {}", agent.log());

    // Unsigned: the test profile's registry lets it through with a warning;
    // the agent requires signatures (its default), so the scan refuses it.
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let unsigned = json!({
        "descriptor": { "name": "kmod-keys", "version": "4.0.0" },
        "artifact": b64(b"kernel module kmod-keys 4.0.0, unsigned"),
    });
    let (status, uploaded) = server.post("/api/v1/modules", &unsigned).await.unwrap();
    assert_eq!(status.as_u16(), 201, "{uploaded}");
    let (status, plan) =
        server.post("/api/v1/deployments?dryRun=true", &deployment("kmod-keys", "4.0.0", "Development")).await.unwrap();
    assert_eq!(status.as_u16(), 200, "{plan}");
    let signature =
        plan["securityScan"]["checks"].as_array().unwrap().iter().find(|c| c["name"] == "Signature").cloned();
    let signature = signature.unwrap_or_default();
    assert_eq!(signature["outcome"], "Failed", "{plan:#}");
    let why = "kmod-keys 4.0.0 is not signed, and agents that require signatures install signed modules only \
               (agent nodes on the path: dev-keys-1)";
    assert!(signature["message"].as_str().unwrap_or_default().starts_with(why), "{plan:#}");
    let refused = deploy("4.0.0").await;
    assert_eq!(refused["stages"][0]["status"], "Failed", "{refused:#}");
    assert!(refused["stages"][0]["message"].as_str().unwrap_or_default().contains(why), "{refused:#}");
    assert_eq!(agent.current("kmod-keys").as_deref(), Some("3.0.0"), "no host was asked: {}", agent.log());
}
