//! The cheapest path between two entities of the index: Dijkstra from both
//! ends at once. One side walks the query's direction from the source, the
//! other the reverse direction from the target, each settling nodes in cost
//! order. Every relaxed node already reached by the other side offers a way
//! through; the search stops once the two frontiers' smallest costs add up to
//! at least the cheapest such way, as nothing cheaper can be found after that.
//!
//! Two half-radius balls instead of one full ball: on a fleet-sized graph that
//! is most of the work saved. Costs live in hash maps, not in vectors the size
//! of the graph, so that a short search costs what it visits.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use foldhash::{HashMap, HashMapExt};
use petgraph::stable_graph::NodeIndex;
use uuid::Uuid;

use super::index::TenantIndex;
use super::query::{steps, Direction};

/// The cheapest way found: entity nodes from source to target, the
/// relationships between them, and the summed weight.
pub struct Cheapest {
    pub nodes: Vec<NodeIndex>,
    pub relationships: Vec<Uuid>,
    pub cost: f64,
}

/// `None` when the target cannot be reached from the source.
pub fn cheapest_path(
    index: &TenantIndex,
    source: NodeIndex,
    target: NodeIndex,
    direction: Direction,
    types: &Option<HashSet<u32>>,
) -> Option<Cheapest> {
    if source == target {
        return Some(Cheapest { nodes: vec![source], relationships: Vec::new(), cost: 0.0 });
    }
    let reverse = match direction {
        Direction::Outgoing => Direction::Incoming,
        Direction::Incoming => Direction::Outgoing,
        Direction::Both => Direction::Both,
    };
    let mut forward = Side::starting_at(source, direction);
    let mut backward = Side::starting_at(target, reverse);
    let mut best = f64::INFINITY;
    let mut meeting = None;
    loop {
        if forward.smallest() + backward.smallest() >= best {
            break;
        }
        // Grow the smaller frontier: the two balls stay about the same size.
        let (side, other) = if forward.heap.len() <= backward.heap.len() {
            (&mut forward, &backward)
        } else {
            (&mut backward, &forward)
        };
        let Some(Frontier(cost, node)) = side.heap.pop() else { break };
        if cost > side.cost_of(node) {
            continue;
        }
        for (_, edge, next) in steps(index, node, side.direction, types) {
            let reached = cost + edge.weight;
            if reached < side.cost_of(next) {
                side.cost.insert(next, reached);
                side.prev.insert(next, (node, edge.id));
                side.heap.push(Frontier(reached, next));
                let through = reached + other.cost_of(next);
                if through < best {
                    best = through;
                    meeting = Some(next);
                }
            }
        }
    }
    let meeting = meeting?;
    // Source to the meeting node, then on to the target.
    let mut nodes = vec![meeting];
    let mut relationships = Vec::new();
    let mut at = meeting;
    while let Some(&(prev, rel)) = forward.prev.get(&at) {
        nodes.push(prev);
        relationships.push(rel);
        at = prev;
    }
    nodes.reverse();
    relationships.reverse();
    let mut at = meeting;
    while let Some(&(next, rel)) = backward.prev.get(&at) {
        nodes.push(next);
        relationships.push(rel);
        at = next;
    }
    Some(Cheapest { nodes, relationships, cost: best })
}

/// One end's search: the costs found so far, how each node was reached, and
/// the frontier.
struct Side {
    direction: Direction,
    cost: HashMap<NodeIndex, f64>,
    prev: HashMap<NodeIndex, (NodeIndex, Uuid)>,
    heap: BinaryHeap<Frontier>,
}

impl Side {
    fn starting_at(start: NodeIndex, direction: Direction) -> Side {
        let mut cost = HashMap::new();
        cost.insert(start, 0.0);
        Side { direction, cost, prev: HashMap::new(), heap: BinaryHeap::from([Frontier(0.0, start)]) }
    }

    fn cost_of(&self, node: NodeIndex) -> f64 {
        self.cost.get(&node).copied().unwrap_or(f64::INFINITY)
    }

    /// The cost of the cheapest node still on the frontier (stale entries
    /// included, which only makes the bound looser).
    fn smallest(&self) -> f64 {
        self.heap.peek().map_or(f64::INFINITY, |f| f.0)
    }
}

/// A node on a frontier with the cost it was reached at; the heap pops the
/// cheapest first.
struct Frontier(f64, NodeIndex);

impl PartialEq for Frontier {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Frontier {}
impl Ord for Frontier {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then_with(|| other.1.cmp(&self.1))
    }
}
impl PartialOrd for Frontier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
