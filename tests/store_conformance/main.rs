//! One behavioural suite for every store back-end: the in-memory store is the
//! reference, and the PostgreSQL store must answer exactly as it does.
//!
//! Each check is an async function taking a `SharedStore`; `conformance!`
//! instantiates it once per back-end. PostgreSQL tests get a database each
//! and are skipped (saying so on stderr) without HOTSWAP_TEST_DATABASE_URL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use hotswap_actors::coordinator::{Checkpoint, DeployStep};
use hotswap_actors::domain::{
    DeploymentRequest, Environment, ModuleSlots, NodeChange, NodeMetrics, NodeRecord, RollbackState, RunRecord,
    RunStatus, Stage, StageStatus, Strategy, TenantId, VersionSlot,
};
use hotswap_actors::domain::{LockoutPolicy, Role, UserRecord};
use hotswap_actors::simulation::VersionFaults;
use hotswap_actors::store::{ClusterSample, RunEvent, RunFilter, SharedStore, StoreError};
use serde_json::json;
use uuid::Uuid;

// ---------------------------------------------------------------- builders

/// Strings that have broken naive SQL, JSON or text handling somewhere.
const NASTY: &[&str] = &[
    "'; DROP TABLE runs; --",
    "Robert'); DROP TABLE students; --",
    "\" OR \"1\"=\"1",
    "back\\slash \\' \\\\ \\n",
    "$1 $$ $tag$ :name ? %s %",
    "héllo wörld – 日本語 – 🚀 – עברית",
    "line\nbreak\ttab\r\n",
    "{\"json\": [1, 2]}",
    "",
    "  padded  ",
    "\u{200b}zero\u{feff}width",
];

fn tenant() -> TenantId {
    Uuid::new_v4()
}

/// A time with nanoseconds that `timestamptz` alone would lose.
fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(1_760_000_000 + secs, nanos).unwrap()
}

fn slot(version: &str) -> VersionSlot {
    VersionSlot::plain(version)
}

fn faulty_slot(version: &str) -> VersionSlot {
    VersionSlot {
        version: version.into(),
        faults: VersionFaults {
            error_rate: Some(0.1 + 0.2),
            latency_ms: Some(1e-7),
            cpu: Some(99.999_999_999),
            unhealthy: true,
        },
    }
}

fn slots(active: &str) -> ModuleSlots {
    ModuleSlots { active: Some(slot(active)), previous: Some(faulty_slot("0.9.9")), standby: None }
}

fn metrics(seed: f64) -> NodeMetrics {
    NodeMetrics {
        cpu_usage: seed / 3.0,
        memory_usage: 12_345.678_901_234_567,
        latency_ms: 1e-300 * seed,
        error_rate: f64::MIN_POSITIVE,
        requests_per_second: 1.0e300,
    }
}

/// A run with every field filled in, the way a coordinator leaves it mid-rollout.
fn run(tenant: TenantId, module: &str, created_at: DateTime<Utc>, status: RunStatus) -> RunRecord {
    let execution_id = Uuid::new_v4();
    let mut metadata = BTreeMap::new();
    metadata.insert("ticket".to_string(), "OPS-1234".to_string());
    metadata.insert("owner".to_string(), "team-kernel".to_string());
    let stage = |name: &str, status, env| Stage {
        name: name.into(),
        status,
        environment: env,
        strategy: env.map(Environment::default_strategy),
        start_time: Some(created_at + TimeDelta::nanoseconds(1_234_567)),
        end_time: None,
        nodes_deployed: Some(3),
        nodes_failed: Some(0),
        message: format!("stage {name}"),
    };
    RunRecord {
        tenant_id: tenant,
        execution_id,
        request: DeploymentRequest {
            module_name: module.into(),
            version: "1.2.3-rc.1+build.7".into(),
            target_environment: Environment::Production,
            requester_email: "ops@example.com".into(),
            description: Some("nightly rollout".into()),
            require_approval: true,
            metadata,
            strategy: Some(Strategy::Canary),
            canary_steps: Some(vec![1, 10, 50, 100]),
        },
        status,
        stages: vec![
            stage("Security Scan", StageStatus::Succeeded, None),
            stage("Deploy to Development", StageStatus::Running, Some(Environment::Development)),
            stage("Deploy to QA", StageStatus::Pending, Some(Environment::Qa)),
        ],
        checkpoint: Checkpoint::Deploy {
            environment: Environment::Development,
            step: DeployStep::Wait { wave: 2, until: created_at + TimeDelta::nanoseconds(987_654_321_123) },
            baseline: vec![(Uuid::new_v4(), metrics(1.0)), (Uuid::new_v4(), metrics(7.0))],
            analysis_baseline: vec![(Uuid::new_v4(), [("error rate".to_string(), 0.1 + 0.2)].into())],
            waves: vec![1, 3, 5],
        },
        changes: std::sync::Arc::new(vec![NodeChange {
            node_id: Uuid::new_v4(),
            hostname: "dev-01.example".into(),
            environment: Environment::Development,
            before: slots("1.2.2"),
        }]),
        trace_id: execution_id.simple().to_string(),
        trace_parent: String::new(),
        created_at,
        finished_at: (!status.is_active()).then(|| created_at + TimeDelta::nanoseconds(60_000_000_001)),
        message: String::new(),
        rollback: None,
        artifact_digest: None,
        revision: 1,
        approval_required: false,
        requested_by: None,
        intent: Default::default(),
        nodes_left_on_new_version: Vec::new(),
        owner: None,
    }
}

