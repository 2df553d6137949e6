//! `cargo bench --bench graph`: the knowledge graph at 100,000 entities and
//! 1,000,000 relationships.
//!
//! - shortest path (Dijkstra) p50/p99 through `GraphService` (what the API
//!   runs: cache miss, index, relationships read back from the store), on the
//!   index alone, and raw `petgraph::algo::dijkstra` on the same graph;
//! - the same question asked of PostgreSQL as a recursive CTE on the same data
//!   in the same run (needs HOTSWAP_BENCH_DATABASE_URL or
//!   HOTSWAP_TEST_DATABASE_URL; uses a database `hotswap_graph_bench` it
//!   creates and drops). A CTE cannot prune by cost, so it only finishes with a
//!   hop bound: the pairs compared are ones whose cheapest path has at most
//!   `CTE_MAX_HOPS` hops, and the CTE walks every path of up to that many
//!   hops (as one would write it without knowing the answer), so that both
//!   answer the same cost;
//! - a 2-hop match p50; the resident memory of the index alone (built first,
//!   one relationship at a time, before anything else is allocated).
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
/// The longest cheapest path (in hops) compared with PostgreSQL.
const CTE_MAX_HOPS: usize = 4;

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

/// Entity `i`, the same on every call (the ids too), so that the index can be
/// built before the vectors the rest of the bench uses exist.
fn entity(i: usize) -> GraphEntity {
    let now = chrono::DateTime::<Utc>::UNIX_EPOCH;
    let (kind, properties) = match i % 10 {
        0 => ("Team", json!({ "name": format!("team-{i}"), "region": if i.is_multiple_of(20) { "eu" } else { "us" } })),
        1 | 2 => ("Service", json!({ "name": format!("svc-{i}"), "tier": (i / 10) % 10 })),
        _ => ("Node", json!({ "hostname": format!("node-{i}"), "environment": "Production" })),
    };
    GraphEntity {
        tenant_id: DEFAULT_TENANT,
        id: Uuid::from_u64_pair(1, i as u64),
        entity_type: kind.into(),
        properties: properties.as_object().cloned().unwrap_or_default(),
        version: 1,
        created_at: now,
        updated_at: now,
        created_by: "bench".into(),
    }
}

/// The relationships, one at a time and the same on every call: seeded
/// random ends and weights (0.1–10), all directed.
fn relationships(n_entities: usize, n_rels: usize) -> impl Iterator<Item = (GraphRelationship, (usize, usize, f64))> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let now = chrono::DateTime::<Utc>::UNIX_EPOCH;
    (0..n_rels).map(move |i| {
        let (a, b) = (rng.below(n_entities), rng.below(n_entities));
        let weight = 0.1 + (rng.below(100) as f64) / 10.0;
        let r = GraphRelationship {
            tenant_id: DEFAULT_TENANT,
            id: Uuid::from_u64_pair(2, i as u64),
            relationship_type: "LINK".into(),
            source_id: Uuid::from_u64_pair(1, a as u64),
            target_id: Uuid::from_u64_pair(1, b as u64),
            properties: Default::default(),
            weight,
            directed: true,
            created_at: now,
            created_by: "bench".into(),
        };
        (r, (a, b, weight))
    })
}

fn generate(n_entities: usize, n_rels: usize) -> Generated {
    let entities = (0..n_entities).map(entity).collect();
    let (rels, edges) = relationships(n_entities, n_rels).unzip();
    (entities, rels, edges)
}

/// The index built the way a store's load does, but from one entity or
/// relationship at a time, and the resident memory it added (KiB).
fn index_alone(n_entities: usize, n_rels: usize) -> (TenantIndex, u64, Duration) {
    let before = rss_kib();
    let started = Instant::now();
    let mut index = TenantIndex::default();
    for i in 0..n_entities {
        index.put_entity(entity(i));
    }
    for (r, _) in relationships(n_entities, n_rels) {
        index.put_relationship(&r);
    }
    (index, rss_kib().saturating_sub(before), started.elapsed())
}

#[derive(diesel::QueryableByName)]
struct Cost {
    #[diesel(sql_type = diesel::sql_types::Nullable<Double>)]
    cost: Option<f64>,
}

/// What the CTE measured: its times, the load time, and its costs.
type CteRun = (Vec<Duration>, Duration, Vec<Option<f64>>);

