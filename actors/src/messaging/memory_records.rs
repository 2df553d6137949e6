//! The in-memory back-end's message records, in shards by message id: a
//! publisher storing one message and a consumer acknowledging an older one
//! nearly always take different locks.

use std::hash::BuildHasher;

use parking_lot::{Mutex, MutexGuard};

use super::memory_state::{ByTenant, MessageId, Named, Record};
use super::model::{Message, MessageStatus};
use crate::domain::TenantId;

/// A power of two well above the number of threads that publish and consume at once.
const SHARDS: usize = 16;

pub(super) type Shard = ByTenant<MessageId, Record>;

pub(super) struct Records {
    shards: Box<[Mutex<Shard>]>,
    /// Chooses a message's shard; seeded apart from the maps inside.
    chooser: foldhash::fast::RandomState,
}

impl Default for Records {
    fn default() -> Self {
        Records {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            chooser: foldhash::fast::RandomState::default(),
        }
    }
}

impl Records {
    /// The shard that holds (or will hold) a message, locked.
    pub(super) fn shard(&self, tenant: TenantId, message_id: &str) -> MutexGuard<'_, Shard> {
        let at = self.chooser.hash_one(Named(tenant, message_id)) as usize % SHARDS;
        self.shards[at].lock()
    }

    /// Every shard in turn, for the few operations that look at all
    /// messages (listing, sweeping, deleting a topic). Not one snapshot:
    /// callers that need one hold the catalog for writing.
    pub(super) fn each_shard(&self, mut visit: impl FnMut(&mut Shard)) {
        for shard in self.shards.iter() {
            visit(&mut shard.lock());
        }
    }

    /// Marks a message dead-lettered and answers a copy of it for the
    /// dead-letter queue (none when it was deleted meanwhile).
    pub(super) fn dead_letter(&self, tenant: TenantId, message_id: &str) -> Option<Message> {
        let mut shard = self.shard(tenant, message_id);
        let record = shard.get_mut(&Named(tenant, message_id))?;
        record.status = MessageStatus::DeadLettered;
        Some((*record.message).clone())
    }
}