fn event(run: &RunRecord, kind: &str, n: u32) -> RunEvent {
    RunEvent {
        tenant_id: run.tenant_id,
        execution_id: run.execution_id,
        at: run.created_at + TimeDelta::nanoseconds(i64::from(n) * 1_001),
        kind: kind.into(),
        message: format!("{kind} #{n}"),
        data: json!({ "n": n, "nested": { "list": [1, 2.5, null, "x"] } }),
    }
}

/// The next revision of `run`, finished with `status`.
fn finished(run: &RunRecord, status: RunStatus) -> RunRecord {
    let mut next = run.clone();
    next.status = status;
    next.checkpoint = Checkpoint::Done;
    next.finished_at = Some(run.created_at + TimeDelta::nanoseconds(3_600_000_000_007));
    next.message = format!("finished {}", status.as_str());
    next.revision += 1;
    next
}

/// A manual rollback of `nodes_affected` nodes, requested at `requested_at` and under way.
fn rollback_in_progress(nodes_affected: u32, requested_at: DateTime<Utc>) -> RollbackState {
    RollbackState {
        rollback_id: Uuid::new_v4(),
        status: RollbackState::IN_PROGRESS.into(),
        nodes_affected,
        requested_at,
        finished_at: None,
        message: String::new(),
    }
}

fn node(tenant: TenantId, hostname: &str, env: Environment) -> NodeRecord {
    let mut modules = BTreeMap::new();
    modules.insert("netfilter-x".to_string(), slots("2.0.0"));
    NodeRecord {
        tenant_id: tenant,
        node_id: Uuid::new_v4(),
        hostname: hostname.into(),
        environment: env,
        modules,
        updated_at: at(0, 123_456_789),
    }
}

fn sample(tenant: TenantId, env: Environment, when: DateTime<Utc>, healthy: u32) -> ClusterSample {
    ClusterSample {
        tenant_id: tenant,
        environment: env,
        at: when,
        metrics: metrics(f64::from(healthy) + 0.1),
        healthy_nodes: healthy,
        total_nodes: u32::MAX,
    }
}

fn filter(page: u32, page_size: u32) -> RunFilter {
    RunFilter { page, page_size, ..RunFilter::default() }
}

fn ids(runs: &[RunRecord]) -> Vec<Uuid> {
    runs.iter().map(|r| r.execution_id).collect()
}

/// `runs` newest first, as list_runs orders them.
fn newest_first(mut runs: Vec<RunRecord>) -> Vec<RunRecord> {
    runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.execution_id.cmp(&a.execution_id)));
    runs
}

fn assert_busy(result: Result<(), StoreError>, module: &str, holder: Uuid) {
    match result {
        Err(StoreError::ModuleBusy { module: m, execution_id }) => {
            assert_eq!(m, module);
            assert_eq!(execution_id, holder, "ModuleBusy must name the holder");
        }
        other => panic!("expected ModuleBusy for {module}, got {other:?}"),
    }
}

// ------------------------------------------------------------------ checks

