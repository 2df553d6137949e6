//! The changes of a finished run, kept compactly by the memory store.
//!
//! A run records, for every node it changed, the module state the node had
//! before (so that a manual rollback can put it back). Kept as `NodeChange`
//! values that is several hundred bytes per node (three version slots with
//! their fault knobs, a hostname of its own), and the memory store keeps a
//! window of thousands of finished runs: ten runs to 100,000 nodes held
//! about 380 MB. So the nodes (ids, hostnames, environments) are a roster
//! shared with the other runs that changed the same nodes (`roster.rs`),
//! each distinct state-before is kept once, and consecutive changes with the
//! same state-before are one stretch: a run whose nodes all had the same
//! state, to a cluster an earlier run already listed in the same order,
//! keeps a few dozen bytes in all; in another order, four bytes a node.

use std::sync::Arc;

use super::roster::{Roster, Rosters};
use crate::domain::{ModuleSlots, NodeChange};

pub(super) struct CompactChanges {
    roster: Arc<Roster>,
    /// For each change, in the order recorded, its node's place in the
    /// roster; empty when that is the roster's own order.
    places: Vec<u32>,
    /// Each distinct state-before once, in the order first met.
    befores: Vec<ModuleSlots>,
    /// Stretches of consecutive changes with the same state-before: where
    /// each ends (exclusive) and its index in `befores`.
    stretches: Vec<(u32, u32)>,
}

impl CompactChanges {
    /// `None` when the changes have more distinct states-before than
    /// [`MAX_DISTINCT`] or are too many to index with 32 bits: the caller
    /// keeps them as they are.
    pub(super) fn pack(changes: &[NodeChange], rosters: &mut Rosters) -> Option<CompactChanges> {
        let mut befores: Vec<ModuleSlots> = Vec::new();
        let mut stretches: Vec<(u32, u32)> = Vec::new();
        for (at, change) in changes.iter().enumerate() {
            let end = u32::try_from(at + 1).ok()?;
            if let Some(last) = stretches.last_mut() {
                if befores.get(last.1 as usize) == Some(&change.before) {
                    last.0 = end;
                    continue;
                }
            }
            // Neighbours usually share their state: look at the last one met first.
            let found =
                befores.iter().rev().position(|b| *b == change.before).map(|from_end| befores.len() - 1 - from_end);
            let before = match found {
                Some(i) => i,
                None => {
                    befores.push(change.before.clone());
                    befores.len() - 1
                }
            };
            // Many distinct states: a linear search per node would turn
            // packing quadratic, and sharing would save little anyway.
            if befores.len() > MAX_DISTINCT {
                return None;
            }
            stretches.push((end, u32::try_from(before).ok()?));
        }
        let (roster, places) = rosters.for_changes(changes)?;
        befores.shrink_to_fit();
        stretches.shrink_to_fit();
        Some(CompactChanges { roster, places, befores, stretches })
    }

    /// The changes as they were recorded, in their order.
    pub(super) fn unpack(&self) -> Arc<Vec<NodeChange>> {
        let mut stretches = self.stretches.iter().peekable();
        let changes = (0..self.len())
            .map(|at| {
                while stretches.peek().is_some_and(|(end, _)| *end as usize <= at) {
                    stretches.next();
                }
                let before = stretches.peek().and_then(|(_, b)| self.befores.get(*b as usize)).cloned();
                let node = self.places.get(at).map_or(at, |place| *place as usize);
                NodeChange {
                    node_id: self.roster.node_id(node),
                    hostname: self.roster.hostname(node).to_string(),
                    environment: self.roster.environment(node),
                    before: before.unwrap_or_default(),
                }
            })
            .collect();
        Arc::new(changes)
    }

    pub(super) fn len(&self) -> usize {
        self.roster.len()
    }
}

