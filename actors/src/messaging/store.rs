use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::MessagingError;
use super::model::{
    DeadLetterPage, Delivery, LetterRange, NackOptions, NewMessage, NewSubscription, NewTopic, Published,
    StoredMessage, Subscription, Topic, TopicMetrics,
};
use crate::domain::TenantId;

/// The bus's storage and semantics. Every method takes the tenant and sees
/// only that tenant's records: another tenant's topic, subscription or
/// message is "not found". `now` is the caller's clock.
#[async_trait]
pub trait MessageStore: Send + Sync {
    async fn create_topic(&self, tenant: TenantId, spec: NewTopic, now: DateTime<Utc>)
        -> Result<Topic, MessagingError>;
    async fn get_topic(&self, tenant: TenantId, name: &str) -> Result<Topic, MessagingError>;
    async fn list_topics(&self, tenant: TenantId) -> Result<Vec<Topic>, MessagingError>;
    async fn update_topic(&self, tenant: TenantId, spec: NewTopic) -> Result<Topic, MessagingError>;
    /// Refused (Conflict) while the topic has subscriptions.
    async fn delete_topic(&self, tenant: TenantId, name: &str) -> Result<(), MessagingError>;

    async fn create_subscription(
        &self,
        tenant: TenantId,
        spec: NewSubscription,
        now: DateTime<Utc>,
    ) -> Result<Subscription, MessagingError>;
    async fn get_subscription(&self, tenant: TenantId, id: Uuid) -> Result<Subscription, MessagingError>;
    async fn list_subscriptions(
        &self,
        tenant: TenantId,
        topic: Option<&str>,
    ) -> Result<Vec<Subscription>, MessagingError>;
    /// Every tenant's push subscriptions, oldest first: the delivery loops a
    /// starting process resumes. Across tenants because the bus may keep
    /// subscriptions of tenants HotSwap's own store does not list (a memory
    /// store beside a durable bus starts empty).
    async fn list_push_subscriptions(&self) -> Result<Vec<Subscription>, MessagingError>;
    async fn delete_subscription(&self, tenant: TenantId, id: Uuid) -> Result<(), MessagingError>;
    async fn set_paused(&self, tenant: TenantId, id: Uuid, paused: bool) -> Result<Subscription, MessagingError>;

    /// Stores and routes a message. On an ExactlyOnce topic a repeat of an
    /// idempotency key (or message id) inside the window answers the first
    /// message with `duplicate = true`.
    async fn publish(
        &self,
        tenant: TenantId,
        message: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Published, MessagingError>;

    /// Leases up to `max` deliveries of a subscription. Expired leases are
    /// first returned to the queue as failed attempts.
    async fn lease(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, MessagingError>;
    /// Idempotent: acking an acknowledged message again succeeds.
    async fn ack(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError>;
    async fn nack(
        &self,
        tenant: TenantId,
        subscription: Uuid,
        message_id: &str,
        options: NackOptions,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError>;
    /// When the subscription next has something to lease (now, or a retry's
    /// backoff end, or a lease's deadline), for long-polling consumers.
    /// Woken whenever something may have become leasable (publish, nack,
    /// replay, resume), so long-polls need not spin.
    fn changes(&self) -> Arc<tokio::sync::Notify>;
    async fn next_due(&self, tenant: TenantId, subscription: Uuid) -> Result<Option<DateTime<Utc>>, MessagingError>;

    async fn get_message(&self, tenant: TenantId, message_id: &str) -> Result<StoredMessage, MessagingError>;
    /// Newest first, at most `limit` (capped at 1000).
    async fn list_messages(
        &self,
        tenant: TenantId,
        topic: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, MessagingError>;
    /// Acknowledges a message for every subscription (the original API);
    /// the first acknowledgement sets `acknowledged_at` to `now`.
    async fn acknowledge_message(
        &self,
        tenant: TenantId,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredMessage, MessagingError>;
    async fn delete_message(&self, tenant: TenantId, message_id: &str) -> Result<(), MessagingError>;

    /// The topic's dead letters in `range`, oldest first, and their count.
    async fn dead_letters(
        &self,
        tenant: TenantId,
        topic: &str,
        range: LetterRange,
    ) -> Result<DeadLetterPage, MessagingError>;
    /// Re-enqueues to the subscription it died on, attempts reset, and
    /// removes it from the dead-letter queue.
    async fn replay_dead_letter(
        &self,
        tenant: TenantId,
        topic: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError>;
    async fn purge_dead_letter(&self, tenant: TenantId, topic: &str, message_id: &str) -> Result<(), MessagingError>;

    async fn metrics(&self, tenant: TenantId, topic: &str, now: DateTime<Utc>) -> Result<TopicMetrics, MessagingError>;

    /// Drops acknowledged and expired messages older than their topic's
    /// retention, and idempotency keys older than the window. A sweep over
    /// all tenants. Answers how many messages it removed.
    async fn sweep(&self, now: DateTime<Utc>, idempotency_window: Duration) -> Result<usize, MessagingError>;
}

pub type SharedMessageStore = Arc<dyn MessageStore>;