async fn ping_and_backend(store: SharedStore) {
    store.ping().await.unwrap();
    assert!(["memory", "postgres"].contains(&store.backend()));
}

async fn create_get_save_round_trip(store: SharedStore) {
    let t = tenant();
    let mut r = run(t, "kmod-roundtrip", at(10, 123_456_789), RunStatus::Running);
    r.rollback = Some(RollbackState {
        rollback_id: Uuid::new_v4(),
        status: RollbackState::COMPLETED.into(),
        nodes_affected: 7,
        requested_at: at(11, 1),
        finished_at: Some(at(12, 999_999_999)),
        message: "earlier rollback".into(),
    });
    store.create_run(&r, &[event(&r, "DeploymentCreated", 0)]).await.unwrap();
    assert_eq!(store.get_run(t, r.execution_id).await.unwrap(), Some(r.clone()));

    let mut next = r.clone();
    next.revision = 2;
    next.status = RunStatus::PendingApproval;
    next.stages[1].status = StageStatus::WaitingForApproval;
    next.stages[1].end_time = Some(at(20, 5));
    next.checkpoint = Checkpoint::Restoring { environment: Environment::Qa, message: "restore".into() };
    std::sync::Arc::make_mut(&mut next.changes).push(NodeChange {
        node_id: Uuid::new_v4(),
        hostname: "qa-02".into(),
        environment: Environment::Qa,
        before: ModuleSlots::default(),
    });
    store.save_run(&next, &[]).await.unwrap();
    assert_eq!(store.get_run(t, r.execution_id).await.unwrap(), Some(next.clone()));

    // Finishing, with an optional field cleared again.
    let mut done = finished(&next, RunStatus::Failed);
    done.rollback = None;
    done.request.description = None;
    store.save_run(&done, &[]).await.unwrap();
    assert_eq!(store.get_run(t, r.execution_id).await.unwrap(), Some(done));
    assert_eq!(store.get_run(t, Uuid::new_v4()).await.unwrap(), None);
}

async fn module_lock(store: SharedStore) {
    let t = tenant();
    let first = run(t, "kmod-lock", at(0, 1), RunStatus::Running);
    store.create_run(&first, &[]).await.unwrap();

    let second = run(t, "kmod-lock", at(1, 0), RunStatus::Running);
    assert_busy(store.create_run(&second, &[]).await, "kmod-lock", first.execution_id);
    // Refused even for a run that would not hold the module itself.
    let already_done = run(t, "kmod-lock", at(1, 0), RunStatus::Succeeded);
    assert_busy(store.create_run(&already_done, &[]).await, "kmod-lock", first.execution_id);
    assert_eq!(store.get_run(t, second.execution_id).await.unwrap(), None, "a refused run is not stored");

    // Another module, and the same module in another tenant, are free.
    store.create_run(&run(t, "kmod-other", at(2, 0), RunStatus::Running), &[]).await.unwrap();
    store.create_run(&run(tenant(), "kmod-lock", at(2, 0), RunStatus::Running), &[]).await.unwrap();

    // Paused and awaiting approval still hold it.
    let mut paused = first.clone();
    paused.status = RunStatus::Paused;
    paused.revision = 2;
    store.save_run(&paused, &[]).await.unwrap();
    assert_busy(store.create_run(&second, &[]).await, "kmod-lock", first.execution_id);

    // Released once the run finishes.
    store.save_run(&finished(&paused, RunStatus::Succeeded), &[]).await.unwrap();
    store.create_run(&second, &[]).await.unwrap();
    let third = run(t, "kmod-lock", at(3, 0), RunStatus::Running);
    assert_busy(store.create_run(&third, &[]).await, "kmod-lock", second.execution_id);
}

async fn module_lock_under_concurrent_creates(store: SharedStore) {
    let t = tenant();
    let runs: Vec<RunRecord> = (0..8).map(|i| run(t, "kmod-race", at(i, 0), RunStatus::Running)).collect();
    let results = futures::future::join_all(runs.iter().map(|r| store.create_run(r, &[]))).await;
    let winners: Vec<Uuid> =
        results.iter().zip(&runs).filter(|(res, _)| res.is_ok()).map(|(_, r)| r.execution_id).collect();
    assert_eq!(winners.len(), 1, "exactly one create wins: {results:?}");
    for result in results {
        if result.is_err() {
            assert_busy(result, "kmod-race", winners[0]);
        }
    }
}

