//! The JSON shapes of messages: the original's Message model for publishing,
//! and what consumers, the dead-letter queue and the original API answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hotswap_actors::messaging::{DeadLetter, Delivery, Message, MessageStatus, NewMessage, StoredMessage};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishBody {
    /// A UUID is given when it is missing.
    pub message_id: Option<String>,
    /// Required.
    #[schema(required, nullable = false, example = "orders.created", pattern = "^[A-Za-z0-9._-]{1,249}$")]
    pub topic_name: Option<String>,
    /// Text; JSON text when the topic is bound to a schema. At most 1 MiB.
    #[schema(example = "{\"orderId\":42}")]
    pub payload: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// 0 (lowest, the default) to 9.
    #[serde(default, deserialize_with = "whole_priority")]
    #[schema(value_type = Option<u8>, minimum = 0, maximum = 9)]
    pub priority: Option<u8>,
    /// Messages with the same key reach a subscription in publish order.
    pub partition_key: Option<String>,
    /// The approved schema version to validate against (latest by default).
    #[serde(default, deserialize_with = "whole_schema_version")]
    #[schema(value_type = Option<u32>, minimum = 0, maximum = 2147483647)]
    pub schema_version: Option<u32>,
    /// Never delivered after this instant (RFC 3339).
    #[schema(
        pattern = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])$"
    )]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A priority JSON may also write as `4.0` (the document's integer includes it).
fn whole_priority<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u8>, D::Error> {
    whole_up_to(deserializer, "priority", u8::MAX.into()).map(|n| n.and_then(|n| u8::try_from(n).ok()))
}

/// A schema version: a whole number the document's 32-bit `integer` can
/// hold, also written as `3.0`.
fn whole_schema_version<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    whole_up_to(deserializer, "schemaVersion", i32::MAX as u64).map(|n| n.and_then(|n| u32::try_from(n).ok()))
}

/// An optional whole number from 0 to `max`, written as an integer or with a
/// fraction of zero; anything else is refused naming `field`.
fn whole_up_to<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    field: &str,
    max: u64,
) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    let whole = number
        .as_u64()
        .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=max as f64).contains(f)).map(|f| f as u64));
    whole
        .filter(|n| *n <= max)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{field} {number} is not a whole number from 0 to {max}")))
}

impl PublishBody {
    /// The message to publish; the topic is required. `idempotency_key` is
    /// the request's `Idempotency-Key` header.
    pub fn into_new_message(self, idempotency_key: Option<String>) -> Result<NewMessage, String> {
        let topic = self.topic_name.filter(|t| !t.trim().is_empty()).ok_or("topicName is required")?;
        Ok(NewMessage {
            message_id: self.message_id.filter(|id| !id.trim().is_empty()),
            topic_name: topic,
            payload: self.payload,
            headers: self.headers,
            priority: self.priority.unwrap_or(0),
            partition_key: self.partition_key,
            schema_version: self.schema_version,
            idempotency_key,
            expires_at: self.expires_at,
        })
    }
}

/// A message as the original API answers it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    message_id: String,
    topic_name: String,
    payload: String,
    headers: BTreeMap<String, String>,
    priority: u8,
    partition_key: Option<String>,
    schema_version: Option<u32>,
    published_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    /// Pending, Acknowledged or DeadLettered.
    #[schema(value_type = Option<String>, example = "Pending")]
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<MessageStatus>,
    /// The subscriptions it was routed to (empty: no filter matched).
    #[serde(skip_serializing_if = "Option::is_none")]
    routed_to: Option<Vec<Uuid>>,
}

impl MessageView {
    pub fn published(m: Arc<Message>, routed_to: Vec<Uuid>) -> Self {
        Self::build(Arc::unwrap_or_clone(m), None, Some(routed_to))
    }

    fn build(m: Message, status: Option<MessageStatus>, routed_to: Option<Vec<Uuid>>) -> Self {
        MessageView {
            message_id: m.message_id,
            topic_name: m.topic_name,
            payload: m.payload,
            headers: m.headers,
            priority: m.priority,
            partition_key: m.partition_key,
            schema_version: m.schema_version,
            published_at: m.published_at,
            expires_at: m.expires_at,
            status,
            routed_to,
        }
    }
}

impl From<StoredMessage> for MessageView {
    fn from(s: StoredMessage) -> Self {
        Self::build(s.message, Some(s.status), Some(s.routed_to))
    }
}

/// A leased message: the consumer acks or nacks it before `ackDeadline`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    message_id: String,
    topic_name: String,
    subscription_id: Uuid,
    payload: String,
    headers: BTreeMap<String, String>,
    priority: u8,
    partition_key: Option<String>,
    /// 1 on the first delivery.
    delivery_attempts: u32,
    ack_deadline: DateTime<Utc>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let m = Arc::unwrap_or_clone(d.message);
        DeliveryView {
            message_id: m.message_id,
            topic_name: m.topic_name,
            subscription_id: d.subscription_id,
            payload: m.payload,
            headers: m.headers,
            priority: m.priority,
            partition_key: m.partition_key,
            delivery_attempts: d.delivery_attempts,
            ack_deadline: d.ack_deadline,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumeView {
    pub messages: Vec<DeliveryView>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NackBody {
    pub reason: Option<String>,
    /// false dead-letters at once; otherwise the retry policy decides.
    pub requeue: Option<bool>,
}

/// A message that exhausted its retries; its headers carry X-Original-Topic,
/// X-DLQ-Reason, X-DLQ-Timestamp and X-Delivery-Attempts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    message_id: String,
    topic_name: String,
    subscription_id: Uuid,
    payload: String,
    headers: BTreeMap<String, String>,
    priority: u8,
    reason: String,
    delivery_attempts: u32,
    dead_lettered_at: DateTime<Utc>,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(d: DeadLetter) -> Self {
        DeadLetterView {
            message_id: d.message.message_id,
            topic_name: d.message.topic_name,
            subscription_id: d.subscription_id,
            payload: d.message.payload,
            headers: d.message.headers,
            priority: d.message.priority,
            reason: d.reason,
            delivery_attempts: d.delivery_attempts,
            dead_lettered_at: d.dead_lettered_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PublishBody;

    fn schema_version(text: &str) -> Result<Option<u32>, String> {
        let body = format!(r#"{{"topicName": "t", "payload": "p", "schemaVersion": {text}}}"#);
        serde_json::from_str::<PublishBody>(&body).map(|b| b.schema_version).map_err(|e| e.to_string())
    }

    #[test]
    fn a_schema_version_is_a_whole_number_the_document_allows() {
        assert_eq!(schema_version("3").unwrap(), Some(3));
        assert_eq!(schema_version("1426075.0").unwrap(), Some(1_426_075));
        assert_eq!(schema_version("2147483647").unwrap(), Some(2_147_483_647));
        assert!(schema_version("2147483648").unwrap_err().contains("schemaVersion"));
        assert!(schema_version("1.5").is_err());
        assert!(schema_version("-1").is_err());
    }
}
