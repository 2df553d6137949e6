//! Many nodes, short intervals (the test profile's heartbeats, a sampler
//! interval far shorter than one pass over the cluster): runs keep
//! succeeding, the sampler never overlaps itself, and memory stays flat.

use std::sync::Arc;
use std::time::Duration;

use hotswap_actors::domain::{Environment, RunStatus};
use hotswap_actors::settings::NodeCounts;
use hotswap_actors::store::{FaultHook, MemoryStore, SharedStore, StoreCall, StoreResult};

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

#[actix::test]
async fn runs_beyond_the_process_limit_are_refused_with_a_retry_time() {
    let mut settings = settings(2);
    settings.pipeline.max_active_runs = 2;
    let store: SharedStore = Arc::new(MemoryStore::new());
    let core = start(store.clone(), settings).await;
    let slow = [("simulateNodeDelayMs", "1000")];
    let ops = operator();
    let mut running = Vec::new();
    for module in ["kmod-q1", "kmod-q2"] {
        let run = core.create_deployment(TENANT, request(module, "1.0.0", Environment::Development, &slow), &ops);
        running.push(run.await.expect("within the limit").execution_id);
    }
    crate::poll::eventually(Duration::from_secs(5), "both coordinators are live", async || core.active_runs() == 2)
        .await;
    let refused =
        core.create_deployment(TENANT, request("kmod-q3", "1.0.0", Environment::Development, &[]), &operator()).await;
    match refused {
        Err(hotswap_actors::CoreError::Overloaded { retry_after_secs, .. }) => assert!(retry_after_secs > 0),
        other => panic!("expected Overloaded, got {other:?}"),
    }
    for id in running {
        assert_eq!(finished(&store, id, Duration::from_secs(20)).await.status, RunStatus::Succeeded);
    }
    // Room again once they have finished.
    let run = core.create_deployment(TENANT, request("kmod-q3", "1.0.0", Environment::Development, &[]), &ops);
    run.await.expect("admitted once the others finished");
}

/// Makes every recorded metrics sample take the given time (a sampling pass over a
/// cluster far larger than the interval allows).
struct SlowSamples(Duration);

impl FaultHook for SlowSamples {
    fn before(&self, _call: StoreCall<'_>) -> StoreResult<()> {
        Ok(())
    }

    fn hang(&self, call: &StoreCall<'_>) -> Option<Duration> {
        matches!(call, StoreCall::RecordSample(_)).then_some(self.0)
    }
}

#[actix::test]
async fn a_slow_sampling_pass_is_followed_by_a_rest_not_by_the_next_pass() {
    // Four clusters, each sample 50 ms: a pass takes at least 200 ms against
    // an interval of 5 ms. Back to back, 1.6 s would hold about eight passes;
    // spaced so that sampling takes at most a quarter of the time, at most two
    // (or three if the window starts just before a pass).
    let mut settings = settings(1);
    settings.simulation.metrics_sample_interval = Duration::from_millis(5);
    settings.sample_metrics = true;
    let store: SharedStore = Arc::new(MemoryStore::with_fault_hook(Arc::new(SlowSamples(Duration::from_millis(50)))));
    let core = start(store, settings).await;
    let stats = core.sampler_stats();
    // The observation window starts once the first pass has ended.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while stats.passes() == 0 && std::time::Instant::now() < until {
        actix::clock::sleep(Duration::from_millis(5)).await;
    }
    let first = stats.passes();
    assert!(first > 0, "the sampler never completed a pass");
    actix::clock::sleep(Duration::from_millis(1_600)).await;
    let passes = stats.passes() - first;
    assert!(passes <= 3, "{passes} sampling passes in 1.6 s: a slow pass is followed by the next at once");
    assert_eq!(stats.max_in_flight(), 1, "sampler passes overlapped");
}

/// Counts the store's reads of nodes' module slots.
#[derive(Default)]
struct CountSlotReads(std::sync::atomic::AtomicUsize);

