use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::MessagingError;
use crate::domain::{holds_nul, nul_refusal, refuse_nul, TenantId};

/// The largest payload the bus accepts (1 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Priorities run 0 (lowest) to 9 (highest).
pub const MAX_PRIORITY: u8 = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopicType {
    PubSub,
    Queue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryGuarantee {
    AtMostOnce,
    AtLeastOnce,
    ExactlyOnce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoutingStrategy {
    Direct,
    FanOut,
    LoadBalanced,
    Priority,
    ContentBased,
}

impl FromStr for RoutingStrategy {
    type Err = MessagingError;

    /// Case-insensitive; an unknown name is refused rather than silently
    /// replaced by a default, which hid typos in the original.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "direct" => Ok(Self::Direct),
            "fanout" => Ok(Self::FanOut),
            "loadbalanced" => Ok(Self::LoadBalanced),
            "priority" => Ok(Self::Priority),
            "contentbased" => Ok(Self::ContentBased),
            _ => Err(MessagingError::Invalid(format!(
                "unknown routing strategy '{s}' (Direct, FanOut, LoadBalanced, Priority, ContentBased)"
            ))),
        }
    }
}

impl fmt::Display for RoutingStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The longest retention a topic may have: ten years (3650 days). Longer
/// is no use to a message bus, and the bound keeps every back-end's
/// arithmetic on published times far from overflowing.
pub const MAX_RETENTION: Duration = Duration::from_secs(3650 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    pub name: String,
    pub description: Option<String>,
    pub schema_id: Option<String>,
    pub topic_type: TopicType,
    pub delivery_guarantee: DeliveryGuarantee,
    pub retention: Duration,
    pub partition_count: u8,
    pub routing_strategy: Option<RoutingStrategy>,
    /// One delivery in flight per partition key and subscription.
    pub ordered: bool,
}

impl NewTopic {
    /// A topic as the original messages API creates on first use.
    pub fn fan_out(name: &str) -> Self {
        NewTopic {
            name: name.to_owned(),
            description: None,
            schema_id: None,
            topic_type: TopicType::PubSub,
            delivery_guarantee: DeliveryGuarantee::AtLeastOnce,
            retention: Duration::from_secs(7 * 24 * 3600),
            partition_count: 1,
            routing_strategy: Some(RoutingStrategy::FanOut),
            ordered: false,
        }
    }

    pub fn validate(&self) -> Result<(), MessagingError> {
        validate_topic_name(&self.name)?;
        if !(1..=16).contains(&self.partition_count) {
            return Err(MessagingError::Invalid("partitionCount must be between 1 and 16".into()));
        }
        if self.retention.is_zero() || self.retention > MAX_RETENTION {
            return Err(MessagingError::Invalid(format!(
                "retentionPeriod must be positive and at most {} days",
                MAX_RETENTION.as_secs() / 86_400
            )));
        }
        refuse_nul_in("description", self.description.as_deref())?;
        refuse_nul_in("schemaId", self.schema_id.as_deref())?;
        Ok(())
    }
}

/// Letters, digits, `.`, `_` and `-`, 1 to 249 characters, as the original.
pub fn validate_topic_name(name: &str) -> Result<(), MessagingError> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(MessagingError::Invalid(format!(
            "topic name '{name}' must be 1-249 characters of letters, digits, '.', '_' or '-'"
        )))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub tenant_id: TenantId,
    #[serde(flatten)]
    pub spec: NewTopic,
    pub created_at: DateTime<Utc>,
}

