//! Topics and subscriptions: a stream per topic, durable consumers per
//! subscription, their records in the metadata bucket.

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{
    DeliveryGuarantee, MessagingError, NewSubscription, NewTopic, RoutingStrategy, Subscription, Topic,
};

use super::error::nats_error;
use super::meta::{Counters, SubEntry, TopicEntry};
use super::names::{keys, LANES};
use super::records::{self, IdempotencyRecord, MessageRecord, SubscriptionRecord, TopicRecord};
use super::setup::JetStreamMessageStore;

impl JetStreamMessageStore {
    pub(super) async fn create_topic_impl(
        &self,
        tenant: TenantId,
        spec: NewTopic,
        now: DateTime<Utc>,
    ) -> Result<Topic, MessagingError> {
        spec.validate()?;
        if self.meta.lock().topic(tenant, &spec.name).is_ok() {
            return Err(MessagingError::TopicExists(spec.name));
        }
        let topic = Topic { tenant_id: tenant, spec, created_at: now };
        self.js.get_or_create_stream(self.stream_config(tenant, &topic.spec.name)).await.map_err(nats_error)?;
        let key = keys::topic(tenant, &topic.spec.name);
        if !records::create(&self.kv, &key, &TopicRecord { topic: topic.clone() }).await? {
            return Err(MessagingError::TopicExists(topic.spec.name));
        }
        self.meta.lock().topics.insert(
            (tenant, topic.spec.name.clone()),
            TopicEntry { topic: topic.clone(), rr_counter: 0, counters: Counters::default() },
        );
        Ok(topic)
    }

    pub(super) async fn update_topic_impl(&self, tenant: TenantId, spec: NewTopic) -> Result<Topic, MessagingError> {
        spec.validate()?;
        let mut topic = self.meta.lock().topic(tenant, &spec.name)?.topic.clone();
        topic.spec = spec;
        records::put(&self.kv, &keys::topic(tenant, &topic.spec.name), &TopicRecord { topic: topic.clone() }).await?;
        self.meta.lock().topic_mut(tenant, &topic.spec.name)?.topic = topic.clone();
        Ok(topic)
    }

