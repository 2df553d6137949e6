//! `MessageStore` for `PgMessageStore`: each method is implemented in the
//! file of its job (see `mod.rs`); this file only joins them to the trait.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{
    DeadLetterPage, Delivery, LetterRange, MessageStore, MessagingError, NackOptions, NewMessage, NewSubscription,
    NewTopic, Published, StoredMessage, Subscription, Topic, TopicMetrics,
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::PgMessageStore;

#[async_trait]
impl MessageStore for PgMessageStore {
    async fn create_topic(
        &self,
        tenant: TenantId,
        spec: NewTopic,
        now: DateTime<Utc>,
    ) -> Result<Topic, MessagingError> {
        self.create_topic_row(tenant, spec, now).await
    }

    async fn get_topic(&self, tenant: TenantId, name: &str) -> Result<Topic, MessagingError> {
        self.get_topic_row(tenant, name).await
    }

    async fn list_topics(&self, tenant: TenantId) -> Result<Vec<Topic>, MessagingError> {
        self.list_topic_rows(tenant).await
    }

    async fn update_topic(&self, tenant: TenantId, spec: NewTopic) -> Result<Topic, MessagingError> {
        self.update_topic_row(tenant, spec).await
    }

    async fn delete_topic(&self, tenant: TenantId, name: &str) -> Result<(), MessagingError> {
        self.delete_topic_row(tenant, name).await
    }

    async fn create_subscription(
        &self,
        tenant: TenantId,
        spec: NewSubscription,
        now: DateTime<Utc>,
    ) -> Result<Subscription, MessagingError> {
        self.create_subscription_row(tenant, spec, now).await
    }

    async fn get_subscription(&self, tenant: TenantId, id: Uuid) -> Result<Subscription, MessagingError> {
        self.get_subscription_row(tenant, id).await
    }

    async fn list_subscriptions(
        &self,
        tenant: TenantId,
        topic: Option<&str>,
    ) -> Result<Vec<Subscription>, MessagingError> {
        self.list_subscription_rows(tenant, topic).await
    }

    async fn list_push_subscriptions(&self) -> Result<Vec<Subscription>, MessagingError> {
        self.list_push_subscription_rows().await
    }

    async fn delete_subscription(&self, tenant: TenantId, id: Uuid) -> Result<(), MessagingError> {
        self.delete_subscription_row(tenant, id).await
    }

    async fn set_paused(&self, tenant: TenantId, id: Uuid, paused: bool) -> Result<Subscription, MessagingError> {
        self.set_paused_row(tenant, id, paused).await
    }

    async fn publish(
        &self,
        tenant: TenantId,
        message: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Published, MessagingError> {
        self.publish_row(tenant, message, now).await
    }

    async fn lease(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, MessagingError> {
        self.lease_rows(tenant, subscription, max, now).await
    }

    async fn ack(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        self.ack_row(tenant, subscription, message_id, now).await
    }

    async fn nack(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        message_id: &str,
        options: NackOptions,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        self.nack_row(tenant, subscription, message_id, options, now).await
    }

    fn changes(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    async fn next_due(&self, tenant: TenantId, subscription: Uuid) -> Result<Option<DateTime<Utc>>, MessagingError> {
        self.next_due_row(tenant, subscription).await
    }

    async fn get_message(&self, tenant: TenantId, message_id: &str) -> Result<StoredMessage, MessagingError> {
        self.get_message_row(tenant, message_id).await
    }

    async fn list_messages(
        &self,
        tenant: TenantId,
        topic: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, MessagingError> {
        self.list_message_rows(tenant, topic, limit).await
    }

    async fn acknowledge_message(
        &self,
        tenant: TenantId,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredMessage, MessagingError> {
        self.acknowledge_message_row(tenant, message_id, now).await
    }

    async fn delete_message(&self, tenant: TenantId, message_id: &str) -> Result<(), MessagingError> {
        self.delete_message_row(tenant, message_id).await
    }

    async fn dead_letters(
        &self,
        tenant: TenantId,
        topic: &str,
        range: LetterRange,
    ) -> Result<DeadLetterPage, MessagingError> {
        self.dead_letter_rows(tenant, topic, range).await
    }

    async fn replay_dead_letter(
        &self,
        tenant: TenantId,
        topic: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        self.replay_dead_letter_row(tenant, topic, message_id, now).await
    }

    async fn purge_dead_letter(&self, tenant: TenantId, topic: &str, message_id: &str) -> Result<(), MessagingError> {
        self.purge_dead_letter_row(tenant, topic, message_id).await
    }

    async fn metrics(&self, tenant: TenantId, topic: &str, now: DateTime<Utc>) -> Result<TopicMetrics, MessagingError> {
        self.metrics_rows(tenant, topic, now).await
    }

    async fn sweep(&self, now: DateTime<Utc>, idempotency_window: Duration) -> Result<usize, MessagingError> {
        self.sweep_rows(now, idempotency_window).await
    }
}
