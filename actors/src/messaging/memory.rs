//! The in-memory back-end: for development, tests and one instance that may
//! lose its messages on restart. Its state and locking are described in
//! `memory_state.rs`: publish, lease, ack and nack run side by side;
//! everything else runs alone, so each operation is atomic as before.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use uuid::Uuid;

use super::error::MessagingError;
use super::memory_records::Records;
use super::memory_state::{add, bump, read, Catalog, Entry, HashMap, MessageId, Named, Record, SubState, TopicState};
use super::model::RoutingStrategy;
use super::model::{
    DeadLetter, DeadLetterPage, Delivery, DeliveryGuarantee, LetterRange, Message, MessageStatus, NackOptions,
    NewMessage, NewSubscription, NewTopic, Published, RetryPolicy, StoredMessage, Subscription, SubscriptionKind,
    Topic, TopicMetrics,
};
use super::store::MessageStore;
use crate::domain::TenantId;

const MAX_LIST: usize = 1000;

/// (tenant, topic, key) → (message id, first seen).
type IdempotencyKeys = HashMap<(TenantId, String, String), (String, DateTime<Utc>)>;

pub struct MemoryMessageStore {
    catalog: RwLock<Catalog>,
    idempotency: Mutex<IdempotencyKeys>,
    records: Records,
    /// Publish order, for queues and listings.
    next_seq: AtomicU64,
    retry: RetryPolicy,
    idempotency_window: Duration,
    notify: Arc<Notify>,
}

impl MemoryMessageStore {
    pub fn new(retry: RetryPolicy, idempotency_window: Duration) -> Self {
        MemoryMessageStore {
            catalog: RwLock::new(Catalog::default()),
            idempotency: Mutex::new(IdempotencyKeys::default()),
            records: Records::default(),
            next_seq: AtomicU64::new(0),
            retry,
            idempotency_window,
            notify: Arc::new(Notify::new()),
        }
    }

    /// The first message stored under an ExactlyOnce key still inside the
    /// window, if any.
    fn first_of_key(
        &self,
        keys: &IdempotencyKeys,
        key: &(TenantId, String, String),
        now: DateTime<Utc>,
    ) -> Option<Published> {
        let (first_id, seen) = keys.get(key)?;
        if add(*seen, self.idempotency_window) <= now {
            return None;
        }
        let shard = self.records.shard(key.0, first_id);
        let r = shard.get(&Named(key.0, first_id))?;
        let (first, routed_to) = (r.message.clone(), r.routed_to.clone());
        drop(shard);
        Some(Published { message: first, duplicate: true, routed_to })
    }
}

impl Default for MemoryMessageStore {
    fn default() -> Self {
        Self::new(RetryPolicy::default(), Duration::from_secs(24 * 3600))
    }
}

#[async_trait]
impl MessageStore for MemoryMessageStore {
    async fn create_topic(
        &self,
        tenant: TenantId,
        spec: NewTopic,
        now: DateTime<Utc>,
    ) -> Result<Topic, MessagingError> {
        spec.validate()?;
        let mut cat = self.catalog.write();
        let key = (tenant, spec.name.clone());
        if cat.topics.contains_key(&key) {
            return Err(MessagingError::TopicExists(spec.name));
        }
        let topic = Topic { tenant_id: tenant, spec, created_at: now };
        cat.topics.insert(key, TopicState::new(topic.clone()));
        Ok(topic)
    }

    async fn get_topic(&self, tenant: TenantId, name: &str) -> Result<Topic, MessagingError> {
        self.catalog.read().topic(tenant, name).map(|t| t.topic.clone())
    }

    async fn list_topics(&self, tenant: TenantId) -> Result<Vec<Topic>, MessagingError> {
        let cat = self.catalog.read();
        let mut topics: Vec<Topic> =
            cat.topics.values().filter(|t| t.topic.tenant_id == tenant).map(|t| t.topic.clone()).collect();
        topics.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(topics)
    }

