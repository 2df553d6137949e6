//! Push delivery: one loop per push subscription leases its messages and
//! hands each to a transport (HTTP in the adapters). A delivery the
//! transport accepts is acked; a refusal or a timeout is nacked, so retries,
//! backoff and dead letters follow the subscription's policy as for pull.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use uuid::Uuid;

use super::consume::consume;
use super::error::MessagingError;
use super::model::{Delivery, NackOptions};
use super::store::SharedMessageStore;
use crate::domain::TenantId;

/// Deliveries leased at once by one push loop: they are sent one by one,
/// so a small batch keeps leases from expiring while earlier ones are sent.
const PUSH_BATCH: usize = 8;
/// How long one lease attempt waits for messages before looking again
/// (also how soon a deleted subscription is noticed when idle).
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// The pause after the store itself fails, before trying again.
const STORE_RETRY: Duration = Duration::from_millis(500);

/// Sends one delivery to a push subscription's endpoint.
#[async_trait]
pub trait PushTransport: Send + Sync {
    /// Ok when the endpoint accepted it (HTTP 2xx); Err with the reason otherwise.
    async fn send(&self, endpoint: &str, delivery: &Delivery) -> Result<(), String>;
}

/// The loop of one push subscription. It returns when the subscription no
/// longer exists; everything else (a refused send, a store that fails for a
/// while) it rides out.
pub async fn run_push_subscription(
    store: SharedMessageStore,
    transport: Arc<dyn PushTransport>,
    tenant: TenantId,
    subscription: Uuid,
) {
    loop {
        let endpoint = match store.get_subscription(tenant, subscription).await {
            Ok(s) => s.spec.consumer_endpoint,
            Err(MessagingError::SubscriptionNotFound(_)) => return,
            Err(e) => {
                tracing::warn!(%subscription, error = %e, "push delivery cannot read its subscription");
                tokio::time::sleep(STORE_RETRY).await;
                continue;
            }
        };
        match consume(store.as_ref(), tenant, subscription, PUSH_BATCH, IDLE_WAIT).await {
            Ok(deliveries) => {
                for delivery in deliveries {
                    settle(store.as_ref(), transport.as_ref(), tenant, &endpoint, &delivery).await;
                }
            }
            Err(MessagingError::SubscriptionNotFound(_)) => return,
            Err(e) => {
                tracing::warn!(%subscription, error = %e, "push delivery cannot lease");
                tokio::time::sleep(STORE_RETRY).await;
            }
        }
    }
}

/// Sends one delivery and acks or nacks it by the answer. A lease that
/// expired meanwhile is refused by the store: the message is already on its
/// way back, so that is only logged.
async fn settle(
    store: &dyn super::store::MessageStore,
    transport: &dyn PushTransport,
    tenant: TenantId,
    endpoint: &str,
    delivery: &Delivery,
) {
    let id = &delivery.message.message_id;
    let subscription = delivery.subscription_id;
    let settled = match transport.send(endpoint, delivery).await {
        Ok(()) => store.ack(tenant, subscription, id, Utc::now()).await,
        Err(reason) => {
            let options = NackOptions { reason: Some(reason), requeue: None };
            store.nack(tenant, subscription, id, options, Utc::now()).await
        }
    };
    if let Err(e) = settled {
        tracing::debug!(%subscription, message = %id, error = %e, "push delivery could not settle");
    }
}
