//! The in-memory back-end: for development, tests and one instance that may
//! lose its messages on restart. All state sits behind one lock, taken
//! without awaiting, so each operation is atomic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::Notify;
use uuid::Uuid;

use super::error::MessagingError;
use super::model::{
    DeadLetter, Delivery, DeliveryGuarantee, Message, MessageStatus, NackOptions, NewMessage, NewSubscription,
    NewTopic, Published, RetryPolicy, StoredMessage, Subscription, Topic, TopicMetrics,
};
use super::store::MessageStore;
use crate::domain::TenantId;

use super::memory_state::{
    add, Counters, Entry, HashMap, HashMapExt, MessageId, Named, Queue, Record, State, SubState, TopicState,
};
use super::model::RoutingStrategy;

const MAX_LIST: usize = 1000;

pub struct MemoryMessageStore {
    state: Mutex<State>,
    retry: RetryPolicy,
    idempotency_window: Duration,
    notify: Arc<Notify>,
}

impl MemoryMessageStore {
    pub fn new(retry: RetryPolicy, idempotency_window: Duration) -> Self {
        MemoryMessageStore {
            state: Mutex::new(State::default()),
            retry,
            idempotency_window,
            notify: Arc::new(Notify::new()),
        }
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
        let mut st = self.state.lock();
        let key = (tenant, spec.name.clone());
        if st.topics.contains_key(&key) {
            return Err(MessagingError::TopicExists(spec.name));
        }
        let topic = Topic { tenant_id: tenant, spec, created_at: now };
        st.topics.insert(
            key,
            TopicState {
                topic: topic.clone(),
                subscriptions: Vec::new(),
                rr_counter: 0,
                counters: Counters {
                    published: 0,
                    delivered: 0,
                    acknowledged: 0,
                    failed: 0,
                    dead_lettered: 0,
                    unrouted: 0,
                },
                dlq: Vec::new(),
            },
        );
        Ok(topic)
    }

    async fn get_topic(&self, tenant: TenantId, name: &str) -> Result<Topic, MessagingError> {
        self.state.lock().topic_mut(tenant, name).map(|t| t.topic.clone())
    }

    async fn list_topics(&self, tenant: TenantId) -> Result<Vec<Topic>, MessagingError> {
        let st = self.state.lock();
        let mut topics: Vec<Topic> =
            st.topics.values().filter(|t| t.topic.tenant_id == tenant).map(|t| t.topic.clone()).collect();
        topics.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(topics)
    }

    async fn update_topic(&self, tenant: TenantId, spec: NewTopic) -> Result<Topic, MessagingError> {
        spec.validate()?;
        let mut st = self.state.lock();
        let t = st.topic_mut(tenant, &spec.name)?;
        t.topic.spec = spec;
        let topic = t.topic.clone();
        let by_priority = topic.effective_strategy() == RoutingStrategy::Priority;
        for s in st.subs.values_mut().filter(|s| s.sub.tenant_id == tenant && s.sub.spec.topic_name == topic.spec.name)
        {
            s.queue.set_by_priority(by_priority);
        }
        Ok(topic)
    }

    async fn delete_topic(&self, tenant: TenantId, name: &str) -> Result<(), MessagingError> {
        let mut st = self.state.lock();
        st.topic_mut(tenant, name)?;
        if !st.subs_of(tenant, name).is_empty() {
            return Err(MessagingError::Conflict(format!("topic '{name}' still has subscriptions")));
        }
        st.topics.remove(&Named(tenant, name));
        st.messages.retain(|(t, _), r| !(*t == tenant && r.message.topic_name == name));
        st.idempotency.retain(|(t, topic, _), _| !(*t == tenant && topic == name));
        Ok(())
    }

    async fn create_subscription(
        &self,
        tenant: TenantId,
        spec: NewSubscription,
        now: DateTime<Utc>,
    ) -> Result<Subscription, MessagingError> {
        spec.validate()?;
        let mut st = self.state.lock();
        let topic = st.topic_mut(tenant, &spec.topic_name)?;
        let rr = topic.rr_counter;
        let subscription_id = Uuid::new_v4();
        topic.subscriptions.push(subscription_id);
        let by_priority = topic.topic.effective_strategy() == RoutingStrategy::Priority;
        st.next_seq += 1;
        let created_seq = st.next_seq;
        let sub = Subscription { tenant_id: tenant, subscription_id, spec, paused: false, created_at: now };
        st.subs.insert(
            (tenant, sub.subscription_id),
            SubState {
                sub: sub.clone(),
                created_seq,
                last_assigned: rr,
                queue: Queue::new(by_priority),
                leased: HashMap::new(),
                leases_due: None,
            },
        );
        Ok(sub)
    }

