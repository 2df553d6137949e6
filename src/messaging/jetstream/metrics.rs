//! A topic's metrics: this process's counters, and depth and the oldest
//! unacknowledged message read from the consumers and the stream.

use chrono::{DateTime, Utc};

use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{Message, MessagingError, TopicMetrics};

use super::error::nats_error;
use super::names::LANES;
use super::setup::JetStreamMessageStore;
use super::streams;

impl JetStreamMessageStore {
    pub(super) async fn metrics_impl(
        &self,
        tenant: TenantId,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<TopicMetrics, MessagingError> {
        let (mut metrics, subs) = {
            let meta = self.meta.lock();
            let t = meta.topic(tenant, topic)?;
            let subs: Vec<(uuid::Uuid, bool)> = meta
                .subs_of(tenant, topic)
                .iter()
                .map(|s| (s.record.subscription.subscription_id, s.record.lanes))
                .collect();
            (t.counters.clone(), subs)
        };
        let stream = self.stream(tenant, topic).await?;
        let mut oldest: Option<DateTime<Utc>> = None;
        for (sub, lanes) in subs {
            let lane_list: Vec<Option<u8>> = if lanes { (0..LANES).map(Some).collect() } else { vec![None] };
            let mut depth = 0u64;
            for lane in lane_list {
                let mut consumer = self.consumer(tenant, topic, sub, lane).await?;
                let info = consumer.info().await.map_err(nats_error)?;
                depth += info.num_pending + info.num_ack_pending as u64;
            }
            metrics.depth.insert(sub, depth);
            // The work queue keeps only what is not yet acknowledged, so the
            // first copy on the subscription's subjects is its oldest.
            let first = self.names.subscription_filter(tenant, topic, sub);
            if let Some(m) = streams::first_on(&stream, &first).await? {
                if let Ok(message) = serde_json::from_slice::<Message>(&m.payload) {
                    oldest = Some(oldest.map_or(message.published_at, |o| o.min(message.published_at)));
                }
            }
        }
        metrics.oldest_unacked_age_ms = oldest.map(|o| (now - o).num_milliseconds());
        Ok(metrics)
    }
}