async fn stale_revision_refused(store: SharedStore) {
    let t = tenant();
    let mut r = run(t, "kmod-stale", at(0, 0), RunStatus::Running);
    r.revision = 5;
    store.create_run(&r, &[event(&r, "DeploymentCreated", 0)]).await.unwrap();

    for revision in [5, 4, 0] {
        let mut older = r.clone();
        older.revision = revision;
        older.message = "stale writer".into();
        match store.save_run(&older, &[event(&r, "Stale", revision as u32)]).await {
            Err(StoreError::Stale(m)) => assert!(m.contains(&r.execution_id.to_string()), "{m}"),
            other => panic!("revision {revision} over 5: expected Stale, got {other:?}"),
        }
    }
    assert_eq!(store.get_run(t, r.execution_id).await.unwrap(), Some(r.clone()), "a refused save changes nothing");
    assert_eq!(store.run_events(t, r.execution_id).await.unwrap().len(), 1, "nor adds its events");

    // Revisions may jump ahead.
    let mut newer = r.clone();
    newer.revision = 9;
    store.save_run(&newer, &[]).await.unwrap();
    assert_eq!(store.get_run(t, r.execution_id).await.unwrap().unwrap().revision, 9);

    let unknown = run(t, "kmod-stale", at(0, 0), RunStatus::Running);
    assert!(matches!(store.save_run(&unknown, &[]).await, Err(StoreError::NotFound(_))));
}

async fn events_in_order_and_atomic_with_save(store: SharedStore) {
    let t = tenant();
    let r = run(t, "kmod-events", at(0, 999), RunStatus::Running);
    let created = vec![event(&r, "DeploymentCreated", 0), event(&r, "StageStarted", 1)];
    store.create_run(&r, &created).await.unwrap();
    assert_eq!(store.run_events(t, r.execution_id).await.unwrap(), created);

    let mut next = r.clone();
    next.revision = 2;
    // Same timestamps as earlier events: order is insertion order, not time.
    let mut batch = vec![event(&r, "WaveLoaded", 2), event(&r, "WaveChecked", 3), event(&r, "StageStarted", 1)];
    batch[2].data = json!(null);
    store.save_run(&next, &batch).await.unwrap();
    let mut expected = created.clone();
    expected.extend(batch);
    assert_eq!(store.run_events(t, r.execution_id).await.unwrap(), expected);

    // A refused save adds none of its events.
    assert!(store.save_run(&next, &[event(&r, "Lost", 9)]).await.is_err());
    assert_eq!(store.run_events(t, r.execution_id).await.unwrap(), expected);

    // Many events in one save, and a save with none.
    let mut third = next.clone();
    third.revision = 3;
    let many: Vec<RunEvent> = (0..1_500).map(|n| event(&r, "Progress", n)).collect();
    store.save_run(&third, &many).await.unwrap();
    let mut fourth = third.clone();
    fourth.revision = 4;
    store.save_run(&fourth, &[]).await.unwrap();
    expected.extend(many);
    assert_eq!(store.run_events(t, r.execution_id).await.unwrap(), expected);

    assert!(store.run_events(t, Uuid::new_v4()).await.unwrap().is_empty());
}

