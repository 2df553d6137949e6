//! The knowledge graph over HTTP: CRUD, bulk, schema checks, every filter
//! operator, paging, the cache, paths, tenant isolation, the actors' sync
//! (rebuild agrees with it), impact analysis and release order.

use awc::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::db::requests::deployment;
use crate::registry_support::{descriptor, publish, trust, KeyPair};
use crate::support::{spawn_app, TestApp, DEPLOYER, VIEWER};

async fn entity(app: &TestApp, kind: &str, properties: Value) -> String {
    let (status, reply) = app.post("/api/v1/graph/entities", &json!({ "type": kind, "properties": properties })).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["version"], 1);
    reply["id"].as_str().unwrap().to_string()
}

async fn relate(app: &TestApp, kind: &str, source: &str, target: &str, weight: f64) -> String {
    let body = json!({ "type": kind, "sourceId": source, "targetId": target, "weight": weight });
    let (status, reply) = app.post("/api/v1/graph/relationships", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    reply["id"].as_str().unwrap().to_string()
}

async fn matches(app: &TestApp, body: Value) -> Value {
    let (status, reply) = app.post("/api/v1/graph/queries/match", &body).await;
    assert_eq!(status, StatusCode::OK, "{body} -> {reply}");
    reply
}

fn names(reply: &Value) -> Vec<String> {
    let mut v: Vec<String> = reply["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["properties"]["name"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

#[actix_web::test]
async fn entities_and_relationships_round_trip_and_bad_input_lists_every_violation() {
    let app = spawn_app(&[]).await;
    let team = entity(&app, "Team", json!({ "name": "platform", "size": 4 })).await;
    let service = entity(&app, "Service", json!({ "name": "billing" })).await;
    let owns = relate(&app, "OWNS", &team, &service, 2.5).await;

    let (status, got) = app.get(&format!("/api/v1/graph/entities/{team}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["type"], "Team");
    assert_eq!(got["properties"]["size"], 4);
    assert_eq!(got["createdBy"], "admin");
    let (_, rel) = app.get(&format!("/api/v1/graph/relationships/{owns}")).await;
    assert_eq!((rel["weight"].as_f64(), &rel["directed"]), (Some(2.5), &json!(true)));

    let (_, out) = app.get(&format!("/api/v1/graph/entities/{team}/relationships?direction=outgoing")).await;
    assert_eq!(out.as_array().unwrap().len(), 1);
    let (_, inc) = app.get(&format!("/api/v1/graph/entities/{team}/relationships?direction=incoming")).await;
    assert_eq!(inc.as_array().unwrap().len(), 0);
    let (_, both) = app.get(&format!("/api/v1/graph/entities/{service}/relationships")).await;
    assert_eq!(both[0]["id"], owns.as_str());

    // Optimistic concurrency on update.
    let (status, updated) = app
        .put(&format!("/api/v1/graph/entities/{team}"), &json!({ "properties": { "name": "core" }, "version": 1 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["version"], 2);
    let (status, stale) =
        app.put(&format!("/api/v1/graph/entities/{team}"), &json!({ "properties": {}, "version": 1 })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");

    // Every violation at once, nothing written.
    let body = json!({
        "entities": [
            { "type": "bad type!", "properties": {} },
            { "type": "Node", "properties": { "hostname": "x", "environment": "QA" } },
            { "ref": "a", "type": "Team", "properties": { "bad key": 1 } },
        ],
        "relationships": [
            { "type": "OWNS", "sourceRef": "a", "targetId": uuid::Uuid::new_v4(), "weight": -1 },
            { "type": "OWNS", "sourceRef": "nope", "targetId": service },
        ]
    });
    let (status, reply) = app.post("/api/v1/graph/bulk", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["code"], "validation_failed");
    let details: Vec<String> = serde_json::from_value(reply["details"].clone()).unwrap();
    for needle in [
        "entities[0]",
        "entities[1]: type 'Node' is maintained",
        "entities[2]",
        "weight",
        "target entity",
        "ref 'nope'",
    ] {
        assert!(details.iter().any(|d| d.contains(needle)), "{needle} in {details:#?}");
    }
    let (_, stats) = app.get("/api/v1/graph/statistics").await;
    let teams = stats["entitiesByType"].as_array().unwrap().iter().find(|t| t["type"] == "Team").unwrap().clone();
    assert_eq!(teams["count"], 1, "{stats}");

    // A bulk request with refs creates everything together.
    let body = json!({
        "entities": [ { "ref": "x", "type": "Team", "properties": { "name": "x" } }, { "ref": "y", "type": "Service", "properties": { "name": "y" } } ],
        "relationships": [ { "type": "OWNS", "sourceRef": "x", "targetRef": "y" }, { "type": "USES", "sourceRef": "y", "targetId": service, "directed": false } ]
    });
    let (status, reply) = app.post("/api/v1/graph/bulk", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!((reply["entities"].as_array().unwrap().len(), reply["relationships"].as_array().unwrap().len()), (2, 2));

    // Deleting an entity takes its relationships.
    let r = app.call(Method::DELETE, &format!("/api/v1/graph/entities/{service}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&format!("/api/v1/graph/relationships/{owns}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, reply) = app.get(&format!("/api/v1/graph/entities/{service}")).await;
    assert_eq!((status, reply["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[actix_web::test]
async fn roles_and_tenants_bound_what_each_caller_reaches() {
    let app = spawn_app(&[]).await;
    let team = entity(&app, "Team", json!({ "name": "a" })).await;
    let viewer = app.as_user(VIEWER).await;
    let (status, _) = viewer.get(&format!("/api/v1/graph/entities/{team}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = viewer.post("/api/v1/graph/entities", &json!({ "type": "Team", "properties": {} })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let deployer = app.as_user(DEPLOYER).await;
    entity(&deployer, "Team", json!({ "name": "b" })).await;
    let (status, _) = deployer.put("/api/v1/graph/schema", &json!({ "version": "2.0.0" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Another tenant's Admin sees nothing of ours, by id or by query.
    let other = crate::tenants::provision(&app, "graphother", "Professional").await;
    let stranger = app.new_user("graph-stranger", &["Admin"], Some(other)).await;
    let (status, _) = stranger.get(&format!("/api/v1/graph/entities/{team}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = stranger.get(&format!("/api/v1/graph/entities/{team}/relationships")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let r = stranger.call(Method::DELETE, &format!("/api/v1/graph/entities/{team}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let mine = entity(&stranger, "Team", json!({ "name": "theirs" })).await;
    let body = json!({ "type": "OWNS", "sourceId": mine, "targetId": team });
    let (status, reply) = stranger.post("/api/v1/graph/relationships", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let seen = matches(&stranger, json!({ "entityType": "Team" })).await;
    assert_eq!(names(&seen), ["theirs"]);
    let (status, _) =
        stranger.post("/api/v1/graph/queries/shortest-path", &json!({ "sourceId": mine, "targetId": team })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn every_filter_operator_applies_and_pages_and_the_cache_follows_writes() {
    every_filter_operator(spawn_app(&[]).await, false).await;
}

#[actix_web::test]
async fn on_postgres_every_filter_operator_applies_and_eq_starts_at_the_property_index() {
    let Some(db) = crate::db::TestDb::create("api::graph_filters_on_postgres").await else {
        return;
    };
    let app = spawn_app(&[("HOTSWAP__STORE__BACKEND", "postgres"), ("HOTSWAP__STORE__URL", db.url.as_str())]).await;
    every_filter_operator(app, true).await;
}

/// Every operator on four entities. An `eq` filter starts at the store when
/// it has an index on properties (`store_first`: PostgreSQL's GIN index);
/// otherwise, as every other operator, at the in-memory type index.
async fn every_filter_operator(app: TestApp, store_first: bool) {
    for (name, size, tags) in [("alpha", 1, json!(["x"])), ("beta", 5, json!(["y"])), ("gamma", 10, json!(["x", "y"]))]
    {
        entity(&app, "Svc", json!({ "name": name, "size": size, "tags": tags })).await;
    }
    entity(&app, "Svc", json!({ "name": "delta" })).await;
    let cases = [
        (json!({ "property": "name", "operator": "eq", "value": "beta" }), vec!["beta"]),
        (json!({ "property": "name", "operator": "ne", "value": "beta" }), vec!["alpha", "delta", "gamma"]),
        (json!({ "property": "size", "operator": "lt", "value": 5 }), vec!["alpha"]),
        (json!({ "property": "size", "operator": "le", "value": 5 }), vec!["alpha", "beta"]),
        (json!({ "property": "size", "operator": "gt", "value": 5 }), vec!["gamma"]),
        (json!({ "property": "size", "operator": "ge", "value": 5.0 }), vec!["beta", "gamma"]),
        (json!({ "property": "name", "operator": "in", "value": ["alpha", "gamma", "zeta"] }), vec!["alpha", "gamma"]),
        (json!({ "property": "tags", "operator": "contains", "value": "y" }), vec!["beta", "gamma"]),
        (json!({ "property": "name", "operator": "contains", "value": "mm" }), vec!["gamma"]),
        (json!({ "property": "name", "operator": "startsWith", "value": "de" }), vec!["delta"]),
        (json!({ "property": "size", "operator": "exists", "value": false }), vec!["delta"]),
        (json!({ "property": "size", "operator": "exists", "value": true }), vec!["alpha", "beta", "gamma"]),
        (json!({ "property": "name", "operator": "regex", "value": "^(a|g).*a$" }), vec!["alpha", "gamma"]),
    ];
    for (filter, want) in cases {
        let reply = matches(&app, json!({ "entityType": "Svc", "filters": [filter.clone()] })).await;
        assert_eq!(names(&reply), want, "{filter}");
        assert_eq!(reply["totalCount"], want.len(), "{filter}");
        // An eq filter starts at the store's property index; the others at the type index.
        let start = match store_first && filter["operator"] == "eq" {
            true => "store:properties(name eq) rows=1",
            false => "index:entityType(Svc)",
        };
        assert!(reply["plan"].as_str().unwrap().starts_with(start), "{reply}");
    }
    // Numbers match numerically in the store too (5 and 5.0), and with the other filters after it.
    let both = json!({ "entityType": "Svc", "filters": [
        { "property": "size", "operator": "eq", "value": 5.0 },
        { "property": "tags", "operator": "contains", "value": "y" } ] });
    let reply = matches(&app, both).await;
    assert_eq!(names(&reply), ["beta"], "{reply}");
    let start = if store_first { "store:properties(size eq) rows=1" } else { "index:entityType(Svc) rows=4" };
    assert!(reply["plan"].as_str().unwrap().starts_with(&format!("{start} -> filter:properties(2)")), "{reply}");
    // Another type's entity with the same property is not a candidate.
    entity(&app, "Other", json!({ "name": "beta" })).await;
    let reply = matches(
        &app,
        json!({ "entityType": "Svc", "filters": [{ "property": "name", "operator": "eq", "value": "beta" }] }),
    )
    .await;
    assert_eq!(names(&reply), ["beta"], "{reply}");
    let start = if store_first { "store:properties(name eq) rows=1" } else { "index:entityType(Svc)" };
    assert!(reply["plan"].as_str().unwrap().starts_with(start), "{reply}");
    // Bad filters: every one reported.
    let bad = json!({ "entityType": "Svc", "filters": [
        { "property": "name", "operator": "regex", "value": "(" },
        { "property": "size", "operator": "in", "value": 3 },
    ], "relationships": [ { "type": "X", "depth": 9 } ] });
    let (status, reply) = app.post("/api/v1/graph/queries/match", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["details"].as_array().unwrap().len(), 3, "{reply}");

    // Paging with a cursor visits each match once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut body = json!({ "entityType": "Svc", "limit": 3 });
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page = matches(&app, body).await;
        assert_eq!(page["totalCount"], 4);
        seen.extend(names(&page));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["alpha", "beta", "delta", "gamma"]);

    // Cached until a write touches the type.
    let q = json!({ "entityType": "Svc", "filters": [{ "property": "size", "operator": "ge", "value": 1 }] });
    let first = matches(&app, q.clone()).await;
    let again = matches(&app, q.clone()).await;
    assert_eq!((first["fromCache"].as_bool(), again["fromCache"].as_bool()), (Some(false), Some(true)));
    entity(&app, "Other", json!({})).await;
    assert_eq!(matches(&app, q.clone()).await["fromCache"], true, "a write of another type keeps it");
    entity(&app, "Svc", json!({ "name": "epsilon", "size": 3 })).await;
    let fresh = matches(&app, q).await;
    assert_eq!(fresh["fromCache"], false);
    assert_eq!(fresh["totalCount"], 4);
}

#[actix_web::test]
async fn patterns_paths_and_traversals_follow_weights_and_directions() {
    let app = spawn_app(&[]).await;
    // a -1-> b -1-> d ; a -5-> d ; c -(undirected 1)- d
    let a = entity(&app, "P", json!({ "name": "a" })).await;
    let b = entity(&app, "P", json!({ "name": "b" })).await;
    let c = entity(&app, "P", json!({ "name": "c" })).await;
    let d = entity(&app, "Q", json!({ "name": "d", "tier": 1 })).await;
    let ab = relate(&app, "LINK", &a, &b, 1.0).await;
    let bd = relate(&app, "LINK", &b, &d, 1.0).await;
    let ad = relate(&app, "LINK", &a, &d, 5.0).await;
    let (status, cd) = app
        .post(
            "/api/v1/graph/relationships",
            &json!({ "type": "PEER", "sourceId": c, "targetId": d, "directed": false }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, path) =
        app.post("/api/v1/graph/queries/shortest-path", &json!({ "sourceId": a, "targetId": d })).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    assert_eq!(path["totalWeight"], 2.0);
    assert_eq!(path["hops"], 2);
    let rels: Vec<&str> = path["relationships"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(rels, [ab.as_str(), bd.as_str()]);
    assert_eq!(names(&path), ["a", "b", "d"]);

    // Against the direction: no path, and the answer says so.
    let (status, reply) =
        app.post("/api/v1/graph/queries/shortest-path", &json!({ "sourceId": d, "targetId": a })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("no path"), "{reply}");
    let body = json!({ "sourceId": d, "targetId": a, "direction": "incoming" });
    let (status, reply) = app.post("/api/v1/graph/queries/shortest-path", &body).await;
    assert_eq!((status, reply["totalWeight"].as_f64()), (StatusCode::OK, Some(2.0)), "{reply}");
    // The undirected relationship goes both ways even when outgoing is asked.
    let body = json!({ "sourceId": d, "targetId": c });
    let (status, reply) = app.post("/api/v1/graph/queries/shortest-path", &body).await;
    assert_eq!((status, reply["hops"].as_u64()), (StatusCode::OK, Some(1)), "{reply} {cd}");
    // Only the named types.
    let body = json!({ "sourceId": a, "targetId": c, "direction": "both", "relationshipTypes": ["LINK"] });
    let (status, _) = app.post("/api/v1/graph/queries/shortest-path", &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, all) = app.post("/api/v1/graph/queries/all-paths", &json!({ "sourceId": a, "targetId": d })).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let paths = all["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 2, "{all}");
    assert_eq!(paths[0]["relationshipIds"].as_array().unwrap().len(), 1, "fewest hops first");

    let (status, t) =
        app.post("/api/v1/graph/queries/traverse", &json!({ "startId": a, "maxDepth": 1, "algorithm": "bfs" })).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(names(&t), ["a", "b", "d"]);
    let (_, t) =
        app.post("/api/v1/graph/queries/traverse", &json!({ "startId": a, "maxDepth": 3, "entityTypes": ["Q"] })).await;
    assert_eq!(names(&t), ["d"]);
    let relationship_ids = |t: &Value| -> Vec<String> {
        let mut ids: Vec<String> =
            t["relationships"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        ids
    };
    assert_eq!(relationship_ids(&t), vec![ad], "the way to d: {t}");
    // A limit cuts the relationships with the entities: only those joining
    // the listed entities to the start, while the count covers them all.
    let body = json!({ "startId": a, "maxDepth": 3, "limit": 1 });
    let (_, t) = app.post("/api/v1/graph/queries/traverse", &body).await;
    assert_eq!((names(&t), t["totalCount"].as_u64()), (vec!["a".to_string()], Some(4)), "{t}");
    assert!(relationship_ids(&t).is_empty(), "{t}");
    let body = json!({ "startId": a, "maxDepth": 3, "limit": 2, "relationshipTypes": ["LINK"] });
    let (_, t) = app.post("/api/v1/graph/queries/traverse", &body).await;
    assert_eq!(t["entities"].as_array().unwrap().len(), 2, "{t}");
    assert_eq!(t["relationships"].as_array().unwrap().len(), 1, "one relationship joins two entities: {t}");

    // Patterns: P with a LINK to a Q of tier 1 within two hops, weights bounded.
    let q = json!({ "entityType": "P", "relationships": [
        { "type": "LINK", "direction": "outgoing", "targetType": "Q", "depth": 2, "maxWeight": 1.0,
          "filters": [{ "property": "tier", "operator": "eq", "value": 1 }] } ] });
    assert_eq!(names(&matches(&app, q).await), ["a", "b"]);
    let q = json!({ "entityType": "P", "relationships": [{ "type": "LINK", "targetType": "Q", "minWeight": 2 }] });
    assert_eq!(names(&matches(&app, q).await), ["a"]);
    let q = json!({ "entityType": "P", "relationships": [{ "type": "LINK", "direction": "incoming" }] });
    assert_eq!(names(&matches(&app, q).await), ["b"]);
}

#[actix_web::test]
async fn schema_changes_are_versioned_checked_and_refused_when_data_would_break() {
    let app = spawn_app(&[]).await;
    let (_, schema) = app.get("/api/v1/graph/schema").await;
    assert_eq!(schema["version"], "1.0.0");
    assert!(schema["entityTypes"]["Node"]["properties"]["hostname"]["required"].as_bool().unwrap());
    let old = entity(&app, "Team", json!({ "name": "x" })).await;

    let schema = json!({
        "version": "1.1.0",
        "entityTypes": { "Team": { "properties": {
            "name": { "type": "string", "required": true, "pattern": "^[a-z]+$" },
            "size": { "type": "integer", "required": true, "min": 1, "max": 50 } } } },
    });
    let (status, reply) = app.put("/api/v1/graph/schema", &schema).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert!(reply["details"].to_string().contains(&old), "{reply}");
    let (status, reply) = app.put("/api/v1/graph/schema?force=true", &schema).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, reply) = app.put("/api/v1/graph/schema?force=true", &schema).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the same version again: {reply}");
    // A schema read can be sent back changed, its updatedAt and all.
    let (_, mut read) = app.get("/api/v1/graph/schema").await;
    assert!(read["updatedAt"].is_string(), "{read}");
    read["version"] = json!("1.2.0");
    let (status, reply) = app.put("/api/v1/graph/schema?force=true", &read).await;
    assert_eq!(status, StatusCode::OK, "{reply}");

    let body = json!({ "type": "Team", "properties": { "name": "Bad Name", "size": 99 } });
    let (status, reply) = app.post("/api/v1/graph/entities", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["details"].as_array().unwrap().len(), 2, "{reply}");
    entity(&app, "Team", json!({ "name": "ok", "size": 3 })).await;
}

#[actix_web::test]
async fn runs_keep_the_graph_in_step_and_a_rebuild_finds_nothing_to_repair() {
    let app = spawn_app(&[]).await;
    app.deploy_ok("graphmod", "1.0.0", "Development").await;
    let id = app.deploy("graphmod", "1.1.0", "Development", json!({})).await;
    app.finished(&id).await;

    // Nodes of Development run 1.1.0, the run deployed it and touched them.
    let q = json!({ "entityType": "Node", "filters": [{ "property": "environment", "operator": "eq", "value": "Development" }],
        "relationships": [{ "type": "RUNS", "targetType": "ModuleVersion",
            "filters": [{ "property": "name", "operator": "eq", "value": "graphmod" }, { "property": "version", "operator": "eq", "value": "1.1.0" }] }] });
    let reply = matches(&app, q).await;
    assert_eq!(reply["totalCount"], 3, "{reply}");
    let (status, run) = app.get(&format!("/api/v1/graph/entities/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["type"], "Run");
    let (_, out) = app.get(&format!("/api/v1/graph/entities/{id}/relationships?direction=outgoing")).await;
    let kinds: Vec<&str> = out.as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "TOUCHED").count(), 3, "{out}");
    assert_eq!(kinds.iter().filter(|k| **k == "DEPLOYED").count(), 1, "{out}");

    // A run through two environments reaches the graph stage by stage (each
    // save adds only the changes the graph has not seen): it touched every
    // node of both.
    let promoted = app.deploy("graphpromo", "2.0.0", "QA", json!({})).await;
    assert_eq!(app.finished(&promoted).await["status"], "Succeeded");
    let (_, out) = app.get(&format!("/api/v1/graph/entities/{promoted}/relationships?direction=outgoing")).await;
    let touched = out.as_array().unwrap().iter().filter(|r| r["type"] == "TOUCHED").count();
    assert_eq!(touched, 3 + 5, "{out}");

    // The actors' records are theirs.
    let r = app.call(Method::DELETE, &format!("/api/v1/graph/entities/{id}"), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Rollback moves the RUNS relationships back.
    let (status, reply) =
        app.post(&format!("/api/v1/deployments/{id}/rollback"), &json!({ "reason": "graph test" })).await;
    assert!(status.is_success(), "{reply}");
    app.finished(&id).await;
    crate::db::poll::eventually(std::time::Duration::from_secs(10), "the graph shows 1.0.0 again", async || {
        let q = json!({ "entityType": "ModuleVersion", "filters": [{ "property": "version", "operator": "eq", "value": "1.0.0" }],
            "relationships": [{ "type": "RUNS", "direction": "incoming" }] });
        matches(&app, q).await["totalCount"] == 1
    })
    .await;

    // Incremental and rebuilt agree: nothing to repair.
    let (status, report) = app.post("/api/v1/graph/rebuild", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({ "entitiesWritten": 0, "relationshipsWritten": 0, "entitiesDeleted": 0, "relationshipsDeleted": 0 })
    );
}

#[actix_web::test]
async fn a_modules_last_version_deleted_leaves_no_module_behind() {
    let app = spawn_app(&[]).await;
    let key = KeyPair::generate();
    trust(&app, "graph-key", &key).await;
    let mut lone = descriptor("xlone", "1.0.0");
    lone["dependencies"] = json!({ "ylone": "^1" });
    publish(&app, &key, &lone).await;
    let r = app.call(Method::DELETE, "/api/v1/modules/xlone/1.0.0", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    // Neither the module nor the one only it depended on stays in the graph:
    // a rebuild has nothing to repair.
    let (status, report) = app.post("/api/v1/graph/rebuild", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({ "entitiesWritten": 0, "relationshipsWritten": 0, "entitiesDeleted": 0, "relationshipsDeleted": 0 })
    );
    let q = json!({ "entityType": "Module", "filters": [{ "property": "name", "operator": "in", "value": ["xlone", "ylone"] }] });
    assert_eq!(matches(&app, q).await["totalCount"], 0);
}

#[actix_web::test]
async fn impact_and_release_order_come_from_declared_dependencies() {
    let app = spawn_app(&[]).await;
    let key = KeyPair::generate();
    trust(&app, "graph-key", &key).await;
    let mut base = descriptor("gbase", "1.0.0");
    publish(&app, &key, &base).await;
    base["version"] = json!("2.0.0");
    publish(&app, &key, &base).await;
    let mut api = descriptor("gapi", "1.0.0");
    api["dependencies"] = json!({ "gbase": "^1.0" });
    publish(&app, &key, &api).await;
    let mut web = descriptor("gweb", "1.0.0");
    web["dependencies"] = json!({ "gapi": ">=1.0.0" });
    publish(&app, &key, &web).await;
    app.deploy_ok("gbase", "1.0.0", "Development").await;
    app.deploy_ok("gapi", "1.0.0", "Development").await;

    let (status, impact) = app.get("/api/v1/graph/impact?module=gbase&version=2.0.0").await;
    assert_eq!(status, StatusCode::OK, "{impact}");
    let deps = impact["dependents"].as_array().unwrap();
    assert_eq!(deps[0]["module"], "gapi");
    assert_eq!(deps[0]["requirement"], "^1.0");
    assert_eq!(deps[0]["satisfied"], false);
    assert_eq!(deps[1]["module"], "gweb");
    assert_eq!(deps[1]["depth"], 2);
    assert_eq!(impact["nodes"].as_array().unwrap().len(), 3, "{impact}");
    assert_eq!(impact["nodesTotal"], 3, "{impact}");
    assert_eq!(impact["clusters"][0]["environment"], "Development");
    // One conflict per broken dependent version, naming its nodes.
    assert_eq!(
        impact["conflicts"],
        json!(["gapi 1.0.0 requires gbase ^1.0, which 2.0.0 does not meet, \
                on 3 nodes (development-node-01, development-node-02, development-node-03)"]),
        "{impact}"
    );
    // The node list is cut at nodeLimit, by host name; the total still counts every node.
    let (status, first) = app.get("/api/v1/graph/impact?module=gbase&version=2.0.0&nodeLimit=2").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let hosts: Vec<&str> = first["nodes"].as_array().unwrap().iter().map(|n| n["hostname"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["development-node-01", "development-node-02"], "{first}");
    assert_eq!(first["nodesTotal"], 3, "{first}");
    for bad in ["0", "1001", "-1", "many"] {
        let (status, body) = app.get(&format!("/api/v1/graph/impact?module=gbase&version=2.0.0&nodeLimit={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "nodeLimit={bad}: {body}");
        if bad == "0" || bad == "1001" {
            assert_eq!(body["message"], format!("nodeLimit must be between 1 and 1000, not {bad}"), "{body}");
        }
    }
    let (_, ok) = app.get("/api/v1/graph/impact?module=gbase&version=1.5.0").await;
    assert_eq!(ok["conflicts"], json!([]), "{ok}");
    // A run's Security Scan refuses the same version, naming the pairs.
    let refused = app.deploy("gbase", "2.0.0", "Development", json!({})).await;
    let run = app.finished(&refused).await;
    assert_eq!(run["status"], "Failed", "{run}");
    let pairs = "would break modules that depend on it: gapi 1.0.0 requires gbase ^1.0, which 2.0.0 does not meet, \
                 on 3 nodes (development-node-01, development-node-02, development-node-03)";
    assert!(run.to_string().contains(pairs), "{run}");
    // A dry run names the same pairs under its own check; the registry and
    // the signature, which passed, are not blamed for them.
    let (status, plan) =
        app.post("/api/v1/deployments?dryRun=true", &deployment("gbase", "2.0.0", "Development")).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let check = |name: &str| {
        plan["securityScan"]["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap()
    };
    assert_eq!(check("Dependents")["outcome"], "Failed", "{plan:#}");
    assert!(check("Dependents")["message"].as_str().unwrap().contains(pairs), "{plan:#}");
    assert_eq!(check("Registry")["outcome"], "Passed", "{plan:#}");
    assert_eq!(check("Signature")["outcome"], "Passed", "{plan:#}");
    assert_eq!(plan["wouldDeploy"], false, "{plan:#}");
    let (_, plan) = app.post("/api/v1/deployments?dryRun=true", &deployment("gbase", "1.5.0", "Development")).await;
    let dependents = plan["securityScan"]["checks"].as_array().unwrap().iter().find(|c| c["name"] == "Dependents");
    assert_eq!(dependents.unwrap()["outcome"], "Passed", "{plan:#}");
    let (status, _) = app.get("/api/v1/graph/impact?module=nothing&version=1.0.0").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/v1/graph/impact?module=gbase&version=two").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let batch = json!({ "modules": [
        { "module": "gweb", "version": "1.0.0" }, { "module": "gapi", "version": "1.0.0" }, { "module": "gbase", "version": "2.0.0" } ] });
    let (status, plan) = app.post("/api/v1/graph/release-plan", &batch).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let order: Vec<&str> = plan["steps"].as_array().unwrap().iter().map(|s| s["module"].as_str().unwrap()).collect();
    assert_eq!(order, ["gbase", "gapi", "gweb"]);
    assert_eq!(plan["steps"][2]["wave"], 3);

    // A cycle is named.
    let mut a = descriptor("gcyca", "1.0.0");
    a["dependencies"] = json!({ "gcycb": "*" });
    publish(&app, &key, &a).await;
    let mut b = descriptor("gcycb", "1.0.0");
    b["dependencies"] = json!({ "gcyca": "*" });
    publish(&app, &key, &b).await;
    let batch =
        json!({ "modules": [ { "module": "gcyca", "version": "1.0.0" }, { "module": "gcycb", "version": "1.0.0" } ] });
    let (status, reply) = app.post("/api/v1/graph/release-plan", &batch).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("gcyca -> gcycb -> gcyca"), "{reply}");
    let batch = json!({ "modules": [ { "module": "ghost", "version": "1.0.0" }, { "module": "gapi", "version": "1.0.0" }, { "module": "gapi", "version": "1.0.0" } ] });
    let (status, reply) = app.post("/api/v1/graph/release-plan", &batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["details"].as_array().unwrap().len(), 2, "{reply}");

    // The Security Scan refuses the breaking version, naming the pair.
    let id = app.deploy("gbase", "2.0.0", "Development", json!({})).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed", "{run:#}");
    assert!(run.to_string().contains("gapi 1.0.0 requires gbase ^1.0"), "{run:#}");
    app.assert_all_active(hotswap_actors::domain::Environment::Development, "gbase", Some("1.0.0")).await;

    let (status, report) = app.post("/api/v1/graph/rebuild", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["entitiesWritten"], 0, "{report}");
    assert_eq!(report["relationshipsWritten"], 0, "{report}");
}

#[actix_web::test]
async fn on_postgres_the_graph_survives_a_restart_and_the_command_line_repairs_drift() {
    let Some(db) = crate::db::TestDb::create("api::graph_on_postgres").await else {
        return;
    };
    let overrides = [("HOTSWAP__STORE__BACKEND", "postgres"), ("HOTSWAP__STORE__URL", db.url.as_str())];
    let before = spawn_app(&overrides).await;
    before.deploy_ok("pgraph", "1.0.0", "Development").await;
    let team = entity(&before, "Team", json!({ "name": "kept" })).await;
    drop(before);

    // A second process loads the graph from the database at start-up.
    let after = spawn_app(&overrides).await;
    let (status, got) = after.get(&format!("/api/v1/graph/entities/{team}")).await;
    assert_eq!((status, got["properties"]["name"].as_str()), (StatusCode::OK, Some("kept")));
    let q = json!({ "entityType": "Node", "relationships": [{ "type": "RUNS", "targetType": "ModuleVersion",
        "filters": [{ "property": "name", "operator": "eq", "value": "pgraph" }] }] });
    assert_eq!(matches(&after, q).await["totalCount"], 3);
    let (_, report) = after.post("/api/v1/graph/rebuild", &json!({})).await;
    assert_eq!(report["relationshipsWritten"], 0, "{report}");

    // A lost graph write (simulated by deleting the RUNS rows) is repaired by the command line.
    db.execute("DELETE FROM graph_relationships WHERE relationship_type = 'RUNS'").await;
    let url = db.url.clone();
    let rebuild = actix_web::web::block(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
            .args(["graph", "rebuild"])
            .env("HOTSWAP_ENV", "test")
            .env("HOTSWAP_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
            .env("HOTSWAP__STORE__BACKEND", "postgres")
            .env("HOTSWAP__STORE__URL", &url)
            .output()
            .expect("hotswap runs")
    });
    let out = rebuild.await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 relationships written"), "{stdout}");
}

/// NUL cannot be stored or compared by PostgreSQL: every string of a write's
/// properties (nested too) and of a match's filters is refused with a 400
/// naming it, on either store, and nothing is written.
async fn nul_is_refused(app: TestApp) {
    let refused = async |method: Method, path: &str, body: Value, named: &str| {
        let crate::support::Reply { status, body: reply, .. } = app.call(method, path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body} -> {reply}");
        assert_eq!(reply["code"], "validation_failed", "{reply}");
        assert!(reply["traceId"].is_string(), "{reply}");
        let details = reply["details"].to_string();
        assert!(details.contains(named) && details.contains("NUL"), "{path} {body} -> {reply}");
    };
    let post = || Method::POST;
    let create = "/api/v1/graph/entities";
    refused(post(), create, json!({ "type": "Service", "properties": { "name": "a\u{0}b" } }), "property 'name'").await;
    let nested = json!({ "type": "Service", "properties": { "owner": { "team": ["ok", "x\u{0}"] } } });
    refused(post(), create, nested, "property 'owner'").await;
    refused(post(), create, json!({ "type": "Service", "properties": { "k\u{0}": 1 } }), "property 'k\\\\u0000'").await;
    let team = entity(&app, "Service", json!({ "name": "clean" })).await;
    let update = json!({ "properties": { "name": "a\u{0}" }, "version": 1 });
    refused(Method::PUT, &format!("/api/v1/graph/entities/{team}"), update, "property 'name'").await;
    let rel = json!({ "type": "USES", "sourceId": team, "targetId": team, "properties": { "why": "\u{0}" } });
    refused(post(), "/api/v1/graph/relationships", rel, "property 'why'").await;
    let query = "/api/v1/graph/queries/match";
    let eq =
        json!({ "entityType": "Service", "filters": [{ "property": "name", "operator": "eq", "value": "a\u{0}b" }] });
    refused(post(), query, eq, "filters[0].value").await;
    let key = json!({ "filters": [{ "property": "n\u{0}", "operator": "eq", "value": "x" }] });
    refused(post(), query, key, "filters[0].property").await;
    let deep = json!({ "relationships": [{ "filters": [{ "property": "a", "operator": "in", "value": ["\u{0}"] }] }] });
    refused(post(), query, deep, "relationships[0].filters[0].value").await;
    refused(post(), query, json!({ "entityType": "Ser\u{0}vice" }), "entityType").await;
    let (_, all) = app.post(query, &json!({ "entityType": "Service" })).await;
    assert_eq!(all["totalCount"], 1, "only the clean entity was stored: {all}");
}

#[actix_web::test]
async fn nul_in_graph_properties_and_filters_is_refused() {
    nul_is_refused(spawn_app(&[]).await).await;
}

#[actix_web::test]
async fn on_postgres_nul_in_graph_properties_and_filters_is_refused() {
    let Some(db) = crate::db::TestDb::create("api::graph_nul_on_postgres").await else {
        return;
    };
    let app = spawn_app(&[("HOTSWAP__STORE__BACKEND", "postgres"), ("HOTSWAP__STORE__URL", db.url.as_str())]).await;
    nul_is_refused(app).await;
}
