//! Choosing what a lease hands out in the in-memory back-end: priority or
//! publish order (the queue keeps it), expired messages dropped, and on
//! ordered topics one delivery in flight per partition key.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::memory_state::{add, Lease, Named, State};
use super::model::{Delivery, Message};
use crate::domain::TenantId;

/// A delivery as the lock hands it out: the message shared, not yet copied.
pub(super) struct Leased {
    message: Arc<Message>,
    subscription_id: Uuid,
    attempts: u32,
    deadline: DateTime<Utc>,
}

impl Leased {
    /// The delivery, made after the store's lock is released.
    pub(super) fn delivery(self) -> Delivery {
        Delivery {
            message: Arc::unwrap_or_clone(self.message),
            subscription_id: self.subscription_id,
            delivery_attempts: self.attempts,
            ack_deadline: self.deadline,
        }
    }
}

impl State {
    /// Leases up to `max` ready deliveries of a subscription whose expired
    /// leases were already returned; none while it is paused. Walks the
    /// queue in lease order only as far as it needs.
    pub(super) fn lease_ready(&mut self, key: (TenantId, Uuid), max: usize, now: DateTime<Utc>) -> Vec<Leased> {
        let (tenant, subscription) = key;
        let Some(sub) = self.subs.get_mut(&key) else { return Vec::new() };
        if sub.sub.paused || max == 0 {
            return Vec::new();
        }
        let Some(topic) = self.topics.get_mut(&Named(tenant, &sub.sub.spec.topic_name)) else {
            return Vec::new();
        };
        let ordered = topic.topic.spec.ordered;
        let mut blocked: HashSet<String> = HashSet::new();
        if ordered {
            blocked.extend(sub.leased.values().filter_map(|l| l.entry.partition_key.clone()));
        }
        let mut picked = Vec::new();
        let mut expired = Vec::new();
        for (at, entry) in sub.queue.iter() {
            if picked.len() >= max {
                break;
            }
            // Expired messages are never delivered.
            if entry.expired(now) {
                expired.push(*at);
                continue;
            }
            if let Some(k) = entry.partition_key.as_ref().filter(|_| ordered) {
                // The head of a key's queue decides for the key: later
                // messages wait for it even when they are available.
                if !blocked.insert(k.clone()) {
                    continue;
                }
            }
            if entry.available_at <= now {
                picked.push(*at);
            }
        }
        for at in &expired {
            sub.queue.remove(at);
        }
        let deadline = add(now, sub.sub.spec.ack_timeout);
        let mut deliveries = Vec::with_capacity(picked.len());
        for at in picked {
            let Some(mut entry) = sub.queue.remove(&at) else { continue };
            // A deleted message leaves no entry behind; this is a guard.
            let Some(r) = self.messages.get(&Named(tenant, &entry.message_id)) else { continue };
            entry.attempts += 1;
            topic.counters.delivered += 1;
            deliveries.push(Leased {
                message: r.message.clone(),
                subscription_id: subscription,
                attempts: entry.attempts,
                deadline,
            });
            sub.leased.insert(entry.message_id.clone(), Lease { entry, deadline });
        }
        if !deliveries.is_empty() {
            sub.leases_due = Some(sub.leases_due.map_or(deadline, |due| due.min(deadline)));
        }
        deliveries
    }
}
