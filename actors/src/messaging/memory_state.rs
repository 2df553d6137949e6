//! The in-memory back-end's state: the records of every tenant behind the
//! store's one lock, and the operations several store methods share (expiring
//! leases, failing an attempt, routing, forgetting a message).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
// Every publish, lease and ack looks up several of these maps by a tenant and
// a message id or name; with the standard SipHash, hashing was a seventh of
// the memory back-end's time in the message bus benchmark. foldhash is seeded
// per map, like the standard one.
pub(super) use foldhash::{HashMap, HashMapExt};
use uuid::Uuid;

use super::error::MessagingError;
use super::model::{
    DeadLetter, DeliveryGuarantee, Message, MessageStatus, RetryPolicy, RoutingStrategy, StoredMessage, Subscription,
    Topic,
};
use super::routing::{route, RouteCandidate};
use crate::domain::TenantId;

pub(super) struct Counters {
    pub(super) published: u64,
    pub(super) delivered: u64,
    pub(super) acknowledged: u64,
    pub(super) failed: u64,
    pub(super) dead_lettered: u64,
    pub(super) unrouted: u64,
}

/// A map keyed by (tenant, topic name or message id), looked up through
/// [`Named`] without building the key's string.
pub(super) type ByTenant<K, V> = hashbrown::HashMap<(TenantId, K), V, foldhash::fast::RandomState>;

/// A message id as the store keeps it: one allocation shared by the
/// message's record, its queue entries and its leases.
pub(super) type MessageId = Arc<str>;

/// A borrowed `(tenant, name)` key. It hashes as the owned tuple does (the
/// tenant, then the string as `str`), so it finds the same entry.
#[derive(Hash)]
pub(super) struct Named<'a>(pub(super) TenantId, pub(super) &'a str);

