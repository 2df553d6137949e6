//! Rows as the queries return them, and their decoding into the core's
//! types. Records are stored as the core serialises them (jsonb), so a
//! decoding failure is a back-end fault, never the caller's.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{
    Message, MessageStatus, MessagingError, NewSubscription, NewTopic, StoredMessage, Subscription, Topic,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

pub(super) fn decode<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, MessagingError> {
    serde_json::from_value(value).map_err(|e| MessagingError::Backend(format!("a stored {what} cannot be read: {e}")))
}

pub(super) fn encode<T: serde::Serialize>(value: &T, what: &str) -> Result<Value, MessagingError> {
    serde_json::to_value(value).map_err(|e| MessagingError::Backend(format!("a {what} cannot be stored: {e}")))
}

fn status_of(text: &str) -> Result<MessageStatus, MessagingError> {
    match text {
        "Pending" => Ok(MessageStatus::Pending),
        "Acknowledged" => Ok(MessageStatus::Acknowledged),
        "DeadLettered" => Ok(MessageStatus::DeadLettered),
        other => Err(MessagingError::Backend(format!("unknown stored message status '{other}'"))),
    }
}

/// Milliseconds as the SQL binds them; absurd lengths saturate.
pub(super) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The longest span SQL adds to a stored time, in milliseconds (a thousand
/// years). `timestamptz + interval` past PostgreSQL's range is an error
/// that would fail the whole statement; capped, a retention or window that
/// long (a retention stored before the API bounded it, a huge configured
/// window) simply keeps its rows.
pub(super) const SQL_SPAN_CAP_MS: i64 = 1000 * 366 * 24 * 3600 * 1000;

/// `d` in milliseconds for adding to a time in SQL: at most [`SQL_SPAN_CAP_MS`].
pub(super) fn span_ms(d: std::time::Duration) -> i64 {
    millis(d).min(SQL_SPAN_CAP_MS)
}

#[derive(QueryableByName)]
pub(super) struct TopicRow {
    #[diesel(sql_type = Jsonb)]
    pub spec: Value,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

impl TopicRow {
    pub fn into_topic(self, tenant: TenantId) -> Result<Topic, MessagingError> {
        Ok(Topic { tenant_id: tenant, spec: decode::<NewTopic>(self.spec, "topic")?, created_at: self.created_at })
    }
}

#[derive(QueryableByName)]
pub(super) struct SubscriptionRow {
    #[diesel(sql_type = SqlUuid)]
    pub subscription_id: Uuid,
    #[diesel(sql_type = Jsonb)]
    pub spec: Value,
    #[diesel(sql_type = Bool)]
    pub paused: bool,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub last_assigned: i64,
}

impl SubscriptionRow {
    pub fn into_subscription(self, tenant: TenantId) -> Result<Subscription, MessagingError> {
        Ok(Subscription {
            tenant_id: tenant,
            subscription_id: self.subscription_id,
            spec: decode::<NewSubscription>(self.spec, "subscription")?,
            paused: self.paused,
            created_at: self.created_at,
        })
    }
}

/// A subscription row with its tenant, for listings across tenants.
#[derive(QueryableByName)]
pub(super) struct TenantSubscriptionRow {
    #[diesel(sql_type = SqlUuid)]
    pub tenant_id: Uuid,
    #[diesel(embed)]
    pub row: SubscriptionRow,
}

pub(super) const SUBSCRIPTION_COLUMNS: &str = "subscription_id, spec, paused, created_at, last_assigned";

#[derive(QueryableByName)]
pub(super) struct MessageRow {
    #[diesel(sql_type = Jsonb)]
    pub message: Value,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Array<SqlUuid>)]
    pub routed_to: Vec<Uuid>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// The columns a [`MessageRow`] is read from, in `msg_messages`.
pub(super) const MESSAGE_COLUMNS: &str = "message, status, routed_to, acknowledged_at";

impl MessageRow {
    pub fn into_stored(self) -> Result<StoredMessage, MessagingError> {
        Ok(StoredMessage {
            message: decode::<Message>(self.message, "message")?,
            status: status_of(&self.status)?,
            routed_to: self.routed_to,
            acknowledged_at: self.acknowledged_at,
        })
    }
}

/// A delivery just leased, with its message.
#[derive(QueryableByName)]
pub(super) struct LeasedRow {
    #[diesel(sql_type = Jsonb)]
    pub message: Value,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = SmallInt)]
    pub priority: i16,
}

/// One delivery's state, for acks, nacks and expiry.
#[derive(QueryableByName)]
pub(super) struct DeliveryState {
    #[diesel(sql_type = Text)]
    pub message_id: String,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub lease_deadline: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
pub(super) struct DeadLetterRow {
    #[diesel(sql_type = Jsonb)]
    pub message: Value,
    #[diesel(sql_type = SqlUuid)]
    pub subscription_id: Uuid,
    #[diesel(sql_type = Text)]
    pub reason: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    pub dead_lettered_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
pub(super) struct CountRow {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

#[derive(QueryableByName)]
pub(super) struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
}
