//! Leases and admission: what several instances sharing one store rely on.
//! Run leases are claimed, renewed, fenced and released by the same rules on
//! both back-ends; task leases have one holder at a time; admission counts
//! and inserts as one step, so concurrent creates never pass a quota.

use std::time::Duration;

use super::*;
use hotswap_actors::domain::{QuotaExceeded, QuotaKind, RunOwner};
use hotswap_actors::store::{Admission, RunCounts};
use support::poll::eventually;

/// Short leases, so that expiry is seen within a test.
const LEASE_TTL: Duration = Duration::from_millis(400);

/// Waits until `owner` takes over `id`, once the current lease has run out.
async fn claim_after_expiry(store: &SharedStore, owner: &str, id: Uuid) -> u64 {
    let mut epoch = 0;
    eventually(Duration::from_secs(5), "the expired lease is claimed", async || {
        match store.claim_runs(owner, 10).await.unwrap().into_iter().find(|c| c.execution_id == id) {
            Some(claim) => {
                epoch = claim.epoch;
                true
            }
            None => false,
        }
    })
    .await;
    epoch
}

/// The stored run, one revision on, saved as `owner` under `epoch`.
async fn next_as(store: &SharedStore, run: &RunRecord, owner: &str, epoch: u64) -> RunRecord {
    let stored = store.get_run(run.tenant_id, run.execution_id).await.unwrap().unwrap();
    let mut next = stored.clone();
    next.revision += 1;
    next.owner = Some(RunOwner { instance: owner.into(), epoch });
    next.message = format!("saved by {owner} under epoch {epoch}");
    next
}

