//! What the metadata bucket holds, and reading and writing it as JSON.

use async_nats::jetstream::kv::{CreateErrorKind, Store};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use hotswap_actors::messaging::{Message, MessageStatus, MessagingError, Subscription, Topic};

use super::error::nats_error;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicRecord {
    pub topic: Topic,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub subscription: Subscription,
    /// Creation order among the topic's subscriptions (Direct picks the first).
    pub created_seq: u64,
    /// One consumer per priority lane (subscriptions of Priority topics)
    /// rather than one for all: fixed when the subscription is made, so a
    /// later change of the topic's strategy never gives one copy two consumers.
    pub lanes: bool,
}

/// A published message as the original API reads it back. Whether each
/// routed copy is still pending is asked of the topic's stream; `status`
/// records what the stream cannot tell (acknowledged through the original
/// API, dead-lettered).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageRecord {
    pub message: Message,
    pub routed_to: Vec<Uuid>,
    /// Publish order, for "newest first".
    pub seq: u64,
    pub status: MessageStatus,
    /// Set by an acknowledgement through the original API; absent from
    /// records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub message_id: String,
    pub seen: DateTime<Utc>,
}

pub async fn get<T: DeserializeOwned>(kv: &Store, key: &str) -> Result<Option<(T, u64)>, MessagingError> {
    let Some(entry) = kv.entry(key).await.map_err(nats_error)? else { return Ok(None) };
    if entry.value.is_empty() {
        // A deleted key leaves a tombstone with no value.
        return Ok(None);
    }
    let value =
        serde_json::from_slice(&entry.value).map_err(|e| MessagingError::Backend(format!("record {key}: {e}")))?;
    Ok(Some((value, entry.revision)))
}

pub async fn put<T: Serialize>(kv: &Store, key: &str, value: &T) -> Result<u64, MessagingError> {
    let bytes = serde_json::to_vec(value).map_err(|e| MessagingError::Backend(e.to_string()))?;
    kv.put(key, bytes.into()).await.map_err(nats_error)
}

/// Writes only when the key is new: `Ok(false)` when it exists.
pub async fn create<T: Serialize>(kv: &Store, key: &str, value: &T) -> Result<bool, MessagingError> {
    let bytes = serde_json::to_vec(value).map_err(|e| MessagingError::Backend(e.to_string()))?;
    match kv.create(key, bytes.into()).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(nats_error(e)),
    }
}

pub async fn delete(kv: &Store, key: &str) -> Result<(), MessagingError> {
    kv.purge(key).await.map_err(nats_error)
}

/// Every key under a filter such as `msg.<tenant>.*` (deleted keys
/// included: their tombstones read back as `None`).
pub async fn keys(kv: &Store, bucket: &str, filter: &str) -> Result<Vec<String>, MessagingError> {
    let prefix = format!("$KV.{bucket}.");
    let subjects = super::streams::subjects(&kv.stream, &format!("{prefix}{filter}")).await?;
    Ok(subjects.into_iter().filter_map(|s| s.strip_prefix(&prefix).map(str::to_owned)).collect())
}