impl Topic {
    /// The configured strategy, else the type's default.
    pub fn effective_strategy(&self) -> RoutingStrategy {
        self.spec.routing_strategy.unwrap_or(match self.spec.topic_type {
            TopicType::PubSub => RoutingStrategy::FanOut,
            TopicType::Queue => RoutingStrategy::LoadBalanced,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubscriptionKind {
    Pull,
    Push,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionFilter {
    pub header_matches: BTreeMap<String, String>,
    /// A JSONPath that must select at least one value, or
    /// `<JSONPath> == <JSON literal>` that must select a value equal to it.
    pub payload_query: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSubscription {
    pub topic_name: String,
    pub consumer_group: String,
    pub consumer_endpoint: String,
    pub kind: SubscriptionKind,
    pub filter: Option<SubscriptionFilter>,
    pub max_retries: u32,
    pub ack_timeout: Duration,
}

impl NewSubscription {
    pub fn validate(&self) -> Result<(), MessagingError> {
        if self.max_retries > 10 {
            return Err(MessagingError::Invalid("maxRetries must be between 0 and 10".into()));
        }
        if self.ack_timeout < Duration::from_secs(1) || self.ack_timeout > Duration::from_secs(600) {
            return Err(MessagingError::Invalid("ackTimeout must be between 1 s and 10 min".into()));
        }
        if self.consumer_group.trim().is_empty() {
            return Err(MessagingError::Invalid("consumerGroup is required".into()));
        }
        if let Some(query) = self.filter.as_ref().and_then(|f| f.payload_query.as_deref()) {
            super::routing::parse_query(query)?;
        }
        refuse_nul_in("consumerGroup", Some(&self.consumer_group))?;
        refuse_nul_in("consumerEndpoint", Some(&self.consumer_endpoint))?;
        if let Some(filter) = &self.filter {
            refuse_nul_in("filter.payloadQuery", filter.payload_query.as_deref())?;
            for (name, value) in &filter.header_matches {
                refuse_nul_in("filter.headerMatches", Some(name))?;
                refuse_nul_in("filter.headerMatches", Some(value))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub tenant_id: TenantId,
    pub subscription_id: Uuid,
    #[serde(flatten)]
    pub spec: NewSubscription,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// Missing ids get a UUID.
    pub message_id: Option<String>,
    pub topic_name: String,
    pub payload: String,
    pub headers: BTreeMap<String, String>,
    pub priority: u8,
    pub partition_key: Option<String>,
    pub schema_version: Option<u32>,
    /// Ties the message to others of one conversation; stored and answered
    /// as given, never interpreted.
    pub correlation_id: Option<String>,
    /// De-duplicates publishes on ExactlyOnce topics (else the message id does).
    pub idempotency_key: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewMessage {
    pub fn new(topic: &str, payload: &str) -> Self {
        NewMessage {
            message_id: None,
            topic_name: topic.to_owned(),
            payload: payload.to_owned(),
            headers: BTreeMap::new(),
            priority: 0,
            partition_key: None,
            schema_version: None,
            correlation_id: None,
            idempotency_key: None,
            expires_at: None,
        }
    }

    pub fn validate(&self) -> Result<(), MessagingError> {
        if self.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(MessagingError::PayloadTooLarge(self.payload.len()));
        }
        if self.priority > MAX_PRIORITY {
            return Err(MessagingError::Invalid(format!("priority {} is outside 0-9", self.priority)));
        }
        validate_topic_name(&self.topic_name)?;
        refuse_nul_in("messageId", self.message_id.as_deref())?;
        refuse_nul_in("payload", Some(&self.payload))?;
        refuse_nul_in("partitionKey", self.partition_key.as_deref())?;
        refuse_nul_in("correlationId", self.correlation_id.as_deref())?;
        refuse_nul_in("Idempotency-Key", self.idempotency_key.as_deref())?;
        for (name, value) in &self.headers {
            refuse_nul_in("headers", Some(name))?;
            if holds_nul(value) {
                return Err(MessagingError::Invalid(nul_refusal(&format!("headers.{name}"))));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub tenant_id: TenantId,
    pub message_id: String,
    pub topic_name: String,
    pub payload: String,
    pub headers: BTreeMap<String, String>,
    pub priority: u8,
    pub partition_key: Option<String>,
    pub schema_version: Option<u32>,
    /// Absent from messages stored before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    pub published_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageStatus {
    Pending,
    Acknowledged,
    DeadLettered,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub message: Message,
    pub status: MessageStatus,
    /// The subscriptions the message was routed to (empty = unrouted).
    pub routed_to: Vec<Uuid>,
    /// When it became Acknowledged, where the back-end knows: JetStream's
    /// records learn only of acknowledgements through the original API.
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// The answer to a publish: the message, and whether it was already there
/// (an ExactlyOnce repeat answers the first message and routes nothing).
/// The message is shared with the store's copy: a publisher that does not
/// read it back pays for no copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub message: Arc<Message>,
    pub duplicate: bool,
    pub routed_to: Vec<Uuid>,
}

/// A leased message: the consumer owns it until `ack_deadline`. The message
/// is shared with the store's copy where the back-end keeps one in memory,
/// so a lease copies none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub message: Arc<Message>,
    pub subscription_id: Uuid,
    /// 1 on the first delivery.
    pub delivery_attempts: u32,
    pub ack_deadline: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NackOptions {
    pub reason: Option<String>,
    /// `Some(false)` dead-letters at once; otherwise the retry policy decides.
    pub requeue: Option<bool>,
}

impl NackOptions {
    /// The reason becomes the dead letter's `X-DLQ-Reason`: refused before
    /// the nack when a back-end could not store it.
    pub fn validate(&self) -> Result<(), MessagingError> {
        refuse_nul_in("reason", self.reason.as_deref())
    }
}

/// A message that exhausted its retries on one subscription. Its headers
/// carry `X-Original-Topic`, `X-DLQ-Reason`, `X-DLQ-Timestamp` and
/// `X-Delivery-Attempts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub message: Message,
    pub subscription_id: Uuid,
    pub reason: String,
    pub delivery_attempts: u32,
    pub dead_lettered_at: DateTime<Utc>,
}

/// Which of a topic's dead letters to list: oldest first, `limit` of them
/// after the first `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LetterRange {
    pub offset: usize,
    pub limit: usize,
}

impl LetterRange {
    /// The first `limit` letters.
    pub fn first(limit: usize) -> LetterRange {
        LetterRange { offset: 0, limit }
    }
}

/// A page of a topic's dead letters, and how many the topic holds in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeadLetterPage {
    pub letters: Vec<DeadLetter>,
    pub total: usize,
}

impl DeadLetterPage {
    /// The page `range` of `all`, which holds every letter, oldest first;
    /// only the page is cloned.
    pub fn of(all: &[DeadLetter], range: LetterRange) -> DeadLetterPage {
        let letters = all.iter().skip(range.offset).take(range.limit).cloned().collect();
        DeadLetterPage { letters, total: all.len() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    #[serde(with = "humantime_serde")]
    pub initial: Duration,
    pub multiplier: u32,
    #[serde(with = "humantime_serde")]
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { initial: Duration::from_secs(2), multiplier: 2, cap: Duration::from_secs(32) }
    }
}

impl RetryPolicy {
    /// The wait before the retry that follows failed attempt `attempts` (1-based).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = self.multiplier.max(1).saturating_pow(attempts.saturating_sub(1).min(31));
        self.initial.saturating_mul(factor).min(self.cap)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetrics {
    pub published: u64,
    pub delivered: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub unrouted: u64,
    /// Queued plus leased, per subscription.
    pub depth: BTreeMap<Uuid, u64>,
    pub oldest_unacked_age_ms: Option<i64>,
}

/// Refuses `text` holding NUL, which PostgreSQL cannot store, on every
/// back-end alike (see [`crate::domain::refuse_nul`]).
fn refuse_nul_in(field: &str, text: Option<&str>) -> Result<(), MessagingError> {
    text.map_or(Ok(()), |t| refuse_nul(field, t).map_err(MessagingError::Invalid))
}