async fn tenant_isolation(store: SharedStore) {
    let (a, b) = (tenant(), tenant());
    let r = run(a, "kmod-iso", at(0, 0), RunStatus::Running);
    store.create_run(&r, &[event(&r, "DeploymentCreated", 0)]).await.unwrap();
    let n = node(a, "iso-01", Environment::Qa);
    store.register_node(&n).await.unwrap();
    store.record_sample(&sample(a, Environment::Qa, at(0, 0), 1), 10).await.unwrap();

    assert_eq!(store.get_run(b, r.execution_id).await.unwrap(), None);
    let page = store.list_runs(b, &filter(1, 50)).await.unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.total, 0);
    assert!(store.run_events(b, r.execution_id).await.unwrap().is_empty());
    assert_eq!(store.get_node(b, n.node_id).await.unwrap(), None);
    assert_eq!(store.module_slots(b, &[n.node_id], "netfilter-x").await.unwrap(), vec![ModuleSlots::default()]);
    assert!(store.nodes_in(b, Environment::Qa).await.unwrap().is_empty());
    assert!(store.samples(b, Environment::Qa, at(-10, 0), at(10, 0)).await.unwrap().is_empty());
    assert!(matches!(
        store.set_module_slots(b, n.node_id, "netfilter-x", &slots("6.6.6")).await,
        Err(StoreError::NotFound(_))
    ));

    // The same ids under tenant b are different records.
    let mut theirs = r.clone();
    theirs.tenant_id = b;
    theirs.revision = 2;
    assert!(matches!(store.save_run(&theirs, &[]).await, Err(StoreError::NotFound(_))));
    store.create_run(&theirs, &[]).await.unwrap();
    let mut their_node = n.clone();
    their_node.tenant_id = b;
    their_node.hostname = "theirs".into();
    store.register_node(&their_node).await.unwrap();
    store.set_module_slots(b, n.node_id, "netfilter-x", &slots("6.6.6")).await.unwrap();

    // Tenant a sees its own records untouched.
    assert_eq!(store.get_run(a, r.execution_id).await.unwrap(), Some(r.clone()));
    assert_eq!(store.run_events(a, r.execution_id).await.unwrap().len(), 1);
    assert_eq!(store.get_node(a, n.node_id).await.unwrap(), Some(n.clone()));
    assert_eq!(store.module_slots(a, &[n.node_id], "netfilter-x").await.unwrap(), vec![slots("2.0.0")]);
    assert_eq!(store.list_runs(a, &filter(1, 50)).await.unwrap().total, 1);
    assert_eq!(store.nodes_in(a, Environment::Qa).await.unwrap(), vec![n]);
    assert_eq!(store.samples(a, Environment::Qa, at(-10, 0), at(10, 0)).await.unwrap().len(), 1);
}

async fn list_runs_order_filters_paging(store: SharedStore) {
    let t = tenant();
    let mut all = Vec::new();
    // Ties on created_at fall back to execution_id; 1 ns apart still orders.
    let specs = [
        ("kmod-a", at(100, 0), RunStatus::Succeeded, Environment::Production),
        ("kmod-a", at(100, 0), RunStatus::Failed, Environment::Staging),
        ("kmod-a", at(100, 1), RunStatus::Running, Environment::Production),
        ("kmod-b", at(100, 999), RunStatus::Succeeded, Environment::Qa),
        ("kmod-b", at(100, 1_000), RunStatus::Running, Environment::Qa),
        ("kmod-c", at(50, 0), RunStatus::Cancelled, Environment::Development),
        ("kmod-c", at(200, 500), RunStatus::RolledBack, Environment::Production),
        ("kmod-d", at(-100, 0), RunStatus::Paused, Environment::Staging),
    ];
    // Finished runs first, so that no holder blocks a later create.
    for (module, created, status, env) in
        specs.iter().rev().filter(|s| !s.2.is_active()).chain(specs.iter().filter(|s| s.2.is_active()))
    {
        let mut r = run(t, module, *created, *status);
        r.request.target_environment = *env;
        store.create_run(&r, &[]).await.unwrap();
        all.push(r);
    }
    // Noise in another tenant.
    store.create_run(&run(tenant(), "kmod-a", at(150, 0), RunStatus::Running), &[]).await.unwrap();

    let expected = newest_first(all.clone());
    let page = store.list_runs(t, &filter(1, 100)).await.unwrap();
    assert_eq!(page.total, 8);
    assert_eq!(page.items, expected.iter().map(RunRecord::summary).collect::<Vec<_>>());

    // Paging: 1-based; page 0 reads as page 1; past the end is empty but counted.
    let mut paged = Vec::new();
    for p in 1..=3 {
        let page = store.list_runs(t, &filter(p, 3)).await.unwrap();
        assert_eq!(page.total, 8);
        paged.extend(page.items.into_iter().map(|s| s.execution_id));
    }
    assert_eq!(paged, ids(&expected));
    assert_eq!(store.list_runs(t, &filter(0, 3)).await.unwrap(), store.list_runs(t, &filter(1, 3)).await.unwrap());
    let beyond = store.list_runs(t, &filter(9, 3)).await.unwrap();
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 8);
    let farthest = store.list_runs(t, &filter(u32::MAX, u32::MAX)).await.unwrap();
    assert!(farthest.items.is_empty());
    assert_eq!(farthest.total, 8);
    let none = store.list_runs(t, &filter(1, 0)).await.unwrap();
    assert!(none.items.is_empty());
    assert_eq!(none.total, 8);

    let check = |f: RunFilter, keep: &dyn Fn(&RunRecord) -> bool| {
        let store = store.clone();
        let want: Vec<Uuid> = expected.iter().filter(|r| keep(r)).map(|r| r.execution_id).collect();
        async move {
            let page = store.list_runs(t, &f).await.unwrap();
            assert_eq!(page.items.iter().map(|s| s.execution_id).collect::<Vec<_>>(), want, "{f:?}");
            assert_eq!(page.total, want.len() as u64, "{f:?}");
        }
    };
    check(RunFilter { status: Some(RunStatus::Succeeded), ..filter(1, 100) }, &|r| r.status == RunStatus::Succeeded)
        .await;
    check(RunFilter { module_name: Some("kmod-a".into()), ..filter(1, 100) }, &|r| r.request.module_name == "kmod-a")
        .await;
    check(RunFilter { environment: Some(Environment::Production), ..filter(1, 100) }, &|r| {
        r.request.target_environment == Environment::Production
    })
    .await;
    check(
        RunFilter {
            status: Some(RunStatus::Running),
            module_name: Some("kmod-b".into()),
            environment: Some(Environment::Qa),
            ..filter(1, 100)
        },
        &|r| r.status == RunStatus::Running && r.request.module_name == "kmod-b",
    )
    .await;
    check(RunFilter { module_name: Some("kmod-none".into()), ..filter(1, 100) }, &|_| false).await;
    // Filters and paging together: the second of the two Succeeded runs.
    let succeeded: Vec<Uuid> =
        expected.iter().filter(|r| r.status == RunStatus::Succeeded).map(|r| r.execution_id).collect();
    let second = store.list_runs(t, &RunFilter { status: Some(RunStatus::Succeeded), ..filter(2, 1) }).await.unwrap();
    assert_eq!(second.items.iter().map(|s| s.execution_id).collect::<Vec<_>>(), vec![succeeded[1]]);
    assert_eq!(second.total, 2);
}

