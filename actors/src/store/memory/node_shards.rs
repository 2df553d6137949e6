//! The memory store's node records, split over several locks.
//!
//! During a run every node actor writes its own record, from every actor
//! thread at once. Behind one lock those writes queue for it and its cache
//! line moves between the cores on every write; spread over shards chosen by
//! node id, two threads rarely meet on the same lock.

use std::collections::HashMap;

use parking_lot::{RwLock, RwLockWriteGuard};
use uuid::Uuid;

use crate::domain::{ModuleSlots, NodeRecord, TenantId};

/// Enough that two or a few threads writing random nodes seldom share one.
const SHARDS: usize = 64;

type Key = (TenantId, Uuid);
type Shard = HashMap<Key, NodeRecord>;

pub(super) struct NodeShards {
    shards: Box<[RwLock<Shard>]>,
}

impl Default for NodeShards {
    fn default() -> Self {
        NodeShards { shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect() }
    }
}

/// Which shard holds `node_id`'s record (node ids are random, so their low
/// bits spread evenly).
fn index(node_id: Uuid) -> usize {
    node_id.as_u128() as usize % SHARDS
}

impl NodeShards {
    /// The lock that holds `node_id`'s record.
    pub(super) fn shard(&self, node_id: Uuid) -> &RwLock<Shard> {
        &self.shards[index(node_id)]
    }

    /// A copy of the record, if the node is known.
    pub(super) fn get(&self, tenant: TenantId, node_id: Uuid) -> Option<NodeRecord> {
        self.shard(node_id).read().get(&(tenant, node_id)).cloned()
    }

    /// Takes the record out (a retired host's node), if the node is known.
    pub(super) fn remove(&self, tenant: TenantId, node_id: Uuid) -> Option<NodeRecord> {
        self.shard(node_id).write().remove(&(tenant, node_id))
    }

    /// Every shard locked for writing, in one fixed order (so two callers
    /// cannot deadlock): for changes that must be all or nothing.
    pub(super) fn write_all(&self) -> AllShards<'_> {
        AllShards(self.shards.iter().map(|s| s.write()).collect())
    }

    /// Calls `visit` with every node of `tenant` that holds `module`, and
    /// its slots of it, one shard's read lock at a time: for questions that
    /// need a few fields of many nodes, not copies of them.
    pub(super) fn for_each_holder(
        &self,
        tenant: TenantId,
        module: &str,
        mut visit: impl FnMut(&NodeRecord, &ModuleSlots),
    ) {
        for shard in self.shards.iter() {
            for node in shard.read().values().filter(|n| n.tenant_id == tenant) {
                if let Some(slots) = node.modules.get(module) {
                    visit(node, slots);
                }
            }
        }
    }

    /// A copy of every record that `keep` selects.
    pub(super) fn collect(&self, keep: impl Fn(&NodeRecord) -> bool) -> Vec<NodeRecord> {
        self.shards.iter().flat_map(|s| s.read().values().filter(|n| keep(n)).cloned().collect::<Vec<_>>()).collect()
    }
}

/// The whole node map held for writing.
pub(super) struct AllShards<'a>(Vec<RwLockWriteGuard<'a, Shard>>);

impl AllShards<'_> {
    pub(super) fn get_mut(&mut self, tenant: TenantId, node_id: Uuid) -> Option<&mut NodeRecord> {
        self.0[index(node_id)].get_mut(&(tenant, node_id))
    }

    pub(super) fn contains(&self, tenant: TenantId, node_id: Uuid) -> bool {
        self.0[index(node_id)].contains_key(&(tenant, node_id))
    }
}
