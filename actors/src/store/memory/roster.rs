//! The nodes a finished run changed (id, hostname, environment), kept once
//! for every run that changed the same nodes.
//!
//! Runs of one cluster mostly change the same nodes again and again: ten
//! runs to 100,000 nodes would otherwise keep ten copies of the same ids
//! and hostnames (about 40 bytes a node each). The memory store keeps the
//! rosters of its last few packed runs and gives a new run one of them when
//! its nodes are the same, in any order.

use std::collections::VecDeque;
use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{Environment, NodeChange};

/// Rosters remembered for the next runs to share (one per cluster a tenant
/// deploys to in turn, and then some).
const REMEMBERED: usize = 8;

/// Nodes in the order of the run that first listed them.
pub(super) struct Roster {
    ids: Vec<Uuid>,
    /// Where each hostname ends in `hostnames`; it starts where the previous one ends.
    hostname_ends: Vec<u32>,
    hostnames: String,
    environments: Vec<Environment>,
    /// The positions above, ordered by node id: how a run listing the same
    /// nodes in another order is matched without a search per node.
    by_id: Vec<u32>,
}

impl Roster {
    /// `None` when the hostnames are too long to index with 32 bits.
    fn of(changes: &[NodeChange]) -> Option<Roster> {
        let mut hostnames = String::with_capacity(changes.iter().map(|c| c.hostname.len()).sum());
        let mut hostname_ends = Vec::with_capacity(changes.len());
        for change in changes {
            hostnames.push_str(&change.hostname);
            hostname_ends.push(u32::try_from(hostnames.len()).ok()?);
        }
        let ids: Vec<Uuid> = changes.iter().map(|c| c.node_id).collect();
        let mut by_id: Vec<u32> = (0..u32::try_from(ids.len()).ok()?).collect();
        by_id.sort_by_key(|&i| ids[i as usize]);
        Some(Roster {
            ids,
            hostname_ends,
            hostnames,
            environments: changes.iter().map(|c| c.environment).collect(),
            by_id,
        })
    }

    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(super) fn node_id(&self, at: usize) -> Uuid {
        self.ids[at]
    }

    pub(super) fn environment(&self, at: usize) -> Environment {
        self.environments[at]
    }

    pub(super) fn hostname(&self, at: usize) -> &str {
        let start = at.checked_sub(1).map_or(0, |before| self.hostname_ends[before] as usize);
        self.hostnames.get(start..self.hostname_ends[at] as usize).unwrap_or_default()
    }

    fn lists(&self, at: usize, change: &NodeChange) -> bool {
        self.ids[at] == change.node_id
            && self.environments[at] == change.environment
            && self.hostname(at) == change.hostname
    }

    /// Where each change's node sits in this roster: `Some(empty)` when the
    /// changes list exactly these nodes in this order, `Some(places)` when
    /// they list them in another order, `None` when they are other nodes.
    /// `sorted` is the changes' positions ordered by node id, made by the
    /// first roster that needs it and reused by the next.
    fn places_of(&self, changes: &[NodeChange], sorted: &mut Option<Vec<usize>>) -> Option<Vec<u32>> {
        if changes.len() != self.len() {
            return None;
        }
        if changes.iter().enumerate().all(|(at, change)| self.lists(at, change)) {
            return Some(Vec::new());
        }
        let sorted = sorted.get_or_insert_with(|| {
            let mut positions: Vec<usize> = (0..changes.len()).collect();
            positions.sort_by_key(|&i| changes[i].node_id);
            positions
        });
        let mut places = vec![0u32; changes.len()];
        for (&change_at, &roster_at) in sorted.iter().zip(&self.by_id) {
            if !self.lists(roster_at as usize, &changes[change_at]) {
                return None;
            }
            places[change_at] = roster_at;
        }
        Some(places)
    }
}

/// The rosters the last few packed runs used, the latest first.
#[derive(Default)]
pub(super) struct Rosters {
    recent: VecDeque<Arc<Roster>>,
}

impl Rosters {
    /// A roster listing the changes' nodes (one remembered, or a new one)
    /// and each change's place in it (empty: the roster's own order).
    pub(super) fn for_changes(&mut self, changes: &[NodeChange]) -> Option<(Arc<Roster>, Vec<u32>)> {
        let mut sorted = None;
        let found = self
            .recent
            .iter()
            .enumerate()
            .find_map(|(at, roster)| roster.places_of(changes, &mut sorted).map(|places| (at, places)));
        let (roster, places) = match found {
            Some((at, places)) => (self.recent.remove(at)?, places),
            None => (Arc::new(Roster::of(changes)?), Vec::new()),
        };
        self.recent.truncate(REMEMBERED - 1);
        self.recent.push_front(roster.clone());
        Some((roster, places))
    }
}