async fn runs_in_flight_across_tenants(store: SharedStore) {
    let (a, b) = (tenant(), tenant());
    let mut holders = Vec::new();
    for (t, module, status) in
        [(a, "kmod-1", RunStatus::Running), (a, "kmod-2", RunStatus::Paused), (b, "kmod-1", RunStatus::PendingApproval)]
    {
        let r = run(t, module, at(0, 0), status);
        store.create_run(&r, &[]).await.unwrap();
        holders.push(r);
    }
    // A finished run whose manual rollback is under way holds its module too.
    let mut rolling_back = run(b, "kmod-3", at(0, 0), RunStatus::Succeeded);
    rolling_back.checkpoint = Checkpoint::ManualRollback;
    rolling_back.rollback = Some(rollback_in_progress(2, at(5, 5)));
    store.create_run(&rolling_back, &[]).await.unwrap();
    holders.push(rolling_back.clone());
    for (t, module, status) in [(a, "kmod-4", RunStatus::Succeeded), (b, "kmod-5", RunStatus::Failed)] {
        store.create_run(&run(t, module, at(0, 0), status), &[]).await.unwrap();
    }
    // A rollback that completed no longer holds.
    let mut rolled = run(a, "kmod-6", at(0, 0), RunStatus::RolledBack);
    rolled.rollback =
        Some(RollbackState { status: RollbackState::COMPLETED.into(), ..rolling_back.rollback.clone().unwrap() });
    store.create_run(&rolled, &[]).await.unwrap();

    let mut found = store.runs_in_flight().await.unwrap();
    found.retain(|r| r.tenant_id == a || r.tenant_id == b);
    found.sort_by_key(|r| r.execution_id);
    holders.sort_by_key(|r| r.execution_id);
    assert_eq!(found, holders);

    // Finishing one takes it out.
    let done = holders.iter().position(|h| h.rollback.is_none()).unwrap();
    store.save_run(&finished(&holders[done], RunStatus::Cancelled), &[]).await.unwrap();
    let still: Vec<Uuid> = store.runs_in_flight().await.unwrap().iter().map(|r| r.execution_id).collect();
    for (i, h) in holders.iter().enumerate() {
        assert_eq!(still.contains(&h.execution_id), i != done);
    }
}

