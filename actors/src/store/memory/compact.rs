//! The changes of a finished run, kept compactly by the memory store.
//!
//! A run records, for every node it changed, the module state the node had
//! before (so that a manual rollback can put it back). Kept as `NodeChange`
//! values that is several hundred bytes per node (three version slots with
//! their fault knobs, a hostname of its own), and the memory store keeps a
//! window of thousands of finished runs: ten runs to 100,000 nodes held
//! about 380 MB. Most nodes of a run had the same state before it, so each
//! distinct state is kept once, the hostnames share one buffer, and a node
//! costs its id, an index and the end of its hostname: about 40 bytes.

use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{Environment, ModuleSlots, NodeChange};

/// One node's change, without its state before (an index into
/// [`CompactChanges::befores`]) and hostname (a range of the shared buffer).
struct Packed {
    node_id: Uuid,
    /// Where the hostname ends in the buffer; it starts where the previous one ends.
    hostname_end: u32,
    before: u32,
    environment: Environment,
}

pub(super) struct CompactChanges {
    /// Each distinct state-before once, in the order first met.
    befores: Vec<ModuleSlots>,
    hostnames: String,
    changes: Vec<Packed>,
}

impl CompactChanges {
    /// `None` when the changes are too many to index with 32 bits (never in
    /// practice): the caller keeps them as they are.
    pub(super) fn pack(changes: &[NodeChange]) -> Option<CompactChanges> {
        let mut befores: Vec<ModuleSlots> = Vec::new();
        let mut hostnames = String::with_capacity(changes.iter().map(|c| c.hostname.len()).sum());
        let mut packed = Vec::with_capacity(changes.len());
        for change in changes {
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
            hostnames.push_str(&change.hostname);
            packed.push(Packed {
                node_id: change.node_id,
                hostname_end: u32::try_from(hostnames.len()).ok()?,
                before: u32::try_from(before).ok()?,
                environment: change.environment,
            });
            // Many distinct states: a linear search per node would turn
            // packing quadratic, and sharing would save little anyway.
            if befores.len() > MAX_DISTINCT {
                return None;
            }
        }
        befores.shrink_to_fit();
        Some(CompactChanges { befores, hostnames, changes: packed })
    }

    /// The changes as they were recorded, in their order.
    pub(super) fn unpack(&self) -> Arc<Vec<NodeChange>> {
        let mut start = 0;
        let changes = self
            .changes
            .iter()
            .map(|p| {
                let end = p.hostname_end as usize;
                let hostname = self.hostnames.get(start..end).unwrap_or_default().to_string();
                start = end;
                NodeChange {
                    node_id: p.node_id,
                    hostname,
                    environment: p.environment,
                    before: self.befores.get(p.before as usize).cloned().unwrap_or_default(),
                }
            })
            .collect();
        Arc::new(changes)
    }

    pub(super) fn len(&self) -> usize {
        self.changes.len()
    }
}

/// Distinct states-before shared at most; beyond them a run's changes are
/// kept as they are.
const MAX_DISTINCT: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::VersionSlot;

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
        let packed = CompactChanges::pack(&changes).expect("few distinct states");
        assert_eq!(packed.befores.len(), 3);
        assert_eq!(packed.len(), 300);
        assert_eq!(*packed.unpack(), changes);
    }

    #[test]
    fn too_many_distinct_states_are_not_packed() {
        let changes: Vec<NodeChange> = (0..=MAX_DISTINCT).map(|i| change(i, Some(&format!("1.0.{i}")))).collect();
        assert!(CompactChanges::pack(&changes).is_none());
        assert!(CompactChanges::pack(&changes[..MAX_DISTINCT]).is_some());
        assert_eq!(*CompactChanges::pack(&[]).expect("empty").unpack(), Vec::<NodeChange>::new());
    }
}