async fn run_leases_claim_renew_fence_release(store: SharedStore) {
    let t = tenant();
    let run = run(t, "leased", at(0, 0), RunStatus::Running);
    store.create_run(&run, &[]).await.unwrap();
    let done = super::run(t, "finished", at(1, 0), RunStatus::Succeeded);
    store.create_run(&done, &[]).await.unwrap();

    // An active run nobody owns is claimed at once; a finished one never.
    let claimed = store.claim_runs("a", 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!((claimed[0].tenant_id, claimed[0].execution_id, claimed[0].epoch), (t, run.execution_id, 1));
    let stored = store.get_run(t, run.execution_id).await.unwrap().unwrap();
    assert_eq!(stored.owner, Some(RunOwner { instance: "a".into(), epoch: 1 }));
    assert!(store.claim_runs("b", 10).await.unwrap().is_empty(), "a live lease is not taken");
    assert_eq!(store.renew_runs("a").await.unwrap(), vec![run.execution_id]);
    store.save_run(&next_as(&store, &run, "a", 1).await, &[]).await.unwrap();

    // Past its lease, another instance takes the run: the epoch goes up and
    // the former owner's writes are fenced off.
    let epoch = claim_after_expiry(&store, "b", run.execution_id).await;
    assert_eq!(epoch, 2);
    assert!(store.renew_runs("a").await.unwrap().is_empty(), "a no longer holds the run");
    let late = next_as(&store, &run, "a", 1).await;
    match store.save_run(&late, &[event(&late, "LateWrite", 1)]).await {
        Err(StoreError::Fenced(m)) => assert!(m.contains(&run.execution_id.to_string()), "{m}"),
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert!(store.run_events(t, run.execution_id).await.unwrap().is_empty(), "a fenced save writes no event");
    let by_b = next_as(&store, &run, "b", 2).await;
    store.save_run(&by_b, &[]).await.unwrap();
    assert_eq!(store.get_run(t, run.execution_id).await.unwrap().unwrap(), by_b);

    // A clean shutdown lets the run go at once.
    assert_eq!(store.release_runs("b").await.unwrap(), 1);
    let claimed = store.claim_runs("a", 10).await.unwrap();
    assert_eq!(claimed.iter().map(|c| (c.execution_id, c.epoch)).collect::<Vec<_>>(), vec![(run.execution_id, 3)]);

    // A run that finishes holds no lease any more.
    let mut finished = next_as(&store, &run, "a", 3).await;
    finished.status = RunStatus::Succeeded;
    finished.finished_at = Some(finished.created_at);
    store.save_run(&finished, &[]).await.unwrap();
    assert!(store.renew_runs("a").await.unwrap().is_empty());
    assert_eq!(store.release_runs("a").await.unwrap(), 0);
    assert!(store.claim_runs("b", 10).await.unwrap().is_empty());
}

async fn claims_take_at_most_the_limit_oldest_first(store: SharedStore) {
    let t = tenant();
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = run(t, &format!("m{i}"), at(i64::from(i), 0), RunStatus::Running);
        store.create_run(&r, &[]).await.unwrap();
        ids.push(r.execution_id);
    }
    let first: Vec<_> = store.claim_runs("a", 2).await.unwrap().into_iter().map(|c| c.execution_id).collect();
    assert_eq!(first, ids[..2]);
    let rest: Vec<_> = store.claim_runs("b", 10).await.unwrap().into_iter().map(|c| c.execution_id).collect();
    assert_eq!(rest, ids[2..]);
    let mut held_by_b = store.renew_runs("b").await.unwrap();
    held_by_b.sort();
    let mut expected = ids[2..].to_vec();
    expected.sort();
    assert_eq!(held_by_b, expected);
}

async fn task_lease_has_one_holder_at_a_time(store: SharedStore) {
    let task = format!("sweep-{}", Uuid::new_v4());
    assert!(store.hold_task(&task, "a").await.unwrap());
    assert!(!store.hold_task(&task, "b").await.unwrap());
    assert!(store.hold_task(&task, "a").await.unwrap(), "the holder renews");
    assert!(store.hold_task("another task", "b").await.unwrap(), "tasks are leased apart");
    eventually(Duration::from_secs(5), "b takes the expired task lease", async || {
        store.hold_task(&task, "b").await.unwrap()
    })
    .await;
    assert!(!store.hold_task(&task, "a").await.unwrap());
}

/// A finished run taken for a manual rollback becomes the taker's under a
/// new epoch; an active run keeps its owner.
async fn a_finished_run_is_taken_for_its_rollback(store: SharedStore) {
    let t = tenant();
    let active = run(t, "still-running", at(0, 0), RunStatus::Running);
    store.create_run(&active, &[]).await.unwrap();
    let claimed = store.claim_runs("a", 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(store.take_finished_run(t, active.execution_id, "b").await.unwrap(), None, "active runs stay a's");
    let mut done = next_as(&store, &active, "a", 1).await;
    done.status = RunStatus::Succeeded;
    store.save_run(&done, &[]).await.unwrap();
    assert_eq!(store.take_finished_run(t, active.execution_id, "b").await.unwrap(), Some(2));
    let stored = store.get_run(t, active.execution_id).await.unwrap().unwrap();
    assert_eq!(stored.owner, Some(RunOwner { instance: "b".into(), epoch: 2 }));
    let late = next_as(&store, &active, "a", 1).await;
    assert!(matches!(store.save_run(&late, &[]).await, Err(StoreError::Fenced(_))), "a is fenced off");
    assert_eq!(store.take_finished_run(t, Uuid::new_v4(), "b").await.unwrap(), None, "unknown run");
}

/// A node change made for a run is refused once another instance took the
/// run: the former owner cannot change node state after losing its lease.
async fn node_writes_are_fenced_by_the_runs_epoch(store: SharedStore) {
    use hotswap_actors::domain::Environment;
    use hotswap_actors::store::RunFence;
    let t = tenant();
    let n = node(t, "fenced-node", Environment::Staging);
    store.register_node(&n).await.unwrap();
    let run = run(t, "fenced-module", at(0, 0), RunStatus::Running);
    store.create_run(&run, &[]).await.unwrap();
    assert_eq!(store.claim_runs("a", 10).await.unwrap()[0].epoch, 1);
    let fence = |epoch| RunFence { tenant_id: t, execution_id: run.execution_id, epoch };
    store.set_module_slots_fenced(n.node_id, "fenced-module", &slots("1.0.0"), &fence(1)).await.unwrap();

    assert_eq!(claim_after_expiry(&store, "b", run.execution_id).await, 2);
    match store.set_module_slots_fenced(n.node_id, "fenced-module", &slots("9.9.9"), &fence(1)).await {
        Err(StoreError::Fenced(m)) => assert!(m.contains(&run.execution_id.to_string()), "{m}"),
        other => panic!("expected Fenced, got {other:?}"),
    }
    let stored = store.get_node(t, n.node_id).await.unwrap().unwrap();
    assert_eq!(stored.modules["fenced-module"], slots("1.0.0"), "the fenced write changed nothing");
    store.set_module_slots_fenced(n.node_id, "fenced-module", &slots("2.0.0"), &fence(2)).await.unwrap();
    let stored = store.get_node(t, n.node_id).await.unwrap().unwrap();
    assert_eq!(stored.modules["fenced-module"], slots("2.0.0"), "the new owner writes");
}

/// A wave's node writes go in one batch with their runs' fences: the batch
/// is written while every fence holds, and refused as a whole, changing
/// nothing, once one run has passed to another owner.
async fn batched_node_writes_are_fenced_by_their_runs_epochs(store: SharedStore) {
    use hotswap_actors::domain::Environment;
    use hotswap_actors::store::{RunFence, SlotWrite};
    let t = tenant();
    let nodes: Vec<_> = (0..4).map(|i| node(t, &format!("fenced-batch-{i}"), Environment::Staging)).collect();
    for n in &nodes {
        store.register_node(n).await.unwrap();
    }
    let (first, second) = (
        run(t, "fenced-batch-a", at(0, 0), RunStatus::Running),
        run(t, "fenced-batch-b", at(0, 1), RunStatus::Running),
    );
    store.create_run(&first, &[]).await.unwrap();
    store.create_run(&second, &[]).await.unwrap();
    assert_eq!(store.claim_runs("a", 10).await.unwrap().len(), 2);
    let fence = |r: &RunRecord, epoch| RunFence { tenant_id: t, execution_id: r.execution_id, epoch };
    // Two nodes for each run, and one write with no fence.
    let batch = |version: &str, first_epoch, second_epoch| -> Vec<SlotWrite> {
        let write = |i: usize, module: &str, fence| SlotWrite {
            tenant: t,
            node_id: nodes[i].node_id,
            module: module.into(),
            slots: slots(version),
            fence,
        };
        vec![
            write(0, "fenced-batch-a", Some(fence(&first, first_epoch))),
            write(1, "fenced-batch-a", Some(fence(&first, first_epoch))),
            write(2, "fenced-batch-b", Some(fence(&second, second_epoch))),
            write(3, "fenced-batch-b", None),
        ]
    };
    store.set_module_slots_batch(&batch("1.0.0", 1, 1)).await.unwrap();

    // b takes the runs whose leases ran out (the second, maybe the first too).
    assert_eq!(claim_after_expiry(&store, "b", second.execution_id).await, 2);
    let first_epoch = store.get_run(t, first.execution_id).await.unwrap().unwrap().owner.unwrap().epoch;
    match store.set_module_slots_batch(&batch("9.9.9", first_epoch, 1)).await {
        Err(StoreError::Fenced(m)) => assert!(m.contains(&second.execution_id.to_string()), "{m}"),
        other => panic!("expected Fenced, got {other:?}"),
    }
    for (i, module) in [(0, "fenced-batch-a"), (1, "fenced-batch-a"), (2, "fenced-batch-b"), (3, "fenced-batch-b")] {
        let stored = store.get_node(t, nodes[i].node_id).await.unwrap().unwrap();
        assert_eq!(stored.modules[module], slots("1.0.0"), "node {i}: the refused batch changed nothing");
    }
    store.set_module_slots_batch(&batch("2.0.0", first_epoch, 2)).await.unwrap();
    let stored = store.get_node(t, nodes[2].node_id).await.unwrap().unwrap();
    assert_eq!(stored.modules["fenced-batch-b"], slots("2.0.0"), "the batch with the current epochs is written");
}

/// A relayed verb waits for its run's owner, is answered once, and is
/// forgotten when its answer is read; an unanswered one can be withdrawn.
async fn relayed_verbs_wait_for_one_answer(store: SharedStore) {
    use hotswap_actors::domain::AuditActor;
    use hotswap_actors::store::{RelayOutcome, RelayedAnswer, RelayedVerb};
    let (t, run_id, other_run) = (tenant(), Uuid::new_v4(), Uuid::new_v4());
    let verb = |name: &str| RelayedVerb {
        request_id: Uuid::new_v4(),
        tenant_id: t,
        execution_id: run_id,
        verb: name.into(),
        actor: AuditActor::system(),
    };
    let (pause, abort) = (verb("pause"), verb("abort"));
    store.relay_verb(&pause).await.unwrap();
    store.relay_verb(&abort).await.unwrap();
    assert_eq!(store.relayed_verbs(&[run_id, other_run]).await.unwrap(), vec![pause.clone(), abort.clone()]);
    assert!(store.relayed_verbs(&[other_run]).await.unwrap().is_empty());
    assert_eq!(store.take_relayed_answer(pause.request_id).await.unwrap(), None, "not answered yet");

    let answer = |message: &str| RelayedAnswer {
        outcome: RelayOutcome::Accepted,
        status: Some(RunStatus::Paused),
        message: message.into(),
    };
    store.answer_relayed_verb(pause.request_id, &answer("paused")).await.unwrap();
    store.answer_relayed_verb(pause.request_id, &answer("again")).await.unwrap();
    assert_eq!(store.relayed_verbs(&[run_id]).await.unwrap(), vec![abort.clone()], "answered verbs wait no more");
    assert!(!store.withdraw_relayed_verb(pause.request_id).await.unwrap(), "an answered verb is not withdrawn");
    assert_eq!(store.take_relayed_answer(pause.request_id).await.unwrap(), Some(answer("paused")), "the first answer");
    assert_eq!(store.take_relayed_answer(pause.request_id).await.unwrap(), None, "read once");

    assert!(store.withdraw_relayed_verb(abort.request_id).await.unwrap());
    store.answer_relayed_verb(abort.request_id, &answer("too late")).await.unwrap();
    assert!(store.relayed_verbs(&[run_id]).await.unwrap().is_empty());
    assert_eq!(store.take_relayed_answer(abort.request_id).await.unwrap(), None, "a withdrawn verb gets no answer");
}

fn at_most_active(limit: u64) -> impl Fn(&RunCounts) -> Result<(), QuotaExceeded> + Send + Sync {
    move |counts: &RunCounts| {
        if counts.active >= limit {
            Err(QuotaExceeded { quota: QuotaKind::ConcurrentRuns, limit: limit as u32, current: counts.active })
        } else {
            Ok(())
        }
    }
}

async fn admission_is_exact_under_concurrent_creates(store: SharedStore) {
    let t = tenant();
    let check = at_most_active(3);
    let since = at(0, 0);
    let creates = (0..50).map(|i| {
        let store = store.clone();
        let check = &check;
        async move {
            let r = run(t, &format!("module-{i}"), at(10, i), RunStatus::Running);
            store.admit_run(&r, &[event(&r, "DeploymentCreated", 0)], since, check).await.unwrap()
        }
    });
    let answers = futures::future::join_all(creates).await;
    let admitted = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(admitted, 3, "{answers:?}");
    for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!((refused.quota, refused.current), (QuotaKind::ConcurrentRuns, 3));
    }
    let page = store.list_runs(t, &RunFilter { page: 1, page_size: 100, ..RunFilter::default() }).await.unwrap();
    assert_eq!(page.total, 3, "a refused run is not stored");
}

/// Batches of admissions (group admission) from two "instances" at once:
/// the quota holds exactly, each run in a batch is counted with the runs
/// admitted before it, two runs of one module in a batch are refused as a
/// single create would refuse the second, and the counters count the batch.
async fn batch_admission_is_exact_and_in_order(store: SharedStore) {
    let t = tenant();
    let check = at_most_active(3);
    let since = at(0, 0);
    let batches: Vec<Vec<RunRecord>> = (0..2)
        .map(|b| (0..6).map(|i| run(t, &format!("batch-{b}-{i}"), at(10, b * 10 + i), RunStatus::Running)).collect())
        .collect();
    let events: Vec<Vec<RunEvent>> = batches.iter().flatten().map(|r| vec![event(r, "DeploymentCreated", 0)]).collect();
    let mut events = events.iter();
    let admissions: Vec<Vec<Admission>> = batches
        .iter()
        .map(|runs| runs.iter().map(|run| Admission { run, events: events.next().unwrap() }).collect())
        .collect();
    let answers =
        futures::future::join_all(admissions.iter().map(|batch| store.admit_runs(batch, since, &check))).await;
    let answers: Vec<_> = answers.into_iter().flatten().map(|a| a.unwrap()).collect();
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 3, "{answers:?}");
    for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!((refused.quota, refused.current), (QuotaKind::ConcurrentRuns, 3));
    }
    // Within one batch, the admitted come first: each is counted with those before it.
    for batch in answers.chunks(6) {
        let admitted = batch.iter().take_while(|a| a.is_ok()).count();
        assert!(batch[admitted..].iter().all(|a| a.is_err()), "{batch:?}");
    }
    let page = store.list_runs(t, &RunFilter { page: 1, page_size: 100, ..RunFilter::default() }).await.unwrap();
    assert_eq!(page.total, 3, "a refused run is not stored");
    for r in &page.items {
        let events = store.run_events(t, r.execution_id).await.unwrap();
        assert_eq!(events.len(), 1, "each admitted run has its own events");
    }
    let counts = store.run_counts(t, since, "batch-0-0").await.unwrap();
    assert_eq!((counts.active, counts.created_since, counts.modules), (3, 3, 3));

    // One module twice in a batch: the second waits for the first, as on a single create.
    let u = tenant();
    let allow = |_: &RunCounts| Ok(());
    let first = run(u, "twice", at(11, 0), RunStatus::Running);
    let second = run(u, "twice", at(11, 1), RunStatus::Running);
    let other = run(u, "once", at(11, 2), RunStatus::Running);
    let batch = [
        Admission { run: &first, events: &[] },
        Admission { run: &second, events: &[] },
        Admission { run: &other, events: &[] },
    ];
    let answers = store.admit_runs(&batch, since, &allow).await;
    assert!(matches!(answers[0], Ok(Ok(()))), "{answers:?}");
    match &answers[1] {
        Err(StoreError::ModuleBusy { execution_id, .. }) => assert_eq!(*execution_id, first.execution_id),
        other => panic!("the second run of a module is refused while the first holds it: {other:?}"),
    }
    assert!(matches!(answers[2], Ok(Ok(()))), "{answers:?}");
    assert_eq!(store.run_counts(u, since, "once").await.unwrap().created_since, 2);
    let listed = store.list_runs(u, &RunFilter { page: 1, page_size: 100, ..RunFilter::default() }).await.unwrap();
    assert_eq!((listed.total, listed.items.len()), (2, 2), "the list counts the runs stored, not the refused one");
}

