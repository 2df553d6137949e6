//! A bound on the run history the graph keeps: each node holds the TOUCHED
//! relationships of the last [`RUN_HISTORY_PER_NODE`] runs that changed it.
//!
//! Every run adds one TOUCHED relationship per node it changes. Kept for
//! every run, they grew the graph by a relationship per node per run, for
//! ever: about 3 MB per run to 10,000 nodes in the server's memory, and as
//! many rows on PostgreSQL (docs/BENCHMARKS.md, session 20). "Which runs
//! changed this node lately" is what impact questions ask; the runs' full
//! record stays in the store.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use uuid::Uuid;

use super::index::TenantIndex;
use super::schema::types::TOUCHED;
use crate::domain::GraphChange;

/// TOUCHED relationships kept per node: those of the runs created last.
pub const RUN_HISTORY_PER_NODE: usize = 8;

/// Bounds the history of the nodes that `change` adds TOUCHED relationships
/// to: the new ones are kept first (they are the runs changing the node now;
/// pruning one would only see it written again at its run's next save), the
/// most recently created runs' next, and the rest of what `index` holds is
/// deleted in the same change.
pub fn bound(index: &TenantIndex, change: &mut GraphChange) {
    let mut new_by_node: HashMap<Uuid, Vec<usize>> = HashMap::new();
    for (position, r) in change.upsert_relationships.iter().enumerate() {
        if r.relationship_type == TOUCHED && !index.edges.contains_key(&r.id) {
            new_by_node.entry(r.target_id).or_default().push(position);
        }
    }
    if new_by_node.is_empty() {
        return;
    }
    let upserted: HashSet<Uuid> = change.upsert_relationships.iter().map(|r| r.id).collect();
    let created_here: HashMap<Uuid, DateTime<Utc>> =
        change.upsert_entities.iter().map(|e| (e.id, e.created_at)).collect();
    let created = |run: Uuid| {
        created_here.get(&run).copied().or_else(|| index.entities.get(&run).map(|e| e.created_at)).unwrap_or_default()
    };
    let touched = index.rel_type_id(TOUCHED);
    // Runs leaving the graph in this change (`run_window`) take their
    // relationships with them: they hold no place in a node's history.
    let leaving: HashSet<Uuid> = change.delete_entities.iter().copied().collect();
    let mut dropped = HashSet::new();
    let mut deleted = Vec::new();
    for (node, mut new) in new_by_node {
        let rels = &change.upsert_relationships;
        new.sort_by_key(|&p| Reverse((created(rels[p].source_id), rels[p].id)));
        dropped.extend(new.iter().skip(RUN_HISTORY_PER_NODE).copied());
        let mut held: Vec<(DateTime<Utc>, Uuid)> = match (touched, index.nodes.get(&node)) {
            (Some(touched), Some(&at)) => index
                .graph
                .edges_directed(at, Direction::Incoming)
                .filter(|e| e.weight().rel_type == touched && !leaving.contains(&index.graph[e.source()]))
                .map(|e| (created(index.graph[e.source()]), e.weight().id))
                .collect(),
            _ => Vec::new(),
        };
        held.sort_by_key(|held| Reverse(*held));
        let room = RUN_HISTORY_PER_NODE.saturating_sub(new.len());
        // One this change writes again stays (it cannot be written and deleted at once).
        deleted.extend(held.into_iter().skip(room).map(|(_, id)| id).filter(|id| !upserted.contains(id)));
    }
    if !dropped.is_empty() {
        let mut position = 0;
        change.upsert_relationships.retain(|_| {
            let keep = !dropped.contains(&position);
            position += 1;
            keep
        });
    }
    change.delete_relationships.extend(deleted);
}

/// For a rebuild that lists runs newest first: keeps a node's TOUCHED
/// relationships only from the first [`RUN_HISTORY_PER_NODE`] runs that name it.
#[derive(Default)]
pub struct NewestRunsFirst {
    kept: HashMap<Uuid, usize>,
}

impl NewestRunsFirst {
    pub fn keep(&mut self, items: &mut GraphChange) {
        items.upsert_relationships.retain(|r| {
            if r.relationship_type != TOUCHED {
                return true;
            }
            let kept = self.kept.entry(r.target_id).or_default();
            *kept += 1;
            *kept <= RUN_HISTORY_PER_NODE
        });
    }
}
