//! `cargo bench --bench graph`: the knowledge graph at 100,000 entities and
//! 1,000,000 relationships.
//!
//! - shortest path (Dijkstra) p50/p99 through `GraphService` (what the API
//!   runs: cache miss, index, relationships read back from the store), on the
//!   index alone, and raw `petgraph::algo::dijkstra` on the same graph;
//! - the same pairs as a PostgreSQL recursive CTE on the same data in the
//!   same run (needs HOTSWAP_BENCH_DATABASE_URL or HOTSWAP_TEST_DATABASE_URL;
//!   uses a database `hotswap_graph_bench` it creates and drops);
//! - a 2-hop match p50; the resident memory the index adds.
//!
//! Optional arguments: entities, relationships (defaults 100000 1000000).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::sql_types::{Double, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{GraphChange, GraphEntity, GraphRelationship, DEFAULT_TENANT};
use hotswap_actors::graph::index::TenantIndex;
use hotswap_actors::graph::query::{self, Direction, Filter, MatchQuery, Operator, PathQuery, RelationshipPattern};
use hotswap_actors::graph::GraphService;
use hotswap_actors::store::{GraphStore, MemoryStore, SharedStore};
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::json;
use uuid::Uuid;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PAIRS: usize = 200;
const CTE_PAIRS: usize = 20;
/// The recursive CTE has no priority queue: it walks every path up to this
/// many hops, which is the bound that keeps it finishing at all.
const CTE_DEPTH: u32 = 4;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}

/// Entities, relationships, and the same edges by entity position.
type Generated = (Vec<GraphEntity>, Vec<GraphRelationship>, Vec<(usize, usize, f64)>);

fn generate(n_entities: usize, n_rels: usize) -> Generated {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let now = Utc::now();
    let entities: Vec<GraphEntity> = (0..n_entities)
        .map(|i| {
            // 70% nodes, 20% services, 10% teams.
            let (kind, properties) = match i % 10 {
                0 => ("Team", json!({ "name": format!("team-{i}"), "region": if i % 20 == 0 { "eu" } else { "us" } })),
                1 | 2 => ("Service", json!({ "name": format!("svc-{i}"), "tier": (i / 10) % 10 })),
                _ => ("Node", json!({ "hostname": format!("node-{i}"), "environment": "Production" })),
            };
            GraphEntity {
                tenant_id: DEFAULT_TENANT,
                id: Uuid::new_v4(),
                entity_type: kind.into(),
                properties: properties.as_object().cloned().unwrap_or_default(),
                version: 1,
                created_at: now,
                updated_at: now,
                created_by: "bench".into(),
            }
        })
        .collect();
    let mut edges = Vec::with_capacity(n_rels);
    let rels: Vec<GraphRelationship> = (0..n_rels)
        .map(|_| {
            let (a, b) = (rng.below(n_entities), rng.below(n_entities));
            let weight = 0.1 + (rng.below(100) as f64) / 10.0;
            edges.push((a, b, weight));
            GraphRelationship {
                tenant_id: DEFAULT_TENANT,
                id: Uuid::new_v4(),
                relationship_type: "LINK".into(),
                source_id: entities[a].id,
                target_id: entities[b].id,
                properties: Default::default(),
                weight,
                directed: true,
                created_at: now,
                created_by: "bench".into(),
            }
        })
        .collect();
    (entities, rels, edges)
}

#[derive(diesel::QueryableByName)]
struct Cost {
    #[diesel(sql_type = diesel::sql_types::Nullable<Double>)]
    cost: Option<f64>,
}

/// What the CTE measured: its times, the load time, and its costs.
type CteRun = (Vec<Duration>, Duration, Vec<Option<f64>>);