/// Distinct states-before shared at most; beyond them a run's changes are
/// kept as they are.
const MAX_DISTINCT: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Environment, VersionSlot};
    use uuid::Uuid;

    fn change(i: usize, before: Option<&str>) -> NodeChange {
        NodeChange {
            node_id: Uuid::new_v4(),
            hostname: format!("dev-node-{i:03}"),
            environment: if i.is_multiple_of(2) { Environment::Development } else { Environment::Qa },
            before: ModuleSlots {
                active: before.map(VersionSlot::plain),
                previous: Some(VersionSlot::plain("0.1.0")),
                standby: None,
            },
        }
    }

    #[test]
    fn unpacking_gives_back_every_change_in_order() {
        let changes: Vec<NodeChange> =
            (0..300).map(|i| change(i, [Some("1.0.0"), None, Some("1.1.0")].get(i % 7).copied().flatten())).collect();
        let packed = CompactChanges::pack(&changes, &mut Rosters::default()).expect("few distinct states");
        assert_eq!(packed.befores.len(), 3);
        assert_eq!(packed.len(), 300);
        assert_eq!(*packed.unpack(), changes);
    }

    #[test]
    fn too_many_distinct_states_are_not_packed() {
        let changes: Vec<NodeChange> = (0..=MAX_DISTINCT).map(|i| change(i, Some(&format!("1.0.{i}")))).collect();
        assert!(CompactChanges::pack(&changes, &mut Rosters::default()).is_none());
        assert!(CompactChanges::pack(&changes[..MAX_DISTINCT], &mut Rosters::default()).is_some());
        assert_eq!(
            *CompactChanges::pack(&[], &mut Rosters::default()).expect("empty").unpack(),
            Vec::<NodeChange>::new()
        );
    }

    #[test]
    fn runs_to_the_same_nodes_share_one_roster_and_keep_their_own_states() {
        let mut rosters = Rosters::default();
        let first: Vec<NodeChange> = (0..200).map(|i| change(i, Some("1.0.0"))).collect();
        let mut second = first.clone();
        for c in &mut second {
            c.before.active = Some(VersionSlot::plain("1.1.0"));
        }
        let a = CompactChanges::pack(&first, &mut rosters).expect("packed");
        let b = CompactChanges::pack(&second, &mut rosters).expect("packed");
        assert!(Arc::ptr_eq(&a.roster, &b.roster), "the second run shares the first one's roster");
        assert!(b.places.is_empty(), "same order: no places kept");
        assert_eq!(b.stretches.len(), 1, "one state before for every node: one stretch");
        assert_eq!(*a.unpack(), first);
        assert_eq!(*b.unpack(), second);
    }

    #[test]
    fn the_same_nodes_in_another_order_share_the_roster_and_keep_their_order() {
        let mut rosters = Rosters::default();
        let first: Vec<NodeChange> = (0..200).map(|i| change(i, Some("1.0.0"))).collect();
        let mut reordered = first.clone();
        reordered.reverse();
        reordered.swap(3, 150);
        let a = CompactChanges::pack(&first, &mut rosters).expect("packed");
        let b = CompactChanges::pack(&reordered, &mut rosters).expect("packed");
        assert!(Arc::ptr_eq(&a.roster, &b.roster));
        assert_eq!(b.places.len(), 200);
        assert_eq!(*b.unpack(), reordered);
    }

    #[test]
    fn other_nodes_or_a_renamed_node_get_a_roster_of_their_own() {
        let mut rosters = Rosters::default();
        let first: Vec<NodeChange> = (0..50).map(|i| change(i, Some("1.0.0"))).collect();
        let others: Vec<NodeChange> = (0..50).map(|i| change(i, Some("1.0.0"))).collect();
        let mut renamed = first.clone();
        renamed[7].hostname = "renamed-node".into();
        let a = CompactChanges::pack(&first, &mut rosters).expect("packed");
        let b = CompactChanges::pack(&others, &mut rosters).expect("packed");
        let c = CompactChanges::pack(&renamed, &mut rosters).expect("packed");
        assert!(!Arc::ptr_eq(&a.roster, &b.roster));
        assert!(!Arc::ptr_eq(&a.roster, &c.roster));
        assert_eq!(*b.unpack(), others);
        assert_eq!(*c.unpack(), renamed);
        // The first roster is still remembered: a run to its nodes shares it.
        let again = CompactChanges::pack(&first, &mut rosters).expect("packed");
        assert!(Arc::ptr_eq(&a.roster, &again.roster));
    }
}