    async fn update_topic(&self, tenant: TenantId, spec: NewTopic) -> Result<Topic, MessagingError> {
        spec.validate()?;
        let mut cat = self.catalog.write();
        let t = cat.topic_mut(tenant, &spec.name)?;
        t.topic.spec = spec;
        let topic = t.topic.clone();
        let by_priority = topic.effective_strategy() == RoutingStrategy::Priority;
        for s in cat.subs.values_mut().filter(|s| s.sub.tenant_id == tenant && s.sub.spec.topic_name == topic.spec.name)
        {
            s.deliveries_mut().queue.set_by_priority(by_priority);
        }
        Ok(topic)
    }

    async fn delete_topic(&self, tenant: TenantId, name: &str) -> Result<(), MessagingError> {
        let mut cat = self.catalog.write();
        cat.topic(tenant, name)?;
        if !cat.subs_of(tenant, name).is_empty() {
            return Err(MessagingError::Conflict(format!("topic '{name}' still has subscriptions")));
        }
        cat.topics.remove(&Named(tenant, name));
        self.records.each_shard(|shard| shard.retain(|(t, _), r| !(*t == tenant && r.message.topic_name == name)));
        self.idempotency.lock().retain(|(t, topic, _), _| !(*t == tenant && topic == name));
        Ok(())
    }

    async fn create_subscription(
        &self,
        tenant: TenantId,
        spec: NewSubscription,
        now: DateTime<Utc>,
    ) -> Result<Subscription, MessagingError> {
        spec.validate()?;
        let mut cat = self.catalog.write();
        let topic = cat.topic_mut(tenant, &spec.topic_name)?;
        let rr = *topic.rr_counter.get_mut();
        let subscription_id = Uuid::new_v4();
        topic.subscriptions.push(subscription_id);
        let by_priority = topic.topic.effective_strategy() == RoutingStrategy::Priority;
        cat.next_created += 1;
        let created_seq = cat.next_created;
        let sub = Subscription { tenant_id: tenant, subscription_id, spec, paused: false, created_at: now };
        cat.subs.insert((tenant, sub.subscription_id), SubState::new(sub.clone(), created_seq, rr, by_priority));
        Ok(sub)
    }

    async fn get_subscription(&self, tenant: TenantId, id: Uuid) -> Result<Subscription, MessagingError> {
        self.catalog.read().sub(tenant, id).map(|s| s.sub.clone())
    }

    async fn list_subscriptions(
        &self,
        tenant: TenantId,
        topic: Option<&str>,
    ) -> Result<Vec<Subscription>, MessagingError> {
        let cat = self.catalog.read();
        let mut subs: Vec<&SubState> = cat
            .subs
            .values()
            .filter(|s| s.sub.tenant_id == tenant && topic.is_none_or(|t| s.sub.spec.topic_name == t))
            .collect();
        subs.sort_by_key(|s| s.created_seq);
        Ok(subs.into_iter().map(|s| s.sub.clone()).collect())
    }

    async fn list_push_subscriptions(&self) -> Result<Vec<Subscription>, MessagingError> {
        let cat = self.catalog.read();
        let mut subs: Vec<&SubState> =
            cat.subs.values().filter(|s| s.sub.spec.kind == SubscriptionKind::Push).collect();
        subs.sort_by_key(|s| s.created_seq);
        Ok(subs.into_iter().map(|s| s.sub.clone()).collect())
    }

    async fn delete_subscription(&self, tenant: TenantId, id: Uuid) -> Result<(), MessagingError> {
        let mut cat = self.catalog.write();
        cat.sub(tenant, id)?;
        if let Some(removed) = cat.subs.remove(&(tenant, id)) {
            if let Some(t) = cat.topics.get_mut(&Named(tenant, &removed.sub.spec.topic_name)) {
                t.subscriptions.retain(|s| *s != id);
            }
        }
        Ok(())
    }

    async fn set_paused(&self, tenant: TenantId, id: Uuid, paused: bool) -> Result<Subscription, MessagingError> {
        let sub = {
            let mut cat = self.catalog.write();
            let s = cat.sub_mut(tenant, id)?;
            s.sub.paused = paused;
            s.sub.clone()
        };
        self.notify.notify_waiters();
        Ok(sub)
    }

