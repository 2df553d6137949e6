//! A store that refuses saves for reasons other than an outage, and a
//! coordinator that keeps crashing: runs progress or end, and always release
//! their module; a manual rollback never undoes later runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hotswap_actors::coordinator::Checkpoint;
use hotswap_actors::domain::{Environment, RunStatus};
use hotswap_actors::orchestrator::CoreSettings;
use hotswap_actors::settings::RestartPolicy;
use hotswap_actors::store::{FaultHook, MemoryStore, SharedStore, StoreCall, StoreError, StoreResult};
use hotswap_actors::Orchestrator;

use crate::harness::{finished, operator, request, settings, start, stored, versions, TENANT};
use crate::poll::eventually;

/// Quick restarts and an early escalation, as in the test profile.
fn quick_supervision(mut settings: CoreSettings) -> CoreSettings {
    settings.supervision.coordinator = RestartPolicy {
        max_restarts: 3,
        within: Duration::from_secs(60),
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
    };
    settings
}

/// Refuses (not as an outage) the first `refusals` saves of a run at a
/// deployment step; `usize::MAX` refuses them all.
struct RefuseDeploySaves {
    refusals: usize,
    refused: AtomicUsize,
}

impl FaultHook for RefuseDeploySaves {
    fn before(&self, call: StoreCall<'_>) -> StoreResult<()> {
        match call {
            StoreCall::SaveRun(run) if matches!(run.checkpoint, Checkpoint::Deploy { .. }) => {
                if self.refused.fetch_add(1, Ordering::SeqCst) < self.refusals {
                    return Err(StoreError::Other("injected: could not serialise the checkpoint".into()));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

async fn core_with(hook: Arc<dyn FaultHook>) -> (Orchestrator, SharedStore) {
    let store: SharedStore = Arc::new(MemoryStore::with_fault_hook(hook));
    (start(store.clone(), quick_supervision(settings(3))).await, store)
}

#[actix::test]
async fn a_run_whose_saves_keep_being_refused_ends_failed_and_frees_its_module() {
    let hook = Arc::new(RefuseDeploySaves { refusals: usize::MAX, refused: AtomicUsize::new(0) });
    let (core, store) = core_with(hook.clone()).await;
    let run = core
        .create_deployment(TENANT, request("kmod-refused", "1.0.0", Environment::Development, &[]), &operator())
        .await
        .unwrap();

    let run = finished(&store, run.execution_id, Duration::from_secs(15)).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    assert!(hook.refused.load(Ordering::SeqCst) > 1, "the refused save was never retried");
    // The module is free: another run of it is admitted.
    core.create_deployment(TENANT, request("kmod-refused", "1.0.1", Environment::Development, &[]), &operator())
        .await
        .expect("the module was released");
}

#[actix::test]
async fn a_run_whose_saves_are_refused_a_few_times_carries_on() {
    let hook = Arc::new(RefuseDeploySaves { refusals: 2, refused: AtomicUsize::new(0) });
    let (core, store) = core_with(hook.clone()).await;
    let run = core
        .create_deployment(TENANT, request("kmod-flaky", "1.0.0", Environment::Development, &[]), &operator())
        .await
        .unwrap();

    let run = finished(&store, run.execution_id, Duration::from_secs(15)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert!(versions(&core, Environment::Development, "kmod-flaky")
        .await
        .iter()
        .all(|v| v.as_deref() == Some("1.0.0")));
}

/// Panics (as a crashing coordinator would) in every read of node slots
/// once armed, after letting `spare` more reads through.
#[derive(Default)]
struct PanicOnSlots {
    reads: AtomicUsize,
    panic_from: AtomicUsize,
}

impl PanicOnSlots {
    fn arm_after(&self, spare: usize) {
        self.panic_from.store(self.reads.load(Ordering::SeqCst) + spare, Ordering::SeqCst);
    }
}

impl FaultHook for PanicOnSlots {
    fn before(&self, call: StoreCall<'_>) -> StoreResult<()> {
        if let StoreCall::ModuleSlots { .. } = call {
            if self.reads.fetch_add(1, Ordering::SeqCst) >= self.panic_from.load(Ordering::SeqCst) {
                panic!("injected: the coordinator crashes while reading node slots");
            }
        }
        Ok(())
    }
}

#[actix::test]
async fn a_manual_rollback_that_keeps_crashing_ends_releases_its_module_and_spares_later_runs() {
    let hook = Arc::new(PanicOnSlots { panic_from: AtomicUsize::new(usize::MAX), ..Default::default() });
    let (core, store) = core_with(hook.clone()).await;
    // The first run reaches QA; the later one replaces it on Development
    // only, so that the rollback has QA's nodes to restore and Development's
    // to spare.
    let first =
        core.create_deployment(TENANT, request("kmod-rb", "1.0.0", Environment::Qa, &[]), &operator()).await.unwrap();
    assert_eq!(finished(&store, first.execution_id, Duration::from_secs(15)).await.status, RunStatus::Succeeded);
    let later = core
        .create_deployment(TENANT, request("kmod-rb", "2.0.0", Environment::Development, &[]), &operator())
        .await
        .unwrap();
    assert_eq!(finished(&store, later.execution_id, Duration::from_secs(15)).await.status, RunStatus::Succeeded);

    // The rollback request reads the slots twice (the run's nodes, then this
    // instance's nodes adopt what is stored); its coordinators crash on every read after.
    hook.arm_after(2);
    core.rollback(TENANT, first.execution_id, &operator()).await.expect("rollback accepted");

    let id = first.execution_id;
    eventually(Duration::from_secs(20), "the rollback ends", async || {
        stored(&store, id).await.rollback.as_ref().is_some_and(|rb| !rb.in_progress())
    })
    .await;
    let run = stored(&store, id).await;
    assert!(!run.holds_module(), "{run:#?}");
    assert!(matches!(run.status, RunStatus::Succeeded | RunStatus::RolledBack | RunStatus::Failed), "{run:#?}");
    let now = versions(&core, Environment::Development, "kmod-rb").await;
    assert!(now.iter().all(|v| v.as_deref() == Some("2.0.0")), "the later run's version was undone: {now:?}");
    // And the module is free again.
    core.create_deployment(TENANT, request("kmod-rb", "3.0.0", Environment::Development, &[]), &operator())
        .await
        .expect("the module was released");
}

/// The first save of a deployment step hangs for a minute, as on a
/// half-open connection; later ones answer at once.
#[derive(Default)]
struct HangOnce {
    hung: std::sync::atomic::AtomicBool,
}

impl FaultHook for HangOnce {
    fn before(&self, _call: StoreCall<'_>) -> StoreResult<()> {
        Ok(())
    }

    fn hang(&self, call: &StoreCall<'_>) -> Option<Duration> {
        match call {
            StoreCall::SaveRun(run) if matches!(run.checkpoint, Checkpoint::Deploy { .. }) => {
                (!self.hung.swap(true, Ordering::SeqCst)).then_some(Duration::from_secs(60))
            }
            _ => None,
        }
    }
}

#[actix::test]
async fn a_save_that_hangs_is_given_up_at_the_deadline_and_retried() {
    let store: SharedStore = Arc::new(MemoryStore::with_fault_hook(Arc::new(HangOnce::default())));
    let mut settings = quick_supervision(settings(3));
    settings.recovery.store_call_timeout = Duration::from_millis(300);
    let core = start(store.clone(), settings).await;
    let run = core
        .create_deployment(TENANT, request("kmod-hang", "1.0.0", Environment::Development, &[]), &operator())
        .await
        .unwrap();

    let run = finished(&store, run.execution_id, Duration::from_secs(10)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
}
