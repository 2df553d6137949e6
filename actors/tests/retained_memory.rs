//! What a finished run leaves behind in the process: the live heap bytes
//! (counted by the allocator, so fragmentation and the allocator's caches do
//! not blur them, as they blur resident memory) after a few Direct runs,
//! beyond what was live after the first ones. The memory store keeps every
//! finished run in its window, with the module state each node had before
//! the run (for a manual rollback): runs to the same nodes share one list of
//! them, so that must cost a few bytes per node, not dozens or hundreds, or
//! ten runs to 100,000 nodes add tens or hundreds of MiB.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure with its message.

#[path = "../../tests/support/poll.rs"]
#[allow(dead_code)]
mod poll;

use std::sync::Arc;
use std::time::Duration;

use cap::Cap;
use hotswap_actors::domain::{AuditActor, DeploymentRequest, Environment, RunStatus, DEFAULT_TENANT};
use hotswap_actors::orchestrator::CoreSettings;
use hotswap_actors::settings::{NodeCounts, PipelineSettings, SimulationSettings};
use hotswap_actors::store::{MemoryStore, SharedStore};
use hotswap_actors::Orchestrator;
use uuid::Uuid;

#[global_allocator]
static HEAP: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

const NODES: usize = 2_000;
/// Runs measured after the warm-up runs.
const MEASURED_RUNS: usize = 5;
/// Live heap a finished run may leave per node it changed: its record of
/// the node's earlier state, compactly kept, and its share of the run's
/// events and audit entries. About 10 with the nodes' roster shared between
/// runs, 58 with a copy of it in each run, 328 without packing.
const BYTES_PER_NODE_PER_RUN: i64 = 24;

fn settings() -> CoreSettings {
    let pipeline = PipelineSettings {
        rolling_health_check_delay: Duration::ZERO,
        canary_bake_time: Duration::ZERO,
        node_request_timeout: Duration::from_secs(30),
        ..PipelineSettings::default()
    };
    let simulation = SimulationSettings {
        nodes: NodeCounts { development: NODES, qa: 0, staging: 0, production: 0 },
        heartbeat_interval: Duration::from_secs(30),
        heartbeat_timeout: Duration::from_secs(120),
        ..SimulationSettings::default()
    };
    CoreSettings { pipeline, simulation, sample_metrics: false, ..Default::default() }
}

/// One Direct run to every development node, to its end; answers its id.
async fn deploy(core: &Orchestrator, store: &SharedStore, version: &str) -> Uuid {
    let request = DeploymentRequest {
        module_name: "kmod-retained".into(),
        version: version.into(),
        target_environment: Environment::Development,
        requester_email: "ops@example.com".into(),
        description: None,
        require_approval: false,
        metadata: Default::default(),
        strategy: None,
        canary_steps: None,
    };
    let run = core.create_deployment(DEFAULT_TENANT, request, &AuditActor::system()).await.expect("run admitted");
    let id = run.execution_id;
    poll::eventually(Duration::from_secs(60), "the run ends and its coordinator stops", async || {
        let stored = store.get_run(DEFAULT_TENANT, id).await.unwrap().unwrap();
        !stored.holds_module() && core.active_runs() == 0
    })
    .await;
    let stored = store.get_run(DEFAULT_TENANT, id).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Succeeded, "{}", stored.message);
    id
}

#[actix::test]
async fn a_finished_run_keeps_a_few_bytes_per_node_it_changed() {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let core = Orchestrator::start(store.clone(), settings()).await.expect("core starts");
    // Warm-up: the first runs give every node and its stored record the module.
    for i in 0..2 {
        deploy(&core, &store, &format!("0.0.{i}")).await;
    }
    // The live heap after each measured run. A run's last report hands the
    // live-update bus the run as saved, every change included (about 320
    // bytes per node here), and that copy lives until the bus's actor has
    // handled it: a round trip to the bus first, so that the snapshot is not
    // taken in that moment. The median increment is the figure held to the
    // bound: what a run keeps shows in every increment, a container of the
    // process growing once to a new capacity in one.
    let wait_for_the_bus = async || core.bus().send(hotswap_actors::events::Unsubscribe(u64::MAX)).await.unwrap();
    wait_for_the_bus().await;
    let mut heap = vec![HEAP.allocated() as i64];
    let mut ids = Vec::new();
    for i in 0..MEASURED_RUNS {
        ids.push(deploy(&core, &store, &format!("1.0.{i}")).await);
        wait_for_the_bus().await;
        heap.push(HEAP.allocated() as i64);
    }
    let mut per_run: Vec<i64> = heap.windows(2).map(|w| w[1] - w[0]).collect();
    per_run.sort_unstable();
    let per_node_per_run = per_run[MEASURED_RUNS / 2] / NODES as i64;
    eprintln!(
        "live heap after each of {MEASURED_RUNS} runs to {NODES} nodes: {heap:?} bytes; \
         median increment {per_node_per_run} bytes per node per run"
    );
    assert!(
        per_node_per_run <= BYTES_PER_NODE_PER_RUN,
        "each finished run keeps {per_node_per_run} bytes per node it changed (at most {BYTES_PER_NODE_PER_RUN}): \
         live heap after each run {heap:?} bytes, {NODES} nodes"
    );
    // Kept compactly, but all there: a manual rollback needs every change.
    let cluster = core.cluster(DEFAULT_TENANT, Environment::Development).await;
    let hostnames: std::collections::HashMap<Uuid, String> =
        cluster.nodes.iter().map(|n| (n.node_id, n.hostname.clone())).collect();
    assert_eq!(hostnames.len(), NODES);
    for (i, id) in ids.iter().enumerate() {
        let run = store.get_run(DEFAULT_TENANT, *id).await.unwrap().unwrap();
        assert_eq!(run.changes.len(), NODES, "run {i} lost changes");
        let before = if i == 0 { "0.0.1".to_string() } else { format!("1.0.{}", i - 1) };
        assert!(
            run.changes.iter().all(|c| c.before.active_version() == Some(before.as_str())),
            "run {i}'s changes do not all record {before} as the version before it"
        );
        assert!(
            run.changes
                .iter()
                .all(|c| hostnames.get(&c.node_id) == Some(&c.hostname) && c.environment == Environment::Development),
            "run {i}: a change lost its node's hostname or environment"
        );
    }
}