    async fn publish(
        &self,
        tenant: TenantId,
        new: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Published, MessagingError> {
        new.validate()?;
        // Everything that needs no shared state is made before any lock.
        let dedup_key = new.idempotency_key.clone().or_else(|| new.message_id.clone());
        let message = Message {
            tenant_id: tenant,
            message_id: new.message_id.unwrap_or_else(|| Uuid::new_v4().to_string()),
            topic_name: new.topic_name,
            payload: new.payload,
            headers: new.headers,
            priority: new.priority,
            partition_key: new.partition_key,
            schema_version: new.schema_version,
            correlation_id: new.correlation_id,
            published_at: now,
            expires_at: new.expires_at,
        };
        let message = Arc::new(message);
        let message_id = message.message_id.as_str();
        let shared_id: MessageId = Arc::from(message_id);
        let routed_to = {
            let cat = self.catalog.read();
            let topic = cat.topic(tenant, &message.topic_name)?;
            let exactly_once = topic.topic.spec.delivery_guarantee == DeliveryGuarantee::ExactlyOnce;
            // An ExactlyOnce key is held from its check to the message's
            // record, so that two publishes of one key store one message.
            let mut keys = exactly_once.then(|| self.idempotency.lock());
            let ikey = dedup_key.filter(|_| exactly_once).map(|k| (tenant, message.topic_name.clone(), k));
            if let (Some(keys), Some(ikey)) = (keys.as_ref(), ikey.as_ref()) {
                if let Some(first) = self.first_of_key(keys, ikey, now) {
                    return Ok(first);
                }
            }
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed) + 1;
            let routed_to = {
                let mut shard = self.records.shard(tenant, message_id);
                if shard.contains_key(&Named(tenant, message_id)) {
                    return Err(MessagingError::Conflict(format!("message '{message_id}' already exists")));
                }
                let routed_to = cat.route(topic, &message);
                shard.insert(
                    (tenant, shared_id.clone()),
                    Record {
                        seq,
                        message: message.clone(),
                        status: MessageStatus::Pending,
                        routed_to: routed_to.clone(),
                        acked_by: Vec::new(),
                        acknowledged_at: None,
                    },
                );
                routed_to
            };
            if let (Some(keys), Some(ikey)) = (keys.as_mut(), ikey) {
                keys.insert(ikey, (message_id.to_owned(), now));
            }
            drop(keys);
            for id in &routed_to {
                if let Some(s) = cat.subs.get(&(tenant, *id)) {
                    s.offer(Entry::new(&shared_id, &message, seq, now));
                }
            }
            bump(&topic.counters.published, 1);
            if routed_to.is_empty() {
                bump(&topic.counters.unrouted, 1);
            }
            routed_to
        };
        self.notify.notify_waiters();
        Ok(Published { message, duplicate: false, routed_to })
    }

