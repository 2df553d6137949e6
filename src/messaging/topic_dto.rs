//! The JSON shapes of topics and subscriptions, as the original's clients
//! send and read them (camelCase; durations as "30s" or "00:00:30").

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hotswap_actors::messaging::{
    DeliveryGuarantee, NewSubscription, NewTopic, RoutingStrategy, Subscription, SubscriptionFilter, SubscriptionKind,
    Topic, TopicMetrics, TopicType,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::duration::{format_duration, parse_duration};
use super::topic_enums;

const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RETRIES: u32 = 3;

/// A topic as POST creates it and PUT changes it. On PUT a field left out
/// keeps the topic's value (a body that only edits the description changes
/// nothing else); `null` clears the optional ones (description, schemaId,
/// config.routingStrategy).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicBody {
    /// Letters, digits, '.', '_' and '-'.
    #[schema(example = "orders.created", pattern = "^[A-Za-z0-9._-]{1,249}$")]
    pub name: String,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// A subject of the schema registry: every publish is validated against it
    /// (`null` or "" binds none).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub schema_id: Option<Option<String>>,
    #[serde(rename = "type")]
    #[schema(schema_with = topic_enums::topic_type_document)]
    pub topic_type: Option<Value>,
    #[schema(schema_with = topic_enums::guarantee_document)]
    pub delivery_guarantee: Option<Value>,
    /// How long acknowledged messages are kept ("7days" by default, at most
    /// "3650days"; "30s" or "00:00:30").
    #[schema(example = "7days")]
    pub retention_period: Option<String>,
    /// 1 to 16 (1 by default).
    #[schema(minimum = 1, maximum = 16)]
    pub partition_count: Option<u8>,
    #[serde(default, deserialize_with = "config_object")]
    pub config: Option<TopicConfigBody>,
}

/// `config` as a JSON object (or null for none): serde's derived reading of
/// a struct also takes an array of its fields in order (`[null, null]` was
/// accepted as a config), which the document does not allow.
fn config_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<TopicConfigBody>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        object @ Value::Object(_) => serde_json::from_value(object).map(Some).map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("config must be an object such as {\"routingStrategy\": \"FanOut\"}")),
    }
}

/// A topic's `config` as sent; keys it does not know are refused, as the
/// topic's own are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicConfigBody {
    /// Direct, FanOut, LoadBalanced, Priority or ContentBased (any case).
    /// Without it PubSub topics fan out and Queue topics load-balance.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "FanOut")]
    pub routing_strategy: Option<Option<String>>,
    /// One delivery in flight per partition key and subscription (false by default).
    pub ordered: Option<bool>,
}

/// A topic's `config` as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicConfigView {
    /// The configured strategy; none: the type's default.
    #[schema(example = "FanOut")]
    pub routing_strategy: Option<String>,
    pub ordered: bool,
}

/// The outcome's value, or `kept` with the problem noted.
fn or_kept<T>(problems: &mut Vec<String>, outcome: Result<T, String>, kept: T) -> T {
    outcome.unwrap_or_else(|e| {
        problems.push(e);
        kept
    })
}

/// A field that is there, `null` included, as `Some`: left out stays `None`.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl TopicBody {
    /// The topic it asks for, or every problem with it.
    pub fn into_new_topic(self) -> Result<NewTopic, Vec<String>> {
        let defaults =
            NewTopic { retention: DEFAULT_RETENTION, routing_strategy: None, ..NewTopic::fan_out(&self.name) };
        self.applied_to(defaults)
    }

    /// `current` with the fields this body names changed (PUT), or every
    /// problem with them.
    pub fn applied_to(self, current: NewTopic) -> Result<NewTopic, Vec<String>> {
        let mut problems = Vec::new();
        let retention = match self.retention_period.as_deref().map(parse_duration) {
            None => current.retention,
            Some(parsed) => {
                or_kept(&mut problems, parsed.map_err(|e| format!("retentionPeriod: {e}")), current.retention)
            }
        };
        let topic_type = match self.topic_type.filter(|v| !v.is_null()) {
            None => current.topic_type,
            Some(given) => or_kept(&mut problems, topic_enums::topic_type(&given), current.topic_type),
        };
        let delivery_guarantee = match self.delivery_guarantee.filter(|v| !v.is_null()) {
            None => current.delivery_guarantee,
            Some(given) => or_kept(&mut problems, topic_enums::delivery_guarantee(&given), current.delivery_guarantee),
        };
        let config = self.config.unwrap_or_default();
        let routing_strategy = match config.routing_strategy {
            None => current.routing_strategy,
            Some(None) => None,
            Some(Some(name)) => or_kept(
                &mut problems,
                name.parse::<RoutingStrategy>().map(Some).map_err(|e| format!("config.routingStrategy: {e}")),
                current.routing_strategy,
            ),
        };
        let topic = NewTopic {
            name: self.name,
            description: self.description.unwrap_or(current.description),
            schema_id: self.schema_id.unwrap_or(current.schema_id).filter(|s| !s.trim().is_empty()),
            topic_type,
            delivery_guarantee,
            retention,
            partition_count: self.partition_count.unwrap_or(current.partition_count),
            routing_strategy,
            ordered: config.ordered.unwrap_or(current.ordered),
        };
        if let Err(e) = topic.validate() {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            Ok(topic)
        } else {
            Err(problems)
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicView {
    name: String,
    description: Option<String>,
    schema_id: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "PubSub")]
    topic_type: TopicType,
    #[schema(value_type = String, example = "AtLeastOnce")]
    delivery_guarantee: DeliveryGuarantee,
    #[schema(example = "7days")]
    retention_period: String,
    partition_count: u8,
    config: TopicConfigView,
    /// The strategy in force (the configured one, else the type's default).
    #[schema(example = "FanOut")]
    effective_routing_strategy: String,
    created_at: DateTime<Utc>,
    /// The topic's counters, when the list was asked for them (`?include=metrics`).
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<TopicMetricsView>,
}

