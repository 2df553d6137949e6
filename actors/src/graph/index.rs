//! The in-memory index of one tenant's graph: an `Adjacency` graph (petgraph's
//! index types and walks, lists that unlink in constant time) whose nodes are
//! entity ids and whose edges carry what traversals need (relationship id,
//! interned type, weight, direction), plus the entities
//! themselves by id and by type. Relationship properties stay in the store.

use std::collections::BTreeSet;

// A fast hasher: every query looks entities and nodes up by id many times.
use foldhash::HashMap;

use petgraph::stable_graph::{EdgeIndex, NodeIndex};
use uuid::Uuid;

use super::adjacency::Adjacency;
use super::run_window::{is_finished_run, FinishedKey};
use crate::domain::{GraphChange, GraphEntity, GraphRelationship, GraphSnapshot};

#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub id: Uuid,
    pub rel_type: u32,
    pub weight: f64,
    pub directed: bool,
    /// The relationship has no properties: a write of it again with none
    /// is known to change nothing without reading it from the store.
    pub no_properties: bool,
}

#[derive(Default)]
pub struct TenantIndex {
    pub graph: Adjacency,
    pub nodes: HashMap<Uuid, NodeIndex>,
    pub edges: HashMap<Uuid, EdgeIndex>,
    pub entities: HashMap<Uuid, GraphEntity>,
    /// Ids in order, so that paging by id is stable.
    pub by_type: HashMap<String, BTreeSet<Uuid>>,
    /// The finished Run entities, oldest first: the window of runs the graph
    /// keeps is cut from the front (`run_window`).
    pub finished_runs: BTreeSet<FinishedKey>,
    rel_types: Vec<String>,
    rel_type_ids: HashMap<String, u32>,
    rel_type_counts: HashMap<u32, usize>,
    /// Undirected relationships held. While there are none, a walk in one
    /// direction never looks at the edges of the other (half the work).
    undirected: usize,
}

impl TenantIndex {
    pub fn load(snapshot: GraphSnapshot) -> TenantIndex {
        let mut index = TenantIndex::default();
        for e in snapshot.entities {
            index.put_entity(e);
        }
        for r in &snapshot.relationships {
            index.put_relationship(r);
        }
        index
    }

    /// The id of a relationship type, if any relationship ever had it.
    pub fn rel_type_id(&self, name: &str) -> Option<u32> {
        self.rel_type_ids.get(name).copied()
    }

    pub fn rel_type_name(&self, id: u32) -> &str {
        self.rel_types.get(id as usize).map(String::as_str).unwrap_or("")
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.rel_type_ids.get(name) {
            return *id;
        }
        let id = self.rel_types.len() as u32;
        self.rel_types.push(name.to_string());
        self.rel_type_ids.insert(name.to_string(), id);
        id
    }

    pub fn entity_type(&self, id: Uuid) -> Option<&str> {
        self.entities.get(&id).map(|e| e.entity_type.as_str())
    }

    pub fn put_entity(&mut self, entity: GraphEntity) {
        if let Some(old) = self.entities.get(&entity.id) {
            if old.entity_type != entity.entity_type {
                if let Some(set) = self.by_type.get_mut(&old.entity_type) {
                    set.remove(&entity.id);
                }
            }
            if is_finished_run(old) {
                self.finished_runs.remove(&(old.created_at, old.id));
            }
        }
        if is_finished_run(&entity) {
            self.finished_runs.insert((entity.created_at, entity.id));
        }
        if !self.nodes.contains_key(&entity.id) {
            let ix = self.graph.add_node(entity.id);
            self.nodes.insert(entity.id, ix);
        }
        self.by_type.entry(entity.entity_type.clone()).or_default().insert(entity.id);
        self.entities.insert(entity.id, entity);
    }

    /// Adds or replaces; ignored when an end is missing (the store refuses those).
    pub fn put_relationship(&mut self, r: &GraphRelationship) {
        self.remove_relationship(r.id);
        let (Some(&a), Some(&b)) = (self.nodes.get(&r.source_id), self.nodes.get(&r.target_id)) else {
            return;
        };
        let rel_type = self.intern(&r.relationship_type);
        let ix = self.graph.add_edge(
            a,
            b,
            Edge { id: r.id, rel_type, weight: r.weight, directed: r.directed, no_properties: r.properties.is_empty() },
        );
        self.edges.insert(r.id, ix);
        *self.rel_type_counts.entry(rel_type).or_default() += 1;
        if !r.directed {
            self.undirected += 1;
        }
    }

