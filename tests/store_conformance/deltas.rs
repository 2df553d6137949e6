//! A run's node changes are appended save by save (PostgreSQL keeps them in
//! a table of their own rather than in the record), and a wave's node writes
//! go in one batch: both read back exactly as written, on every back-end.

use super::*;
use hotswap_actors::store::SlotWrite;

fn change(i: usize) -> NodeChange {
    NodeChange {
        node_id: Uuid::from_u128(i as u128 + 1),
        hostname: format!("qa-node-{i:04}"),
        environment: if i.is_multiple_of(2) { Environment::Qa } else { Environment::Development },
        before: if i.is_multiple_of(3) { ModuleSlots::default() } else { slots(&format!("0.{i}.0")) },
    }
}

async fn changes_appended_over_many_saves_round_trip(store: SharedStore) {
    let t = tenant();
    let mut r = run(t, "kmod-deltas", at(0, 0), RunStatus::Running);
    r.changes = std::sync::Arc::new(Vec::new());
    store.create_run(&r, &[]).await.unwrap();
    // Twenty saves, each adding a wave of changes; some add none.
    for save in 1..=20usize {
        r.revision += 1;
        let from = r.changes.len();
        let adds = if save.is_multiple_of(5) { 0 } else { 7 };
        std::sync::Arc::make_mut(&mut r.changes).extend((from..from + adds).map(change));
        store.save_run(&r, &[event(&r, "WaveCompleted", save as u32)]).await.unwrap();
        assert_eq!(store.get_run(t, r.execution_id).await.unwrap().as_ref(), Some(&r), "after save {save}");
    }
    assert_eq!(r.changes.len(), 16 * 7);
    let in_flight = store.runs_in_flight().await.unwrap();
    let found = in_flight.iter().find(|x| x.execution_id == r.execution_id).expect("the run is in flight");
    assert_eq!(found, &r);
    // Finishing keeps every change for a later manual rollback.
    let mut done = finished(&r, RunStatus::Succeeded);
    done.checkpoint = Checkpoint::Done;
    store.save_run(&done, &[]).await.unwrap();
    assert_eq!(store.get_run(t, r.execution_id).await.unwrap(), Some(done));
}

async fn a_batch_of_slot_writes_reads_back_like_single_writes(store: SharedStore) {
    let t = tenant();
    let nodes: Vec<_> = (0..5).map(|i| node(t, &format!("batch-node-{i}"), Environment::Qa)).collect();
    for n in &nodes {
        store.register_node(n).await.unwrap();
    }
    let write = |n: &NodeRecord, module: &str, s: ModuleSlots| SlotWrite {
        tenant: t,
        node_id: n.node_id,
        module: module.into(),
        slots: s,
        fence: None,
    };
    let mut writes: Vec<SlotWrite> = nodes.iter().map(|n| write(n, "kmod-batch", slots("2.0.0"))).collect();
    // A later write of the same node and module wins, as it would one by one.
    writes.push(write(&nodes[0], "kmod-batch", slots("2.0.1")));
    // Empty slots remove the module.
    writes.push(write(&nodes[1], "kmod-gone", ModuleSlots::default()));
    store.set_module_slots(t, nodes[1].node_id, "kmod-gone", &slots("1.0.0")).await.unwrap();
    store.set_module_slots_batch(&writes).await.unwrap();
    let ids: Vec<_> = nodes.iter().map(|n| n.node_id).collect();
    let read = store.module_slots(t, &ids, "kmod-batch").await.unwrap();
    assert_eq!(read[0], slots("2.0.1"));
    assert!(read[1..].iter().all(|s| *s == slots("2.0.0")), "{read:?}");
    let second = store.get_node(t, nodes[1].node_id).await.unwrap().unwrap();
    assert!(!second.modules.contains_key("kmod-gone"));
    // A batch naming a node that is not stored is refused.
    let stranger = SlotWrite {
        tenant: t,
        node_id: Uuid::new_v4(),
        module: "kmod-batch".into(),
        slots: slots("9.0.0"),
        fence: None,
    };
    let refused = store.set_module_slots_batch(&[write(&nodes[2], "kmod-batch", slots("3.0.0")), stranger]).await;
    assert!(matches!(refused, Err(StoreError::NotFound(_))), "{refused:?}");
}

conformance!(changes_appended_over_many_saves_round_trip, a_batch_of_slot_writes_reads_back_like_single_writes);

/// On PostgreSQL the record column no longer carries the changes: its size
/// stays flat however many nodes the run has changed, and the changes are
/// rows of their own, one per change.
#[actix::test]
async fn postgres_checkpoints_do_not_grow_with_the_changes() {
    use diesel::sql_types::{BigInt, Uuid as SqlUuid};
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    #[derive(diesel::QueryableByName)]
    struct Sizes {
        #[diesel(sql_type = BigInt)]
        record_bytes: i64,
        #[diesel(sql_type = BigInt)]
        change_rows: i64,
    }

    let Some(db) = support::TestDb::migrated("deltas::postgres_checkpoints_do_not_grow_with_the_changes").await else {
        return;
    };
    let store: SharedStore = Arc::new(db.store().await);
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    let t = tenant();
    let mut r = run(t, "kmod-flat", at(0, 0), RunStatus::Running);
    r.changes = std::sync::Arc::new(Vec::new());
    store.create_run(&r, &[]).await.unwrap();
    let mut record_sizes = Vec::new();
    for _ in 0..10 {
        r.revision += 1;
        let from = r.changes.len();
        std::sync::Arc::make_mut(&mut r.changes).extend((from..from + 100).map(change));
        store.save_run(&r, &[]).await.unwrap();
        let sizes: Sizes = diesel::sql_query(
            "SELECT octet_length(record::text)::bigint AS record_bytes, \
                    (SELECT count(*) FROM run_node_changes c WHERE c.tenant_id = r.tenant_id \
                       AND c.execution_id = r.execution_id) AS change_rows \
             FROM runs r WHERE tenant_id = $1 AND execution_id = $2",
        )
        .bind::<SqlUuid, _>(t)
        .bind::<SqlUuid, _>(r.execution_id)
        .get_result(&mut conn)
        .await
        .unwrap();
        assert_eq!(sizes.change_rows as usize, r.changes.len());
        record_sizes.push(sizes.record_bytes);
    }
    // Only the revision's digits may change its length.
    let (least, most) = (record_sizes.iter().min().unwrap(), record_sizes.iter().max().unwrap());
    assert!(most - least <= 2, "the record grows with the changes: {record_sizes:?}");
    assert_eq!(store.get_run(t, r.execution_id).await.unwrap(), Some(r));
}
