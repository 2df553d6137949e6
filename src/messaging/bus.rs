//! `MessageBus`: what the HTTP handlers call. It puts the adapter's rules in
//! front of the core's store: the configured payload limit, topics created
//! on first use by the original API, and schema validation of publishes.

use chrono::Utc;
use hotswap_actors::domain::TenantId;
use std::sync::Arc;

use hotswap_actors::messaging::{
    MessagingError, NewMessage, NewSubscription, NewTopic, Published, RoutingStrategy, SharedMessageStore,
    Subscription, SubscriptionKind, Topic,
};
use hotswap_actors::schemas::{MemorySchemaStore, PayloadError, SchemaError, SchemaRegistry};
use uuid::Uuid;

use super::deployment_events::DEPLOYMENTS_TOPIC;
use super::push::{HttpPushTransport, PushDeliveries};
use super::push_policy::PushAddressPolicy;
use super::settings::MessagingSettings;

/// What a publish can be refused for beyond the core's own errors.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Messaging(#[from] MessagingError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The payload does not match the topic's schema; nothing was stored.
    #[error("the payload does not match schema '{schema_id}' version {version}")]
    SchemaMismatch { schema_id: String, version: u32, errors: Vec<PayloadError> },
    /// The tenant has as many topics or subscriptions as the settings allow.
    #[error("{0}")]
    AtLimit(String),
    /// The payload is larger than `messaging.max_payload_bytes`.
    #[error("the payload is {size} bytes, over messaging.max_payload_bytes ({limit} bytes)")]
    PayloadTooLarge { size: usize, limit: usize },
    /// A topic only the server publishes to (`hotswap.deployments`).
    #[error("{0}")]
    Reserved(String),
}

pub struct MessageBus {
    pub store: SharedMessageStore,
    pub settings: MessagingSettings,
    /// The delivery loops of push subscriptions.
    pub push: PushDeliveries,
    /// Where push endpoints may point (`messaging.push_allowed_networks`).
    pub push_policy: PushAddressPolicy,
    /// The schema registry topics bind to (in memory unless replaced by
    /// [`MessageBus::with_schemas`]).
    pub schemas: Arc<SchemaRegistry>,
}

/// Whether a publish may create its topic (the original API's habit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCreation {
    IfMissing,
    Never,
}

impl MessageBus {
    /// The bus over a store; push deliveries go over HTTP, to the addresses
    /// `push_allowed_networks` permits.
    pub fn new(store: SharedMessageStore, settings: MessagingSettings) -> Result<Self, String> {
        let policy = PushAddressPolicy::new(&settings.push_allowed_networks)?;
        let transport = Arc::new(HttpPushTransport::new(settings.push_timeout, policy.clone())?);
        let push = PushDeliveries::new(store.clone(), transport);
        let schemas = Arc::new(SchemaRegistry::new(Arc::new(MemorySchemaStore::new())));
        Ok(MessageBus { store, settings, push, push_policy: policy, schemas })
    }

    /// The same bus with its schemas kept in `registry`'s store.
    pub fn with_schemas(mut self, registry: Arc<SchemaRegistry>) -> Self {
        self.schemas = registry;
        self
    }

