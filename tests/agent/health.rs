//! A host's health as runs judge it is the cluster view's: Validation fails
//! a host whose `health` hook passes by its exit status but reports an
//! error rate above the limit, and a host whose agent died says so, with
//! its last heartbeat, rather than that it never reported.

use std::time::Duration;

use serde_json::json;

use crate::agents::{
    agents_only_development, enrolment_token, logging_hooks, node_view, publish, run_to_end, trusted_key, wait_joined,
    Agent,
};
use crate::support::poll::eventually;

#[actix_web::test]
async fn validation_fails_a_host_whose_health_hook_reports_too_many_errors() {
    let root = tempfile::tempdir().unwrap();
    let server = agents_only_development(root.path()).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "Development").await;
    let agent = Agent::start(&server, &token, "dev-sick", root.path());
    wait_joined(&server, "Development", "dev-sick").await;
    let mut hooks = logging_hooks(false);
    // Exits 0: only the figures it prints say the host is unwell.
    hooks["health"] = json!(r#"echo '{"errorRate": 40, "latencyMs": 5}'"#);
    publish(&server, &key, "kmod-sick", "1.0.0", hooks).await;

    let run = run_to_end(&server, "kmod-sick", "1.0.0", "Development").await;
    assert_eq!(run["status"], "Failed", "{run:#}\n{}", agent.log());
    let validation = run["stages"].as_array().unwrap().iter().find(|s| s["name"] == "Validation").cloned().unwrap();
    assert_eq!(validation["status"], "Failed", "{run:#}");
    let message = validation["message"].as_str().unwrap_or_default();
    assert!(message.contains("dev-sick unhealthy: error rate 40.00% above 5%"), "{message}");
    let view = node_view(&server, "Development", "dev-sick").await;
    assert_eq!(
        view["healthMessages"],
        json!(["error rate 40.00% above 5%"]),
        "the cluster view says the same: {view:#}"
    );
}

#[actix_web::test]
async fn a_host_whose_agent_died_is_not_connected_since_its_last_heartbeat() {
    let root = tempfile::tempdir().unwrap();
    let server = agents_only_development(root.path()).await;
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
