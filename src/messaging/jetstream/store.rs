//! The `MessageStore` contract over the JetStream back-end: each method
//! forwards to the file that does the work.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use uuid::Uuid;

use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{
    DeadLetterPage, Delivery, LetterRange, MessageStore, MessagingError, NackOptions, NewMessage, NewSubscription,
    NewTopic, Published, StoredMessage, Subscription, SubscriptionKind, Topic, TopicMetrics,
};

use super::setup::JetStreamMessageStore;

#[async_trait]
impl MessageStore for JetStreamMessageStore {
    async fn create_topic(
        &self,
        tenant: TenantId,
        spec: NewTopic,
        now: DateTime<Utc>,
    ) -> Result<Topic, MessagingError> {
        self.create_topic_impl(tenant, spec, now).await
    }

    async fn get_topic(&self, tenant: TenantId, name: &str) -> Result<Topic, MessagingError> {
        Ok(self.meta.lock().topic(tenant, name)?.topic.clone())
    }

    async fn list_topics(&self, tenant: TenantId) -> Result<Vec<Topic>, MessagingError> {
        let meta = self.meta.lock();
        let mut topics: Vec<Topic> =
            meta.topics.values().filter(|t| t.topic.tenant_id == tenant).map(|t| t.topic.clone()).collect();
        topics.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(topics)
    }

    async fn update_topic(&self, tenant: TenantId, spec: NewTopic) -> Result<Topic, MessagingError> {
        self.update_topic_impl(tenant, spec).await
    }

    async fn delete_topic(&self, tenant: TenantId, name: &str) -> Result<(), MessagingError> {
        self.delete_topic_impl(tenant, name).await
    }

    async fn create_subscription(
        &self,
        tenant: TenantId,
        spec: NewSubscription,
        now: DateTime<Utc>,
    ) -> Result<Subscription, MessagingError> {
        self.create_subscription_impl(tenant, spec, now).await
    }

    async fn get_subscription(&self, tenant: TenantId, id: Uuid) -> Result<Subscription, MessagingError> {
        Ok(self.meta.lock().sub(tenant, id)?.record.subscription.clone())
    }

    async fn list_subscriptions(
        &self,
        tenant: TenantId,
        topic: Option<&str>,
    ) -> Result<Vec<Subscription>, MessagingError> {
        let meta = self.meta.lock();
        let mut subs: Vec<_> = meta
            .subs
            .values()
            .filter(|s| {
                let sub = &s.record.subscription;
                sub.tenant_id == tenant && topic.is_none_or(|t| sub.spec.topic_name == t)
            })
            .collect();
        subs.sort_by_key(|s| s.record.created_seq);
        Ok(subs.into_iter().map(|s| s.record.subscription.clone()).collect())
    }

    async fn list_push_subscriptions(&self) -> Result<Vec<Subscription>, MessagingError> {
        let meta = self.meta.lock();
        let mut subs: Vec<_> =
            meta.subs.values().filter(|s| s.record.subscription.spec.kind == SubscriptionKind::Push).collect();
        subs.sort_by_key(|s| s.record.created_seq);
        Ok(subs.into_iter().map(|s| s.record.subscription.clone()).collect())
    }

    async fn delete_subscription(&self, tenant: TenantId, id: Uuid) -> Result<(), MessagingError> {
        self.delete_subscription_impl(tenant, id).await
    }

    async fn set_paused(&self, tenant: TenantId, id: Uuid, paused: bool) -> Result<Subscription, MessagingError> {
        self.set_paused_impl(tenant, id, paused).await
    }

    async fn publish(
        &self,
        tenant: TenantId,
        message: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Published, MessagingError> {
        self.publish_impl(tenant, message, now).await
    }

    async fn lease(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, MessagingError> {
        self.lease_impl(tenant, subscription, max, now).await
    }

    async fn ack(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        self.ack_impl(tenant, subscription, message_id, now).await
    }

    async fn nack(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        message_id: &str,
        options: NackOptions,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        self.nack_impl(tenant, subscription, message_id, options, now).await
    }

    fn changes(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    async fn next_due(&self, tenant: TenantId, subscription: Uuid) -> Result<Option<DateTime<Utc>>, MessagingError> {
        self.next_due_impl(tenant, subscription).await
    }

    async fn get_message(&self, tenant: TenantId, message_id: &str) -> Result<StoredMessage, MessagingError> {
        self.get_message_impl(tenant, message_id).await
    }

    async fn list_messages(
        &self,
        tenant: TenantId,
        topic: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, MessagingError> {
        self.list_messages_impl(tenant, topic, limit).await
    }

    async fn acknowledge_message(
        &self,
        tenant: TenantId,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredMessage, MessagingError> {
        self.acknowledge_message_impl(tenant, message_id, now).await
    }

    async fn delete_message(&self, tenant: TenantId, message_id: &str) -> Result<(), MessagingError> {
        self.delete_message_impl(tenant, message_id).await
    }

    async fn dead_letters(
        &self,
        tenant: TenantId,
        topic: &str,
        range: LetterRange,
    ) -> Result<DeadLetterPage, MessagingError> {
        self.dead_letters_impl(tenant, topic, range).await
    }

    async fn replay_dead_letter(
        &self,
        tenant: TenantId,
        topic: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        self.replay_dead_letter_impl(tenant, topic, message_id, now).await
    }

    async fn purge_dead_letter(&self, tenant: TenantId, topic: &str, message_id: &str) -> Result<(), MessagingError> {
        self.purge_dead_letter_impl(tenant, topic, message_id).await
    }

    async fn metrics(&self, tenant: TenantId, topic: &str, now: DateTime<Utc>) -> Result<TopicMetrics, MessagingError> {
        self.metrics_impl(tenant, topic, now).await
    }

    async fn sweep(&self, now: DateTime<Utc>, idempotency_window: Duration) -> Result<usize, MessagingError> {
        self.sweep_impl(now, idempotency_window).await
    }
}
