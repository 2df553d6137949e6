//! A version already on the host is checked again before it serves again: a
//! rollback (restore) and a blue-green switch to a version whose artifact was
//! changed on disk since it was staged fetch it again, and the `activate`
//! hook sees the registry's bytes (the logging hook notes the artifact's size).

use std::time::Duration;

use serde_json::json;

use crate::agents::{enrolment_token, logging_hooks, publish_bytes, run_to_end, trusted_key, wait_joined, Agent};
use crate::process::{free_port, Server};
use crate::support::poll::eventually_ok;
use crate::support::requests::deployment_with;

const M: &str = "kmod-staged";
const ONE: &[u8] = b"kernel module kmod-staged 1.0.0, as registered";
const TWO: &[u8] = b"kernel module kmod-staged 2.0.0, as registered";

/// Appends to the host's staged copy of `version`, as an intruder would.
fn tamper(agent: &Agent, version: &str) {
    use std::io::Write;
    let path = agent.dir.join("data/modules").join(M).join(version).join("artifact");
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"EVIL\n").unwrap();
}

fn staged(agent: &Agent, version: &str) -> Vec<u8> {
    std::fs::read(agent.dir.join("data/modules").join(M).join(version).join("artifact")).unwrap()
}

/// The size the last activation of `version` saw, from the hook log.
fn activated_size(agent: &Agent, version: &str) -> Option<usize> {
    let prefix = format!("activate {M} {version} {} ", agent.hostname);
    agent.hook_log().lines().rev().find_map(|l| l.strip_prefix(&prefix).and_then(|n| n.trim().parse().ok()))
}

#[actix_web::test]
async fn a_staged_artifact_changed_on_disk_is_fetched_again_before_it_serves_again() {
    let root = tempfile::tempdir().unwrap();
    let vars = [
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "1".to_string()),
        ("HOTSWAP__SIMULATION__NODES__QA", "0".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.path().join("artifacts").display().to_string()),
    ];
    let server = Server::start(free_port(), &vars, root.path().join("server.log")).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "QA").await;
    let agent = Agent::start(&server, &token, "qa-staged", root.path());
    wait_joined(&server, "QA", "qa-staged").await;
    publish_bytes(&server, &key, M, "1.0.0", logging_hooks(false), ONE.to_vec()).await;
    publish_bytes(&server, &key, M, "2.0.0", logging_hooks(false), TWO.to_vec()).await;
    let first = run_to_end(&server, M, "1.0.0", "QA").await;
    assert_eq!(first["status"], "Succeeded", "{first:#}\n{}", agent.log());
    let second = run_to_end(&server, M, "2.0.0", "QA").await;
    assert_eq!(second["status"], "Succeeded", "{second:#}");

    // A rollback restores 1.0.0, whose copy on disk was changed meanwhile.
    tamper(&agent, "1.0.0");
    let run = second["executionId"].as_str().unwrap().to_string();
    let (status, body) =
        server.post(&format!("/api/v1/deployments/{run}/rollback"), &json!({ "reason": "tampered" })).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{body}");
    eventually_ok(Duration::from_secs(60), "the rollback ends", async || {
        let (_, run) = server.get(&format!("/api/v1/deployments/{run}")).await?;
        (run["status"] == "RolledBack").then_some(()).ok_or(format!("{run}"))
    })
    .await;
    assert_eq!(agent.current(M).as_deref(), Some("1.0.0"), "{}", agent.log());
    assert_eq!(staged(&agent, "1.0.0"), ONE, "fetched again");
    assert_eq!(activated_size(&agent, "1.0.0"), Some(ONE.len()), "{}", agent.hook_log());
    assert!(agent.log().contains("fetching it again"), "{}", agent.log());

    // Blue-green: 2.0.0 serves with 1.0.0 on standby; 1.0.0 is changed on
    // disk, and the next blue-green run of 1.0.0 (its standby already there)
    // switches to the registry's bytes.
    let blue_green = json!({ "strategy": "BlueGreen" });
    let (status, run) =
        server.post("/api/v1/deployments", &deployment_with(M, "2.0.0", "QA", blue_green)).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    let done = server.finished(run["executionId"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}", agent.log());
    assert_eq!(agent.current(M).as_deref(), Some("2.0.0"));
    tamper(&agent, "1.0.0");
    let back = json!({ "strategy": "BlueGreen", "allowDowngrade": true });
    let (status, run) = server.post("/api/v1/deployments", &deployment_with(M, "1.0.0", "QA", back)).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    let done = server.finished(run["executionId"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}\n{}", agent.log());
    assert_eq!(agent.current(M).as_deref(), Some("1.0.0"), "{}", agent.log());
    assert_eq!(staged(&agent, "1.0.0"), ONE, "fetched again");
    assert_eq!(activated_size(&agent, "1.0.0"), Some(ONE.len()), "{}", agent.hook_log());
}
