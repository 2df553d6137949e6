//! Many nodes, short intervals (the test profile's heartbeats, a sampler
//! interval far shorter than one pass over the cluster): runs keep
//! succeeding, the sampler never overlaps itself, and memory stays flat.

use std::sync::Arc;
use std::time::Duration;

use hotswap_actors::domain::{Environment, RunStatus};
use hotswap_actors::settings::NodeCounts;
use hotswap_actors::store::{MemoryStore, SharedStore};

use crate::harness::{finished, operator, request, settings, start, TENANT};

const NODES: usize = 2_000;

/// Resident memory of this process, from /proc (Linux only; 0 elsewhere).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

#[actix::test]
async fn direct_runs_on_a_large_cluster_succeed_with_bounded_memory_and_no_overlapping_samples() {
    let mut settings = settings(1);
    settings.simulation.nodes = NodeCounts { development: NODES, qa: 1, staging: 1, production: 1 };
    settings.simulation.heartbeat_timeout = Duration::from_secs(1);
    settings.simulation.metrics_sample_interval = Duration::from_millis(2);
    settings.pipeline.node_request_timeout = Duration::from_secs(5);
    settings.sample_metrics = true;
    let store: SharedStore = Arc::new(MemoryStore::new());
    let core = start(store.clone(), settings).await;

    let mut after = Vec::new();
    for i in 1..=5 {
        let req = request("kmod-load", &format!("{i}.0.0"), Environment::Development, &[("simulateFailNodes", "none")]);
        let run = core.create_deployment(TENANT, req, &operator()).await.expect("run admitted");
        let run = finished(&store, run.execution_id, Duration::from_secs(60)).await;
        assert_eq!(run.status, RunStatus::Succeeded, "run {i}: {}", run.message);
        assert!(run.message.len() < 2_000, "run {i}'s message grows with the cluster: {} bytes", run.message.len());
        after.push(resident_bytes());
    }

    let stats = core.sampler_stats();
    assert!(stats.passes() > 0, "the sampler never completed a pass");
    assert_eq!(stats.max_in_flight(), 1, "sampler passes overlapped ({} ticks skipped)", stats.skipped());
    let (first, last) = (after[0], after[4]);
    assert!(last <= first * 2, "resident memory grew from {first} to {last} bytes over five runs: {after:?}");
}