/// Loads the graph into a fresh database and times the recursive CTE on the
/// first `CTE_PAIRS` pairs; `None` without a database URL.
async fn postgres_cte(
    entities: &[GraphEntity],
    rels: &[GraphRelationship],
    pairs: &[(usize, usize)],
) -> Option<CteRun> {
    let base =
        std::env::var("HOTSWAP_BENCH_DATABASE_URL").or_else(|_| std::env::var("HOTSWAP_TEST_DATABASE_URL")).ok()?;
    let (server, _) = base.rsplit_once('/')?;
    let url = format!("{server}/hotswap_graph_bench");
    let mut admin = AsyncPgConnection::establish(&base).await.expect("bench database server");
    diesel::sql_query("DROP DATABASE IF EXISTS hotswap_graph_bench").execute(&mut admin).await.unwrap();
    diesel::sql_query("CREATE DATABASE hotswap_graph_bench").execute(&mut admin).await.unwrap();
    hotswap::store::postgres::migrate::run_pending(&url).await.unwrap();
    let store = hotswap::store::postgres::PgStore::connect(&url, &Default::default()).await.unwrap();
    let loading = Instant::now();
    for chunk in entities.chunks(50_000) {
        let change = GraphChange { upsert_entities: chunk.to_vec(), ..GraphChange::default() };
        store.write_graph(DEFAULT_TENANT, &change, None).await.unwrap();
    }
    for chunk in rels.chunks(50_000) {
        let change = GraphChange { upsert_relationships: chunk.to_vec(), ..GraphChange::default() };
        store.write_graph(DEFAULT_TENANT, &change, None).await.unwrap();
    }
    let load_time = loading.elapsed();
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    diesel::sql_query("ANALYZE").execute(&mut conn).await.unwrap();
    let mut times = Vec::new();
    let mut costs = Vec::new();
    for &(s, t) in pairs.iter().take(CTE_PAIRS) {
        let started = Instant::now();
        let cost: Vec<Cost> = diesel::sql_query(format!(
            "WITH RECURSIVE walk(node, cost, depth) AS ( \
               SELECT $2::uuid, 0::float8, 0 \
               UNION ALL \
               SELECT r.target_id, w.cost + r.weight, w.depth + 1 FROM walk w \
               JOIN graph_relationships r ON r.tenant_id = $1 AND r.source_id = w.node \
               WHERE w.depth < {CTE_DEPTH} AND w.node <> $3) \
             SELECT min(cost) AS cost FROM walk WHERE node = $3"
        ))
        .bind::<SqlUuid, _>(DEFAULT_TENANT)
        .bind::<SqlUuid, _>(entities[s].id)
        .bind::<SqlUuid, _>(entities[t].id)
        .load(&mut conn)
        .await
        .unwrap();
        times.push(started.elapsed());
        costs.push(cost.into_iter().next().and_then(|c| c.cost));
    }
    drop(conn);
    drop(store);
    diesel::sql_query("DROP DATABASE IF EXISTS hotswap_graph_bench WITH (FORCE)").execute(&mut admin).await.unwrap();
    Some((times, load_time, costs))
}

