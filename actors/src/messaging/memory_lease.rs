//! Choosing what a lease hands out in the in-memory back-end: priority or
//! publish order (the queue keeps it), expired messages dropped, and on
//! ordered topics one delivery in flight per partition key.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::memory_state::{add, bump, Deliveries, Lease, SubContext};
use super::model::Delivery;

impl SubContext<'_> {
    /// Leases up to `max` ready deliveries of the subscription whose expired
    /// leases were already returned; none while it is paused. Walks the
    /// queue in lease order only as far as it needs.
    pub(super) fn lease_ready(&self, d: &mut Deliveries, max: usize, now: DateTime<Utc>) -> Vec<Delivery> {
        if self.sub.sub.paused || max == 0 {
            return Vec::new();
        }
        let ordered = self.topic.topic.spec.ordered;
        let mut blocked: HashSet<String> = HashSet::new();
        if ordered {
            blocked.extend(d.leased.values().filter_map(|l| l.entry.partition_key.clone()));
        }
        let mut picked = Vec::new();
        let mut expired = Vec::new();
        for (at, entry) in d.queue.iter() {
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
            d.queue.remove(at);
        }
        let deadline = add(now, self.sub.sub.spec.ack_timeout);
        let subscription_id = self.sub.sub.subscription_id;
        let mut deliveries = Vec::with_capacity(picked.len());
        for at in picked {
            let Some(mut entry) = d.queue.remove(&at) else { continue };
            entry.attempts += 1;
            deliveries.push(Delivery {
                message: entry.message.clone(),
                subscription_id,
                delivery_attempts: entry.attempts,
                ack_deadline: deadline,
            });
            d.leased.insert(entry.message_id.clone(), Lease { entry, deadline });
        }
        if !deliveries.is_empty() {
            bump(&self.topic.counters.delivered, deliveries.len() as u64);
            d.leases_due = Some(d.leases_due.map_or(deadline, |due| due.min(deadline)));
        }
        deliveries
    }
}
