//! Nodes: registration keeps what a node already runs, module slots and node
//! lists come back in a stable order, and cluster samples age out.

use super::*;

async fn register_node_keeps_existing_state(store: SharedStore) {
    let t = tenant();
    let n = node(t, "node-01", Environment::Staging);
    assert_eq!(store.register_node(&n).await.unwrap(), n);
    assert_eq!(store.get_node(t, n.node_id).await.unwrap(), Some(n.clone()));

    store.set_module_slots(t, n.node_id, "kmod-new", &slots("3.0.0")).await.unwrap();
    let stored = store.get_node(t, n.node_id).await.unwrap().unwrap();
    assert_eq!(stored.modules.len(), 2);
    assert_eq!(stored.modules["kmod-new"], slots("3.0.0"));
    assert!(stored.updated_at > n.updated_at);

    // Registering again, with other details, changes nothing.
    let mut again = n.clone();
    again.hostname = "renamed".into();
    again.environment = Environment::Production;
    again.modules.clear();
    again.updated_at = at(999, 0);
    assert_eq!(store.register_node(&again).await.unwrap(), stored);
    assert_eq!(store.get_node(t, n.node_id).await.unwrap(), Some(stored));

    // A node registered with no modules, and empty slots kept as given.
    let mut bare = node(t, "node-02", Environment::Staging);
    bare.modules.clear();
    assert_eq!(store.register_node(&bare).await.unwrap(), bare);
    let mut odd = node(t, "node-03", Environment::Staging);
    odd.modules.insert("kmod-empty".into(), ModuleSlots::default());
    assert_eq!(store.register_node(&odd).await.unwrap(), odd);
    assert_eq!(store.get_node(t, odd.node_id).await.unwrap(), Some(odd));
    assert_eq!(store.get_node(t, Uuid::new_v4()).await.unwrap(), None);
}

async fn module_slots_in_order_with_defaults(store: SharedStore) {
    let t = tenant();
    let nodes: Vec<NodeRecord> = (0..3).map(|i| node(t, &format!("n{i}"), Environment::Qa)).collect();
    for n in &nodes {
        store.register_node(n).await.unwrap();
    }
    store.set_module_slots(t, nodes[0].node_id, "kmod-m", &slots("1.0")).await.unwrap();
    store.set_module_slots(t, nodes[1].node_id, "kmod-m", &slots("1.1")).await.unwrap();
    let missing = Uuid::new_v4();
    let asked = [nodes[2].node_id, missing, nodes[1].node_id, nodes[0].node_id, nodes[1].node_id];
    assert_eq!(
        store.module_slots(t, &asked, "kmod-m").await.unwrap(),
        vec![ModuleSlots::default(), ModuleSlots::default(), slots("1.1"), slots("1.0"), slots("1.1")]
    );
    assert!(store.module_slots(t, &[], "kmod-m").await.unwrap().is_empty());
    // Other modules on the same nodes are untouched.
    assert_eq!(store.module_slots(t, &[nodes[0].node_id], "netfilter-x").await.unwrap(), vec![slots("2.0.0")]);

    // Overwrite, then empty slots remove the module from the node.
    store.set_module_slots(t, nodes[0].node_id, "kmod-m", &slots("1.2")).await.unwrap();
    assert_eq!(store.module_slots(t, &[nodes[0].node_id], "kmod-m").await.unwrap(), vec![slots("1.2")]);
    store.set_module_slots(t, nodes[0].node_id, "kmod-m", &ModuleSlots::default()).await.unwrap();
    assert_eq!(store.module_slots(t, &[nodes[0].node_id], "kmod-m").await.unwrap(), vec![ModuleSlots::default()]);
    assert!(!store.get_node(t, nodes[0].node_id).await.unwrap().unwrap().modules.contains_key("kmod-m"));

    assert!(matches!(store.set_module_slots(t, missing, "kmod-m", &slots("1.0")).await, Err(StoreError::NotFound(_))));

    // Thousands of ids in one call.
    let many: Vec<Uuid> = (0..3_000).map(|i| if i % 1_000 == 7 { nodes[1].node_id } else { Uuid::new_v4() }).collect();
    let answer = store.module_slots(t, &many, "kmod-m").await.unwrap();
    assert_eq!(answer.len(), many.len());
    for (id, s) in many.iter().zip(&answer) {
        let want = if *id == nodes[1].node_id { slots("1.1") } else { ModuleSlots::default() };
        assert_eq!(s, &want);
    }
}