impl TopicView {
    /// The same view with the topic's counters.
    pub fn with_metrics(mut self, metrics: TopicMetricsView) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

impl From<Topic> for TopicView {
    fn from(t: Topic) -> Self {
        let effective = t.effective_strategy().to_string();
        let s = t.spec;
        TopicView {
            name: s.name,
            description: s.description,
            schema_id: s.schema_id,
            topic_type: s.topic_type,
            delivery_guarantee: s.delivery_guarantee,
            retention_period: format_duration(s.retention),
            partition_count: s.partition_count,
            config: TopicConfigView { routing_strategy: s.routing_strategy.map(|r| r.to_string()), ordered: s.ordered },
            effective_routing_strategy: effective,
            created_at: t.created_at,
            metrics: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicMetricsView {
    topic_name: String,
    published: u64,
    delivered: u64,
    acknowledged: u64,
    failed: u64,
    dead_lettered: u64,
    /// Published messages no subscription's filter matched.
    unrouted: u64,
    /// Queued plus leased messages, by subscription id.
    depth: BTreeMap<Uuid, u64>,
    /// Age of the oldest message not yet acknowledged, in milliseconds.
    oldest_unacked_age_ms: Option<i64>,
}

impl TopicMetricsView {
    pub fn new(topic_name: String, m: TopicMetrics) -> Self {
        TopicMetricsView {
            topic_name,
            published: m.published,
            delivered: m.delivered,
            acknowledged: m.acknowledged,
            failed: m.failed,
            dead_lettered: m.dead_lettered,
            unrouted: m.unrouted,
            depth: m.depth,
            oldest_unacked_age_ms: m.oldest_unacked_age_ms,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilterBody {
    /// Headers that must all be present with these values.
    #[serde(default)]
    pub header_matches: BTreeMap<String, String>,
    /// A JSONPath that must select a value (`$.order.id`), or
    /// `<JSONPath> == <JSON literal>` (`$.kind == "deploy"`).
    pub payload_query: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionBody {
    #[schema(example = "orders.created")]
    pub topic_name: String,
    #[schema(example = "billing")]
    pub consumer_group: String,
    /// Push: the absolute http(s) URL each message is POSTed to. Pull: a label.
    #[serde(default)]
    #[schema(example = "https://billing.example.com/hooks/orders")]
    pub consumer_endpoint: String,
    /// Pull (default) or Push.
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>, example = "Pull")]
    pub kind: Option<SubscriptionKind>,
    pub filter: Option<FilterBody>,
    /// 0 to 10 (3 by default): deliveries after the first before dead-lettering.
    #[schema(minimum = 0, maximum = 10)]
    pub max_retries: Option<u32>,
    /// 1 s to 10 min ("30s" by default; "30s" or "00:00:30").
    #[schema(example = "30s")]
    pub ack_timeout: Option<String>,
}

impl SubscriptionBody {
    pub fn into_new_subscription(self) -> Result<NewSubscription, Vec<String>> {
        let mut problems = Vec::new();
        let ack_timeout = match self.ack_timeout.as_deref().map(parse_duration).transpose() {
            Ok(d) => d.unwrap_or(DEFAULT_ACK_TIMEOUT),
            Err(e) => {
                problems.push(format!("ackTimeout: {e}"));
                DEFAULT_ACK_TIMEOUT
            }
        };
        let kind = self.kind.unwrap_or(SubscriptionKind::Pull);
        if kind == SubscriptionKind::Push && !is_absolute_http_url(&self.consumer_endpoint) {
            problems.push("consumerEndpoint: a Push subscription needs an absolute http(s) URL".into());
        }
        let spec = NewSubscription {
            topic_name: self.topic_name,
            consumer_group: self.consumer_group,
            consumer_endpoint: self.consumer_endpoint,
            kind,
            filter: self
                .filter
                .map(|f| SubscriptionFilter { header_matches: f.header_matches, payload_query: f.payload_query }),
            max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            ack_timeout,
        };
        if let Err(e) = spec.validate() {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(problems)
        }
    }
}

fn is_absolute_http_url(text: &str) -> bool {
    reqwest::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    subscription_id: Uuid,
    topic_name: String,
    consumer_group: String,
    consumer_endpoint: String,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "Pull")]
    kind: SubscriptionKind,
    filter: Option<FilterBody>,
    max_retries: u32,
    #[schema(example = "30s")]
    ack_timeout: String,
    paused: bool,
    created_at: DateTime<Utc>,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        let spec = s.spec;
        SubscriptionView {
            subscription_id: s.subscription_id,
            topic_name: spec.topic_name,
            consumer_group: spec.consumer_group,
            consumer_endpoint: spec.consumer_endpoint,
            kind: spec.kind,
            filter: spec
                .filter
                .map(|f| FilterBody { header_matches: f.header_matches, payload_query: f.payload_query }),
            max_retries: spec.max_retries,
            ack_timeout: format_duration(spec.ack_timeout),
            paused: s.paused,
            created_at: s.created_at,
        }
    }
}
