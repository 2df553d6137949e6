//! The in-memory back-end's state, split so that a publisher and a consumer
//! do not queue behind one lock (with one lock they contended on every
//! message, and a parked thread cost more than the work it waited for):
//!
//! - the [`Catalog`] (topics and subscriptions) behind a read-write lock:
//!   publish, lease, ack and nack hold it for reading for their whole call;
//!   every operation that changes topics or subscriptions, or touches several
//!   messages at once, holds it for writing and so runs alone, as before;
//! - each subscription's queue and leases ([`Deliveries`]) behind its own
//!   lock, and the entries of messages just published behind another, so
//!   that a publisher waits neither for a lease nor for an ack;
//! - the message records, in shards ([`super::memory_records::Records`]);
//! - counters as atomics, the dead-letter queue behind its topic's lock.
//!
//! Locks are taken in one order only: catalog, idempotency keys, one
//! subscription's deliveries, its incoming entries, one record shard, a
//! topic's dead letters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
// Every publish, lease and ack looks up several of these maps by a tenant and
// a message id or name; with the standard SipHash, hashing was a seventh of
// the memory back-end's time in the message bus benchmark. foldhash is seeded
// per map, like the standard one.
pub(super) use foldhash::{HashMap, HashMapExt};
use parking_lot::{Mutex, MutexGuard};
use uuid::Uuid;

use super::error::MessagingError;
use super::memory_records::Records;
use super::model::{
    DeadLetter, DeliveryGuarantee, Message, MessageStatus, RetryPolicy, RoutingStrategy, StoredMessage, Subscription,
    Topic,
};
use super::routing::{route, takes_every_subscription, RouteCandidate};
use crate::domain::TenantId;

/// A topic's counters, bumped by concurrent publishers and consumers.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) published: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) acknowledged: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) dead_lettered: AtomicU64,
    pub(super) unrouted: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

pub(super) fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
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
    /// The round-robin position, bumped at each load-balanced assignment
    /// (see [`SubState::last_assigned`]). Held while a load-balanced publish
    /// chooses, so that concurrent publishers never pick the same turn.
    pub(super) rr_counter: Mutex<u64>,
    pub(super) counters: Counters,
    pub(super) dlq: Mutex<Vec<DeadLetter>>,
}

impl TopicState {
    pub(super) fn new(topic: Topic) -> Self {
        TopicState {
            topic,
            subscriptions: Vec::new(),
            rr_counter: Mutex::new(0),
            counters: Counters::default(),
            dlq: Mutex::new(Vec::new()),
        }
    }
}

pub(super) use super::memory_queue::{Entry, Queue};

/// A leased delivery: its queue entry (attempts counting this delivery)
/// and its deadline.
pub(super) struct Lease {
    pub(super) entry: Entry,
    pub(super) deadline: DateTime<Utc>,
}

/// What a subscription has queued and leased, behind the subscription's own
/// lock. Publishers do not take it: they add to the subscription's
/// `incoming` list, which the consumer's side moves into the queue.
pub(super) struct Deliveries {
    pub(super) queue: Queue,
    /// An empty list kept for its capacity: swapped with `incoming` so that
    /// neither side allocates a new list at each hand-over.
    spare: Vec<Entry>,
    pub(super) leased: HashMap<MessageId, Lease>,
    /// No lease in `leased` has a deadline before this (it may be earlier
    /// than all of them): until then, finding expired leases needs no scan,
    /// which every ack and lease would otherwise pay for the whole batch.
    pub(super) leases_due: Option<DateTime<Utc>>,
}

impl Deliveries {
    pub(super) fn new(by_priority: bool) -> Self {
        Deliveries { queue: Queue::new(by_priority), spare: Vec::new(), leased: HashMap::new(), leases_due: None }
    }

    /// Queues what publishers added since the last look.
    pub(super) fn take_incoming(&mut self, incoming: &Mutex<Vec<Entry>>) {
        std::mem::swap(&mut self.spare, &mut *incoming.lock());
        for entry in self.spare.drain(..) {
            self.queue.push(entry);
        }
    }

    pub(super) fn remove_message(&mut self, message_id: &str) {
        self.queue.retain(|e| &*e.message_id != message_id);
        self.leased.remove(message_id);
    }
}