    async fn get_subscription(&self, tenant: TenantId, id: Uuid) -> Result<Subscription, MessagingError> {
        let st = self.state.lock();
        st.subs.get(&(tenant, id)).map(|s| s.sub.clone()).ok_or(MessagingError::SubscriptionNotFound(id.to_string()))
    }

    async fn list_subscriptions(
        &self,
        tenant: TenantId,
        topic: Option<&str>,
    ) -> Result<Vec<Subscription>, MessagingError> {
        let st = self.state.lock();
        let mut subs: Vec<&SubState> = st
            .subs
            .values()
            .filter(|s| s.sub.tenant_id == tenant && topic.is_none_or(|t| s.sub.spec.topic_name == t))
            .collect();
        subs.sort_by_key(|s| s.created_seq);
        Ok(subs.into_iter().map(|s| s.sub.clone()).collect())
    }

    async fn delete_subscription(&self, tenant: TenantId, id: Uuid) -> Result<(), MessagingError> {
        let mut st = self.state.lock();
        let key = st.sub_key(tenant, id)?;
        if let Some(removed) = st.subs.remove(&key) {
            if let Some(t) = st.topics.get_mut(&Named(tenant, &removed.sub.spec.topic_name)) {
                t.subscriptions.retain(|s| *s != id);
            }
        }
        Ok(())
    }

