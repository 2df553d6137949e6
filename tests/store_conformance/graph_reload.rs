//! A graph service that missed another instance's writes (its notices
//! lost while Redis was away) catches up once its indexes are marked stale,
//! on every store; writes queued meanwhile are not lost.

use super::graph::props;
use super::*;
use hotswap_actors::domain::AuditActor;
use hotswap_actors::graph::{GraphError, GraphService, NewEntity};

/// Two services on one store stand for two instances. The one that missed
/// the other's write (its notice lost) shows it once its indexes are marked
/// stale; writes started meanwhile land in the index that replaces the
/// stale one, which then agrees with a fresh load.
async fn a_stale_graph_loads_again_and_writes_queued_on_it_follow(store: SharedStore) {
    let t = tenant();
    let user = AuditActor::user(Uuid::new_v4(), "bob");
    let svc = |name: String| NewEntity {
        entity_type: "Svc".into(),
        properties: props(json!({ "name": name })),
        reference: None,
    };
    let (a, b) = (GraphService::new(store.clone()), GraphService::new(store.clone()));
    let before = b.statistics(t).await.unwrap().entity_count;
    let (made, _) = a.create(t, &user, vec![svc("from-a".into())], vec![]).await.unwrap();
    assert!(matches!(b.entity(t, made[0].id).await, Err(GraphError::NotFound(_))), "b has not heard of it");

    b.forget_all();
    let writes = (0..5).map(|i| b.create(t, &user, vec![svc(format!("from-b-{i}"))], vec![]));
    for written in futures::future::join_all(writes).await {
        written.unwrap();
    }
    assert_eq!(b.entity(t, made[0].id).await.unwrap().properties["name"], "from-a");
    let after = b.statistics(t).await.unwrap();
    assert_eq!(after.entity_count, before + 6, "a's entity and b's five");
    let fresh = GraphService::new(store.clone()).statistics(t).await.unwrap();
    assert_eq!((after.entity_count, after.entities_by_type), (fresh.entity_count, fresh.entities_by_type));
}

conformance!(a_stale_graph_loads_again_and_writes_queued_on_it_follow);