async fn hostile_strings_round_trip(store: SharedStore) {
    let t = tenant();
    for (i, s) in NASTY.iter().enumerate() {
        let module = format!("{s}#{i}");
        let mut r = run(t, &module, at(i as i64, 0), RunStatus::Running);
        r.request.version = s.to_string();
        r.request.requester_email = s.to_string();
        r.request.description = Some(s.to_string());
        r.request.metadata.insert(s.to_string(), s.to_string());
        r.stages[0].name = s.to_string();
        r.stages[0].message = s.to_string();
        std::sync::Arc::make_mut(&mut r.changes)[0].hostname = s.to_string();
        std::sync::Arc::make_mut(&mut r.changes)[0].before.active = Some(slot(s));
        r.trace_id = s.to_string();
        r.message = s.to_string();
        r.checkpoint = Checkpoint::Unwinding { status: RunStatus::Cancelled, message: s.to_string() };
        let mut e = event(&r, s, 0);
        e.message = s.to_string();
        e.data = json!({ *s: s, "list": [s] });
        store.create_run(&r, std::slice::from_ref(&e)).await.unwrap();
        assert_eq!(store.get_run(t, r.execution_id).await.unwrap(), Some(r.clone()), "{s:?}");
        assert_eq!(store.run_events(t, r.execution_id).await.unwrap(), vec![e], "{s:?}");
        let by_module = store.list_runs(t, &RunFilter { module_name: Some(module.clone()), ..filter(1, 10) }).await;
        assert_eq!(by_module.unwrap().items, vec![r.summary()], "{s:?}");
        // The lock holds for such names too.
        let rival = run(t, &module, at(0, 0), RunStatus::Running);
        assert_busy(store.create_run(&rival, &[]).await, &module, r.execution_id);

        let mut n = node(t, s, Environment::Development);
        n.modules.insert(s.to_string(), ModuleSlots { standby: Some(slot(s)), ..slots(s) });
        store.register_node(&n).await.unwrap();
        store.set_module_slots(t, n.node_id, &module, &slots(s)).await.unwrap();
        n.modules.insert(module.clone(), slots(s));
        let stored = store.get_node(t, n.node_id).await.unwrap().unwrap();
        assert_eq!((stored.hostname.as_str(), &stored.modules), (n.hostname.as_str(), &n.modules), "{s:?}");
        assert_eq!(store.module_slots(t, &[n.node_id], &module).await.unwrap(), vec![slots(s)]);
    }
    // Everything is still there: nothing was dropped or truncated.
    assert_eq!(store.list_runs(t, &filter(1, 100)).await.unwrap().total, NASTY.len() as u64);
    assert_eq!(store.nodes_in(t, Environment::Development).await.unwrap().len(), NASTY.len());
    store.ping().await.unwrap();
}

// ------------------------------------------------------------ back-ends
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[actix::test]
                async fn $check() {
                    let store: SharedStore = Arc::new(hotswap_actors::store::MemoryStore::new());
                    super::$check(store).await;
                }
            )*
        }

        mod postgres {
            use super::*;
            $(
                #[actix::test]
                async fn $check() {
                    let Some(db) = support::TestDb::migrated(concat!("postgres::", stringify!($check))).await else {
                        return;
                    };
                    let store: SharedStore = Arc::new(db.store().await);
                    super::$check(store).await;
                }
            )*
        }
    };
}

conformance!(
    ping_and_backend,
    create_get_save_round_trip,
    module_lock,
    module_lock_under_concurrent_creates,
    stale_revision_refused,
    events_in_order_and_atomic_with_save,
    tenant_isolation,
    list_runs_order_filters_paging,
    runs_in_flight_across_tenants,
    hostile_strings_round_trip,
);

// Suites by trait, one file each; they invoke `conformance!` too.
mod agents;
mod approvals;
mod audit;
mod batches;
mod deltas;
mod graph;
mod graph_reload;
mod grouped_saves;
mod leases;
mod module_registry;
mod nodes;
mod tenants;
mod users;

use users::{micros, name, noted, user};

// ------------------------------------------- PostgreSQL-only behaviour
mod postgres_only;
