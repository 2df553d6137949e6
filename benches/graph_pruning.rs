//! `cargo bench --bench graph_pruning`: what a run to many nodes costs the
//! knowledge graph's index when relationships leave it.
//!
//! Two removals a run to N nodes makes once each node's run history is full:
//! - the N TOUCHED relationships of the run that falls out of every node's
//!   history (all leaving one Run entity);
//! - the N RUNS relationships that move from the old version to the new one
//!   (all arriving at one version, all leaving another).
//!
//! Each is timed both ways on identical indexes, alternating which goes
//! first: the baseline removes or rewrites the relationships one by one, in
//! the order a hash set hands them out (what `TenantIndex::apply` did), the
//! other is `TenantIndex::apply` as it is now. Medians of `ROUNDS` rounds.
//!
//! Optional argument: N (default 10000).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Benchmark code: a panic is a failure with its message.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use hotswap_actors::domain::{GraphChange, GraphEntity, GraphRelationship, DEFAULT_TENANT};
use hotswap_actors::graph::index::TenantIndex;
use uuid::Uuid;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 7;

fn entity(id: Uuid, kind: &str) -> GraphEntity {
    GraphEntity {
        tenant_id: DEFAULT_TENANT,
        id,
        entity_type: kind.into(),
        properties: Default::default(),
        version: 1,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        created_by: "system".into(),
    }
}

fn relationship(kind: &str, source: Uuid, target: Uuid) -> GraphRelationship {
    GraphRelationship {
        tenant_id: DEFAULT_TENANT,
        id: Uuid::new_v4(),
        relationship_type: kind.into(),
        source_id: source,
        target_id: target,
        properties: Default::default(),
        weight: 1.0,
        directed: true,
        created_at: Utc::now(),
        created_by: "system".into(),
    }
}

/// A tenant's index after runs to `n` nodes: one old run that touched every
/// node, every node running the old version.
struct Fleet {
    index: TenantIndex,
    touched: Vec<Uuid>,
    runs: Vec<GraphRelationship>,
    new_version: Uuid,
}

fn fleet(n: usize) -> Fleet {
    let mut index = TenantIndex::default();
    let (run, old_version, new_version) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    index.put_entity(entity(run, "Run"));
    index.put_entity(entity(old_version, "ModuleVersion"));
    index.put_entity(entity(new_version, "ModuleVersion"));
    let mut touched = Vec::with_capacity(n);
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        let node = Uuid::new_v4();
        index.put_entity(entity(node, "Node"));
        let t = relationship("TOUCHED", run, node);
        let r = relationship("RUNS", node, old_version);
        index.put_relationship(&t);
        index.put_relationship(&r);
        touched.push(t.id);
        runs.push(r);
    }
    Fleet { index, touched, runs, new_version }
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
            let one_by_one = (round + turn) % 2 == 0;
            let mut f = fleet(n);
            // The order a hash set gives, as the sync's node maps did.
            let deleted: Vec<Uuid> = f.touched.iter().copied().collect::<HashSet<_>>().into_iter().collect();
            let moved: Vec<GraphRelationship> =
                f.runs.iter().map(|r| GraphRelationship { target_id: f.new_version, ..r.clone() }).collect();
            let started = Instant::now();
            if one_by_one {
                for id in &deleted {
                    f.index.remove_relationship(*id);
                }
            } else {
                f.index.apply(&GraphChange { delete_relationships: deleted, ..GraphChange::default() });
            }
            times[0][usize::from(!one_by_one)].push(started.elapsed());
            let started = Instant::now();
            if one_by_one {
                for r in &moved {
                    f.index.put_relationship(r);
                }
            } else {
                f.index.apply(&GraphChange { upsert_relationships: moved, ..GraphChange::default() });
            }
            times[1][usize::from(!one_by_one)].push(started.elapsed());
            assert_eq!(f.index.relationship_counts(), vec![("RUNS".to_string(), n)]);
        }
    }
    let [touched, runs] = times;
    for (what, [baseline, now]) in [("a run's TOUCHED deleted", touched), ("RUNS moved to a new version", runs)] {
        let (baseline, now) = (median(baseline), median(now));
        println!(
            "{what}: one by one {baseline:.2} ms, together {now:.2} ms ({:.1}x faster)",
            baseline / now.max(f64::EPSILON)
        );
    }
}