#[actix::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n_entities = <[usize]>::first(&args).copied().unwrap_or(100_000);
    let n_rels = args.get(1).copied().unwrap_or(1_000_000);
    println!("graph bench: {n_entities} entities, {n_rels} relationships");

    let (entities, rels, edges) = generate(n_entities, n_rels);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pairs: Vec<(usize, usize)> = (0..PAIRS).map(|_| (rng.below(n_entities), rng.below(n_entities))).collect();

    // The index alone, first, while nothing has been freed yet: the resident set
    // grows by the index plus the snapshot's relationships (freed by the load but
    // possibly kept by the allocator), so the figure is an upper bound.
    let before = rss_kib();
    let started = Instant::now();
    let snapshot = hotswap_actors::domain::GraphSnapshot { entities: entities.clone(), relationships: rels.clone() };
    let index = TenantIndex::load(snapshot);
    let load_time = started.elapsed();
    let index_mib = rss_kib().saturating_sub(before) as f64 / 1024.0;

    let store = Arc::new(MemoryStore::new());
    store
        .write_graph(
            DEFAULT_TENANT,
            &GraphChange {
                upsert_entities: entities.clone(),
                upsert_relationships: rels.clone(),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();

    // Raw petgraph on the same graph.
    let mut raw: DiGraph<(), f64> = DiGraph::with_capacity(n_entities, n_rels);
    let nodes: Vec<NodeIndex> = (0..n_entities).map(|_| raw.add_node(())).collect();
    for &(a, b, w) in &edges {
        raw.add_edge(nodes[a], nodes[b], w);
    }
    let mut raw_times = Vec::new();
    let mut raw_costs = Vec::new();
    for &(s, t) in &pairs {
        let started = Instant::now();
        let dist = petgraph::algo::dijkstra(&raw, nodes[s], Some(nodes[t]), |e| *e.weight());
        raw_times.push(started.elapsed());
        raw_costs.push(dist.get(&nodes[t]).copied());
    }

    let path_query = |s: usize, t: usize| PathQuery {
        source_id: entities[s].id,
        target_id: entities[t].id,
        direction: Direction::Outgoing,
        relationship_types: vec![],
        max_depth: None,
        max_paths: None,
    };
    let mut index_times = Vec::new();
    for (i, &(s, t)) in pairs.iter().enumerate() {
        let started = Instant::now();
        let found = query::shortest_path(&index, &path_query(s, t));
        index_times.push(started.elapsed());
        let cost = found.map(|p| p.total_weight);
        match (cost, raw_costs[i]) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-6, "pair {i}: {a} vs petgraph {b}"),
            (a, b) => assert_eq!(a.is_some(), b.is_some(), "pair {i}"),
        }
    }

    let shared: SharedStore = store.clone();
    let service = GraphService::new(shared);
    service.preload(&[DEFAULT_TENANT]).await.unwrap();
    let mut service_times = Vec::new();
    for &(s, t) in &pairs {
        let started = Instant::now();
        let _ = service.shortest_path(DEFAULT_TENANT, path_query(s, t)).await;
        service_times.push(started.elapsed());
    }

    // Services of one tier with a LINK within two hops to a team in "eu".
    let mut match_times = Vec::new();
    let mut matched = 0;
    for round in 0..50 {
        let q = MatchQuery {
            entity_type: Some("Service".into()),
            filters: vec![Filter { property: "tier".into(), operator: Operator::Eq, value: json!(round % 10) }],
            relationships: vec![RelationshipPattern {
                relationship_type: Some("LINK".into()),
                direction: Direction::Outgoing,
                target_type: Some("Team".into()),
                filters: vec![Filter { property: "region".into(), operator: Operator::Eq, value: json!("eu") }],
                depth: Some(2),
                ..RelationshipPattern::default()
            }],
            limit: Some(100),
            // A different page each round keeps every query a cache miss.
            cursor: Some(Uuid::from_u128(round as u128).to_string()),
        };
        let started = Instant::now();
        let answer = service.match_entities(DEFAULT_TENANT, q).await.unwrap();
        match_times.push(started.elapsed());
        assert!(!answer.from_cache);
        matched = answer.total_count;
    }

    let raw_p50 = percentile(&mut raw_times, 0.5);
    let raw_p99 = percentile(&mut raw_times, 0.99);
    let idx_p50 = percentile(&mut index_times, 0.5);
    let idx_p99 = percentile(&mut index_times, 0.99);
    let svc_p50 = percentile(&mut service_times, 0.5);
    let svc_p99 = percentile(&mut service_times, 0.99);
    println!(
        "index build: {:.2} s; resident set grew {index_mib:.0} MiB (index + the freed snapshot relationships: an upper bound)",
        load_time.as_secs_f64()
    );
    println!("shortest path, raw petgraph::algo::dijkstra: p50 {raw_p50:.2} ms, p99 {raw_p99:.2} ms ({PAIRS} pairs)");
    println!(
        "shortest path, index (query::shortest_path): p50 {idx_p50:.2} ms, p99 {idx_p99:.2} ms ({:.2}x / {:.2}x raw)",
        idx_p50 / raw_p50,
        idx_p99 / raw_p99
    );
    println!(
        "shortest path, GraphService (API path): p50 {svc_p50:.2} ms, p99 {svc_p99:.2} ms ({:.2}x / {:.2}x raw)",
        svc_p50 / raw_p50,
        svc_p99 / raw_p99
    );
    println!(
        "2-hop match (Service by tier, LINK x2 to an eu Team): p50 {:.2} ms, p99 {:.2} ms ({matched} matches)",
        percentile(&mut match_times, 0.5),
        percentile(&mut match_times, 0.99)
    );

    match postgres_cte(&entities, &rels, &pairs).await {
        Some((mut cte, load, costs)) => {
            let cte_p50 = percentile(&mut cte, 0.5);
            let same = costs
                .iter()
                .zip(&raw_costs)
                .filter(|(a, b)| match (a, b) {
                    (Some(a), Some(b)) => (*a - *b).abs() < 1e-6,
                    (a, b) => a.is_none() && b.is_none(),
                })
                .count();
            println!("PostgreSQL: the depth-bounded CTE found Dijkstra's cost for {same} of {CTE_PAIRS} pairs");
            println!(
                "PostgreSQL: loaded in {:.1} s; recursive CTE (depth <= {CTE_DEPTH}): p50 {cte_p50:.1} ms, p99 {:.1} ms ({CTE_PAIRS} pairs); CTE p50 / GraphService p50 = {:.2} (the bounded CTE answers a smaller question: see how many costs it found)",
                load.as_secs_f64(),
                percentile(&mut cte, 0.99),
                cte_p50 / svc_p50
            );
        }
        None => println!("PostgreSQL: skipped (set HOTSWAP_BENCH_DATABASE_URL or HOTSWAP_TEST_DATABASE_URL)"),
    }
}
