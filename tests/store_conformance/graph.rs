//! The knowledge graph on every store: round trips, atomic writes, cascades,
//! tenant isolation, the schema; and the service over each store: every
//! filter operator, each direction, paging, cache invalidation, Dijkstra
//! against a brute-force check on random small graphs, and the actors' sync
//! (runs, rollbacks, nodes, registry) agreeing with a full rebuild.

use super::*;
use hotswap_actors::domain::{
    AuditActor, AuditCategory, AuditQuery, GraphChange, GraphEntity, GraphRelationship, ModuleDescriptor,
    ModuleVersion, NewAuditEntry, ResourceRequirements, SignatureAlgorithm,
};
use hotswap_actors::graph::query::{Direction, Filter, MatchQuery, Operator, PathQuery, RelationshipPattern};
use hotswap_actors::graph::{GraphError, GraphService, GraphSyncStore, NewEntity, NewRelationship};
use serde_json::{Map, Value};
use users::micros;

pub(super) fn props(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn ent(tenant: TenantId, kind: &str, p: Value) -> GraphEntity {
    let now = micros(at(5, 123_456_789));
    GraphEntity {
        tenant_id: tenant,
        id: Uuid::new_v4(),
        entity_type: kind.into(),
        properties: props(p),
        version: 1,
        created_at: now,
        updated_at: now,
        created_by: NASTY[1].into(),
    }
}

fn rel(tenant: TenantId, kind: &str, a: Uuid, b: Uuid, weight: f64) -> GraphRelationship {
    GraphRelationship {
        tenant_id: tenant,
        id: Uuid::new_v4(),
        relationship_type: kind.into(),
        source_id: a,
        target_id: b,
        properties: props(json!({ "nasty": NASTY, "w": 0.1 + 0.2 })),
        weight,
        directed: true,
        created_at: micros(at(6, 1)),
        created_by: "alice".into(),
    }
}

fn audit(tenant: TenantId) -> NewAuditEntry {
    NewAuditEntry::new(tenant, AuditActor::user(Uuid::new_v4(), "alice"), AuditCategory::Administration, "GraphTest")
}

fn sorted(mut s: hotswap_actors::domain::GraphSnapshot) -> (Vec<GraphEntity>, Vec<GraphRelationship>) {
    s.entities.sort_by_key(|e| e.id);
    s.relationships.sort_by_key(|r| r.id);
    (s.entities, s.relationships)
}

async fn graph_round_trip_cascade_and_atomicity(store: SharedStore) {
    let t = tenant();
    let mut a = ent(t, "Team", json!({ "name": NASTY[0], "all": NASTY, "n": 1e-7, "nested": { "x": [1, null] } }));
    let b = ent(t, "Service", json!({}));
    let c = ent(t, "Service", json!({ "k": true }));
    let ab = rel(t, "OWNS", a.id, b.id, 0.0);
    let bc = rel(t, "USES", b.id, c.id, 2.5);
    let change = GraphChange {
        upsert_entities: vec![a.clone(), b.clone(), c.clone()],
        upsert_relationships: vec![ab.clone(), bc.clone()],
        ..GraphChange::default()
    };
    store.write_graph(t, &change, Some(&audit(t))).await.unwrap();
    let (entities, rels) = sorted(store.load_graph(t).await.unwrap());
    let mut want = vec![a.clone(), b.clone(), c.clone()];
    want.sort_by_key(|e| e.id);
    assert_eq!(entities, want);
    assert_eq!(rels.len(), 2);
    assert_eq!(store.graph_entity(t, a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.graph_relationships(t, &[bc.id, Uuid::new_v4()]).await.unwrap(), vec![bc.clone()]);
    let mut some = store.graph_entities(t, &[c.id, Uuid::new_v4(), a.id]).await.unwrap();
    some.sort_by_key(|e| e.id);
    let mut want_some = vec![a.clone(), c.clone()];
    want_some.sort_by_key(|e| e.id);
    assert_eq!(some, want_some, "the ids that exist, the others left out");
    assert!(store.graph_entities(tenant(), &[a.id]).await.unwrap().is_empty(), "another tenant's ids find nothing");
    assert!(store.graph_entities(t, &[]).await.unwrap().is_empty());
    let entries = store.list_audit(t, &AuditQuery { limit: 10, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(entries.items.len(), 1, "the user's write is audited with it");

    // Upsert by id replaces.
    a.properties = props(json!({ "name": "renamed" }));
    a.version = 2;
    store.write_graph(t, &GraphChange { upsert_entities: vec![a.clone()], ..Default::default() }, None).await.unwrap();
    assert_eq!(store.graph_entity(t, a.id).await.unwrap().unwrap().properties["name"], "renamed");

    // Without an audit entry or deletions a change is one statement on
    // PostgreSQL: a relationship may still name entities written beside it.
    let (e, f) = (ent(t, "Team", json!({})), ent(t, "Service", json!({})));
    let ef = rel(t, "OWNS", e.id, f.id, 1.0);
    let together = GraphChange {
        upsert_entities: vec![e.clone(), f.clone()],
        upsert_relationships: vec![ef.clone()],
        ..Default::default()
    };
    store.write_graph(t, &together, None).await.unwrap();
    assert_eq!(store.graph_relationships(t, &[ef.id]).await.unwrap(), vec![ef.clone()]);
    // Deletions that name nothing the change writes go in that statement too.
    let g = ent(t, "Service", json!({}));
    let fg = rel(t, "USES", f.id, g.id, 1.0);
    let moved = GraphChange {
        upsert_entities: vec![g.clone()],
        upsert_relationships: vec![fg.clone()],
        delete_relationships: vec![ef.id],
        delete_entities: vec![e.id],
    };
    store.write_graph(t, &moved, None).await.unwrap();
    assert_eq!(store.graph_entity(t, e.id).await.unwrap(), None);
    assert!(store.graph_relationships(t, &[ef.id]).await.unwrap().is_empty());
    assert_eq!(store.graph_relationships(t, &[fg.id]).await.unwrap(), vec![fg.clone()]);
    // A change that deletes what it upserts ends without it, as upserts
    // first and deletions after them leave it (on PostgreSQL a transaction).
    let x = ent(t, "Service", json!({}));
    let both = GraphChange { upsert_entities: vec![x.clone()], delete_entities: vec![x.id], ..Default::default() };
    store.write_graph(t, &both, None).await.unwrap();
    assert_eq!(store.graph_entity(t, x.id).await.unwrap(), None);
    store.write_graph(t, &GraphChange { delete_entities: vec![f.id, g.id], ..Default::default() }, None).await.unwrap();

    // All or nothing: a relationship to a missing entity refuses the whole change.
    let d = ent(t, "Team", json!({}));
    let bad = GraphChange {
        upsert_entities: vec![d.clone()],
        upsert_relationships: vec![rel(t, "OWNS", d.id, Uuid::new_v4(), 1.0)],
        ..Default::default()
    };
    assert!(matches!(store.write_graph(t, &bad, None).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.graph_entity(t, d.id).await.unwrap(), None);

    // Deleting an entity deletes its relationships.
    store.write_graph(t, &GraphChange { delete_entities: vec![b.id], ..Default::default() }, None).await.unwrap();
    let (entities, rels) = sorted(store.load_graph(t).await.unwrap());
    assert_eq!(entities.len(), 2);
    assert!(rels.is_empty());
}

async fn graph_tenant_isolation(store: SharedStore) {
    let (t, other) = (tenant(), tenant());
    let a = ent(t, "Team", json!({}));
    store.write_graph(t, &GraphChange { upsert_entities: vec![a.clone()], ..Default::default() }, None).await.unwrap();
    assert_eq!(store.graph_entity(other, a.id).await.unwrap(), None);
    assert!(store.load_graph(other).await.unwrap().entities.is_empty());
    // Another tenant cannot hang a relationship on it, nor write in its name.
    let mine = ent(other, "Team", json!({}));
    let sneaky = GraphChange {
        upsert_entities: vec![mine.clone()],
        upsert_relationships: vec![rel(other, "OWNS", mine.id, a.id, 1.0)],
        ..Default::default()
    };
    assert!(store.write_graph(other, &sneaky, None).await.is_err());
    let forged = GraphChange { upsert_entities: vec![ent(t, "Team", json!({}))], ..Default::default() };
    assert!(store.write_graph(other, &forged, None).await.is_err());
    // Deleting by id in the wrong tenant deletes nothing.
    store.write_graph(other, &GraphChange { delete_entities: vec![a.id], ..Default::default() }, None).await.unwrap();
    assert!(store.graph_entity(t, a.id).await.unwrap().is_some());
}

async fn graph_schema_round_trip(store: SharedStore) {
    let t = tenant();
    assert_eq!(store.graph_schema(t).await.unwrap(), None);
    let mut schema = hotswap_actors::graph::schema::builtin_schema(t);
    schema.version = "1.2.0".into();
    schema.updated_at = micros(schema.updated_at);
    store.save_graph_schema(&schema, &audit(t)).await.unwrap();
    assert_eq!(store.graph_schema(t).await.unwrap(), Some(schema));
    assert_eq!(store.graph_schema(tenant()).await.unwrap(), None);
}

fn filter(property: &str, operator: Operator, value: Value) -> Filter {
    Filter { property: property.into(), operator, value }
}

async fn names(service: &GraphService, t: TenantId, q: MatchQuery) -> Vec<String> {
    let answer = service.match_entities(t, q).await.unwrap();
    let mut v: Vec<String> =
        answer.entities.iter().map(|e| e.properties["name"].as_str().unwrap_or_default().to_string()).collect();
    v.sort();
    v
}

async fn graph_filters_directions_paging_and_cache(store: SharedStore) {
    let t = tenant();
    let service = GraphService::new(store.clone());
    let user = AuditActor::user(Uuid::new_v4(), "bob");
    let new = |name: &str, size: Value| NewEntity {
        entity_type: "Svc".into(),
        properties: props(json!({ "name": name, "size": size, "tags": [name.len()] })),
        reference: Some(name.into()),
    };
    let link = |a: &str, b: &str, w: f64| NewRelationship {
        relationship_type: "CALLS".into(),
        source: hotswap_actors::graph::EndRef::Ref(a.into()),
        target: hotswap_actors::graph::EndRef::Ref(b.into()),
        weight: Some(w),
        directed: None,
        properties: Map::new(),
    };
    service
        .create(
            t,
            &user,
            vec![new("a", json!(1)), new("bb", json!(2)), new("ccc", json!(3)), new("dddd", Value::Null)],
            vec![link("a", "bb", 1.0), link("bb", "ccc", 4.0), link("a", "ccc", 9.0)],
        )
        .await
        .unwrap();
    // A fresh service loads what the first wrote.
    let service = GraphService::new(store.clone());
    let q = |filters: Vec<Filter>| MatchQuery { entity_type: Some("Svc".into()), filters, ..MatchQuery::default() };
    let cases: Vec<(Filter, Vec<&str>)> = vec![
        (filter("name", Operator::Eq, json!("bb")), vec!["bb"]),
        (filter("name", Operator::Ne, json!("bb")), vec!["a", "ccc", "dddd"]),
        (filter("size", Operator::Lt, json!(2)), vec!["a"]),
        (filter("size", Operator::Le, json!(2)), vec!["a", "bb"]),
        (filter("size", Operator::Gt, json!(2)), vec!["ccc"]),
        (filter("size", Operator::Ge, json!(2.0)), vec!["bb", "ccc"]),
        (filter("name", Operator::In, json!(["a", "dddd"])), vec!["a", "dddd"]),
        (filter("tags", Operator::Contains, json!(3)), vec!["ccc"]),
        (filter("name", Operator::StartsWith, json!("c")), vec!["ccc"]),
        (filter("size", Operator::Exists, json!(false)), vec!["dddd"]),
        (filter("name", Operator::Regex, json!("^.{2,3}$")), vec!["bb", "ccc"]),
    ];
    for (f, want) in cases {
        assert_eq!(names(&service, t, q(vec![f.clone()])).await, want, "{f:?}");
    }
    let pattern = |direction: Direction| MatchQuery {
        entity_type: Some("Svc".into()),
        relationships: vec![RelationshipPattern {
            relationship_type: Some("CALLS".into()),
            direction,
            ..RelationshipPattern::default()
        }],
        ..MatchQuery::default()
    };
    assert_eq!(names(&service, t, pattern(Direction::Outgoing)).await, ["a", "bb"]);
    assert_eq!(names(&service, t, pattern(Direction::Incoming)).await, ["bb", "ccc"]);
    assert_eq!(names(&service, t, pattern(Direction::Both)).await, ["a", "bb", "ccc"]);

    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = service
            .match_entities(
                t,
                MatchQuery { entity_type: Some("Svc".into()), limit: Some(3), cursor, ..MatchQuery::default() },
            )
            .await
            .unwrap();
        assert_eq!(page.total_count, 4);
        all.extend(page.entities.iter().map(|e| e.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(all.len(), 4);

    let first = service.match_entities(t, q(vec![])).await.unwrap();
    assert!(!first.from_cache);
    assert!(service.match_entities(t, q(vec![])).await.unwrap().from_cache);
    service
        .create(
            t,
            &user,
            vec![NewEntity { entity_type: "Svc".into(), properties: Map::new(), reference: None }],
            vec![],
        )
        .await
        .unwrap();
    let after = service.match_entities(t, q(vec![])).await.unwrap();
    assert!(!after.from_cache);
    assert_eq!(after.total_count, 5);

    // Schema validation lists everything; another tenant sees nothing.
    let bad = NewEntity { entity_type: "Node".into(), properties: props(json!({ "x y": 1 })), reference: None };
    match service.create(t, &user, vec![bad], vec![]).await {
        Err(GraphError::Invalid(problems)) => assert_eq!(problems.len(), 4, "{problems:?}"),
        other => panic!("{other:?}"),
    }
    assert!(service.match_entities(tenant(), q(vec![])).await.unwrap().entities.is_empty());
    assert!(matches!(service.entity(tenant(), first.entities[0].id).await, Err(GraphError::NotFound(_))));
}

/// Floyd–Warshall over the same edges, as the brute-force reference.
fn brute_force(n: usize, edges: &[(usize, usize, f64, bool)], direction: Direction) -> Vec<Vec<f64>> {
    let mut d = vec![vec![f64::INFINITY; n]; n];
    for (i, row) in d.iter_mut().enumerate() {
        row[i] = 0.0;
    }
    for &(a, b, w, directed) in edges {
        let forward = direction != Direction::Incoming || !directed;
        let backward = direction != Direction::Outgoing || !directed;
        if forward && w < d[a][b] {
            d[a][b] = w;
        }
        if backward && w < d[b][a] {
            d[b][a] = w;
        }
    }
    for k in 0..n {
        for i in 0..n {
            for j in 0..n {
                if d[i][k] + d[k][j] < d[i][j] {
                    d[i][j] = d[i][k] + d[k][j];
                }
            }
        }
    }
    d
}

async fn graph_shortest_paths_match_brute_force_on_random_graphs(store: SharedStore) {
    // A small deterministic generator: the same graphs on every run and store.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..16 {
        let t = tenant();
        // Every other graph is all directed: walks then skip the edges stored
        // the other way round, a path of its own in the index.
        let all_directed = round % 2 == 0;
        let n = 2 + (next() % 7) as usize;
        let m = (next() % 16) as usize;
        let entities: Vec<GraphEntity> = (0..n).map(|i| ent(t, "V", json!({ "i": i }))).collect();
        let mut edges = Vec::new();
        let mut rels = Vec::new();
        for _ in 0..m {
            let (a, b) = ((next() % n as u64) as usize, (next() % n as u64) as usize);
            let w = (next() % 10) as f64 / 2.0;
            let directed = next() % 4 != 0 || all_directed;
            edges.push((a, b, w, directed));
            let mut r = rel(t, "E", entities[a].id, entities[b].id, w);
            r.directed = directed;
            rels.push(r);
        }
        let change =
            GraphChange { upsert_entities: entities.clone(), upsert_relationships: rels, ..Default::default() };
        store.write_graph(t, &change, None).await.unwrap();
        let service = GraphService::new(store.clone());
        for direction in [Direction::Outgoing, Direction::Incoming, Direction::Both] {
            let want = brute_force(n, &edges, direction);
            for (i, row) in want.iter().enumerate() {
                for (j, expected) in row.iter().enumerate() {
                    let q = PathQuery {
                        source_id: entities[i].id,
                        target_id: entities[j].id,
                        direction,
                        relationship_types: vec![],
                        max_depth: None,
                        max_paths: None,
                    };
                    match service.shortest_path(t, q).await {
                        Ok(found) => {
                            let w = found.total_weight.unwrap();
                            assert!(
                                (w - expected).abs() < 1e-9,
                                "{i}->{j} {direction:?}: {w} vs {expected} in {edges:?}"
                            );
                            // The path's own weights add up to what it claims.
                            let sum: f64 = found.relationships.iter().map(|r| r.weight).sum();
                            assert!((sum - w).abs() < 1e-9);
                            // And it is a walk from i to j that the direction allows.
                            let ids: Vec<_> = found.entities.iter().map(|e| e.id).collect();
                            assert_eq!(ids.first(), Some(&entities[i].id));
                            assert_eq!(ids.last(), Some(&entities[j].id));
                            assert_eq!(ids.len(), found.relationships.len() + 1);
                            for pair in ids.windows(2) {
                                let (a, b) = (pair[0], pair[1]);
                                let walkable = |r: &&GraphRelationship| {
                                    let forward = r.source_id == a && r.target_id == b;
                                    let backward = r.source_id == b && r.target_id == a;
                                    match direction {
                                        _ if !r.directed || direction == Direction::Both => forward || backward,
                                        Direction::Outgoing => forward,
                                        _ => backward,
                                    }
                                };
                                assert!(
                                    found.relationships.iter().any(|r| walkable(&r)),
                                    "{i}->{j} {direction:?}: no step {a} -> {b} in {:?}",
                                    found.relationships
                                );
                            }
                        }
                        Err(GraphError::NotFound(_)) => assert!(expected.is_infinite(), "{i}->{j} {direction:?}"),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
    }
}

fn module_version(t: TenantId, name: &str, v: &str, deps: &[(&str, &str)]) -> ModuleVersion {
    ModuleVersion {
        tenant_id: t,
        descriptor: ModuleDescriptor {
            name: name.into(),
            version: v.into(),
            description: String::new(),
            author: String::new(),
            dependencies: deps.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            resource_requirements: ResourceRequirements::default(),
            configuration: json!({}),
            signature_algorithm: SignatureAlgorithm::default(),
            hooks: Default::default(),
            analysis: None,
        },
        sha256: format!("{:064x}", name.len()),
        size_bytes: 1,
        storage_uri: "fs:x".into(),
        signature: None,
        signing_key_id: None,
        uploaded_by: None,
        uploaded_at: micros(at(1, 0)),
    }
}

/// A run's change of `node`, which had nothing of the module before.
fn first_change_of(node: &NodeRecord) -> NodeChange {
    NodeChange {
        node_id: node.node_id,
        hostname: node.hostname.clone(),
        environment: node.environment,
        before: ModuleSlots::default(),
    }
}

async fn graph_sync_follows_the_actors_and_rebuild_agrees(store: SharedStore) {
    let t = tenant();
    let service = GraphService::new(store.clone());
    let synced = GraphSyncStore::wrap(service.clone());
    let mut n1 = node(t, "dev-01", Environment::Development);
    n1.modules.clear();
    let n2 = node(t, "qa-01", Environment::Qa);
    synced.register_node(&n1).await.unwrap();
    synced.register_node(&n2).await.unwrap();
    synced.add_module_version(&module_version(t, "base", "1.0.0", &[]), &audit(t)).await.unwrap();
    synced.add_module_version(&module_version(t, "api", "1.0.0", &[("base", "^1")]), &audit(t)).await.unwrap();

    // A run changes n1 to base 1.0.0, then a rollback empties the slot again.
    let mut r = run(t, "base", at(10, 0), RunStatus::Running);
    r.request.version = "1.0.0".into();
    r.changes = Arc::new(vec![first_change_of(&n1)]);
    synced.create_run(&r, &[]).await.unwrap();
    synced.set_module_slots(t, n1.node_id, "base", &slots("1.0.0")).await.unwrap();
    let done = finished(&r, RunStatus::Succeeded);
    synced.save_run(&done, &[]).await.unwrap();
    let runs_base = |service: Arc<GraphService>| async move {
        let q = MatchQuery {
            entity_type: Some("Node".into()),
            relationships: vec![RelationshipPattern {
                relationship_type: Some("RUNS".into()),
                target_type: Some("ModuleVersion".into()),
                filters: vec![filter("name", Operator::Eq, json!("base"))],
                ..RelationshipPattern::default()
            }],
            ..MatchQuery::default()
        };
        service.match_entities(t, q).await.unwrap().total_count
    };
    assert_eq!(runs_base(service.clone()).await, 1);
    let run_entity = service.entity(t, r.execution_id).await.unwrap();
    assert_eq!(run_entity.properties["status"], "Succeeded");
    assert_eq!(run_entity.version, 2, "the save changed the status");
    let impact = service.impact(t, "base", "2.0.0", 100).await.unwrap();
    assert_eq!(impact.dependents[0].module, "api");
    assert_eq!(impact.dependents[0].satisfied, Some(false));

    synced.set_module_slots(t, n1.node_id, "base", &ModuleSlots::default()).await.unwrap();
    assert_eq!(runs_base(service.clone()).await, 0, "the rollback removed it");

    // Incremental and rebuilt agree; a fresh index from the store agrees too.
    let report = service.rebuild(t).await.unwrap();
    assert_eq!(report, Default::default(), "nothing to repair");
    let reloaded = GraphService::new(store.clone());
    assert_eq!(
        reloaded.statistics(t).await.unwrap().entities_by_type,
        service.statistics(t).await.unwrap().entities_by_type
    );

    // Drift (a lost write) is repaired by a rebuild.
    let lost = hotswap_actors::graph::system::runs_id(t, n2.node_id, "netfilter-x");
    store.write_graph(t, &GraphChange { delete_relationships: vec![lost], ..Default::default() }, None).await.unwrap();
    let fresh = GraphService::new(store.clone());
    let report = fresh.rebuild(t).await.unwrap();
    assert_eq!(report.relationships_written, 1, "{report:?}");
}

/// A node keeps the TOUCHED relationships of its latest runs only, through
/// the actors' sync and through a rebuild: a relationship per node per run,
/// kept for every run, grew the graph without end.
async fn graph_keeps_each_nodes_latest_runs_only(store: SharedStore) {
    use hotswap_actors::graph::run_history::RUN_HISTORY_PER_NODE;
    use hotswap_actors::graph::RelationshipDirection;
    let t = tenant();
    let service = GraphService::new(store.clone());
    let synced = GraphSyncStore::wrap(service.clone());
    let n = node(t, "dev-history", Environment::Development);
    synced.register_node(&n).await.unwrap();
    let mut runs = Vec::new();
    for i in 0..RUN_HISTORY_PER_NODE + 3 {
        let mut r = run(t, &format!("kmod-history-{i}"), at(100 + i as i64, 0), RunStatus::Running);
        r.changes = Arc::new(vec![first_change_of(&n)]);
        synced.create_run(&r, &[]).await.unwrap();
        synced.save_run(&finished(&r, RunStatus::Succeeded), &[]).await.unwrap();
        runs.push(r.execution_id);
    }
    let latest: std::collections::BTreeSet<Uuid> = runs[3..].iter().copied().collect();
    let touched_by = |service: Arc<GraphService>| async move {
        let rels = service.entity_relationships(t, n.node_id, RelationshipDirection::Incoming, Some("TOUCHED")).await;
        rels.unwrap().into_iter().map(|r| r.source_id).collect::<std::collections::BTreeSet<Uuid>>()
    };
    assert_eq!(touched_by(service.clone()).await, latest, "the node names its latest runs only");
    // What the store holds agrees (a fresh index loads it), and so does a rebuild.
    assert_eq!(touched_by(GraphService::new(store.clone())).await, latest);
    let report = service.rebuild(t).await.unwrap();
    assert_eq!(report.relationships_deleted, 0, "{report:?}");
    assert_eq!(touched_by(service.clone()).await, latest);
    // Every run stays in the graph, with what it deployed.
    for id in &runs {
        service.entity(t, *id).await.unwrap();
    }

    // A graph that holds every run's relationships (written before the bound)
    // is brought down to it by a rebuild.
    let old = hotswap_actors::graph::system::run_items(&{
        let mut r = run(t, "kmod-history-0", at(100, 0), RunStatus::Succeeded);
        r.execution_id = runs[0];
        r.changes = Arc::new(vec![first_change_of(&n)]);
        r
    });
    let stale = GraphChange { upsert_relationships: old.upsert_relationships, ..Default::default() };
    store.write_graph(t, &stale, None).await.unwrap();
    let fresh = GraphService::new(store.clone());
    assert_eq!(touched_by(fresh.clone()).await.len(), RUN_HISTORY_PER_NODE + 1);
    let report = fresh.rebuild(t).await.unwrap();
    assert_eq!(report.relationships_deleted, 1, "{report:?}");
    assert_eq!(touched_by(fresh).await, latest);
}

/// Which of `runs` the graph holds, and which runs the node's TOUCHED
/// relationships name.
async fn runs_held(
    service: Arc<GraphService>,
    t: TenantId,
    node: Uuid,
    runs: Vec<Uuid>,
) -> (std::collections::BTreeSet<Uuid>, std::collections::BTreeSet<Uuid>) {
    let mut held = std::collections::BTreeSet::new();
    for id in runs {
        if service.entity(t, id).await.is_ok() {
            held.insert(id);
        }
    }
    let direction = hotswap_actors::graph::RelationshipDirection::Incoming;
    let touched = service.entity_relationships(t, node, direction, Some("TOUCHED")).await.unwrap();
    (held, touched.into_iter().map(|r| r.source_id).collect())
}

/// The graph keeps every active run and the latest finished ones only,
/// through the actors' sync and through a rebuild: a Run entity per run,
/// kept for every run, grew the graph (and every instance's index) without end.
async fn graph_keeps_the_latest_finished_runs_only(store: SharedStore) {
    use hotswap_actors::graph::GraphSettings;
    let kept = 3;
    let settings = GraphSettings { finished_runs: kept };
    let t = tenant();
    let service = GraphService::with_settings(store.clone(), &settings);
    let synced = GraphSyncStore::wrap(service.clone());
    let n = node(t, "dev-window", Environment::Development);
    synced.register_node(&n).await.unwrap();
    let with_change = |name: &str, created: i64| {
        let mut r = run(t, name, at(created, 0), RunStatus::Running);
        r.changes = Arc::new(vec![first_change_of(&n)]);
        r
    };
    // The oldest run is still active while newer ones finish.
    let long = with_change("kmod-window-long", 50);
    synced.create_run(&long, &[]).await.unwrap();
    let mut done = Vec::new();
    for i in 0..kept + 3 {
        let r = with_change(&format!("kmod-window-{i}"), 100 + i as i64);
        synced.create_run(&r, &[]).await.unwrap();
        synced.save_run(&finished(&r, RunStatus::Succeeded), &[]).await.unwrap();
        done.push(r.execution_id);
    }
    let mut all = done.clone();
    all.push(long.execution_id);
    let runs_in = |service: Arc<GraphService>| runs_held(service, t, n.node_id, all.clone());
    let mut expected: std::collections::BTreeSet<Uuid> = done[3..].iter().copied().collect();
    expected.insert(long.execution_id);
    let (held, touched) = runs_in(service.clone()).await;
    assert_eq!(held, expected, "the active run and the {kept} latest finished ones");
    assert_eq!(touched, expected, "runs that left took their TOUCHED relationships");
    // A fresh index loads the same, and a rebuild finds nothing to repair.
    assert_eq!(runs_in(GraphService::with_settings(store.clone(), &settings)).await.0, expected);
    let report = service.rebuild(t).await.unwrap();
    assert_eq!(report, hotswap_actors::graph::RebuildReport::default(), "{report:?}");

    // The long run finishes last but was created first: it leaves at once.
    synced.save_run(&finished(&long, RunStatus::Failed), &[]).await.unwrap();
    expected.remove(&long.execution_id);
    assert_eq!(runs_in(service.clone()).await, (expected.clone(), expected.clone()));
    let report = service.rebuild(t).await.unwrap();
    assert_eq!(report, hotswap_actors::graph::RebuildReport::default(), "{report:?}");

    // A graph written before the window held every run: a rebuild brings it down.
    let everything = GraphService::with_settings(store.clone(), &GraphSettings { finished_runs: 100 });
    let report = everything.rebuild(t).await.unwrap();
    assert_eq!(report.entities_written, 4, "the runs that had left: {report:?}");
    let report = GraphService::with_settings(store.clone(), &settings).rebuild(t).await.unwrap();
    assert_eq!(report.entities_deleted, 4, "{report:?}");
    assert_eq!(runs_in(GraphService::with_settings(store.clone(), &settings)).await.0, expected);
}

conformance!(
    graph_keeps_the_latest_finished_runs_only,
    graph_keeps_each_nodes_latest_runs_only,
    graph_round_trip_cascade_and_atomicity,
    graph_tenant_isolation,
    graph_schema_round_trip,
    graph_filters_directions_paging_and_cache,
    graph_shortest_paths_match_brute_force_on_random_graphs,
    graph_sync_follows_the_actors_and_rebuild_agrees,
    entity_ids_where_a_property_equals,
);

/// The start of a match's `eq` filter: every entity whose property equals
/// the value (numbers as numbers), of the type when one is named, in the
/// tenant only.
async fn entity_ids_where_a_property_equals(store: SharedStore) {
    let (t, other) = (tenant(), tenant());
    let make = |tenant: TenantId, kind: &str, properties: serde_json::Value| GraphEntity {
        tenant_id: tenant,
        id: Uuid::new_v4(),
        entity_type: kind.into(),
        properties: properties.as_object().unwrap().clone(),
        version: 1,
        created_at: micros(at(1, 0)),
        updated_at: micros(at(1, 0)),
        created_by: "tests".into(),
    };
    let a = make(t, "Svc", json!({ "name": NASTY[0], "size": 5 }));
    let b = make(t, "Svc", json!({ "name": "b", "size": 5.0 }));
    let c = make(t, "Db", json!({ "name": NASTY[0], "size": 6 }));
    let d = make(other, "Svc", json!({ "name": NASTY[0] }));
    for (tenant, e) in [(t, &a), (t, &b), (t, &c), (other, &d)] {
        let change = GraphChange { upsert_entities: vec![e.clone()], ..GraphChange::default() };
        store.write_graph(tenant, &change, None).await.unwrap();
    }
    let sorted = |mut ids: Vec<Uuid>| {
        ids.sort();
        ids
    };
    let name = json!(NASTY[0]);
    let found = store.graph_entity_ids_where(t, Some("Svc"), "name", &name).await.unwrap();
    assert_eq!(found, vec![a.id]);
    let found = sorted(store.graph_entity_ids_where(t, None, "name", &name).await.unwrap());
    assert_eq!(found, sorted(vec![a.id, c.id]));
    let found = sorted(store.graph_entity_ids_where(t, Some("Svc"), "size", &json!(5)).await.unwrap());
    assert_eq!(found, sorted(vec![a.id, b.id]), "5 and 5.0 are equal");
    assert!(store.graph_entity_ids_where(t, Some("Svc"), "size", &json!("5")).await.unwrap().is_empty());
    assert!(store.graph_entity_ids_where(t, Some("Svc"), "missing", &json!(1)).await.unwrap().is_empty());
    assert_eq!(store.graph_entity_ids_where(other, None, "name", &name).await.unwrap(), vec![d.id]);
}
