//! Choosing what a lease hands out in the in-memory back-end: priority or
//! publish order, expired messages dropped, and on ordered topics one
//! delivery in flight per partition key.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::memory_state::{add, Entry, Lease, State};
use super::model::{Delivery, RoutingStrategy};
use crate::domain::TenantId;

impl State {
    /// Leases up to `max` ready deliveries of a subscription whose expired
    /// leases were already returned; none while it is paused.
    pub(super) fn lease_ready(&mut self, key: (TenantId, Uuid), max: usize, now: DateTime<Utc>) -> Vec<Delivery> {
        let (tenant, subscription) = key;
        let Some(sub) = self.subs.get_mut(&key) else { return Vec::new() };
        if sub.sub.paused || max == 0 {
            return Vec::new();
        }
        let Some(topic) = self.topics.get_mut(&(tenant, sub.sub.spec.topic_name.clone())) else {
            return Vec::new();
        };
        // Expired or deleted messages are never delivered.
        sub.queue.retain(|e| {
            self.messages
                .get(&(tenant, e.message_id.clone()))
                .is_some_and(|r| r.stored.message.expires_at.is_none_or(|x| x > now))
        });
        let priority_of =
            |e: &Entry| self.messages.get(&(tenant, e.message_id.clone())).map_or(0, |r| r.stored.message.priority);
        let key_of = |e: &Entry| {
            self.messages.get(&(tenant, e.message_id.clone())).and_then(|r| r.stored.message.partition_key.clone())
        };
        let mut order: Vec<usize> = (0..sub.queue.len()).collect();
        if topic.topic.effective_strategy() == RoutingStrategy::Priority {
            order.sort_by_key(|&i| (std::cmp::Reverse(priority_of(&sub.queue[i])), sub.queue[i].seq));
        } else {
            order.sort_by_key(|&i| sub.queue[i].seq);
        }
        let ordered = topic.topic.spec.ordered;
        let mut blocked: HashSet<String> = HashSet::new();
        if ordered {
            for id in sub.leased.keys() {
                if let Some(k) =
                    self.messages.get(&(tenant, id.clone())).and_then(|r| r.stored.message.partition_key.clone())
                {
                    blocked.insert(k);
                }
            }
        }
        let mut picked: Vec<usize> = Vec::new();
        for i in order {
            if picked.len() >= max {
                break;
            }
            let entry = &sub.queue[i];
            let pkey = if ordered { key_of(entry) } else { None };
            if let Some(k) = &pkey {
                // The head of a key's queue decides for the key: later
                // messages wait for it even when they are available.
                if !blocked.insert(k.clone()) {
                    continue;
                }
            }
            if entry.available_at <= now {
                picked.push(i);
            }
        }
        picked.sort_unstable();
        let mut deliveries = Vec::with_capacity(picked.len());
        let deadline = add(now, sub.sub.spec.ack_timeout);
        for i in picked.into_iter().rev() {
            let entry = sub.queue.remove(i);
            let attempts = entry.attempts + 1;
            let Some(r) = self.messages.get(&(tenant, entry.message_id.clone())) else { continue };
            sub.leased.insert(entry.message_id.clone(), Lease { seq: entry.seq, attempts, deadline });
            topic.counters.delivered += 1;
            deliveries.push((
                entry.seq,
                r.stored.message.priority,
                Delivery {
                    message: r.stored.message.clone(),
                    subscription_id: subscription,
                    delivery_attempts: attempts,
                    ack_deadline: deadline,
                },
            ));
        }
        if topic.topic.effective_strategy() == RoutingStrategy::Priority {
            deliveries.sort_by_key(|(seq, p, _)| (std::cmp::Reverse(*p), *seq));
        } else {
            deliveries.sort_by_key(|(seq, _, _)| *seq);
        }
        deliveries.into_iter().map(|(_, _, d)| d).collect()
    }
}