async fn nodes_in_sorted_by_hostname(store: SharedStore) {
    let t = tenant();
    let names = ["web-10", "web-9", "Web-1", "äther", "web-1", "a", "ab", "web-1 ", "zz", "Z"];
    for name in names {
        store.register_node(&node(t, name, Environment::Production)).await.unwrap();
    }
    store.register_node(&node(t, "elsewhere", Environment::Qa)).await.unwrap();
    let found = store.nodes_in(t, Environment::Production).await.unwrap();
    let mut expected: Vec<&str> = names.to_vec();
    expected.sort();
    assert_eq!(found.iter().map(|n| n.hostname.as_str()).collect::<Vec<_>>(), expected);
    assert!(found.iter().all(|n| n.environment == Environment::Production && n.modules.len() == 1));
    assert_eq!(store.nodes_in(t, Environment::Qa).await.unwrap().len(), 1);
    assert!(store.nodes_in(t, Environment::Staging).await.unwrap().is_empty());
}

async fn forgotten_nodes_leave_with_their_slots_and_agents_nodes_stay(store: SharedStore) {
    let t = tenant();
    let kept = node(t, "node-01", Environment::Qa);
    let former: Vec<NodeRecord> = (2..5).map(|i| node(t, &format!("node-{i:02}"), Environment::Qa)).collect();
    for n in std::iter::once(&kept).chain(&former) {
        store.register_node(n).await.unwrap();
    }
    let ids: Vec<Uuid> = former.iter().map(|n| n.node_id).collect();
    // Another tenant's id is not this tenant's node; an unknown id is nothing.
    assert_eq!(store.forget_nodes(tenant(), &ids).await.unwrap(), 0);
    let with_unknown = [ids.clone(), vec![Uuid::new_v4()]].concat();
    assert_eq!(store.forget_nodes(t, &with_unknown).await.unwrap(), 3);
    let left = store.nodes_in(t, Environment::Qa).await.unwrap();
    assert_eq!(left.iter().map(|n| n.hostname.as_str()).collect::<Vec<_>>(), ["node-01"]);
    assert_eq!(store.get_node(t, ids[0]).await.unwrap(), None);
    assert_eq!(store.module_slots(t, &ids[..1], "netfilter-x").await.unwrap(), vec![ModuleSlots::default()]);
    // Registered again, a forgotten node starts bare.
    let mut again = former[0].clone();
    again.modules.clear();
    assert_eq!(store.register_node(&again).await.unwrap(), again);
    assert_eq!(store.forget_nodes(t, &[]).await.unwrap(), 0);
}