pub(super) struct SubState {
    pub(super) sub: Subscription,
    pub(super) created_seq: u64,
    /// The round-robin position of its last assignment. A new subscription
    /// starts at the topic's current counter so that it joins the rotation
    /// at its end instead of taking a burst (the original skewed here).
    /// Written only under its topic's `rr_counter` lock.
    pub(super) last_assigned: AtomicU64,
    /// New messages' entries, in publish order, not yet in the queue.
    pub(super) incoming: Mutex<Vec<Entry>>,
    deliveries: Mutex<Deliveries>,
}

impl SubState {
    pub(super) fn new(sub: Subscription, created_seq: u64, last_assigned: u64, by_priority: bool) -> Self {
        SubState {
            sub,
            created_seq,
            last_assigned: AtomicU64::new(last_assigned),
            incoming: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Deliveries::new(by_priority)),
        }
    }

    /// Hands a new message's entry over without waiting for a lease or an
    /// ack in progress on the subscription.
    pub(super) fn offer(&self, entry: Entry) {
        self.incoming.lock().push(entry);
    }

    /// The deliveries with everything published so far queued: for a lease
    /// and whatever reads the queue.
    pub(super) fn deliveries(&self) -> MutexGuard<'_, Deliveries> {
        let mut d = self.deliveries.lock();
        d.take_incoming(&self.incoming);
        d
    }

    /// The deliveries as they are, for what needs only the leases (ack,
    /// nack): no hand-over from publishers on their path.
    pub(super) fn leases(&self) -> MutexGuard<'_, Deliveries> {
        self.deliveries.lock()
    }

    /// The deliveries with everything queued, while the catalog is held for writing.
    pub(super) fn deliveries_mut(&mut self) -> &mut Deliveries {
        let d = self.deliveries.get_mut();
        d.take_incoming(&self.incoming);
        d
    }
}

/// A stored message. The message is shared with its queue entries, its
/// deliveries and the publisher's answer, never copied under a lock.
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
    pub(super) acknowledged_at: Option<DateTime<Utc>>,
}

impl Record {
    pub(super) fn stored(&self) -> StoredMessage {
        StoredMessage {
            message: (*self.message).clone(),
            status: self.status,
            routed_to: self.routed_to.clone(),
            acknowledged_at: self.acknowledged_at,
        }
    }
}

/// Topics and subscriptions of every tenant.
#[derive(Default)]
pub(super) struct Catalog {
    pub(super) topics: ByTenant<String, TopicState>,
    pub(super) subs: HashMap<(TenantId, Uuid), SubState>,
    /// Creation order of subscriptions.
    pub(super) next_created: u64,
}

pub(super) fn add(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    super::clock::later_by(now, d)
}

/// A subscription with its topic, found once per call.
pub(super) struct SubContext<'a> {
    pub(super) tenant: TenantId,
    pub(super) sub: &'a SubState,
    pub(super) topic: &'a TopicState,
}

impl Catalog {
    pub(super) fn topic(&self, tenant: TenantId, name: &str) -> Result<&TopicState, MessagingError> {
        self.topics.get(&Named(tenant, name)).ok_or_else(|| MessagingError::TopicNotFound(name.to_owned()))
    }

    pub(super) fn topic_mut(&mut self, tenant: TenantId, name: &str) -> Result<&mut TopicState, MessagingError> {
        self.topics.get_mut(&Named(tenant, name)).ok_or_else(|| MessagingError::TopicNotFound(name.to_owned()))
    }

    pub(super) fn sub(&self, tenant: TenantId, id: Uuid) -> Result<&SubState, MessagingError> {
        self.subs.get(&(tenant, id)).ok_or_else(|| MessagingError::SubscriptionNotFound(id.to_string()))
    }

    pub(super) fn sub_mut(&mut self, tenant: TenantId, id: Uuid) -> Result<&mut SubState, MessagingError> {
        self.subs.get_mut(&(tenant, id)).ok_or_else(|| MessagingError::SubscriptionNotFound(id.to_string()))
    }

