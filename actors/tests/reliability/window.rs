//! The memory store keeps a window of finished runs per tenant, with their
//! events; older ones are forgotten, active ones never.

use std::sync::Arc;
use std::time::Duration;

use hotswap_actors::domain::{Environment, RunStatus};
use hotswap_actors::store::{MemoryStore, RunFilter, SharedStore};

use crate::harness::{finished, operator, request, settings, start, TENANT};

#[actix::test]
async fn only_the_newest_finished_runs_and_their_events_are_kept() {
    let store: SharedStore = Arc::new(MemoryStore::with_finished_window(3));
    let core = start(store.clone(), settings(1)).await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        let req = request("kmod-window", &format!("{i}.0.0"), Environment::Development, &[]);
        let run = core.create_deployment(TENANT, req, &operator()).await.unwrap();
        assert_eq!(finished(&store, run.execution_id, Duration::from_secs(15)).await.status, RunStatus::Succeeded);
        ids.push(run.execution_id);
    }
    for old in &ids[..2] {
        assert!(store.get_run(TENANT, *old).await.unwrap().is_none(), "run {old} outlived the window");
        assert!(store.run_events(TENANT, *old).await.unwrap().is_empty(), "run {old}'s events outlived it");
    }
    for kept in &ids[2..] {
        assert!(store.get_run(TENANT, *kept).await.unwrap().is_some(), "run {kept} was forgotten too early");
        assert!(!store.run_events(TENANT, *kept).await.unwrap().is_empty());
    }
    // The list knows only the kept runs, newest first, and counts only them.
    let listed = store.list_runs(TENANT, &RunFilter { page: 1, page_size: 10, ..RunFilter::default() }).await.unwrap();
    let newest_first: Vec<_> = ids[2..].iter().rev().copied().collect();
    assert_eq!(listed.items.iter().map(|s| s.execution_id).collect::<Vec<_>>(), newest_first);
    assert_eq!(listed.total, 3);
}
