//! A host that cannot be put back: its `deactivate` hook keeps failing, so
//! the restore after a failed stage fails on every attempt. The run ends
//! Failed and names the host as left on the new version (quarantined), never
//! as a clean rollback, and the host still serves that version on disk.

use std::time::Duration;

use serde_json::json;

use crate::agents::{enrolment_token, publish, trusted_key, wait_joined, Agent};
use crate::process::{free_port, Server};
use crate::support::requests::deployment;

const M: &str = "kmod-stuck-in";

#[actix_web::test]
async fn a_host_whose_restore_keeps_failing_is_named_on_the_failed_run() {
    let root = tempfile::tempdir().unwrap();
    let vars = vec![
        ("HOTSWAP__PIPELINE__RESTORE_ATTEMPTS", "3".to_string()),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.path().join("artifacts").display().to_string()),
    ];
    let server = Server::start(free_port(), &vars, root.path().join("server.log")).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "Development").await;
    let agent = Agent::start(&server, &token, "dev-stuck", root.path());
    wait_joined(&server, "Development", "dev-stuck").await;
    let hooks = json!({
        "activate": r#"echo "activate $HOTSWAP_VERSION" >> "$HOOK_LOG""#,
        "deactivate": r#"echo "deactivate $HOTSWAP_VERSION" >> "$HOOK_LOG"; echo "rmmod: ERROR: Module is in use" >&2; exit 1"#,
        "health": r#"echo '{"errorRate": 0}'"#,
    });
    publish(&server, &key, M, "1.0.0", hooks).await;

    // A simulated node of the same environment fails its load, so the stage
    // restores every node it changed: the agent's restore is a deactivation.
    let mut request = deployment(M, "1.0.0", "Development");
    request["metadata"] = json!({ "simulateFailNodes": "development-node-02" });
    let (status, run) = server.post("/api/v1/deployments", &request).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    let id = run["executionId"].as_str().unwrap().to_string();
    let run = server.finished(&id, Duration::from_secs(60)).await;

    assert_eq!(run["status"], "Failed", "{run:#}\n{}", agent.log());
    assert_eq!(run["nodesLeftOnNewVersion"], json!(["dev-stuck"]), "{run:#}");
    assert_eq!(run["nodesLeftOnNewVersionCount"], 1, "{run:#}");
    let message = run["message"].as_str().unwrap_or_default();
    // The host is named once, with the hook's own words.
    assert!(message.ends_with("Could not restore: dev-stuck: deactivate hook of kmod-stuck-in 1.0.0 exited with 1: rmmod: ERROR: Module is in use"), "{message}");
    let (_, events) = server.get(&format!("/api/v1/deployments/{id}/events")).await.unwrap();
    let quarantined = events.as_array().unwrap().iter().find(|e| e["kind"] == "NodesQuarantined").cloned();
    let quarantined = quarantined.unwrap_or_else(|| panic!("a NodesQuarantined event: {events:#}"));
    assert!(
        quarantined["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("1 node could not be restored after 3 attempts"),
        "{quarantined}"
    );

    // The host still serves 1.0.0: every deactivation was refused.
    assert_eq!(agent.current(M).as_deref(), Some("1.0.0"));
    let deactivations = agent.hook_log().lines().filter(|l| *l == "deactivate 1.0.0").count();
    assert_eq!(deactivations, 3, "{}", agent.hook_log());
}