    async fn lease(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, MessagingError> {
        let cat = self.catalog.read();
        let ctx = cat.context(tenant, subscription)?;
        let mut d = ctx.sub.deliveries();
        ctx.expire_leases(&mut d, &self.records, &self.retry, now);
        Ok(ctx.lease_ready(&mut d, max, now))
    }

    async fn ack(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        let cat = self.catalog.read();
        let ctx = cat.context(tenant, subscription)?;
        let mut d = ctx.sub.leases();
        ctx.expire_leases(&mut d, &self.records, &self.retry, now);
        let mut shard = self.records.shard(tenant, message_id);
        let mut record = shard.get_mut(&Named(tenant, message_id));
        if record.as_ref().is_some_and(|r| r.acked_by.contains(&subscription)) {
            return Ok(());
        }
        if d.leased.remove(message_id).is_none() {
            // Locks in their one order: the incoming list comes before a shard.
            drop(shard);
            d.take_incoming(&ctx.sub.incoming);
            return if d.queue.entries().any(|e| &*e.message_id == message_id) {
                Err(MessagingError::LeaseNotHeld(message_id.to_owned()))
            } else {
                Err(MessagingError::MessageNotFound(message_id.to_owned()))
            };
        }
        drop(d);
        bump(&ctx.topic.counters.acknowledged, 1);
        if let Some(r) = record.as_mut() {
            r.acked_by.push(subscription);
            // Done once every subscription it went to that still exists acknowledged it.
            if r.routed_to.iter().all(|id| r.acked_by.contains(id) || !cat.subs.contains_key(&(tenant, *id))) {
                r.status = MessageStatus::Acknowledged;
                r.acknowledged_at.get_or_insert(now);
            }
        }
        Ok(())
    }

    async fn nack(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        message_id: &str,
        options: NackOptions,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        {
            let cat = self.catalog.read();
            let ctx = cat.context(tenant, subscription)?;
            let mut d = ctx.sub.leases();
            ctx.expire_leases(&mut d, &self.records, &self.retry, now);
            if !d.leased.contains_key(message_id) {
                return Err(MessagingError::LeaseNotHeld(message_id.to_owned()));
            }
            let reason = options.reason.unwrap_or_else(|| "rejected by consumer".into());
            ctx.fail(&mut d, &self.records, message_id, reason, options.requeue, &self.retry, now);
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn next_due(&self, tenant: TenantId, subscription: Uuid) -> Result<Option<DateTime<Utc>>, MessagingError> {
        let cat = self.catalog.read();
        let s = cat.sub(tenant, subscription)?;
        if s.sub.paused {
            return Ok(None);
        }
        let d = s.deliveries();
        let queued = d.queue.entries().map(|e| e.available_at);
        let leased = d.leased.values().map(|l| l.deadline);
        Ok(queued.chain(leased).min())
    }

    fn changes(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    async fn get_message(&self, tenant: TenantId, message_id: &str) -> Result<StoredMessage, MessagingError> {
        self.records
            .shard(tenant, message_id)
            .get(&Named(tenant, message_id))
            .map(Record::stored)
            .ok_or_else(|| MessagingError::MessageNotFound(message_id.to_owned()))
    }

    async fn list_messages(
        &self,
        tenant: TenantId,
        topic: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, MessagingError> {
        let limit = limit.min(MAX_LIST);
        // The newest `limit` of each shard, then of all of them.
        let mut found: Vec<(u64, StoredMessage)> = Vec::new();
        self.records.each_shard(|shard| {
            let mut mine: Vec<&Record> = shard
                .iter()
                .filter(|((t, _), r)| *t == tenant && r.message.topic_name == topic)
                .map(|(_, r)| r)
                .collect();
            mine.sort_by_key(|r| std::cmp::Reverse(r.seq));
            found.extend(mine.into_iter().take(limit).map(|r| (r.seq, r.stored())));
        });
        found.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        Ok(found.into_iter().take(limit).map(|(_, m)| m).collect())
    }

    async fn acknowledge_message(
        &self,
        tenant: TenantId,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredMessage, MessagingError> {
        let mut cat = self.catalog.write();
        let (stored, first) = {
            let mut shard = self.records.shard(tenant, message_id);
            let record = shard
                .get_mut(&Named(tenant, message_id))
                .ok_or_else(|| MessagingError::MessageNotFound(message_id.to_owned()))?;
            let first = record.status != MessageStatus::Acknowledged;
            record.status = MessageStatus::Acknowledged;
            record.acknowledged_at.get_or_insert(now);
            record.acked_by.clone_from(&record.routed_to);
            (record.stored(), first)
        };
        cat.remove_message_everywhere(tenant, message_id);
        if first {
            if let Some(t) = cat.topics.get(&Named(tenant, &stored.message.topic_name)) {
                bump(&t.counters.acknowledged, 1);
            }
        }
        Ok(stored)
    }

    async fn delete_message(&self, tenant: TenantId, message_id: &str) -> Result<(), MessagingError> {
        let mut cat = self.catalog.write();
        if self.records.shard(tenant, message_id).remove(&Named(tenant, message_id)).is_none() {
            return Err(MessagingError::MessageNotFound(message_id.to_owned()));
        }
        cat.remove_message_everywhere(tenant, message_id);
        Ok(())
    }

    async fn dead_letters(
        &self,
        tenant: TenantId,
        topic: &str,
        range: LetterRange,
    ) -> Result<DeadLetterPage, MessagingError> {
        Ok(DeadLetterPage::of(&self.catalog.read().topic(tenant, topic)?.dlq.lock(), range))
    }

    async fn replay_dead_letter(
        &self,
        tenant: TenantId,
        topic: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        {
            let mut cat = self.catalog.write();
            let gone = cat
                .topic(tenant, topic)?
                .dlq
                .lock()
                .iter()
                .find(|d| d.message.message_id == message_id && !cat.subs.contains_key(&(tenant, d.subscription_id)))
                .map(|d| d.subscription_id);
            if let Some(subscription) = gone {
                return Err(MessagingError::replay_target_gone(message_id, subscription));
            }
            let dlq = cat.topic_mut(tenant, topic)?.dlq.get_mut();
            let (replayed, kept): (Vec<DeadLetter>, Vec<DeadLetter>) =
                dlq.drain(..).partition(|d| d.message.message_id == message_id);
            *dlq = kept;
            if replayed.is_empty() {
                return Err(MessagingError::MessageNotFound(message_id.to_owned()));
            }
            let entry = match self.records.shard(tenant, message_id).get_key_value_mut(&Named(tenant, message_id)) {
                Some(((_, id), r)) => {
                    r.status = MessageStatus::Pending;
                    Entry::new(id, &r.message, r.seq, now)
                }
                None => return Err(MessagingError::MessageNotFound(message_id.to_owned())),
            };
            for d in replayed {
                if let Some(s) = cat.subs.get_mut(&(tenant, d.subscription_id)) {
                    s.deliveries_mut().queue.push(entry.clone());
                }
            }
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn purge_dead_letter(&self, tenant: TenantId, topic: &str, message_id: &str) -> Result<(), MessagingError> {
        let cat = self.catalog.read();
        let mut dlq = cat.topic(tenant, topic)?.dlq.lock();
        let before = dlq.len();
        dlq.retain(|d| d.message.message_id != message_id);
        if dlq.len() == before {
            return Err(MessagingError::MessageNotFound(message_id.to_owned()));
        }
        Ok(())
    }

    async fn metrics(&self, tenant: TenantId, topic: &str, now: DateTime<Utc>) -> Result<TopicMetrics, MessagingError> {
        let cat = self.catalog.read();
        let t = cat.topic(tenant, topic)?;
        let c = &t.counters;
        let mut m = TopicMetrics {
            published: read(&c.published),
            delivered: read(&c.delivered),
            acknowledged: read(&c.acknowledged),
            failed: read(&c.failed),
            dead_lettered: read(&c.dead_lettered),
            unrouted: read(&c.unrouted),
            depth: BTreeMap::new(),
            oldest_unacked_age_ms: None,
        };
        let mut oldest: Option<DateTime<Utc>> = None;
        for s in cat.subs.values().filter(|s| s.sub.tenant_id == tenant && s.sub.spec.topic_name == topic) {
            let d = s.deliveries();
            let queued = d.queue.entries().filter(|e| !e.expired(now));
            m.depth.insert(s.sub.subscription_id, (queued.count() + d.leased.len()) as u64);
            let unacked = d
                .queue
                .entries()
                .filter(|e| !e.expired(now))
                .map(|e| &e.message)
                .chain(d.leased.values().map(|l| &l.entry.message));
            for message in unacked {
                let at = message.published_at;
                oldest = Some(oldest.map_or(at, |o| o.min(at)));
            }
        }
        m.oldest_unacked_age_ms = oldest.map(|o| (now - o).num_milliseconds());
        Ok(m)
    }

    async fn sweep(&self, now: DateTime<Utc>, idempotency_window: Duration) -> Result<usize, MessagingError> {
        let mut cat = self.catalog.write();
        let retention: HashMap<(TenantId, String), Duration> =
            cat.topics.iter().map(|(k, t)| (k.clone(), t.topic.spec.retention)).collect();
        let mut doomed: Vec<(TenantId, MessageId)> = Vec::new();
        self.records.each_shard(|shard| {
            shard.retain(|(tenant, id), r| {
                let m = &r.message;
                let done = r.status == MessageStatus::Acknowledged || m.expires_at.is_some_and(|x| x <= now);
                let keep_for = retention.get(&(*tenant, m.topic_name.clone())).copied().unwrap_or_default();
                let drop_it = done && add(m.published_at, keep_for) <= now;
                if drop_it {
                    doomed.push((*tenant, id.clone()));
                }
                !drop_it
            })
        });
        for (tenant, id) in &doomed {
            cat.remove_message_everywhere(*tenant, id);
        }
        self.idempotency.lock().retain(|_, (_, seen)| add(*seen, idempotency_window) > now);
        Ok(doomed.len())
    }
}
