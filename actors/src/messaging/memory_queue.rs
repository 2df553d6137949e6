//! A subscription's queue in the in-memory back-end, kept in the order
//! leases take it (priority first on Priority topics, then publish order),
//! so that a lease walks only as far as it hands out instead of sorting and
//! shifting the whole backlog on every call.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::memory_state::MessageId;
use super::model::Message;

/// A queued copy of a message for one subscription, with what a lease
/// decides on copied from the message, and the message itself shared: a
/// lease looks up no record.
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) message_id: MessageId,
    pub(super) message: Arc<Message>,
    pub(super) seq: u64,
    pub(super) attempts: u32,
    pub(super) available_at: DateTime<Utc>,
    pub(super) priority: u8,
    pub(super) partition_key: Option<String>,
    pub(super) expires_at: Option<DateTime<Utc>>,
}

impl Entry {
    pub(super) fn new(message_id: &MessageId, message: &Arc<Message>, seq: u64, available_at: DateTime<Utc>) -> Self {
        Entry {
            message_id: message_id.clone(),
            message: message.clone(),
            seq,
            attempts: 0,
            available_at,
            priority: message.priority,
            partition_key: message.partition_key.clone(),
            expires_at: message.expires_at,
        }
    }

    pub(super) fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|x| x <= now)
    }
}

/// Position in a queue: (rank, publish sequence); the rank is the inverted
/// priority when the topic orders by priority, else 0.
pub(super) type Position = (u8, u64);

pub(super) struct Queue {
    entries: BTreeMap<Position, Entry>,
    by_priority: bool,
}

impl Queue {
    pub(super) fn new(by_priority: bool) -> Self {
        Queue { entries: BTreeMap::new(), by_priority }
    }

    fn position(&self, e: &Entry) -> Position {
        (if self.by_priority { u8::MAX - e.priority } else { 0 }, e.seq)
    }

    pub(super) fn push(&mut self, e: Entry) {
        self.entries.insert(self.position(&e), e);
    }

    pub(super) fn remove(&mut self, at: &Position) -> Option<Entry> {
        self.entries.remove(at)
    }

    /// Entries in lease order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Position, &Entry)> {
        self.entries.iter()
    }

    pub(super) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        self.entries.retain(|_, e| keep(e));
    }

    /// Re-orders the queue when its topic starts or stops ordering by priority.
    pub(super) fn set_by_priority(&mut self, by_priority: bool) {
        if self.by_priority == by_priority {
            return;
        }
        self.by_priority = by_priority;
        let entries = std::mem::take(&mut self.entries);
        for e in entries.into_values() {
            self.push(e);
        }
    }
}