    /// Whether writing `r` would change nothing the index can tell, where the
    /// index holds all of it: same type, ends, weight and direction, and no
    /// properties on either side.
    pub fn holds_unchanged(&self, r: &GraphRelationship) -> bool {
        let Some(&ix) = self.edges.get(&r.id) else { return false };
        let (Some(edge), Some((a, b))) = (self.graph.edge_weight(ix), self.graph.edge_endpoints(ix)) else {
            return false;
        };
        edge.no_properties
            && r.properties.is_empty()
            && self.rel_type_id(&r.relationship_type) == Some(edge.rel_type)
            && self.graph[a] == r.source_id
            && self.graph[b] == r.target_id
            && edge.weight == r.weight
            && edge.directed == r.directed
    }

    /// Whether any relationship here may be walked against its stored direction.
    pub fn has_undirected(&self) -> bool {
        self.undirected > 0
    }

    pub fn remove_relationship(&mut self, id: Uuid) -> Option<Edge> {
        let ix = self.edges.remove(&id)?;
        let edge = self.graph.remove_edge(ix)?;
        if let Some(n) = self.rel_type_counts.get_mut(&edge.rel_type) {
            *n = n.saturating_sub(1);
        }
        if !edge.directed {
            self.undirected = self.undirected.saturating_sub(1);
        }
        Some(edge)
    }

    pub fn remove_entity(&mut self, id: Uuid) {
        let Some(ix) = self.nodes.remove(&id) else { return };
        let incident: Vec<Uuid> = self
            .graph
            .edges_directed(ix, petgraph::Direction::Outgoing)
            .chain(self.graph.edges_directed(ix, petgraph::Direction::Incoming))
            .map(|e| e.weight().id)
            .collect();
        for rid in incident {
            self.remove_relationship(rid);
        }
        self.graph.remove_node(ix);
        if let Some(e) = self.entities.remove(&id) {
            if let Some(set) = self.by_type.get_mut(&e.entity_type) {
                set.remove(&id);
            }
            if is_finished_run(&e) {
                self.finished_runs.remove(&(e.created_at, e.id));
            }
        }
    }

    /// The relationship types a change touches, old and new, including those
    /// of relationships that go with a deleted entity: what cached queries
    /// must be dropped for.
    pub fn touched_types(&self, change: &GraphChange) -> BTreeSet<String> {
        let mut types = BTreeSet::new();
        for e in &change.upsert_entities {
            types.insert(e.entity_type.clone());
            if let Some(t) = self.entity_type(e.id) {
                types.insert(t.to_string());
            }
        }
        for r in &change.upsert_relationships {
            types.insert(r.relationship_type.clone());
        }
        let edge_type = |id: &Uuid| self.edges.get(id).and_then(|ix| self.graph.edge_weight(*ix)).map(|e| e.rel_type);
        for id in &change.delete_relationships {
            if let Some(t) = edge_type(id) {
                types.insert(self.rel_type_name(t).to_string());
            }
        }
        for r in &change.upsert_relationships {
            if let Some(t) = edge_type(&r.id) {
                types.insert(self.rel_type_name(t).to_string());
            }
        }
        for id in &change.delete_entities {
            if let Some(t) = self.entity_type(*id) {
                types.insert(t.to_string());
            }
            if let Some(ix) = self.nodes.get(id) {
                for e in self
                    .graph
                    .edges_directed(*ix, petgraph::Direction::Outgoing)
                    .chain(self.graph.edges_directed(*ix, petgraph::Direction::Incoming))
                {
                    types.insert(self.rel_type_name(e.weight().rel_type).to_string());
                }
            }
        }
        types
    }

    /// Applies a change the store has made durable, in the same order.
    pub fn apply(&mut self, change: &GraphChange) {
        for e in &change.upsert_entities {
            self.put_entity(e.clone());
        }
        for r in &change.upsert_relationships {
            self.put_relationship(r);
        }
        for id in &change.delete_relationships {
            self.remove_relationship(*id);
        }
        for id in &change.delete_entities {
            self.remove_entity(*id);
        }
    }

    pub fn entity_counts(&self) -> Vec<(String, usize)> {
        let mut v: Vec<_> =
            self.by_type.iter().filter(|(_, s)| !s.is_empty()).map(|(t, s)| (t.clone(), s.len())).collect();
        v.sort();
        v
    }

