//! `cargo bench --bench graph_pruning`: what a run to many nodes costs the
//! knowledge graph's index when relationships leave it.
//!
//! Two removals a run to N nodes makes once each node's run history is full:
//! - the N TOUCHED relationships of the run that falls out of every node's
//!   history (all leaving one Run entity);
//! - the N RUNS relationships that move from the old version to the new one
//!   (all arriving at one version, all leaving another).
//!
//! Each is timed on the index (`TenantIndex::apply`, which keeps its maps as
//! well) and, as the baseline, on a petgraph `StableDiGraph` holding the same
//! edges (what the index's graph was before session 21), removing or moving
//! the edges one by one in the order a hash set hands them out. The two
//! alternate which goes first. Medians of `ROUNDS` rounds.
//!
//! Optional argument: N (default 10000).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Benchmark code: a panic is a failure with its message.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use hotswap_actors::domain::{GraphChange, GraphEntity, GraphRelationship, DEFAULT_TENANT};
use hotswap_actors::graph::index::TenantIndex;
use hotswap_actors::graph::system;
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use serde_json::json;
use uuid::Uuid;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 7;

fn entity(id: Uuid, kind: &str) -> GraphEntity {
    system::entity(DEFAULT_TENANT, id, kind, json!({}))
}

fn relationship(kind: &str, source: Uuid, target: Uuid) -> GraphRelationship {
    system::edge(DEFAULT_TENANT, kind, source, target)
}

/// A tenant's graph after runs to `n` nodes: one old run that touched every
/// node, every node running the old version; as the index and as a plain
/// petgraph graph.
struct Fleet {
    index: TenantIndex,
    baseline: StableDiGraph<Uuid, Uuid>,
    baseline_edges: HashMap<Uuid, EdgeIndex>,
    baseline_nodes: HashMap<Uuid, NodeIndex>,
    touched: Vec<Uuid>,
    runs: Vec<GraphRelationship>,
    new_version: Uuid,
}

fn fleet(n: usize) -> Fleet {
    let mut f = Fleet {
        index: TenantIndex::default(),
        baseline: StableDiGraph::default(),
        baseline_edges: HashMap::new(),
        baseline_nodes: HashMap::new(),
        touched: Vec::with_capacity(n),
        runs: Vec::with_capacity(n),
        new_version: Uuid::new_v4(),
    };
    let add_entity = |f: &mut Fleet, id: Uuid, kind: &str| {
        f.index.put_entity(entity(id, kind));
        let ix = f.baseline.add_node(id);
        f.baseline_nodes.insert(id, ix);
    };
    let add_relationship = |f: &mut Fleet, r: &GraphRelationship| {
        f.index.put_relationship(r);
        let ix = f.baseline.add_edge(f.baseline_nodes[&r.source_id], f.baseline_nodes[&r.target_id], r.id);
        f.baseline_edges.insert(r.id, ix);
    };
    let (run, old_version, new_version) = (Uuid::new_v4(), Uuid::new_v4(), f.new_version);
    add_entity(&mut f, run, "Run");
    add_entity(&mut f, old_version, "ModuleVersion");
    add_entity(&mut f, new_version, "ModuleVersion");
    for _ in 0..n {
        let node = Uuid::new_v4();
        add_entity(&mut f, node, "Node");
        let t = relationship("TOUCHED", run, node);
        let r = relationship("RUNS", node, old_version);
        add_relationship(&mut f, &t);
        add_relationship(&mut f, &r);
        f.touched.push(t.id);
        f.runs.push(r);
    }
    f
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let n = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    println!("graph pruning bench: {n} nodes, {ROUNDS} rounds, medians");
    let mut times: [[Vec<Duration>; 2]; 2] = Default::default();
    for round in 0..ROUNDS {
        for turn in 0..2 {
            let on_baseline = (round + turn) % 2 == 0;
            let mut f = fleet(n);
            // The order a hash set gives, as the sync's node maps did.
            let deleted: Vec<Uuid> = f.touched.iter().copied().collect::<HashSet<_>>().into_iter().collect();
            let moved: Vec<GraphRelationship> =
                f.runs.iter().map(|r| GraphRelationship { target_id: f.new_version, ..r.clone() }).collect();
            let started = Instant::now();
            if on_baseline {
                for id in &deleted {
                    f.baseline.remove_edge(f.baseline_edges[id]);
                }
            } else {
                f.index.apply(&GraphChange { delete_relationships: deleted, ..GraphChange::default() });
            }
            times[0][usize::from(!on_baseline)].push(started.elapsed());
            let started = Instant::now();
            if on_baseline {
                let new_version = f.baseline_nodes[&f.new_version];
                for r in &moved {
                    f.baseline.remove_edge(f.baseline_edges[&r.id]);
                    let ix = f.baseline.add_edge(f.baseline_nodes[&r.source_id], new_version, r.id);
                    f.baseline_edges.insert(r.id, ix);
                }
                assert_eq!(f.baseline.edge_count(), n);
            } else {
                f.index.apply(&GraphChange { upsert_relationships: moved, ..GraphChange::default() });
                assert_eq!(f.index.relationship_counts(), vec![("RUNS".to_string(), n)]);
            }
            times[1][usize::from(!on_baseline)].push(started.elapsed());
        }
    }
    let [touched, runs] = times;
    for (what, [baseline, now]) in [("a run's TOUCHED deleted", touched), ("RUNS moved to a new version", runs)] {
        let (baseline, now) = (median(baseline), median(now));
        println!(
            "{what}: petgraph StableDiGraph {baseline:.2} ms, index {now:.2} ms ({:.1}x faster)",
            baseline / now.max(f64::EPSILON)
        );
    }
}
