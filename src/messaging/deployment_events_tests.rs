//! A run event whose publish fails is published once the bus takes it
//! again, and only once even when the failed attempt had in fact been stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{
    DeadLetterPage, Delivery, LetterRange, MemoryMessageStore, MessageStore, MessagingError, NackOptions, NewMessage,
    NewSubscription, NewTopic, Published, SharedMessageStore, StoredMessage, Subscription, Topic, TopicMetrics,
};
use uuid::Uuid;

use super::{publish_until_done, DEPLOYMENTS_TOPIC};

/// The memory store, whose next `failures` publishes fail: before storing
/// (`stored_anyway = false`) or after (the answer is lost on the way back).
struct Flaky {
    inner: MemoryMessageStore,
    failures: AtomicU32,
    stored_anyway: bool,
}

#[async_trait]
impl MessageStore for Flaky {
    async fn create_topic(&self, t: TenantId, spec: NewTopic, now: DateTime<Utc>) -> Result<Topic, MessagingError> {
        self.inner.create_topic(t, spec, now).await
    }
    async fn get_topic(&self, t: TenantId, name: &str) -> Result<Topic, MessagingError> {
        self.inner.get_topic(t, name).await
    }
    async fn list_topics(&self, t: TenantId) -> Result<Vec<Topic>, MessagingError> {
        self.inner.list_topics(t).await
    }
    async fn update_topic(&self, t: TenantId, spec: NewTopic) -> Result<Topic, MessagingError> {
        self.inner.update_topic(t, spec).await
    }
    async fn delete_topic(&self, t: TenantId, name: &str) -> Result<(), MessagingError> {
        self.inner.delete_topic(t, name).await
    }
    async fn create_subscription(
        &self,
        t: TenantId,
        spec: NewSubscription,
        now: DateTime<Utc>,
    ) -> Result<Subscription, MessagingError> {
        self.inner.create_subscription(t, spec, now).await
    }
    async fn get_subscription(&self, t: TenantId, id: Uuid) -> Result<Subscription, MessagingError> {
        self.inner.get_subscription(t, id).await
    }
    async fn list_subscriptions(&self, t: TenantId, topic: Option<&str>) -> Result<Vec<Subscription>, MessagingError> {
        self.inner.list_subscriptions(t, topic).await
    }
    async fn list_push_subscriptions(&self) -> Result<Vec<Subscription>, MessagingError> {
        self.inner.list_push_subscriptions().await
    }
    async fn delete_subscription(&self, t: TenantId, id: Uuid) -> Result<(), MessagingError> {
        self.inner.delete_subscription(t, id).await
    }
    async fn set_paused(&self, t: TenantId, id: Uuid, paused: bool) -> Result<Subscription, MessagingError> {
        self.inner.set_paused(t, id, paused).await
    }
    async fn publish(&self, t: TenantId, m: NewMessage, now: DateTime<Utc>) -> Result<Published, MessagingError> {
        let fail = self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if !fail {
            return self.inner.publish(t, m, now).await;
        }
        if self.stored_anyway {
            self.inner.publish(t, m, now).await?;
        }
        Err(MessagingError::Unavailable("the bus is away".into()))
    }
    async fn lease(
        &self,
        t: TenantId,
        s: Uuid,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, MessagingError> {
        self.inner.lease(t, s, max, now).await
    }
    async fn ack(&self, t: TenantId, s: Uuid, id: &str, now: DateTime<Utc>) -> Result<(), MessagingError> {
        self.inner.ack(t, s, id, now).await
    }
    async fn nack(
        &self,
        t: TenantId,
        s: Uuid,
        id: &str,
        options: NackOptions,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        self.inner.nack(t, s, id, options, now).await
    }
    fn changes(&self) -> Arc<tokio::sync::Notify> {
        self.inner.changes()
    }
    async fn next_due(&self, t: TenantId, s: Uuid) -> Result<Option<DateTime<Utc>>, MessagingError> {
        self.inner.next_due(t, s).await
    }
    async fn get_message(&self, t: TenantId, id: &str) -> Result<StoredMessage, MessagingError> {
        self.inner.get_message(t, id).await
    }
    async fn list_messages(
        &self,
        t: TenantId,
        topic: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, MessagingError> {
        self.inner.list_messages(t, topic, limit).await
    }
    async fn acknowledge_message(
        &self,
        t: TenantId,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredMessage, MessagingError> {
        self.inner.acknowledge_message(t, id, now).await
    }
    async fn delete_message(&self, t: TenantId, id: &str) -> Result<(), MessagingError> {
        self.inner.delete_message(t, id).await
    }
    async fn dead_letters(
        &self,
        t: TenantId,
        topic: &str,
        range: LetterRange,
    ) -> Result<DeadLetterPage, MessagingError> {
        self.inner.dead_letters(t, topic, range).await
    }
    async fn replay_dead_letter(
        &self,
        t: TenantId,
        topic: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        self.inner.replay_dead_letter(t, topic, id, now).await
    }
    async fn purge_dead_letter(&self, t: TenantId, topic: &str, id: &str) -> Result<(), MessagingError> {
        self.inner.purge_dead_letter(t, topic, id).await
    }
    async fn metrics(&self, t: TenantId, topic: &str, now: DateTime<Utc>) -> Result<TopicMetrics, MessagingError> {
        self.inner.metrics(t, topic, now).await
    }
    async fn sweep(&self, now: DateTime<Utc>, window: Duration) -> Result<usize, MessagingError> {
        self.inner.sweep(now, window).await
    }
}

async fn published_after(failures: u32, stored_anyway: bool) -> Vec<StoredMessage> {
    let flaky = Flaky { inner: MemoryMessageStore::default(), failures: AtomicU32::new(failures), stored_anyway };
    let store: SharedMessageStore = Arc::new(flaky);
    let tenant = Uuid::new_v4();
    let mut message = NewMessage::new(DEPLOYMENTS_TOPIC, r#"{"event":"RunStarted"}"#);
    message.message_id = Some("run-1-DeploymentCreated-0-".into());
    let mut ready = HashSet::new();
    publish_until_done(&store, tenant, message, &mut ready).await;
    store.list_messages(tenant, DEPLOYMENTS_TOPIC, 10).await.unwrap()
}

#[tokio::test]
async fn a_failed_publish_is_retried_until_the_event_is_on_the_bus() {
    let messages = published_after(2, false).await;
    assert_eq!(messages.len(), 1, "the event reached the bus after two failures");
    assert_eq!(messages[0].message.message_id, "run-1-DeploymentCreated-0-");
}

#[tokio::test]
async fn a_retry_of_a_publish_that_was_stored_puts_no_second_copy() {
    let messages = published_after(1, true).await;
    assert_eq!(messages.len(), 1, "stored once although its first answer was lost");
}