async fn samples_retention_and_range(store: SharedStore) {
    let t = tenant();
    let env = Environment::Staging;
    let times: Vec<DateTime<Utc>> = (0..10).map(|i| at(i, 500 + i as u32)).collect();
    for (i, when) in times.iter().enumerate() {
        store.record_sample(&sample(t, env, *when, i as u32), 4).await.unwrap();
    }
    // Other series are trimmed on their own.
    store.record_sample(&sample(t, Environment::Qa, times[0], 100), 4).await.unwrap();

    let kept = store.samples(t, env, at(-1_000, 0), at(1_000, 0)).await.unwrap();
    assert_eq!(kept, (6..10).map(|i| sample(t, env, times[i], i as u32)).collect::<Vec<_>>());

    // Bounds are inclusive, to the nanosecond.
    let inside = store.samples(t, env, times[7], times[8]).await.unwrap();
    assert_eq!(inside.iter().map(|s| s.healthy_nodes).collect::<Vec<_>>(), vec![7, 8]);
    let just_after = times[7] + TimeDelta::nanoseconds(1);
    let just_before = times[8] - TimeDelta::nanoseconds(1);
    assert_eq!(store.samples(t, env, just_after, times[9]).await.unwrap().len(), 2);
    assert!(store.samples(t, env, just_after, just_before).await.unwrap().is_empty());
    assert!(store.samples(t, env, times[9], times[6]).await.unwrap().is_empty());

    // Insertion order is kept, and a retention of 0 keeps one.
    store.record_sample(&sample(t, env, times[0], 42), 4).await.unwrap();
    let order: Vec<u32> =
        store.samples(t, env, at(-1_000, 0), at(1_000, 0)).await.unwrap().iter().map(|s| s.healthy_nodes).collect();
    assert_eq!(order, vec![7, 8, 9, 42]);
    store.record_sample(&sample(t, env, times[5], 43), 0).await.unwrap();
    assert_eq!(store.samples(t, env, at(-1_000, 0), at(1_000, 0)).await.unwrap(), vec![sample(t, env, times[5], 43)]);
    assert_eq!(store.samples(t, Environment::Qa, at(-1_000, 0), at(1_000, 0)).await.unwrap().len(), 1);
}

/// Every node holding a module, across environments, in promotion order
/// then by hostname; other tenants' nodes and other modules are left out.
async fn module_placements_across_environments(store: SharedStore) {
    let t = tenant();
    let placed = [("p-b", Environment::Production), ("q-z", Environment::Qa), ("q-a", Environment::Qa)];
    for (host, env) in placed {
        let n = node(t, host, env);
        store.register_node(&n).await.unwrap();
        store.set_module_slots(t, n.node_id, "kmod-placed", &slots(&format!("1.0-{host}"))).await.unwrap();
    }
    store.register_node(&node(t, "d-none", Environment::Development)).await.unwrap();
    let elsewhere = node(tenant(), "q-other-tenant", Environment::Qa);
    store.register_node(&elsewhere).await.unwrap();
    store.set_module_slots(elsewhere.tenant_id, elsewhere.node_id, "kmod-placed", &slots("9")).await.unwrap();
    let found = store.module_placements(t, "kmod-placed").await.unwrap();
    let expected = vec![
        (Environment::Qa, "q-a".to_string(), slots("1.0-q-a")),
        (Environment::Qa, "q-z".to_string(), slots("1.0-q-z")),
        (Environment::Production, "p-b".to_string(), slots("1.0-p-b")),
    ];
    assert_eq!(found, expected);
    assert!(store.module_placements(t, "kmod-nowhere").await.unwrap().is_empty());

    // The versions held, active or previous, each once; standby slots and
    // other tenants' nodes do not count.
    let mut held = store.versions_held(t, "kmod-placed").await.unwrap();
    held.sort();
    assert_eq!(held, vec!["0.9.9", "1.0-p-b", "1.0-q-a", "1.0-q-z"]);
    let standby_only = ModuleSlots { active: None, previous: None, standby: Some(slot("7.0.0")) };
    let d = node(t, "d-standby", Environment::Development);
    store.register_node(&d).await.unwrap();
    store.set_module_slots(t, d.node_id, "kmod-standby", &standby_only).await.unwrap();
    assert!(store.versions_held(t, "kmod-standby").await.unwrap().is_empty());
    assert!(store.versions_held(t, "kmod-nowhere").await.unwrap().is_empty());
}

conformance!(
    module_placements_across_environments,
    register_node_keeps_existing_state,
    module_slots_in_order_with_defaults,
    nodes_in_sorted_by_hostname,
    forgotten_nodes_leave_with_their_slots_and_agents_nodes_stay,
    samples_retention_and_range,
);