    pub fn relationship_counts(&self) -> Vec<(String, usize)> {
        let mut v: Vec<_> = self
            .rel_type_counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| (self.rel_type_name(*t).to_string(), *n))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::graph::system;

    fn entity(id: Uuid) -> GraphEntity {
        system::entity(Uuid::nil(), id, "Thing", json!({}))
    }

    fn relationship(kind: &str, source: Uuid, target: Uuid) -> GraphRelationship {
        system::edge(Uuid::nil(), kind, source, target)
    }

    /// Only a relationship the index holds in full, without properties on
    /// either side, is known unchanged without the store.
    #[test]
    fn a_relationship_without_properties_is_known_unchanged_from_the_index() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut index = TenantIndex::default();
        index.put_entity(entity(a));
        index.put_entity(entity(b));
        let plain = relationship("TOUCHED", a, b);
        assert!(!index.holds_unchanged(&plain), "not held yet");
        index.put_relationship(&plain);
        assert!(index.holds_unchanged(&plain));
        let mut heavier = plain.clone();
        heavier.weight = 2.0;
        let mut other_type = plain.clone();
        other_type.relationship_type = "DEPLOYED".into();
        let mut reversed = plain.clone();
        (reversed.source_id, reversed.target_id) = (b, a);
        let mut with_properties = plain.clone();
        with_properties.properties = json!({ "module": "m" }).as_object().unwrap().clone();
        for changed in [&heavier, &other_type, &reversed, &with_properties] {
            assert!(!index.holds_unchanged(changed), "{changed:?}");
        }
        // Held with properties: only the store can tell.
        index.put_relationship(&with_properties);
        assert!(!index.holds_unchanged(&with_properties));
        assert!(!index.holds_unchanged(&plain));
    }

    /// What the index holds, as (id, type, source, target), sorted.
    fn held(index: &TenantIndex) -> Vec<(Uuid, String, Uuid, Uuid)> {
        let mut all: Vec<_> = index
            .edges
            .iter()
            .map(|(id, ix)| {
                let (a, b) = index.graph.edge_endpoints(*ix).unwrap();
                let edge = index.graph[*ix];
                assert_eq!(edge.id, *id);
                (*id, index.rel_type_name(edge.rel_type).to_string(), index.graph[a], index.graph[b])
            })
            .collect();
        all.sort();
        all
    }

    /// Many relationships leaving busy ends at once (a run's TOUCHED, a
    /// version's RUNS moving to another version) leave the index as writing
    /// them into an empty one would, counts included.
    #[test]
    fn relationships_moved_and_deleted_at_hubs_leave_the_index_whole() {
        let mut index = TenantIndex::default();
        let (run, old_version, new_version) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        for id in [run, old_version, new_version] {
            index.put_entity(entity(id));
        }
        let mut touched = Vec::new();
        let mut runs = Vec::new();
        for _ in 0..300 {
            let node = Uuid::new_v4();
            index.put_entity(entity(node));
            let t = relationship("TOUCHED", run, node);
            let r = relationship("RUNS", node, old_version);
            index.put_relationship(&t);
            index.put_relationship(&r);
            touched.push(t);
            runs.push(r);
        }
        let mut expected = TenantIndex::default();
        for e in index.entities.values() {
            expected.put_entity(e.clone());
        }
        // Every other TOUCHED deleted, every third RUNS moved to the new version.
        let deleted: Vec<Uuid> = touched.iter().step_by(2).map(|r| r.id).collect();
        let moved: Vec<GraphRelationship> =
            runs.iter().step_by(3).map(|r| GraphRelationship { target_id: new_version, ..r.clone() }).collect();
        for r in touched.iter().chain(&runs) {
            if !deleted.contains(&r.id) {
                expected.put_relationship(moved.iter().find(|m| m.id == r.id).unwrap_or(r));
            }
        }
        let change =
            GraphChange { upsert_relationships: moved, delete_relationships: deleted, ..GraphChange::default() };
        index.apply(&change);
        assert_eq!(held(&index), held(&expected));
        assert_eq!(index.graph.edge_count(), 450);
        assert_eq!(index.relationship_counts(), vec![("RUNS".to_string(), 300), ("TOUCHED".to_string(), 150)]);
        let moved_in = index.graph.edges_directed(index.nodes[&new_version], petgraph::Direction::Incoming).count();
        assert_eq!(moved_in, 100);
    }
}
