//! The original API's view of messages (get, list, acknowledge, delete) and
//! the retention sweep. A message's status is its record's, except that a
//! pending message whose every routed copy has left its work-queue stream
//! (acknowledged) reads as Acknowledged.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{later_by, MessageStatus, MessagingError, StoredMessage};

use super::error::nats_error;
use super::names::keys;
use super::records::{self, IdempotencyRecord, MessageRecord};
use super::setup::JetStreamMessageStore;
use super::streams;

const MAX_LIST: usize = 1000;
/// Records read at once when listing or sweeping.
const READ_AHEAD: usize = 32;

impl JetStreamMessageStore {
    async fn status_of(&self, tenant: TenantId, record: &MessageRecord) -> Result<MessageStatus, MessagingError> {
        if record.status != MessageStatus::Pending || record.routed_to.is_empty() {
            return Ok(record.status);
        }
        let topic = &record.message.topic_name;
        let stream = self.stream(tenant, topic).await?;
        for sub in &record.routed_to {
            let subject =
                self.names.delivery_subject(tenant, topic, *sub, record.message.priority, &record.message.message_id);
            if streams::last_on(&stream, &subject).await?.is_some() {
                return Ok(MessageStatus::Pending);
            }
        }
        Ok(MessageStatus::Acknowledged)
    }

    async fn stored(&self, tenant: TenantId, record: MessageRecord) -> Result<StoredMessage, MessagingError> {
        let status = self.status_of(tenant, &record).await?;
        Ok(StoredMessage {
            message: record.message,
            status,
            routed_to: record.routed_to,
            acknowledged_at: record.acknowledged_at,
        })
    }

    async fn record(&self, tenant: TenantId, message_id: &str) -> Result<MessageRecord, MessagingError> {
        records::get::<MessageRecord>(&self.kv, &keys::message(tenant, message_id))
            .await?
            .map(|(r, _)| r)
            .ok_or_else(|| MessagingError::MessageNotFound(message_id.to_owned()))
    }

    pub(super) async fn get_message_impl(
        &self,
        tenant: TenantId,
        message_id: &str,
    ) -> Result<StoredMessage, MessagingError> {
        let record = self.record(tenant, message_id).await?;
        self.stored(tenant, record).await
    }

    /// Every record under a key filter, read a few at a time.
    async fn records_under(&self, filter: &str) -> Result<Vec<(String, MessageRecord)>, MessagingError> {
        let keys = records::keys(&self.kv, &self.names.bucket(), filter).await?;
        let found: Vec<Option<(String, MessageRecord)>> = futures::stream::iter(keys)
            .map(|key| async move {
                let got = records::get::<MessageRecord>(&self.kv, &key).await?;
                Ok::<_, MessagingError>(got.map(|(r, _)| (key, r)))
            })
            .buffer_unordered(READ_AHEAD)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    pub(super) async fn list_messages_impl(
        &self,
        tenant: TenantId,
        topic: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, MessagingError> {
        let mut found: Vec<MessageRecord> = self
            .records_under(&keys::tenant_messages(tenant))
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.message.topic_name == topic)
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse(r.seq));
        let mut out = Vec::new();
        for record in found.into_iter().take(limit.min(MAX_LIST)) {
            out.push(self.stored(tenant, record).await?);
        }
        Ok(out)
    }

    /// Removes every pending copy of a message, and its leases here.
    async fn remove_copies(&self, tenant: TenantId, record: &MessageRecord) -> Result<(), MessagingError> {
        let topic = &record.message.topic_name;
        let Ok(stream) = self.stream(tenant, topic).await else { return Ok(()) };
        for sub in &record.routed_to {
            let subject =
                self.names.delivery_subject(tenant, topic, *sub, record.message.priority, &record.message.message_id);
            // Deleted by sequence: a filtered purge on a work queue left
            // 2.9's pending count wrong, hiding the next message from fetches.
            if let Some(m) = streams::last_on(&stream, &subject).await? {
                stream.delete_message(m.sequence).await.map_err(nats_error)?;
            }
            if let Some(rt) = self.runtime.lock().get_mut(sub) {
                rt.in_flight.remove(&record.message.message_id);
                rt.held.retain(|h| h.message.message_id != record.message.message_id);
            }
        }
        Ok(())
    }

    pub(super) async fn acknowledge_message_impl(
        &self,
        tenant: TenantId,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredMessage, MessagingError> {
        let mut record = self.record(tenant, message_id).await?;
        let first = self.status_of(tenant, &record).await? != MessageStatus::Acknowledged;
        record.status = MessageStatus::Acknowledged;
        record.acknowledged_at.get_or_insert(now);
        records::put(&self.kv, &keys::message(tenant, message_id), &record).await?;
        self.remove_copies(tenant, &record).await?;
        if first {
            self.meta.lock().count(tenant, &record.message.topic_name, |c| c.acknowledged += 1);
        }
        Ok(StoredMessage {
            message: record.message,
            status: MessageStatus::Acknowledged,
            routed_to: record.routed_to,
            acknowledged_at: record.acknowledged_at,
        })
    }

    pub(super) async fn delete_message_impl(&self, tenant: TenantId, message_id: &str) -> Result<(), MessagingError> {
        let record = self.record(tenant, message_id).await?;
        self.remove_copies(tenant, &record).await?;
        records::delete(&self.kv, &keys::message(tenant, message_id)).await
    }

    /// Acknowledged and expired messages past their topic's retention, and
    /// idempotency keys past the window. A message or key that cannot be
    /// swept is logged and left for the next pass: one bad record must not
    /// keep the sweep from every other topic's.
    pub(super) async fn sweep_impl(&self, now: DateTime<Utc>, window: Duration) -> Result<usize, MessagingError> {
        let mut removed = 0;
        for (key, record) in self.records_under(keys::MESSAGES).await? {
            match self.sweep_message(&key, &record, now).await {
                Ok(gone) => removed += usize::from(gone),
                Err(e) => tracing::warn!(
                    message = %record.message.message_id, topic = %record.message.topic_name, error = %e,
                    "the retention sweep skipped a message"
                ),
            }
        }
        for key in records::keys(&self.kv, &self.names.bucket(), keys::IDEMPOTENCY).await? {
            match records::get::<IdempotencyRecord>(&self.kv, &key).await {
                Ok(Some((r, _))) if later_by(r.seen, window) <= now => {
                    if let Err(e) = records::delete(&self.kv, &key).await {
                        tracing::warn!(%key, error = %e, "the retention sweep skipped an idempotency key");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%key, error = %e, "the retention sweep skipped an idempotency key"),
            }
        }
        Ok(removed)
    }

    /// Removes one message when it is done (acknowledged or expired) and
    /// past its topic's retention; whether it did.
    async fn sweep_message(
        &self,
        key: &str,
        record: &MessageRecord,
        now: DateTime<Utc>,
    ) -> Result<bool, MessagingError> {
        let m = &record.message;
        let retention = self.meta.lock().topic(m.tenant_id, &m.topic_name).map(|t| t.topic.spec.retention);
        // Saturating: a retention too long to add keeps the message, never panics the sweep.
        if later_by(m.published_at, retention.unwrap_or_default()) > now {
            return Ok(false);
        }
        let expired = m.expires_at.is_some_and(|x| x <= now);
        if expired || self.status_of(m.tenant_id, record).await? == MessageStatus::Acknowledged {
            self.remove_copies(m.tenant_id, record).await?;
            records::delete(&self.kv, key).await?;
            return Ok(true);
        }
        Ok(false)
    }
}
