//! A run that is active in the store but has no coordinator (its spawn was
//! lost, as when the tenant actor's admission reply timed out) is given one
//! by the reconciler within seconds, and finishes.

use std::sync::Arc;
use std::time::Duration;

use hotswap_actors::coordinator::{planned_stages, Checkpoint};
use hotswap_actors::domain::{Environment, RunStatus};
use uuid::Uuid;

use crate::harness::{finished, operator, request, start_memory, versions, TENANT};

#[actix::test]
async fn an_active_run_without_a_coordinator_gets_one_and_finishes() {
    let (core, store) = start_memory(3).await;
    // A finished run is the template of the orphan, written straight to the store.
    let done = core
        .create_deployment(TENANT, request("kmod-template", "1.0.0", Environment::Development, &[]), &operator())
        .await
        .unwrap();
    let mut orphan = finished(&store, done.execution_id, Duration::from_secs(15)).await;
    orphan.execution_id = Uuid::new_v4();
    orphan.request.module_name = "kmod-orphan".into();
    orphan.status = RunStatus::Running;
    orphan.checkpoint = Checkpoint::SecurityScan;
    orphan.changes = Arc::default();
    orphan.finished_at = None;
    orphan.message = String::new();
    orphan.revision = 1;
    orphan.stages = planned_stages(&orphan);
    store.create_run(&orphan, &[]).await.expect("orphan stored");

    let run = finished(&store, orphan.execution_id, Duration::from_secs(10)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let now = versions(&core, Environment::Development, "kmod-orphan").await;
    assert!(now.iter().all(|v| v.as_deref() == Some("1.0.0")), "{now:?}");
}
