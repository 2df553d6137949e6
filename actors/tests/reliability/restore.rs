//! Restores that keep failing: the nodes are named (quarantined) on the run,
//! which ends Failed with `nodes_left_on_new_version`, never as a clean
//! rollback or cancellation.

use std::sync::Arc;
use std::time::Duration;

use hotswap_actors::coordinator::Verb;
use hotswap_actors::domain::{Environment, RunStatus};
use hotswap_actors::store::{FaultHook, MemoryStore, SharedStore, StoreCall, StoreError, StoreResult};

use crate::harness::{finished, operator, request, settings, start, stored, versions, TENANT};
use crate::poll::eventually;

/// Refuses every write that takes `module` off a node (a restore to "nothing").
struct RefuseRestores(&'static str);

impl FaultHook for RefuseRestores {
    fn before(&self, call: StoreCall<'_>) -> StoreResult<()> {
        match call {
            StoreCall::SetModuleSlots { module, slots, .. } if module == self.0 && slots.active.is_none() => {
                Err(StoreError::Other("injected: the node's disk refuses the write".into()))
            }
            _ => Ok(()),
        }
    }
}

async fn core(module: &'static str) -> (hotswap_actors::Orchestrator, SharedStore) {
    let store: SharedStore = Arc::new(MemoryStore::with_fault_hook(Arc::new(RefuseRestores(module))));
    (start(store.clone(), settings(3)).await, store)
}

#[actix::test]
async fn a_stage_whose_restore_keeps_failing_ends_failed_naming_the_nodes_left_behind() {
    let (core, store) = core("kmod-stuck").await;
    // One node of three fails to load; the two that loaded cannot be put back.
    let req = request("kmod-stuck", "1.0.0", Environment::Development, &[("simulateDeployFailure", "0.2")]);
    let run = core.create_deployment(TENANT, req, &operator()).await.unwrap();

    let run = finished(&store, run.execution_id, Duration::from_secs(20)).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    let on_new = versions(&core, Environment::Development, "kmod-stuck").await;
    let stuck = on_new.iter().filter(|v| v.as_deref() == Some("1.0.0")).count();
    assert_eq!(stuck, 2, "{on_new:?}");
    assert_eq!(run.nodes_left_on_new_version.len(), 2, "{run:#?}");
    assert!(run.message.contains("Could not restore"), "the run's own message says so: {}", run.message);
    let events = store.run_events(TENANT, run.execution_id).await.unwrap();
    let quarantined = events.iter().find(|e| e.kind == "NodesQuarantined").expect("a NodesQuarantined event");
    for host in &run.nodes_left_on_new_version {
        assert!(quarantined.message.contains(host.as_str()), "{} does not name {host}", quarantined.message);
    }
}

#[actix::test]
async fn an_abort_whose_restore_keeps_failing_ends_failed_not_cancelled() {
    let (core, store) = core("kmod-stuck-abort").await;
    let req = request("kmod-stuck-abort", "1.0.0", Environment::Development, &[("simulateNodeDelayMs", "500")]);
    let run = core.create_deployment(TENANT, req, &operator()).await.unwrap();
    let id = run.execution_id;
    eventually(Duration::from_secs(10), "the load is under way", async || !stored(&store, id).await.changes.is_empty())
        .await;
    core.apply_verb(TENANT, id, Verb::Abort, &operator()).await.expect("abort accepted");

    let run = finished(&store, id, Duration::from_secs(20)).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    assert_eq!(run.nodes_left_on_new_version.len(), 3, "{run:#?}");
    assert!(run.message.contains("Could not restore"), "{}", run.message);
}
