//! A host whose agent comes back while its run is still ending: the run gave
//! up restoring it (its agent died during the restore), and the host's
//! connect-time comparison left the module to the run, which was still in
//! flight (restoring another host). Once the run ends, the restore it left
//! pending is applied: before, nothing did, and the host stayed on the
//! failed version while the cluster view showed it healthy and not drifted
//! (found by a walkthrough).

use std::time::Duration;

use serde_json::json;

use crate::agents::{logging_hooks, publish, run_to_end, server_with_agents, Agent};
use crate::support::poll::{eventually, eventually_ok};
use crate::support::requests::deployment;

const M: &str = "kmod-pending";

/// 2.0.0's hooks: dev-b cannot activate it (the run fails and restores the
/// others); dev-a's deactivation of it, which its restore runs, hangs the
/// first time (its agent is killed during it); dev-c's takes a while, so that the run is
/// still restoring when dev-a's agent comes back.
fn hooks_of_2() -> serde_json::Value {
    let mut hooks = logging_hooks(false);
    hooks["activate"] = json!(
        r#"if [ "$HOTSWAP_NODE" = dev-b ]; then exit 1; fi; echo "activate $HOTSWAP_MODULE $HOTSWAP_VERSION $HOTSWAP_NODE" >> "$HOOK_LOG""#
    );
    hooks["deactivate"] = json!(
        r#"echo "deactivate-start $HOTSWAP_VERSION $HOTSWAP_NODE" >> "$HOOK_LOG"; if [ "$HOTSWAP_NODE" = dev-a ] && [ ! -e "$HOOK_LOG.hung" ]; then touch "$HOOK_LOG.hung"; sleep 60; fi; if [ "$HOTSWAP_NODE" = dev-c ]; then sleep 6; fi; echo "deactivate $HOTSWAP_MODULE $HOTSWAP_VERSION $HOTSWAP_NODE" >> "$HOOK_LOG""#
    );
    hooks
}

#[actix_web::test]
async fn a_restore_left_pending_on_a_host_that_came_back_during_the_run_is_applied_when_the_run_ends() {
    let root = tempfile::tempdir().unwrap();
    let vars = vec![
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "0".to_string()),
        // dev-c's restore takes 6 s: within a step's time.
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "20s".to_string()),
        ("HOTSWAP__AGENT__COMMAND_TIMEOUT", "30s".to_string()),
        // One try: the run gives up on dev-a when its agent dies, rather than
        // retrying until dev-a is back (what the retries are for, and not the
        // case here).
        ("HOTSWAP__PIPELINE__RESTORE_ATTEMPTS", "1".to_string()),
    ];
    let hosts = ["dev-a", "dev-b", "dev-c"];
    let (server, key, token, mut agents) = server_with_agents(root.path(), vars, "Development", &hosts).await;
    publish(&server, &key, M, "1.0.0", logging_hooks(false)).await;
    publish(&server, &key, M, "2.0.0", hooks_of_2()).await;
    let first = run_to_end(&server, M, "1.0.0", "Development").await;
    assert_eq!(first["status"], "Succeeded", "{first:#}");

    let (_, run) = server.post("/api/v1/deployments", &deployment(M, "2.0.0", "Development")).await.unwrap();
    let id = run["executionId"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(30), "dev-a's restore deactivates 2.0.0", async || {
        agents[0].hook_log().contains("deactivate-start 2.0.0 dev-a")
    })
    .await;
    agents[0].stop();
    let dev_a = Agent::start(&server, &token, "dev-a", root.path());
    let ended = server.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(ended["status"], "Failed", "{ended:#}");
    assert_eq!(
        ended["nodesLeftOnNewVersion"],
        json!(["dev-a"]),
        "the run must have given up restoring dev-a (the case under test), not restored it: {ended:#}\n{}",
        server.log_text()
    );
    assert_eq!(agents[2].current(M).as_deref(), Some("1.0.0"), "{}", agents[2].hook_log());
    eventually_ok(Duration::from_secs(20), "dev-a is restored to 1.0.0 once the run has ended", async || {
        match dev_a.current(M) {
            Some(v) if v == "1.0.0" => Ok(()),
            other => Err(format!(
                "{other:?}; hooks:\n{}\nagent:\n{}\nserver:\n{}",
                dev_a.hook_log(),
                dev_a.log(),
                server.log_text()
            )),
        }
    })
    .await;
}