/// Loads the same graph into a fresh PostgreSQL database through the store,
/// then asks each pair's cheapest cost with a recursive CTE that walks every
/// path of up to `CTE_MAX_HOPS` hops (each pair's cheapest path fits in that).
async fn postgres_cte(
    entities: &[GraphEntity],
    rels: &[GraphRelationship],
    pairs: &[(usize, usize, usize)],
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
    for &(s, t, _) in pairs {
        let started = Instant::now();
        let cost: Vec<Cost> = diesel::sql_query(
            "WITH RECURSIVE walk(node, cost, depth) AS ( \
               SELECT $2::uuid, 0::float8, 0 \
               UNION ALL \
               SELECT r.target_id, w.cost + r.weight, w.depth + 1 FROM walk w \
               JOIN graph_relationships r ON r.tenant_id = $1 AND r.source_id = w.node \
               WHERE w.depth < $4 AND w.node <> $3) \
             SELECT min(cost) AS cost FROM walk WHERE node = $3",
        )
        .bind::<SqlUuid, _>(DEFAULT_TENANT)
        .bind::<SqlUuid, _>(entities[s].id)
        .bind::<SqlUuid, _>(entities[t].id)
        .bind::<diesel::sql_types::Integer, _>(CTE_MAX_HOPS as i32)
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

/// Pairs whose cheapest path has at most `CTE_MAX_HOPS` hops, with that
/// count: targets a short random walk away from random sources.
fn near_pairs(index: &TenantIndex, raw: &DiGraph<(), f64>, rng: &mut Rng, n: usize) -> Vec<(usize, usize, usize)> {
    let mut found = Vec::new();
    let mut tries = 0;
    while found.len() < CTE_PAIRS && tries < 10_000 {
        tries += 1;
        let source = rng.below(n);
        let mut at = NodeIndex::new(source);
        for _ in 0..1 + rng.below(CTE_MAX_HOPS) {
            let next: Vec<NodeIndex> = raw.neighbors(at).collect();
            if next.is_empty() {
                break;
            }
            at = next[rng.below(next.len())];
        }
        let target = at.index();
        if target == source {
            continue;
        }
        let q = path_query(source, target);
        if let Some(path) = query::shortest_path(index, &q) {
            if path.relationships.len() <= CTE_MAX_HOPS {
                found.push((source, target, path.relationships.len()));
            }
        }
    }
    found
}

fn path_query(s: usize, t: usize) -> PathQuery {
    PathQuery {
        source_id: Uuid::from_u64_pair(1, s as u64),
        target_id: Uuid::from_u64_pair(1, t as u64),
        direction: Direction::Outgoing,
        relationship_types: vec![],
        max_depth: None,
        max_paths: None,
    }
}

#[actix::main]
async fn main() {
    // The server's memory settings (`hotswap serve`): no transparent huge pages.
    hotswap::huge_pages::opt_out().expect("set the process's transparent huge pages flag");
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n_entities = <[usize]>::first(&args).copied().unwrap_or(100_000);
    let n_rels = args.get(1).copied().unwrap_or(1_000_000);
    println!("graph bench: {n_entities} entities, {n_rels} relationships");

    // First, before anything else is allocated: the index alone.
    let (index, index_kib, load_time) = index_alone(n_entities, n_rels);

    let (entities, rels, edges) = generate(n_entities, n_rels);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pairs: Vec<(usize, usize)> = (0..PAIRS).map(|_| (rng.below(n_entities), rng.below(n_entities))).collect();

    let store = Arc::new(MemoryStore::new());
    let change =
        GraphChange { upsert_entities: entities.clone(), upsert_relationships: rels.clone(), ..Default::default() };
    store.write_graph(DEFAULT_TENANT, &change, None).await.unwrap();
    drop(change);

    // Raw petgraph on the same graph: node i is entity i.
    let mut raw: DiGraph<(), f64> = DiGraph::with_capacity(n_entities, n_rels);
    let nodes: Vec<NodeIndex> = (0..n_entities).map(|_| raw.add_node(())).collect();
    for &(a, b, w) in &edges {
        raw.add_edge(nodes[a], nodes[b], w);
    }

    // Raw and index on each pair in turn, alternating which goes first, so
    // that a noisy neighbour slows both alike.
    let mut raw_times = Vec::new();
    let mut index_times = Vec::new();
    for (i, &(s, t)) in pairs.iter().enumerate() {
        let mut raw_cost = None;
        let mut index_cost = None;
        for turn in 0..2 {
            if (turn + i) % 2 == 0 {
                let started = Instant::now();
                let dist = petgraph::algo::dijkstra(&raw, nodes[s], Some(nodes[t]), |e| *e.weight());
                raw_times.push(started.elapsed());
                raw_cost = dist.get(&nodes[t]).copied();
            } else {
                let started = Instant::now();
                let found = query::shortest_path(&index, &path_query(s, t));
                index_times.push(started.elapsed());
                index_cost = found.map(|p| p.total_weight);
            }
        }
        match (index_cost, raw_cost) {
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
        "index alone: built in {:.2} s, resident memory {:.0} MiB",
        load_time.as_secs_f64(),
        index_kib as f64 / 1024.0
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

    // The same question of PostgreSQL: near pairs, whose cheapest path fits the
    // CTE's hop bound, so that it must find the same cost.
    let near = near_pairs(&index, &raw, &mut rng, n_entities);
    let mut near_times = Vec::new();
    let mut near_costs = Vec::new();
    for &(s, t, _) in &near {
        let started = Instant::now();
        let found = service.shortest_path(DEFAULT_TENANT, path_query(s, t)).await.unwrap();
        near_times.push(started.elapsed());
        near_costs.push(found.total_weight);
    }
    match postgres_cte(&entities, &rels, &near).await {
        Some((mut cte, load, costs)) => {
            for (i, (cte_cost, ours)) in costs.iter().zip(&near_costs).enumerate() {
                let (a, b) = (cte_cost.expect("the CTE finds a path within the hops of the cheapest"), ours.unwrap());
                assert!((a - b).abs() < 1e-6, "near pair {i}: CTE {a} vs {b}");
            }
            let hops: Vec<usize> = near.iter().map(|p| p.2).collect();
            let near_p50 = percentile(&mut near_times, 0.5);
            let cte_p50 = percentile(&mut cte, 0.5);
            println!(
                "PostgreSQL: loaded in {:.1} s; {} near pairs (hops {hops:?}), the same cost from both",
                load.as_secs_f64(),
                near.len()
            );
            println!(
                "near pairs: GraphService p50 {near_p50:.2} ms; recursive CTE p50 {cte_p50:.1} ms, p99 {:.1} ms; CTE / GraphService = {:.0}x",
                percentile(&mut cte, 0.99),
                cte_p50 / near_p50
            );
        }
        None => println!("PostgreSQL: skipped (set HOTSWAP_BENCH_DATABASE_URL or HOTSWAP_TEST_DATABASE_URL)"),
    }
}
