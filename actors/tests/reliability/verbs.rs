//! Verbs are saved before they are acknowledged, and a coordinator started
//! afterwards (here: the supervisor restarting it from the store) honours them.

use std::time::Duration;

use hotswap_actors::coordinator::{Checkpoint, Verb};
use hotswap_actors::domain::{Environment, RunStatus};
use hotswap_actors::supervision::ChildAction;

use crate::harness::{finished, operator, request, start_memory, stored, versions, TENANT};
use crate::poll::eventually;

/// Every node takes this long to load or verify a version, which holds the
/// coordinator inside one step while the test acts.
const SLOW: (&str, &str) = ("simulateNodeDelayMs", "1500");

#[actix::test]
async fn an_abort_accepted_mid_load_is_honoured_by_the_next_coordinator() {
    let (core, store) = start_memory(3).await;
    let run = core
        .create_deployment(TENANT, request("kmod-abort", "1.0.0", Environment::Development, &[SLOW]), &operator())
        .await
        .unwrap();
    let id = run.execution_id;
    // The changes are recorded just before the nodes are asked to load.
    eventually(Duration::from_secs(10), "the load is under way", async || !stored(&store, id).await.changes.is_empty())
        .await;

    core.apply_verb(TENANT, id, Verb::Abort, &operator()).await.expect("abort accepted");
    assert!(stored(&store, id).await.intent.abort, "the abort was acknowledged before it was saved");
    // The incarnation that accepted it goes away before acting on it.
    core.control(TENANT, &format!("run:{id}"), ChildAction::Restart).await.expect("coordinator restarted");

    let run = finished(&store, id, Duration::from_secs(20)).await;
    assert_eq!(run.status, RunStatus::Cancelled, "{run:#?}");
    let now = versions(&core, Environment::Development, "kmod-abort").await;
    assert!(now.iter().all(Option::is_none), "nodes left on the new version: {now:?}");
}

#[actix::test]
async fn a_pause_is_saved_before_it_is_acknowledged() {
    let (core, store) = start_memory(3).await;
    let run = core
        .create_deployment(TENANT, request("kmod-pause", "1.0.0", Environment::Qa, &[SLOW]), &operator())
        .await
        .unwrap();
    let id = run.execution_id;
    eventually(Duration::from_secs(10), "the load is under way", async || !stored(&store, id).await.changes.is_empty())
        .await;

    let reply = core.apply_verb(TENANT, id, Verb::Pause, &operator()).await.expect("pause accepted");
    assert_eq!(reply.status, RunStatus::Paused);
    assert_eq!(stored(&store, id).await.status, RunStatus::Paused, "the pause was acknowledged before it was saved");
    core.control(TENANT, &format!("run:{id}"), ChildAction::Restart).await.expect("coordinator restarted");
    // The new incarnation holds the run: nothing past Development is touched.
    eventually(Duration::from_secs(10), "the restarted coordinator is live", async || {
        core.apply_verb(TENANT, id, Verb::Pause, &operator()).await.is_ok()
    })
    .await;
    assert_eq!(stored(&store, id).await.status, RunStatus::Paused);
    assert!(versions(&core, Environment::Qa, "kmod-pause").await.iter().all(Option::is_none));

    core.apply_verb(TENANT, id, Verb::Resume, &operator()).await.expect("resume accepted");
    let run = finished(&store, id, Duration::from_secs(30)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
}

#[actix::test]
async fn an_abort_during_validation_ends_cancelled_with_nodes_restored() {
    let (core, store) = start_memory(3).await;
    let run = core
        .create_deployment(TENANT, request("kmod-val", "1.0.0", Environment::Development, &[SLOW]), &operator())
        .await
        .unwrap();
    let id = run.execution_id;
    eventually(Duration::from_secs(10), "validation starts", async || {
        stored(&store, id).await.checkpoint == Checkpoint::Validation
    })
    .await;

    core.apply_verb(TENANT, id, Verb::Abort, &operator()).await.expect("abort accepted during validation");

    let run = finished(&store, id, Duration::from_secs(20)).await;
    assert_eq!(run.status, RunStatus::Cancelled, "{run:#?}");
    let now = versions(&core, Environment::Development, "kmod-val").await;
    assert!(now.iter().all(Option::is_none), "nodes left on the new version: {now:?}");
}
