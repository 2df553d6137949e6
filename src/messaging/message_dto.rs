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
    /// The approved schema version to validate against (latest by default):
    /// a number, or the original's text form of one ("3" or "3.0" is
    /// version 3).
    #[serde(default, deserialize_with = "schema_version_number_or_text")]
    #[schema(schema_with = schema_version_document)]
    pub schema_version: Option<u32>,
    /// Kept with the message and answered with it; never interpreted.
    pub correlation_id: Option<String>,
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

/// The pattern of a schema version written as text, as the original's
/// clients send it (its `schemaVersion` was a required string, "1.0" by
/// convention). Nine digits at most keeps every such text inside the
/// document's 32-bit `integer`, so that the pattern is the whole rule.
const SCHEMA_VERSION_TEXT: &str = r"^(0|[1-9][0-9]{0,8})(\.0)?$";

/// A schema version: a whole number the document's 32-bit `integer` can
/// hold (also written as `3.0`), or its text, "3" or "3.0". The registry
/// numbers versions 1, 2, 3...; any other text ("1.1", "v2") names none of
/// them and is refused rather than guessed at.
fn schema_version_number_or_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    let version = match Option::<serde_json::Value>::deserialize(deserializer)? {
        None => return Ok(None),
        Some(serde_json::Value::Number(number)) => whole_within(&number, i32::MAX as u64)
            .ok_or_else(|| format!("schemaVersion {number} is not a whole number from 0 to {}", i32::MAX)),
        Some(serde_json::Value::String(text)) => schema_version_from_text(&text),
        Some(other) => {
            Err(format!("schemaVersion must be a version number (3) or its text (\"3\" or \"3.0\"), not {other}"))
        }
    };
    version.map(|n| u32::try_from(n).ok()).map_err(D::Error::custom)
}

/// "N" or "N.0" (no leading zeros, at most nine digits) is version N.
fn schema_version_from_text(text: &str) -> Result<u64, String> {
    let digits = text.strip_suffix(".0").unwrap_or(text);
    let well_formed = !digits.is_empty()
        && digits.len() <= 9
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match digits.parse::<u64>() {
        Ok(n) if well_formed => Ok(n),
        _ => Err(format!(
            "schemaVersion {text:?} names no registry version: the registry numbers versions 1, 2, 3...; \
             send the number, or its text \"N\" or \"N.0\""
        )),
    }
}

/// The document's `schemaVersion`: a number or its text (or null).
fn schema_version_document() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).maximum(Some(i32::MAX)))
            .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some(SCHEMA_VERSION_TEXT)))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(
                "The approved schema version to validate against (latest by default): a number, or the \
                 original's text form of one (\"3\" or \"3.0\" is version 3)",
            ))
            .build(),
    )
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
    whole_within(&number, max)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{field} {number} is not a whole number from 0 to {max}")))
}

/// `number` as a whole number from 0 to `max`, written as an integer or with
/// a fraction of zero.
fn whole_within(number: &serde_json::Number, max: u64) -> Option<u64> {
    number
        .as_u64()
        .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=max as f64).contains(f)).map(|f| f as u64))
        .filter(|n| *n <= max)
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
            correlation_id: self.correlation_id,
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
    correlation_id: Option<String>,
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
            correlation_id: m.correlation_id,
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

/// A message as the original `/api/messages` API answers it: the original's
/// Message fields its clients read (`schemaVersion` as text, `timestamp`,
/// `status`, `correlationId`, `acknowledgedAt`), with this API's
/// `publishedAt` and `routedTo` beside them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OriginalMessageView {
    message_id: String,
    topic_name: String,
    payload: String,
    /// The version as the original wrote it: version 3 is "3.0".
    #[schema(example = "1.0", pattern = "^(0|[1-9][0-9]*)\\.0$")]
    schema_version: Option<String>,
    /// When it was published (the original overwrote a client's timestamp with this too).
    timestamp: DateTime<Utc>,
    headers: BTreeMap<String, String>,
    correlation_id: Option<String>,
    priority: u8,
    expires_at: Option<DateTime<Utc>>,
    /// Pending, Acknowledged or DeadLettered.
    #[schema(value_type = String, example = "Pending")]
    status: MessageStatus,
    partition_key: Option<String>,
    /// When it was acknowledged, through this API or by the last of its
    /// subscriptions (null while pending, and for messages acknowledged
    /// by their consumers on the JetStream back-end, which records no time).
    acknowledged_at: Option<DateTime<Utc>>,
    /// The same instant as `timestamp`.
    published_at: DateTime<Utc>,
    /// The subscriptions it was routed to (empty: no filter matched).
    routed_to: Vec<Uuid>,
}

impl From<StoredMessage> for OriginalMessageView {
    fn from(s: StoredMessage) -> Self {
        let m = s.message;
        OriginalMessageView {
            message_id: m.message_id,
            topic_name: m.topic_name,
            payload: m.payload,
            schema_version: m.schema_version.map(|n| format!("{n}.0")),
            timestamp: m.published_at,
            headers: m.headers,
            correlation_id: m.correlation_id,
            priority: m.priority,
            expires_at: m.expires_at,
            status: s.status,
            partition_key: m.partition_key,
            acknowledged_at: s.acknowledged_at,
            published_at: m.published_at,
            routed_to: s.routed_to,
        }
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
        assert!(schema_version("true").unwrap_err().contains("schemaVersion"));
    }

    #[test]
    fn a_schema_version_text_is_the_originals_n_or_n_point_0() {
        assert_eq!(schema_version(r#""1.0""#).unwrap(), Some(1));
        assert_eq!(schema_version(r#""7""#).unwrap(), Some(7));
        assert_eq!(schema_version(r#""999999999.0""#).unwrap(), Some(999_999_999));
        for refused in ["1.1", "1.00", "01", "", "v2", "1e3", "1000000000", " 1", "-1"] {
            let err = schema_version(&format!("{refused:?}")).unwrap_err();
            assert!(err.contains(r#""N" or "N.0""#), "{refused:?}: {err}");
        }
    }

    #[test]
    fn the_documents_pattern_is_the_texts_rule() {
        let pattern = regex::Regex::new(super::SCHEMA_VERSION_TEXT).unwrap();
        for text in ["0", "0.0", "1", "1.0", "42.0", "999999999", "1.1", "01", "1.00", "1000000000", "", "x"] {
            assert_eq!(pattern.is_match(text), super::schema_version_from_text(text).is_ok(), "{text:?}");
        }
    }
}
