//! The process's copy of the metadata bucket's topics and subscriptions:
//! reads come from here, writes go to the bucket first. Also what only this
//! process knows: the load-balancing rotation and the metric counters.

use std::collections::HashMap;

use uuid::Uuid;

use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{MessagingError, Subscription, Topic, TopicMetrics};

use super::records::SubscriptionRecord;

/// The counters of a topic's metrics (its depth and age are read from the
/// server when asked).
pub type Counters = TopicMetrics;

pub struct TopicEntry {
    pub topic: Topic,
    /// Bumped at each load-balanced assignment.
    pub rr_counter: u64,
    pub counters: Counters,
}

pub struct SubEntry {
    pub record: SubscriptionRecord,
    /// The rotation position of its last load-balanced assignment.
    pub last_assigned: u64,
}

#[derive(Default)]
pub struct Meta {
    pub topics: HashMap<(TenantId, String), TopicEntry>,
    pub subs: HashMap<(TenantId, Uuid), SubEntry>,
}

impl Meta {
    pub fn topic(&self, tenant: TenantId, name: &str) -> Result<&TopicEntry, MessagingError> {
        self.topics.get(&(tenant, name.to_owned())).ok_or_else(|| MessagingError::TopicNotFound(name.to_owned()))
    }

    pub fn topic_mut(&mut self, tenant: TenantId, name: &str) -> Result<&mut TopicEntry, MessagingError> {
        self.topics.get_mut(&(tenant, name.to_owned())).ok_or_else(|| MessagingError::TopicNotFound(name.to_owned()))
    }

    pub fn sub(&self, tenant: TenantId, id: Uuid) -> Result<&SubEntry, MessagingError> {
        self.subs.get(&(tenant, id)).ok_or_else(|| MessagingError::SubscriptionNotFound(id.to_string()))
    }

    /// A topic's subscriptions in creation order.
    pub fn subs_of(&self, tenant: TenantId, topic: &str) -> Vec<&SubEntry> {
        let mut subs: Vec<&SubEntry> = self
            .subs
            .values()
            .filter(|s| s.record.subscription.tenant_id == tenant && s.record.subscription.spec.topic_name == topic)
            .collect();
        subs.sort_by_key(|s| s.record.created_seq);
        subs
    }

    /// Counts an event on a topic that may since have been deleted.
    pub fn count(&mut self, tenant: TenantId, topic: &str, bump: impl FnOnce(&mut Counters)) {
        if let Some(t) = self.topics.get_mut(&(tenant, topic.to_owned())) {
            bump(&mut t.counters);
        }
    }
}

/// A subscription and its topic, copied out of the cache for one operation.
#[derive(Clone)]
pub struct SubView {
    pub subscription: Subscription,
    pub topic: Topic,
    pub lanes: bool,
}

impl Meta {
    pub fn view(&self, tenant: TenantId, id: Uuid) -> Result<SubView, MessagingError> {
        let s = self.sub(tenant, id)?;
        let topic = self.topic(tenant, &s.record.subscription.spec.topic_name)?.topic.clone();
        Ok(SubView { subscription: s.record.subscription.clone(), topic, lanes: s.record.lanes })
    }
}