    async fn set_paused(&self, tenant: TenantId, id: Uuid, paused: bool) -> Result<Subscription, MessagingError> {
        let sub = {
            let mut st = self.state.lock();
            let key = st.sub_key(tenant, id)?;
            let s = st.subs.get_mut(&key).ok_or(MessagingError::SubscriptionNotFound(id.to_string()))?;
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
        // Everything that needs no shared state is made before the lock.
        let dedup_key = new.idempotency_key.clone().or_else(|| new.message_id.clone());
        let message_id = new.message_id.clone().unwrap_or_else(|| Uuid::new_v4().to_string());
        let message = Message {
            tenant_id: tenant,
            message_id: message_id.clone(),
            topic_name: new.topic_name,
            payload: new.payload,
            headers: new.headers,
            priority: new.priority,
            partition_key: new.partition_key,
            schema_version: new.schema_version,
            published_at: now,
            expires_at: new.expires_at,
        };
        let message = Arc::new(message);
        let shared_id: MessageId = Arc::from(message_id.as_str());
        let published = {
            let mut st = self.state.lock();
            let exactly_once = st.topic_mut(tenant, &message.topic_name)?.topic.spec.delivery_guarantee
                == DeliveryGuarantee::ExactlyOnce;
            if let (true, Some(k)) = (exactly_once, dedup_key.as_ref()) {
                let ikey = (tenant, message.topic_name.clone(), k.clone());
                if let Some((first_id, seen)) = st.idempotency.get(&ikey) {
                    if add(*seen, self.idempotency_window) > now {
                        if let Some(r) = st.messages.get(&Named(tenant, first_id)) {
                            let (first, routed_to) = (r.message.clone(), r.routed_to.clone());
                            drop(st);
                            return Ok(Published { message: Arc::unwrap_or_clone(first), duplicate: true, routed_to });
                        }
                    }
                }
            }
            if st.messages.contains_key(&Named(tenant, &message_id)) {
                return Err(MessagingError::Conflict(format!("message '{message_id}' already exists")));
            }
            let routed_to = st.route(tenant, &message);
            st.next_seq += 1;
            let seq = st.next_seq;
            for id in &routed_to {
                if let Some(s) = st.subs.get_mut(&(tenant, *id)) {
                    s.queue.push(Entry::new(&shared_id, &message, seq, now));
                }
            }
            if let Some(k) = dedup_key.filter(|_| exactly_once) {
                st.idempotency.insert((tenant, message.topic_name.clone(), k), (message_id.clone(), now));
            }
            let t = st.topic_mut(tenant, &message.topic_name)?;
            t.counters.published += 1;
            if routed_to.is_empty() {
                t.counters.unrouted += 1;
            }
            st.messages.insert(
                (tenant, shared_id),
                Record {
                    seq,
                    message: message.clone(),
                    status: MessageStatus::Pending,
                    routed_to: routed_to.clone(),
                    acked_by: Vec::new(),
                },
            );
            routed_to
        };
        self.notify.notify_waiters();
        // The answer's copy is made after the lock is released.
        Ok(Published { message: Arc::unwrap_or_clone(message), duplicate: false, routed_to: published })
    }

    async fn lease(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, MessagingError> {
        let leased = {
            let mut st = self.state.lock();
            let key = st.sub_key(tenant, subscription)?;
            st.expire_leases(key, &self.retry, now);
            st.lease_ready(key, max, now)
        };
        // The messages are copied into the deliveries after the lock is released.
        Ok(leased.into_iter().map(|l| l.delivery()).collect())
    }

    async fn ack(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        let mut st = self.state.lock();
        let key = st.sub_key(tenant, subscription)?;
        st.expire_leases(key, &self.retry, now);
        let State { topics, subs, messages, .. } = &mut *st;
        let Some(sub) = subs.get_mut(&key) else {
            return Err(MessagingError::SubscriptionNotFound(subscription.to_string()));
        };
        let mut record = messages.get_mut(&Named(tenant, message_id));
        if record.as_ref().is_some_and(|r| r.acked_by.contains(&subscription)) {
            return Ok(());
        }
        if sub.leased.remove(message_id).is_none() {
            return if sub.queue.entries().any(|e| &*e.message_id == message_id) {
                Err(MessagingError::LeaseNotHeld(message_id.to_owned()))
            } else {
                Err(MessagingError::MessageNotFound(message_id.to_owned()))
            };
        }
        if let Some(t) = topics.get_mut(&Named(tenant, &sub.sub.spec.topic_name)) {
            t.counters.acknowledged += 1;
        }
        if let Some(r) = record.as_mut() {
            r.acked_by.push(subscription);
            // Done once every subscription it went to that still exists acknowledged it.
            if r.routed_to.iter().all(|id| r.acked_by.contains(id) || !subs.contains_key(&(tenant, *id))) {
                r.status = MessageStatus::Acknowledged;
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
            let mut st = self.state.lock();
            let key = st.sub_key(tenant, subscription)?;
            st.expire_leases(key, &self.retry, now);
            if !st.subs.get(&key).is_some_and(|s| s.leased.contains_key(message_id)) {
                return Err(MessagingError::LeaseNotHeld(message_id.to_owned()));
            }
            let reason = options.reason.unwrap_or_else(|| "rejected by consumer".into());
            st.fail(key, message_id, reason, options.requeue, &self.retry, now);
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn next_due(&self, tenant: TenantId, subscription: Uuid) -> Result<Option<DateTime<Utc>>, MessagingError> {
        let st = self.state.lock();
        let key = st.sub_key(tenant, subscription)?;
        let Some(s) = st.subs.get(&key) else { return Ok(None) };
        if s.sub.paused {
            return Ok(None);
        }
        let queued = s.queue.entries().map(|e| e.available_at);
        let leased = s.leased.values().map(|l| l.deadline);
        Ok(queued.chain(leased).min())
    }

    fn changes(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    async fn get_message(&self, tenant: TenantId, message_id: &str) -> Result<StoredMessage, MessagingError> {
        let st = self.state.lock();
        st.messages
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
        let st = self.state.lock();
        let mut found: Vec<&Record> = st
            .messages
            .iter()
            .filter(|((t, _), r)| *t == tenant && r.message.topic_name == topic)
            .map(|(_, r)| r)
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse(r.seq));
        Ok(found.into_iter().take(limit.min(MAX_LIST)).map(Record::stored).collect())
    }

    async fn acknowledge_message(&self, tenant: TenantId, message_id: &str) -> Result<StoredMessage, MessagingError> {
        let mut st = self.state.lock();
        let record = st
            .messages
            .get_mut(&Named(tenant, message_id))
            .ok_or_else(|| MessagingError::MessageNotFound(message_id.to_owned()))?;
        let first = record.status != MessageStatus::Acknowledged;
        record.status = MessageStatus::Acknowledged;
        record.acked_by.clone_from(&record.routed_to);
        let stored = record.stored();
        st.remove_message_everywhere(tenant, message_id);
        if first {
            if let Some(t) = st.topics.get_mut(&Named(tenant, &stored.message.topic_name)) {
                t.counters.acknowledged += 1;
            }
        }
        Ok(stored)
    }

    async fn delete_message(&self, tenant: TenantId, message_id: &str) -> Result<(), MessagingError> {
        let mut st = self.state.lock();
        if st.messages.remove(&Named(tenant, message_id)).is_none() {
            return Err(MessagingError::MessageNotFound(message_id.to_owned()));
        }
        st.remove_message_everywhere(tenant, message_id);
        Ok(())
    }

    async fn dead_letters(&self, tenant: TenantId, topic: &str) -> Result<Vec<DeadLetter>, MessagingError> {
        Ok(self.state.lock().topic_mut(tenant, topic)?.dlq.clone())
    }

    async fn replay_dead_letter(
        &self,
        tenant: TenantId,
        topic: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        {
            let mut st = self.state.lock();
            let t = st.topic_mut(tenant, topic)?;
            let (replayed, kept): (Vec<DeadLetter>, Vec<DeadLetter>) =
                t.dlq.drain(..).partition(|d| d.message.message_id == message_id);
            t.dlq = kept;
            if replayed.is_empty() {
                return Err(MessagingError::MessageNotFound(message_id.to_owned()));
            }
            let entry = match st.messages.get_key_value_mut(&Named(tenant, message_id)) {
                Some(((_, id), r)) => {
                    r.status = MessageStatus::Pending;
                    Entry::new(id, &r.message, r.seq, now)
                }
                None => return Err(MessagingError::MessageNotFound(message_id.to_owned())),
            };
            for d in replayed {
                if let Some(s) = st.subs.get_mut(&(tenant, d.subscription_id)) {
                    s.queue.push(entry.clone());
                }
            }
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn purge_dead_letter(&self, tenant: TenantId, topic: &str, message_id: &str) -> Result<(), MessagingError> {
        let mut st = self.state.lock();
        let t = st.topic_mut(tenant, topic)?;
        let before = t.dlq.len();
        t.dlq.retain(|d| d.message.message_id != message_id);
        if t.dlq.len() == before {
            return Err(MessagingError::MessageNotFound(message_id.to_owned()));
        }
        Ok(())
    }

    async fn metrics(&self, tenant: TenantId, topic: &str, now: DateTime<Utc>) -> Result<TopicMetrics, MessagingError> {
        let mut st = self.state.lock();
        let t = st.topic_mut(tenant, topic)?;
        let c = &t.counters;
        let mut m = TopicMetrics {
            published: c.published,
            delivered: c.delivered,
            acknowledged: c.acknowledged,
            failed: c.failed,
            dead_lettered: c.dead_lettered,
            unrouted: c.unrouted,
            depth: BTreeMap::new(),
            oldest_unacked_age_ms: None,
        };
        let mut oldest: Option<DateTime<Utc>> = None;
        for s in st.subs.values().filter(|s| s.sub.tenant_id == tenant && s.sub.spec.topic_name == topic) {
            let queued = s.queue.entries().filter(|e| !e.expired(now));
            m.depth.insert(s.sub.subscription_id, (queued.count() + s.leased.len()) as u64);
            let ids = s.queue.entries().filter(|e| !e.expired(now)).map(|e| &e.message_id).chain(s.leased.keys());
            for id in ids {
                if let Some(r) = st.messages.get(&Named(tenant, id)) {
                    let at = r.message.published_at;
                    oldest = Some(oldest.map_or(at, |o| o.min(at)));
                }
            }
        }
        m.oldest_unacked_age_ms = oldest.map(|o| (now - o).num_milliseconds());
        Ok(m)
    }

    async fn sweep(&self, now: DateTime<Utc>, idempotency_window: Duration) -> Result<usize, MessagingError> {
        let mut st = self.state.lock();
        let retention: HashMap<(TenantId, String), Duration> =
            st.topics.iter().map(|(k, t)| (k.clone(), t.topic.spec.retention)).collect();
        let doomed: Vec<(TenantId, MessageId)> = st
            .messages
            .iter()
            .filter(|((tenant, _), r)| {
                let m = &r.message;
                let done = r.status == MessageStatus::Acknowledged || m.expires_at.is_some_and(|x| x <= now);
                let keep_for = retention.get(&(*tenant, m.topic_name.clone())).copied().unwrap_or_default();
                done && add(m.published_at, keep_for) <= now
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (tenant, id) in &doomed {
            st.messages.remove(&Named(*tenant, id));
            st.remove_message_everywhere(*tenant, id);
        }
        st.idempotency.retain(|_, (_, seen)| add(*seen, idempotency_window) > now);
        Ok(doomed.len())
    }
}
