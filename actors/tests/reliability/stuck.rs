//! A coordinator whose checkpoint the store does not take keeps retrying,
//! and says so: the orchestrator lists it (what `/health/ready` reports) and
//! its child in the supervision tree names the problem. Once the store takes
//! the save again the run carries on and the report clears.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hotswap_actors::coordinator::{Checkpoint, Verb};
use hotswap_actors::domain::{Environment, RunStatus};
use hotswap_actors::store::{FaultHook, MemoryStore, SharedStore, StoreCall, StoreError, StoreResult};
use hotswap_actors::CoreError;

use crate::harness::{finished, operator, request, settings, start, TENANT};
use crate::poll::eventually;

/// Answers every save of a deployment step as an outage while `down` is set.
#[derive(Default)]
struct SavesDown {
    down: AtomicBool,
    refused: AtomicUsize,
}

impl FaultHook for SavesDown {
    fn before(&self, call: StoreCall<'_>) -> StoreResult<()> {
        match call {
            StoreCall::SaveRun(run)
                if self.down.load(Ordering::SeqCst) && matches!(run.checkpoint, Checkpoint::Deploy { .. }) =>
            {
                self.refused.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::Unavailable("injected: connection reset while saving".into()))
            }
            _ => Ok(()),
        }
    }
}

#[actix::test]
async fn a_coordinator_that_cannot_save_is_reported_until_the_store_takes_its_save() {
    let hook = Arc::new(SavesDown::default());
    hook.down.store(true, Ordering::SeqCst);
    let store: SharedStore = Arc::new(MemoryStore::with_fault_hook(hook.clone()));
    let core = start(store.clone(), settings(3)).await;
    let run = core
        .create_deployment(TENANT, request("kmod-stuck", "1.0.0", Environment::Development, &[]), &operator())
        .await
        .unwrap();
    let id = run.execution_id;

    eventually(Duration::from_secs(10), "the coordinator reports that it cannot save", async || {
        core.coordinators_that_cannot_save().iter().any(|t| t.execution_id == id && t.failed_attempts >= 2)
    })
    .await;
    let trouble = core.coordinators_that_cannot_save().into_iter().find(|t| t.execution_id == id).unwrap();
    assert_eq!(trouble.tenant_id, TENANT);
    assert!(trouble.last_error.contains("connection reset"), "{trouble:?}");
    let child = core.supervised(TENANT, &format!("run:{id}")).await.expect("the coordinator is supervised");
    let problem = child.problem.expect("the admin tree names the problem");
    assert!(problem.contains("cannot save its checkpoint"), "{problem}");

    hook.down.store(false, Ordering::SeqCst);
    let run = finished(&store, id, Duration::from_secs(30)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert!(hook.refused.load(Ordering::SeqCst) >= 2);
    assert!(core.coordinators_that_cannot_save().is_empty(), "the report clears once the save went through");
}

#[actix::test]
async fn a_verb_the_store_does_not_confirm_in_time_is_not_acknowledged_and_says_it_may_still_happen() {
    let hook = Arc::new(SavesDown::default());
    let store: SharedStore = Arc::new(MemoryStore::with_fault_hook(hook.clone()));
    let core = start(store.clone(), settings(3)).await;
    hook.down.store(true, Ordering::SeqCst);
    let run = core
        .create_deployment(TENANT, request("kmod-unconfirmed", "1.0.0", Environment::Development, &[]), &operator())
        .await
        .unwrap();
    let id = run.execution_id;
    eventually(Duration::from_secs(10), "the coordinator cannot save", async || {
        core.coordinators_that_cannot_save().iter().any(|t| t.execution_id == id)
    })
    .await;
    let refused = core.apply_verb(TENANT, id, Verb::Abort, &operator()).await.expect_err("not acknowledged");
    let CoreError::Unavailable(message) = refused else { panic!("{refused:?}") };
    // Not "restarting": the store is what did not answer, and the verb is held.
    assert!(message.contains("did not confirm the abort") && message.contains("may still take effect"), "{message}");
    hook.down.store(false, Ordering::SeqCst);
    let run = finished(&store, id, Duration::from_secs(30)).await;
    assert_eq!(run.status, RunStatus::Cancelled, "the held abort took effect as the answer said it might");
}