    pub(super) async fn delete_topic_impl(&self, tenant: TenantId, name: &str) -> Result<(), MessagingError> {
        {
            let meta = self.meta.lock();
            meta.topic(tenant, name)?;
            if !meta.subs_of(tenant, name).is_empty() {
                return Err(MessagingError::Conflict(format!("topic '{name}' still has subscriptions")));
            }
        }
        match self.js.delete_stream(self.names.stream(tenant, name)).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("not found") => {}
            Err(e) => return Err(nats_error(e)),
        }
        self.forget_stream(tenant, name);
        let dlq = self.dlq().await?;
        dlq.purge().filter(self.names.dlq_topic_filter(tenant, name)).await.map_err(nats_error)?;
        // The topic's message records and idempotency keys go with it.
        let bucket = self.names.bucket();
        for key in records::keys(&self.kv, &bucket, &keys::tenant_messages(tenant)).await? {
            if let Some((r, _)) = records::get::<MessageRecord>(&self.kv, &key).await? {
                if r.message.topic_name == name {
                    records::delete(&self.kv, &key).await?;
                }
            }
        }
        let idem_filter = format!("idem.{}.{}.*", tenant.simple(), super::names::topic_key(name));
        for key in records::keys(&self.kv, &bucket, &idem_filter).await? {
            if records::get::<IdempotencyRecord>(&self.kv, &key).await?.is_some() {
                records::delete(&self.kv, &key).await?;
            }
        }
        records::delete(&self.kv, &keys::topic(tenant, name)).await?;
        self.meta.lock().topics.remove(&(tenant, name.to_owned()));
        Ok(())
    }

    pub(super) async fn create_subscription_impl(
        &self,
        tenant: TenantId,
        spec: NewSubscription,
        now: DateTime<Utc>,
    ) -> Result<Subscription, MessagingError> {
        spec.validate()?;
        let topic = self.meta.lock().topic(tenant, &spec.topic_name)?.topic.clone();
        let subscription =
            Subscription { tenant_id: tenant, subscription_id: Uuid::new_v4(), spec, paused: false, created_at: now };
        let lanes = topic.effective_strategy() == RoutingStrategy::Priority;
        let stream = self.stream(tenant, &topic.spec.name).await?;
        let id = subscription.subscription_id;
        let lane_list: Vec<Option<u8>> = if lanes { (0..LANES).map(Some).collect() } else { vec![None] };
        for lane in lane_list {
            let filter_subject = match lane {
                Some(l) => self.names.lane_filter(tenant, &topic.spec.name, id, l),
                None => self.names.subscription_filter(tenant, &topic.spec.name, id),
            };
            let config = self.consumer_config(&topic, &subscription, lane, filter_subject);
            stream.create_consumer(config).await.map_err(nats_error)?;
        }
        let record = SubscriptionRecord { subscription: subscription.clone(), created_seq: self.next_seq(), lanes };
        records::put(&self.kv, &keys::subscription(tenant, id), &record).await?;
        let mut meta = self.meta.lock();
        let rr = meta.topic(tenant, &topic.spec.name)?.rr_counter;
        meta.subs.insert((tenant, id), SubEntry { record, last_assigned: rr });
        Ok(subscription)
    }

    /// The lease is AckWait; the retry policy is the consumer's BackOff (a
    /// copy not acknowledged is offered again `ackTimeout + backoff(n)`
    /// after delivery n, as the memory store does) and MaxDeliver the
    /// retry limit; explicit nacks give their own delay.
    fn consumer_config(
        &self,
        topic: &Topic,
        subscription: &Subscription,
        lane: Option<u8>,
        filter_subject: String,
    ) -> pull::Config {
        let spec = &subscription.spec;
        let at_most_once = topic.spec.delivery_guarantee == DeliveryGuarantee::AtMostOnce;
        let retries = if at_most_once { 0 } else { spec.max_retries };
        let backoff: Vec<std::time::Duration> =
            (1..=retries).map(|attempt| spec.ack_timeout + self.retry.backoff(attempt)).collect();
        pull::Config {
            durable_name: Some(self.names.consumer(subscription.subscription_id, lane)),
            filter_subject,
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: backoff.first().copied().unwrap_or(spec.ack_timeout),
            max_deliver: i64::from(retries) + 1,
            backoff,
            max_ack_pending: 10_000,
            ..Default::default()
        }
    }

    pub(super) async fn delete_subscription_impl(&self, tenant: TenantId, id: Uuid) -> Result<(), MessagingError> {
        let view = self.meta.lock().view(tenant, id)?;
        let topic = view.topic.spec.name.clone();
        let stream = self.stream(tenant, &topic).await?;
        let lane_list: Vec<Option<u8>> = if view.lanes { (0..LANES).map(Some).collect() } else { vec![None] };
        for lane in lane_list {
            match stream.delete_consumer(&self.names.consumer(id, lane)).await {
                Ok(_) => {}
                Err(e) if e.to_string().contains("not found") => {}
                Err(e) => return Err(nats_error(e)),
            }
        }
        self.forget_consumers(id);
        stream.purge().filter(self.names.subscription_filter(tenant, &topic, id)).await.map_err(nats_error)?;
        records::delete(&self.kv, &keys::subscription(tenant, id)).await?;
        self.meta.lock().subs.remove(&(tenant, id));
        self.runtime.lock().remove(&id);
        Ok(())
    }

    pub(super) async fn set_paused_impl(
        &self,
        tenant: TenantId,
        id: Uuid,
        paused: bool,
    ) -> Result<Subscription, MessagingError> {
        let mut record = self.meta.lock().sub(tenant, id)?.record.clone();
        record.subscription.paused = paused;
        records::put(&self.kv, &keys::subscription(tenant, id), &record).await?;
        let subscription = record.subscription.clone();
        if let Some(s) = self.meta.lock().subs.get_mut(&(tenant, id)) {
            s.record = record;
        }
        self.notify.notify_waiters();
        Ok(subscription)
    }
}
