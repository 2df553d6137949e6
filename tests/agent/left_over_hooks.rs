//! A hook runs in a process group of its own, which outlives an agent
//! SIGKILLed during it (reparented to init). The restarted agent ends that
//! group before it does anything else: the killed agent's `activate` of the
//! new version never finishes after the host was restored to the old one.

use std::time::Duration;

use serde_json::json;

use crate::agents::{
    agents_only_development, enrolment_token, logging_hooks, publish, run_to_end, trusted_key, wait_joined, Agent,
};
use crate::support::poll::eventually;

/// Whether `pid` runs (a zombie waiting for its new parent to reap it does not).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

#[actix_web::test]
async fn a_hook_left_running_by_a_killed_agent_never_finishes_after_the_restore() {
    let root = tempfile::tempdir().unwrap();
    let server = agents_only_development(root.path()).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "Development").await;
    let mut agent = Agent::start(&server, &token, "dev-left", root.path());
    wait_joined(&server, "Development", "dev-left").await;

    // 2.0.0's activation notes its shell's pid, then takes 15 s before its last line.
    let mut hooks = logging_hooks(false);
    let logging = hooks["activate"].as_str().unwrap().to_string();
    hooks["activate"] = json!(format!(
        r#"if [ "$HOTSWAP_VERSION" = "2.0.0" ]; then echo "activating 2.0.0" >> "$HOOK_LOG"; echo $$ > "$HOOK_LOG.pid"; sleep 15; echo "late activation 2.0.0" >> "$HOOK_LOG"; fi; {logging}"#
    ));
    publish(&server, &key, "kmod-left", "1.0.0", hooks.clone()).await;
    publish(&server, &key, "kmod-left", "2.0.0", hooks).await;
    let first = run_to_end(&server, "kmod-left", "1.0.0", "Development").await;
    assert_eq!(first["status"], "Succeeded", "{first:#}");

    let (_, run) = server
        .post("/api/v1/deployments", &crate::support::requests::deployment("kmod-left", "2.0.0", "Development"))
        .await
        .unwrap();
    let run = run["executionId"].as_str().unwrap().to_string();
    let pid_file = agent.dir.join("hooks.log.pid");
    eventually(Duration::from_secs(60), "dev-left is activating 2.0.0", async || pid_file.exists()).await;
    let hook = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
    agent.stop(); // SIGKILL, mid-hook
    assert!(alive(&hook), "the hook outlives its agent (its own process group)");

    let agent = Agent::start(&server, "hse_not-needed-any-more", "dev-left", root.path());
    let failed = server.finished(&run, Duration::from_secs(120)).await;
    assert_eq!(failed["status"], "Failed", "{failed:#}");
    eventually(Duration::from_secs(60), "dev-left is restored to 1.0.0", async || {
        let log = agent.hook_log();
        let after_kill = log.split("activating 2.0.0").nth(1).unwrap_or_default().to_string();
        agent.current("kmod-left").as_deref() == Some("1.0.0") && after_kill.contains("activate kmod-left 1.0.0")
    })
    .await;
    // Waited for past the hook's own 15 s, had it been left to run.
    eventually(Duration::from_secs(60), "the killed agent's hook is gone", async || !alive(&hook)).await;
    let log = agent.hook_log();
    assert!(!log.contains("late activation 2.0.0"), "the old activation finished after the restore:\n{log}");
    assert!(agent.log().contains("killed a hook still running"), "{}", agent.log());
    assert_eq!(agent.current("kmod-left").as_deref(), Some("1.0.0"));
}