async fn run_counts_come_from_counters(store: SharedStore) {
    let t = tenant();
    let day_one = DateTime::parse_from_rfc3339("2026-03-01T23:59:59.9Z").unwrap().to_utc();
    let day_two = DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").unwrap().to_utc();
    let midnight = DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z").unwrap().to_utc();
    let allow = |_: &RunCounts| Ok(());
    let mut first = run(t, "alpha", day_one, RunStatus::Running);
    first.owner = Some(RunOwner { instance: "a".into(), epoch: 1 });
    store.admit_run(&first, &[], midnight, &allow).await.unwrap().unwrap();
    for (module, created) in [("beta", day_two), ("beta", day_two + TimeDelta::hours(1))] {
        let r = run(t, module, created, RunStatus::Succeeded);
        store.admit_run(&r, &[], midnight, &allow).await.unwrap().unwrap();
    }
    let counts = store.run_counts(t, midnight, "alpha").await.unwrap();
    assert_eq!(counts, RunCounts { active: 1, created_since: 2, modules: 2, module_known: true });
    let counts = store.run_counts(t, day_two + TimeDelta::minutes(30), "gamma").await.unwrap();
    assert_eq!(counts, RunCounts { active: 1, created_since: 1, modules: 2, module_known: false });
    let counts = store.run_counts(t, day_one - TimeDelta::days(1), "beta").await.unwrap();
    assert_eq!(counts.created_since, 3);
    assert_eq!(store.run_counts(tenant(), midnight, "alpha").await.unwrap(), RunCounts::default());
}

macro_rules! with_short_leases {
    ($($check:ident),* $(,)?) => {
        mod memory_leases {
            use super::*;
            $(
                #[actix::test]
                async fn $check() {
                    let store = hotswap_actors::store::MemoryStore::new().with_lease_ttl(LEASE_TTL);
                    super::$check(Arc::new(store)).await;
                }
            )*
        }

        mod postgres_leases {
            use super::*;
            $(
                #[actix::test]
                async fn $check() {
                    let Some(db) = support::TestDb::migrated(concat!("postgres_leases::", stringify!($check))).await else {
                        return;
                    };
                    super::$check(Arc::new(db.store().await.with_lease_ttl(LEASE_TTL))).await;
                }
            )*
        }
    };
}

with_short_leases!(
    run_leases_claim_renew_fence_release,
    claims_take_at_most_the_limit_oldest_first,
    task_lease_has_one_holder_at_a_time,
    a_finished_run_is_taken_for_its_rollback,
    relayed_verbs_wait_for_one_answer,
    node_writes_are_fenced_by_the_runs_epoch,
    batched_node_writes_are_fenced_by_their_runs_epochs,
    admission_is_exact_under_concurrent_creates,
    batch_admission_is_exact_and_in_order,
    run_counts_come_from_counters,
);
