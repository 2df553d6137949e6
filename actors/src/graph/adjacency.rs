//! The index's graph: entities as nodes, relationships as edges, with stable
//! indices (petgraph's `NodeIndex` and `EdgeIndex`) and each node's outgoing
//! and incoming edges in doubly linked lists.
//!
//! Why not petgraph's `StableDiGraph`, which this replaced: its lists are
//! singly linked, so removing an edge walks both ends' lists from their heads
//! to find it. The fleet's graph has hubs: a module version that 100,000 nodes
//! run, a run that touched them all. Moving those nodes to the next version
//! (or pruning that run's history) walked a 100,000-long list once per edge:
//! 10–15 s of one core per run to 100,000 nodes, and node calls timing out
//! behind it (docs/BENCHMARKS.md, session 21). Here removal unlinks in O(1).
//! The walks, the traits (`EdgeRef`) and the index types are petgraph's, so the
//! queries read as they did.

use std::ops::Index;

use petgraph::stable_graph::{EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use uuid::Uuid;

use super::index::Edge;

/// "No edge" in a list link.
const NONE: u32 = u32::MAX;

/// What indexing answers for a node or an edge that is not there.
static NO_ENTITY: Uuid = Uuid::nil();
static NO_EDGE: Edge = Edge { id: Uuid::nil(), rel_type: u32::MAX, weight: 0.0, directed: true, no_properties: true };

struct NodeSlot {
    /// `None` once removed (the slot waits in the free list).
    id: Option<Uuid>,
    /// The first outgoing and the first incoming edge.
    first: [u32; 2],
}

struct EdgeSlot {
    /// `None` once removed.
    weight: Option<Edge>,
    /// Source and target.
    ends: [u32; 2],
    /// The next and the previous edge in the source's outgoing list ([0]) and
    /// in the target's incoming list ([1]).
    next: [u32; 2],
    prev: [u32; 2],
}

fn side(direction: Direction) -> usize {
    match direction {
        Direction::Outgoing => 0,
        Direction::Incoming => 1,
    }
}

#[derive(Default)]
pub struct Adjacency {
    nodes: Vec<NodeSlot>,
    edges: Vec<EdgeSlot>,
    free_nodes: Vec<u32>,
    free_edges: Vec<u32>,
    edge_count: usize,
}

/// One edge seen from a walk: petgraph's `EdgeRef`, so walks read as they do
/// over petgraph's own graphs.
#[derive(Clone, Copy)]
pub struct EdgeReference<'a> {
    index: EdgeIndex,
    ends: [NodeIndex; 2],
    weight: &'a Edge,
}

impl<'a> EdgeReference<'a> {
    /// The weight, borrowed from the graph rather than from this reference
    /// (so that a walk can hand it out), as petgraph's own references do.
    pub fn weight(&self) -> &'a Edge {
        self.weight
    }
}

impl EdgeRef for EdgeReference<'_> {
    type NodeId = NodeIndex;
    type EdgeId = EdgeIndex;
    type Weight = Edge;

    fn source(&self) -> NodeIndex {
        self.ends[0]
    }

    fn target(&self) -> NodeIndex {
        self.ends[1]
    }

    fn weight(&self) -> &Edge {
        self.weight
    }

    fn id(&self) -> EdgeIndex {
        self.index
    }
}

impl Adjacency {
    pub fn add_node(&mut self, id: Uuid) -> NodeIndex {
        let slot = NodeSlot { id: Some(id), first: [NONE; 2] };
        match self.free_nodes.pop() {
            Some(at) => {
                self.nodes[at as usize] = slot;
                NodeIndex::new(at as usize)
            }
            None => {
                self.nodes.push(slot);
                NodeIndex::new(self.nodes.len() - 1)
            }
        }
    }

    /// Removes the node and every edge at it.
    pub fn remove_node(&mut self, node: NodeIndex) -> Option<Uuid> {
        let id = self.nodes.get(node.index())?.id?;
        for s in 0..2 {
            while let Some(first) = self.nodes.get(node.index()).map(|n| n.first[s]).filter(|f| *f != NONE) {
                self.remove_edge(EdgeIndex::new(first as usize));
            }
        }
        self.nodes[node.index()].id = None;
        self.free_nodes.push(node.index() as u32);
        Some(id)
    }

    /// Adds an edge at the head of both ends' lists (the newest is walked
    /// first, as in petgraph). Both ends must be nodes of this graph.
    pub fn add_edge(&mut self, source: NodeIndex, target: NodeIndex, weight: Edge) -> EdgeIndex {
        let ends = [source.index() as u32, target.index() as u32];
        let next = [self.nodes[ends[0] as usize].first[0], self.nodes[ends[1] as usize].first[1]];
        let slot = EdgeSlot { weight: Some(weight), ends, next, prev: [NONE; 2] };
        let at = match self.free_edges.pop() {
            Some(at) => {
                self.edges[at as usize] = slot;
                at
            }
            None => {
                self.edges.push(slot);
                (self.edges.len() - 1) as u32
            }
        };
        for s in 0..2 {
            if next[s] != NONE {
                self.edges[next[s] as usize].prev[s] = at;
            }
            self.nodes[ends[s] as usize].first[s] = at;
        }
        self.edge_count += 1;
        EdgeIndex::new(at as usize)
    }