impl hashbrown::Equivalent<(TenantId, String)> for Named<'_> {
    fn equivalent(&self, key: &(TenantId, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

impl hashbrown::Equivalent<(TenantId, MessageId)> for Named<'_> {
    fn equivalent(&self, key: &(TenantId, MessageId)) -> bool {
        self.0 == key.0 && self.1 == &*key.1
    }
}

pub(super) struct TopicState {
    pub(super) topic: Topic,
    /// Its subscriptions in creation order: routing reads this list instead
    /// of scanning every tenant's subscriptions on each publish.
    pub(super) subscriptions: Vec<Uuid>,
    /// Bumped at each load-balanced assignment; see [`SubState::last_assigned`].
    pub(super) rr_counter: u64,
    pub(super) counters: Counters,
    pub(super) dlq: Vec<DeadLetter>,
}

pub(super) use super::memory_queue::{Entry, Queue};

/// A leased delivery: its queue entry (attempts counting this delivery)
/// and its deadline.
pub(super) struct Lease {
    pub(super) entry: Entry,
    pub(super) deadline: DateTime<Utc>,
}

pub(super) struct SubState {
    pub(super) sub: Subscription,
    pub(super) created_seq: u64,
    /// The round-robin position of its last assignment. A new subscription
    /// starts at the topic's current counter so that it joins the rotation
    /// at its end instead of taking a burst (the original skewed here).
    pub(super) last_assigned: u64,
    pub(super) queue: Queue,
    pub(super) leased: HashMap<MessageId, Lease>,
    /// No lease in `leased` has a deadline before this (it may be earlier
    /// than all of them): until then, finding expired leases needs no scan,
    /// which every ack and lease would otherwise pay for the whole batch.
    pub(super) leases_due: Option<DateTime<Utc>>,
}

/// A stored message. The message is shared, not copied, so that the lock is
/// held for a reference count, and deliveries copy it after the lock is released.
pub(super) struct Record {
    pub(super) seq: u64,
    pub(super) message: Arc<Message>,
    pub(super) status: MessageStatus,
    /// The subscriptions the message was routed to (empty = unrouted).
    pub(super) routed_to: Vec<Uuid>,
    /// Those of them that acknowledged it: a second ack is answered as the
    /// first. Kept with the record (not a set of ids per subscription), so
    /// an ack stores no further copy of the message id.
    pub(super) acked_by: Vec<Uuid>,
}

impl Record {
    pub(super) fn stored(&self) -> StoredMessage {
        StoredMessage { message: (*self.message).clone(), status: self.status, routed_to: self.routed_to.clone() }
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) topics: ByTenant<String, TopicState>,
    pub(super) subs: HashMap<(TenantId, Uuid), SubState>,
    pub(super) messages: ByTenant<MessageId, Record>,
    /// (tenant, topic, key) → (message id, first seen).
    pub(super) idempotency: HashMap<(TenantId, String, String), (String, DateTime<Utc>)>,
    pub(super) next_seq: u64,
}

pub(super) fn add(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d).ok().and_then(|d| now.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl State {
    pub(super) fn topic_mut(&mut self, tenant: TenantId, name: &str) -> Result<&mut TopicState, MessagingError> {
        self.topics.get_mut(&Named(tenant, name)).ok_or_else(|| MessagingError::TopicNotFound(name.to_owned()))
    }

    pub(super) fn sub_key(&self, tenant: TenantId, id: Uuid) -> Result<(TenantId, Uuid), MessagingError> {
        if self.subs.contains_key(&(tenant, id)) {
            Ok((tenant, id))
        } else {
            Err(MessagingError::SubscriptionNotFound(id.to_string()))
        }
    }

    /// A topic's subscriptions in creation order (none for an unknown topic).
    pub(super) fn subs_of(&self, tenant: TenantId, topic: &str) -> &[Uuid] {
        self.topics.get(&Named(tenant, topic)).map_or(&[], |t| t.subscriptions.as_slice())
    }

    /// Returns expired leases of a subscription to the retry path.
    pub(super) fn expire_leases(&mut self, key: (TenantId, Uuid), retry: &RetryPolicy, now: DateTime<Utc>) {
        let expired: Vec<(MessageId, DateTime<Utc>)> = match self.subs.get_mut(&key) {
            Some(s) => {
                if s.leases_due.is_none_or(|due| now < due) {
                    return;
                }
                s.leases_due = s.leased.values().map(|l| l.deadline).filter(|d| *d > now).min();
                s.leased.iter().filter(|(_, l)| l.deadline <= now).map(|(id, l)| (id.clone(), l.deadline)).collect()
            }
            None => return,
        };
        // The attempt failed at its deadline, whenever that is noticed: the
        // backoff counts from there, so a late observer does not delay it.
        for (id, deadline) in expired {
            self.fail(key, &id, "ack deadline passed".into(), None, retry, deadline);
        }
    }

    /// One failed attempt (nack or expired lease): retry after backoff, or
    /// dead-letter once the retries are spent; AtMostOnce never retries.
    pub(super) fn fail(
        &mut self,
        key: (TenantId, Uuid),
        message_id: &str,
        reason: String,
        requeue: Option<bool>,
        retry: &RetryPolicy,
        now: DateTime<Utc>,
    ) {
        let Some(sub) = self.subs.get_mut(&key) else { return };
        let Some(lease) = sub.leased.remove(message_id) else { return };
        let max_retries = sub.sub.spec.max_retries;
        let topic_name = sub.sub.spec.topic_name.clone();
        let Some(topic) = self.topics.get_mut(&Named(key.0, &topic_name)) else { return };
        topic.counters.failed += 1;
        let guarantee = topic.topic.spec.delivery_guarantee;
        if guarantee == DeliveryGuarantee::AtMostOnce {
            return;
        }
        let attempts = lease.entry.attempts;
        if requeue != Some(false) && attempts <= max_retries {
            let mut entry = lease.entry;
            entry.available_at = add(now, retry.backoff(attempts));
            sub.queue.push(entry);
            return;
        }
        let Some(record) = self.messages.get_mut(&Named(key.0, message_id)) else { return };
        record.status = MessageStatus::DeadLettered;
        let mut message = (*record.message).clone();
        message.headers.insert("X-Original-Topic".into(), topic_name.clone());
        message.headers.insert("X-DLQ-Reason".into(), reason.clone());
        message.headers.insert("X-DLQ-Timestamp".into(), now.to_rfc3339());
        message.headers.insert("X-Delivery-Attempts".into(), attempts.to_string());
        if let Some(t) = self.topics.get_mut(&Named(key.0, &topic_name)) {
            t.counters.dead_lettered += 1;
            t.dlq.push(DeadLetter {
                message,
                subscription_id: key.1,
                reason,
                delivery_attempts: attempts,
                dead_lettered_at: now,
            });
        }
    }

    /// The subscriptions a new message goes to, by the topic's strategy; a
    /// load-balanced choice takes the topic's next round-robin position.
    pub(super) fn route(&mut self, tenant: TenantId, message: &Message) -> Vec<Uuid> {
        let Some(topic) = self.topics.get(&Named(tenant, &message.topic_name)) else { return Vec::new() };
        let strategy = topic.topic.effective_strategy();
        let candidates: Vec<RouteCandidate<'_>> = topic
            .subscriptions
            .iter()
            .filter_map(|id| self.subs.get(&(tenant, *id)))
            .map(|s| RouteCandidate {
                id: s.sub.subscription_id,
                paused: s.sub.paused,
                filter: s.sub.spec.filter.as_ref(),
                last_assigned: s.last_assigned,
            })
            .collect();
        let chosen = route(strategy, &candidates, message);
        if strategy == RoutingStrategy::LoadBalanced {
            if let (Some(id), Some(t)) = (chosen.first(), self.topics.get_mut(&Named(tenant, &message.topic_name))) {
                t.rr_counter += 1;
                let position = t.rr_counter;
                if let Some(s) = self.subs.get_mut(&(tenant, *id)) {
                    s.last_assigned = position;
                }
            }
        }
        chosen
    }

    pub(super) fn remove_message_everywhere(&mut self, tenant: TenantId, message_id: &str) {
        for s in self.subs.values_mut().filter(|s| s.sub.tenant_id == tenant) {
            s.queue.retain(|e| &*e.message_id != message_id);
            s.leased.remove(message_id);
        }
    }
}
