//! Old versions leave the host's disk: with `keep_versions = 0` an agent
//! keeps only the serving and previous versions of a module (and a standby),
//! and a version it deleted comes back, downloaded again, when a run needs it.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::agents::{
    agents_only_development, enrolment_token, logging_hooks, publish, run_to_end, trusted_key, wait_joined, Agent,
};
use crate::support::poll::eventually;
use crate::support::requests::deployment;

fn on_disk(agent: &Agent, module: &str) -> BTreeSet<String> {
    let dir = agent.dir.join("data/modules").join(module);
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn versions(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|v| v.to_string()).collect()
}

#[actix_web::test]
async fn an_agent_deletes_the_versions_it_no_longer_needs() {
    let root = tempfile::tempdir().unwrap();
    let server = agents_only_development(root.path()).await;
    let key = trusted_key(&server).await;
    let token = enrolment_token(&server, "Development").await;
    let agent = Agent::start_with_settings(&server, &token, "dev-prune", root.path(), "keep_versions = 0");
    wait_joined(&server, "Development", "dev-prune").await;
    for version in ["1.0.0", "2.0.0", "3.0.0"] {
        publish(&server, &key, "kmod-prune", version, logging_hooks(false)).await;
        let run = run_to_end(&server, "kmod-prune", version, "Development").await;
        assert_eq!(run["status"], "Succeeded", "{run:#}\n{}", agent.log());
    }
    // 3.0.0 serves, 2.0.0 is the previous version (a rollback's target): 1.0.0 goes.
    eventually(Duration::from_secs(30), "1.0.0 is deleted", async || {
        on_disk(&agent, "kmod-prune") == versions(&["2.0.0", "3.0.0"])
    })
    .await;
    assert!(agent.log().contains("removed a version this host no longer needs from disk"), "{}", agent.log());

    // Needed again: downloaded and checked as any version not on disk.
    let mut request = deployment("kmod-prune", "1.0.0", "Development");
    request["allowDowngrade"] = true.into();
    let (_, run) = server.post("/api/v1/deployments", &request).await.unwrap();
    let again = server.finished(run["executionId"].as_str().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(again["status"], "Succeeded", "{again:#}\n{}", agent.log());
    assert_eq!(agent.current("kmod-prune").as_deref(), Some("1.0.0"));
    eventually(Duration::from_secs(30), "2.0.0 is deleted", async || {
        on_disk(&agent, "kmod-prune") == versions(&["1.0.0", "3.0.0"])
    })
    .await;
}