    /// Refuses a topic bound to a schema that does not exist or is deprecated.
    pub async fn check_binding(&self, tenant: TenantId, topic: &NewTopic) -> Result<(), BusError> {
        let Some(id) = &topic.schema_id else { return Ok(()) };
        if topic.name == DEPLOYMENTS_TOPIC {
            // The server's run events are not checked against a schema, so a
            // binding would promise consumers what the topic does not keep.
            return Err(SchemaError::Invalid(format!(
                "schemaId: topic '{DEPLOYMENTS_TOPIC}' carries the server's run events, which no schema checks; \
                 it cannot be bound to one"
            ))
            .into());
        }
        match self.schemas.get(tenant, id).await {
            Ok(subject) if subject.deprecated.is_some() => {
                Err(SchemaError::Invalid(format!("schemaId: schema '{id}' is deprecated")).into())
            }
            Ok(_) => Ok(()),
            Err(SchemaError::NotFound(_)) => {
                Err(SchemaError::Invalid(format!("schemaId: no schema '{id}' is registered")).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A new push subscription starts delivering at once.
    pub fn subscription_created(&self, subscription: &Subscription) {
        if subscription.spec.kind == SubscriptionKind::Push {
            self.push.start(subscription.tenant_id, subscription.subscription_id);
        }
    }

    pub fn subscription_deleted(&self, subscription: Uuid) {
        self.push.stop(subscription);
    }

    /// Restarts delivery for the push subscriptions a durable back-end kept
    /// across a restart of the process, whichever tenants they belong to.
    pub async fn resume_push_deliveries(&self) -> Result<usize, MessagingError> {
        let subscriptions = self.store.list_push_subscriptions().await?;
        for subscription in &subscriptions {
            self.subscription_created(subscription);
        }
        Ok(subscriptions.len())
    }

    /// Checks, routes and stores a message. Nothing is stored when any check fails.
    pub async fn publish(
        &self,
        tenant: TenantId,
        message: NewMessage,
        creation: TopicCreation,
    ) -> Result<Published, BusError> {
        if message.topic_name == DEPLOYMENTS_TOPIC {
            // Consumers act on its run events (RunFinished, Succeeded): a
            // user's publish would be indistinguishable from the server's.
            return Err(BusError::Reserved(format!(
                "topic '{DEPLOYMENTS_TOPIC}' is reserved: only the server publishes its run events there"
            )));
        }
        let limit = self.settings.max_payload_bytes;
        if message.payload.len() > limit {
            return Err(BusError::PayloadTooLarge { size: message.payload.len(), limit });
        }
        let now = Utc::now();
        if let Some(expires_at) = message.expires_at.filter(|at| *at <= now) {
            // Stored, it would be routed and then never delivered: a clock or
            // time-zone mistake would lose every message behind a 201.
            return Err(MessagingError::Invalid(format!(
                "expiresAt: {} is already past (the server's time is {}); the message would never be delivered",
                expires_at.to_rfc3339(),
                now.to_rfc3339()
            ))
            .into());
        }
        message.validate()?;
        let topic = match self.store.get_topic(tenant, &message.topic_name).await {
            Err(MessagingError::TopicNotFound(_))
                if creation == TopicCreation::IfMissing && self.settings.auto_create_topics =>
            {
                self.create_on_first_use(tenant, &message.topic_name).await?
            }
            other => other?,
        };
        if let Some(schema_id) = &topic.spec.schema_id {
            let (version, errors) =
                self.schemas.validate(tenant, schema_id, message.schema_version, message.payload.clone(), true).await?;
            if !errors.is_empty() {
                return Err(BusError::SchemaMismatch {
                    schema_id: schema_id.clone(),
                    version: version.version,
                    errors,
                });
            }
        }
        Ok(self.store.publish(tenant, message, Utc::now()).await?)
    }

    /// A FanOut topic without a schema; a concurrent creator winning is fine.
    async fn create_on_first_use(&self, tenant: TenantId, name: &str) -> Result<Topic, BusError> {
        match self.create_topic(tenant, NewTopic::fan_out(name)).await {
            Err(BusError::Messaging(MessagingError::TopicExists(_))) => Ok(self.store.get_topic(tenant, name).await?),
            other => other,
        }
    }

    /// Creates a topic unless the tenant has as many as
    /// `max_topics_per_tenant`. Requests racing past the count together may
    /// pass it by as many as raced; the limit bounds growth, not an invoice.
    pub async fn create_topic(&self, tenant: TenantId, spec: NewTopic) -> Result<Topic, BusError> {
        let limit = self.settings.max_topics_per_tenant;
        let held = self.store.list_topics(tenant).await?.len();
        if held >= limit {
            return Err(BusError::AtLimit(format!(
                "the tenant has {held} topics, the most it may have (messaging.max_topics_per_tenant = {limit}); \
                 delete one first"
            )));
        }
        Ok(self.store.create_topic(tenant, spec, Utc::now()).await?)
    }

    /// Creates a subscription unless the tenant has as many as
    /// `max_subscriptions_per_tenant`, as [`MessageBus::create_topic`] does.
    pub async fn create_subscription(&self, tenant: TenantId, spec: NewSubscription) -> Result<Subscription, BusError> {
        let limit = self.settings.max_subscriptions_per_tenant;
        let held = self.store.list_subscriptions(tenant, None).await?.len();
        if held >= limit {
            return Err(BusError::AtLimit(format!(
                "the tenant has {held} subscriptions, the most it may have \
                 (messaging.max_subscriptions_per_tenant = {limit}); delete one first"
            )));
        }
        if spec.kind == SubscriptionKind::Push {
            self.push_policy.check_endpoint(&spec.consumer_endpoint).map_err(MessagingError::Invalid)?;
        }
        let topic = self.store.get_topic(tenant, &spec.topic_name).await?;
        let strategy = topic.effective_strategy();
        let filtering = spec.filter.as_ref().is_some_and(|f| !f.header_matches.is_empty() || f.payload_query.is_some());
        if filtering && strategy != RoutingStrategy::ContentBased {
            // Stored, it would be answered back and never applied.
            return Err(MessagingError::Invalid(format!(
                "filter: topic '{}' routes {strategy}, and filters apply to ContentBased topics only; \
                 leave the filter out or make the topic's routing ContentBased",
                spec.topic_name
            ))
            .into());
        }
        let subscription = self.store.create_subscription(tenant, spec, Utc::now()).await?;
        self.subscription_created(&subscription);
        Ok(subscription)
    }
}