    /// A subscription and its topic (a topic with subscriptions cannot be
    /// deleted, so a subscription's topic is always there).
    pub(super) fn context(&self, tenant: TenantId, id: Uuid) -> Result<SubContext<'_>, MessagingError> {
        let sub = self.sub(tenant, id)?;
        let topic = self.topic(tenant, &sub.sub.spec.topic_name)?;
        Ok(SubContext { tenant, sub, topic })
    }

    /// A topic's subscriptions in creation order (none for an unknown topic).
    pub(super) fn subs_of(&self, tenant: TenantId, topic: &str) -> &[Uuid] {
        self.topics.get(&Named(tenant, topic)).map_or(&[], |t| t.subscriptions.as_slice())
    }

    /// The subscriptions a new message goes to, by the topic's strategy; a
    /// load-balanced choice takes the topic's next round-robin position.
    pub(super) fn route(&self, topic: &TopicState, message: &Message) -> Vec<Uuid> {
        let tenant = topic.topic.tenant_id;
        let strategy = topic.topic.effective_strategy();
        if takes_every_subscription(strategy) {
            // No candidates to weigh: the topic's list is the answer.
            return topic.subscriptions.clone();
        }
        let load_balanced = strategy == RoutingStrategy::LoadBalanced;
        let mut rr_counter = load_balanced.then(|| topic.rr_counter.lock());
        let candidates: Vec<RouteCandidate<'_>> = topic
            .subscriptions
            .iter()
            .filter_map(|id| self.subs.get(&(tenant, *id)))
            .map(|s| RouteCandidate {
                id: s.sub.subscription_id,
                paused: s.sub.paused,
                filter: s.sub.spec.filter.as_ref(),
                last_assigned: read(&s.last_assigned),
            })
            .collect();
        let chosen = route(strategy, &candidates, message);
        if let (Some(id), Some(counter)) = (chosen.first(), rr_counter.as_mut()) {
            **counter += 1;
            if let Some(s) = self.subs.get(&(tenant, *id)) {
                s.last_assigned.store(**counter, Ordering::Relaxed);
            }
        }
        chosen
    }

    /// Forgets a message's queue entries and leases in every subscription of
    /// its tenant.
    pub(super) fn remove_message_everywhere(&mut self, tenant: TenantId, message_id: &str) {
        for s in self.subs.values_mut().filter(|s| s.sub.tenant_id == tenant) {
            s.deliveries_mut().remove_message(message_id);
        }
    }
}

impl SubContext<'_> {
    /// Returns expired leases of the subscription to the retry path.
    pub(super) fn expire_leases(&self, d: &mut Deliveries, records: &Records, retry: &RetryPolicy, now: DateTime<Utc>) {
        if d.leases_due.is_none_or(|due| now < due) {
            return;
        }
        d.leases_due = d.leased.values().map(|l| l.deadline).filter(|due| *due > now).min();
        let expired: Vec<(MessageId, DateTime<Utc>)> =
            d.leased.iter().filter(|(_, l)| l.deadline <= now).map(|(id, l)| (id.clone(), l.deadline)).collect();
        // The attempt failed at its deadline, whenever that is noticed: the
        // backoff counts from there, so a late observer does not delay it.
        for (id, deadline) in expired {
            self.fail(d, records, &id, "ack deadline passed".into(), None, retry, deadline);
        }
    }

    /// One failed attempt (nack or expired lease): retry after backoff, or
    /// dead-letter once the retries are spent; AtMostOnce never retries.
    #[allow(clippy::too_many_arguments)] // Each is one fact about the failure; a struct would only rename them.
    pub(super) fn fail(
        &self,
        d: &mut Deliveries,
        records: &Records,
        message_id: &str,
        reason: String,
        requeue: Option<bool>,
        retry: &RetryPolicy,
        now: DateTime<Utc>,
    ) {
        let Some(lease) = d.leased.remove(message_id) else { return };
        bump(&self.topic.counters.failed, 1);
        if self.topic.topic.spec.delivery_guarantee == DeliveryGuarantee::AtMostOnce {
            return;
        }
        let attempts = lease.entry.attempts;
        if requeue != Some(false) && attempts <= self.sub.sub.spec.max_retries {
            let mut entry = lease.entry;
            entry.available_at = add(now, retry.backoff(attempts));
            d.queue.push(entry);
            return;
        }
        let Some(mut message) = records.dead_letter(self.tenant, message_id) else { return };
        let topic_name = &self.sub.sub.spec.topic_name;
        message.headers.insert("X-Original-Topic".into(), topic_name.clone());
        message.headers.insert("X-DLQ-Reason".into(), reason.clone());
        message.headers.insert("X-DLQ-Timestamp".into(), now.to_rfc3339());
        message.headers.insert("X-Delivery-Attempts".into(), attempts.to_string());
        bump(&self.topic.counters.dead_lettered, 1);
        self.topic.dlq.lock().push(DeadLetter {
            message,
            subscription_id: self.sub.sub.subscription_id,
            reason,
            delivery_attempts: attempts,
            dead_lettered_at: now,
        });
    }
}