impl FaultHook for CountSlotReads {
    fn before(&self, call: StoreCall<'_>) -> StoreResult<()> {
        if let StoreCall::ModuleSlots { .. } = call {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A run records each node's slots before changing it. For a large wave
/// every actor thread reads its own nodes' slots; a wave of a few nodes
/// spread over both threads is read in one call, not one per thread (each
/// read is a database round trip on PostgreSQL).
#[actix::test]
async fn a_small_wave_reads_its_nodes_slots_in_one_call() {
    let mut settings = settings(3);
    settings.supervision.actor_threads = 2;
    let reads = Arc::new(CountSlotReads::default());
    let store: SharedStore = Arc::new(MemoryStore::with_fault_hook(reads.clone()));
    let core = start(store.clone(), settings).await;
    let req = request("kmod-small-wave", "1.0.0", Environment::Development, &[("simulateFailNodes", "none")]);
    let run = core.create_deployment(TENANT, req, &operator()).await.expect("run admitted");
    let run = finished(&store, run.execution_id, Duration::from_secs(30)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.message);
    assert_eq!(run.changes.len(), 3, "every node's slots recorded: {:?}", run.changes);
    assert_eq!(reads.0.load(std::sync::atomic::Ordering::SeqCst), 1, "slot reads for one wave of three nodes");
}

/// Counts reads of a run from the store until the run's first save.
#[derive(Default)]
struct CountReadsBeforeFirstSave {
    saved: std::sync::atomic::AtomicBool,
    reads: std::sync::atomic::AtomicUsize,
}

impl FaultHook for CountReadsBeforeFirstSave {
    fn before(&self, call: StoreCall<'_>) -> StoreResult<()> {
        use std::sync::atomic::Ordering::SeqCst;
        match call {
            StoreCall::SaveRun(_) => self.saved.store(true, SeqCst),
            StoreCall::GetRun { .. } if !self.saved.load(SeqCst) => {
                self.reads.fetch_add(1, SeqCst);
            }
            _ => {}
        }
        Ok(())
    }
}

/// The coordinator of a run just created starts from the record that was
/// admitted, which is what the store holds: reading it back would cost a
/// database round trip per run created on PostgreSQL.
#[actix::test]
async fn a_new_runs_coordinator_starts_without_reading_the_run_back() {
    let counts = Arc::new(CountReadsBeforeFirstSave::default());
    let store: SharedStore = Arc::new(MemoryStore::with_fault_hook(counts.clone()));
    let core = start(store.clone(), settings(2)).await;
    let req = request("kmod-no-read-back", "1.0.0", Environment::Development, &[("simulateFailNodes", "none")]);
    let run = core.create_deployment(TENANT, req, &operator()).await.expect("run admitted");
    // Only once the coordinator has saved does this test read the store itself.
    crate::poll::eventually(Duration::from_secs(10), "the coordinator saves the run", async || {
        counts.saved.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    let run = finished(&store, run.execution_id, Duration::from_secs(30)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.message);
    assert_eq!(counts.reads.load(std::sync::atomic::Ordering::SeqCst), 0, "reads of the run before its first save");
}

/// Records the threads the memory release ran on, and whether a run was
/// live at the time.
struct RecordReleases {
    core: parking_lot::Mutex<Option<hotswap_actors::Orchestrator>>,
    threads: parking_lot::Mutex<Vec<(std::thread::ThreadId, usize)>>,
}

impl hotswap_actors::hooks::MemoryRelease for RecordReleases {
    fn release_this_thread(&self) {
        let live = self.core.lock().as_ref().map_or(usize::MAX, |core| core.active_runs());
        self.threads.lock().push((std::thread::current().id(), live));
    }
}

/// Once the last run has ended, the allocator's freed pages are given back
/// on every actor thread and on the thread the core started on (an idle
/// actor thread otherwise keeps them resident), and never while a run is in
/// flight.
#[actix::test]
async fn freed_memory_is_released_on_every_actor_thread_once_the_last_run_ends() {
    let mut settings = settings(4);
    settings.supervision.actor_threads = 2;
    let record = Arc::new(RecordReleases { core: Default::default(), threads: Default::default() });
    let hooks = hotswap_actors::hooks::CoreHooks { memory_release: record.clone(), ..Default::default() };
    let store: SharedStore = Arc::new(MemoryStore::new());
    let core = hotswap_actors::Orchestrator::start_with(store.clone(), settings, hooks).await.expect("core starts");
    *record.core.lock() = Some(core.clone());
    assert_eq!(core.memory_releases(), 0, "nothing to release before any run");

    for (i, version) in ["1.0.0", "1.1.0"].into_iter().enumerate() {
        let req = request("kmod-release", version, Environment::Development, &[("simulateFailNodes", "none")]);
        let run = core.create_deployment(TENANT, req, &operator()).await.expect("run admitted");
        let run = finished(&store, run.execution_id, Duration::from_secs(30)).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{}", run.message);
        crate::poll::eventually(Duration::from_secs(10), "a release after the run", async || {
            core.memory_releases() == i as u64 + 1
        })
        .await;
    }
    let seen = record.threads.lock().clone();
    assert_eq!(seen.len(), 6, "three threads per release, two releases: {seen:?}");
    let threads: std::collections::HashSet<_> = seen.iter().map(|(thread, _)| *thread).collect();
    assert_eq!(threads.len(), 3, "two actor threads and the starting one: {seen:?}");
    assert!(threads.contains(&std::thread::current().id()));
    assert!(seen.iter().all(|(_, live)| *live == 0), "released only with no run in flight: {seen:?}");
    *record.core.lock() = None;
}