    /// Unlinks the edge from both lists, in constant time.
    pub fn remove_edge(&mut self, edge: EdgeIndex) -> Option<Edge> {
        let at = edge.index();
        let slot = self.edges.get_mut(at)?;
        let weight = slot.weight.take()?;
        let (ends, next, prev) = (slot.ends, slot.next, slot.prev);
        for s in 0..2 {
            if prev[s] == NONE {
                self.nodes[ends[s] as usize].first[s] = next[s];
            } else {
                self.edges[prev[s] as usize].next[s] = next[s];
            }
            if next[s] != NONE {
                self.edges[next[s] as usize].prev[s] = prev[s];
            }
        }
        self.free_edges.push(at as u32);
        self.edge_count -= 1;
        Some(weight)
    }

    pub fn edge_weight(&self, edge: EdgeIndex) -> Option<&Edge> {
        self.edges.get(edge.index())?.weight.as_ref()
    }

    pub fn edge_endpoints(&self, edge: EdgeIndex) -> Option<(NodeIndex, NodeIndex)> {
        let slot = self.edges.get(edge.index()).filter(|e| e.weight.is_some())?;
        Some((NodeIndex::new(slot.ends[0] as usize), NodeIndex::new(slot.ends[1] as usize)))
    }

    pub fn edge_count(&self) -> usize {
        self.edge_count
    }

    /// The node's outgoing or incoming edges, newest first.
    pub fn edges_directed(&self, node: NodeIndex, direction: Direction) -> Edges<'_> {
        let s = side(direction);
        let next = self.nodes.get(node.index()).filter(|n| n.id.is_some()).map_or(NONE, |n| n.first[s]);
        Edges { graph: self, side: s, next }
    }
}

pub struct Edges<'a> {
    graph: &'a Adjacency,
    side: usize,
    next: u32,
}

impl<'a> Iterator for Edges<'a> {
    type Item = EdgeReference<'a>;

    fn next(&mut self) -> Option<EdgeReference<'a>> {
        if self.next == NONE {
            return None;
        }
        let at = self.next as usize;
        let slot = &self.graph.edges[at];
        self.next = slot.next[self.side];
        Some(EdgeReference {
            index: EdgeIndex::new(at),
            ends: [NodeIndex::new(slot.ends[0] as usize), NodeIndex::new(slot.ends[1] as usize)],
            weight: slot.weight.as_ref()?,
        })
    }
}

impl Index<NodeIndex> for Adjacency {
    type Output = Uuid;

    /// The entity id of a node; the nil id for one that is not there (the
    /// index never asks for those).
    fn index(&self, node: NodeIndex) -> &Uuid {
        self.nodes.get(node.index()).and_then(|n| n.id.as_ref()).unwrap_or(&NO_ENTITY)
    }
}

impl Index<EdgeIndex> for Adjacency {
    type Output = Edge;

    /// The weight of an edge; a weightless placeholder for one that is not
    /// there (the index never asks for those).
    fn index(&self, edge: EdgeIndex) -> &Edge {
        self.edges.get(edge.index()).and_then(|e| e.weight.as_ref()).unwrap_or(&NO_EDGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(n: u128) -> Edge {
        Edge { id: Uuid::from_u128(n), rel_type: 0, weight: 1.0, directed: true, no_properties: true }
    }

    fn walk(g: &Adjacency, node: NodeIndex, direction: Direction) -> Vec<u128> {
        g.edges_directed(node, direction).map(|e| e.weight().id.as_u128()).collect()
    }

    /// Lists stay whole whichever edge leaves (head, middle, tail), slots are
    /// reused, and a removed node takes its edges with it.
    #[test]
    fn edges_leave_from_anywhere_in_their_lists() {
        let mut g = Adjacency::default();
        let hub = g.add_node(Uuid::from_u128(1));
        let others: Vec<NodeIndex> = (0..5).map(|i| g.add_node(Uuid::from_u128(10 + i))).collect();
        let out: Vec<EdgeIndex> = (0..5).map(|i| g.add_edge(hub, others[i], edge(100 + i as u128))).collect();
        let inc: Vec<EdgeIndex> = (0..5).map(|i| g.add_edge(others[i], hub, edge(200 + i as u128))).collect();
        assert_eq!(walk(&g, hub, Direction::Outgoing), vec![104, 103, 102, 101, 100], "newest first");
        assert_eq!(g.edge_count(), 10);
        for removed in [out[2], out[4], out[0]] {
            assert!(g.remove_edge(removed).is_some());
        }
        assert!(g.remove_edge(out[2]).is_none(), "already gone");
        assert_eq!(walk(&g, hub, Direction::Outgoing), vec![103, 101]);
        assert_eq!(walk(&g, others[2], Direction::Incoming), Vec::<u128>::new());
        assert_eq!(g.edge_endpoints(out[3]), Some((hub, others[3])));
        assert_eq!(g.edge_endpoints(out[2]), None);
        // A freed slot is taken again.
        let again = g.add_edge(others[1], others[2], edge(300));
        assert_eq!(walk(&g, others[1], Direction::Outgoing), vec![300, 201]);
        assert_eq!(g[again].id.as_u128(), 300);
        assert_eq!(g.remove_node(hub), Some(Uuid::from_u128(1)));
        assert_eq!(g.edge_count(), 1, "only the edge away from the hub is left");
        assert_eq!(walk(&g, others[1], Direction::Outgoing), vec![300]);
        assert_eq!(walk(&g, hub, Direction::Incoming), Vec::<u128>::new());
        assert!(inc.iter().all(|e| g.edge_weight(*e).is_none()));
        let reused = g.add_node(Uuid::from_u128(2));
        assert_eq!(reused, hub);
        assert_eq!(g[reused], Uuid::from_u128(2));
    }
}
