//! Push subscriptions' delivery: the HTTP transport (POST the delivery as
//! JSON; 2xx is an ack) and the supervisor that keeps one delivery loop
//! alive per push subscription, restarting it if it panics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::rt::task::JoinHandle;
use async_trait::async_trait;
use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{run_push_subscription, Delivery, PushTransport, SharedMessageStore};
use parking_lot::Mutex;
use uuid::Uuid;

use super::message_dto::DeliveryView;
use super::push_policy::{PolicyResolver, PushAddressPolicy};
use crate::error_chain::error_chain;

/// Restarts of one loop after panics before it is given up (logged).
const MAX_RESTARTS: u32 = 5;
const RESTART_BACKOFF: Duration = Duration::from_millis(200);

/// POSTs each delivery as JSON (the consume answer's shape) with its id and
/// attempt in headers, only to addresses the policy permits.
pub struct HttpPushTransport {
    client: reqwest::Client,
    policy: PushAddressPolicy,
}

impl HttpPushTransport {
    /// Names are resolved through the policy; redirects are not followed
    /// (a 3xx is a failed delivery), since their target was never checked;
    /// no proxy is used, so the address checked is the one connected to.
    pub fn new(timeout: Duration, policy: PushAddressPolicy) -> Result<Self, String> {
        crate::notify::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("hotswap/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(PolicyResolver { policy: policy.clone() })
            .build()
            .map_err(|e| format!("cannot build the push delivery client: {e}"))?;
        Ok(HttpPushTransport { client, policy })
    }
}

#[async_trait]
impl PushTransport for HttpPushTransport {
    async fn send(&self, endpoint: &str, delivery: &Delivery) -> Result<(), String> {
        // A literal address never reaches the resolver.
        self.policy.check_endpoint(endpoint)?;
        let response = self
            .client
            .post(endpoint)
            .header("X-Message-Id", &delivery.message.message_id)
            .header("X-Delivery-Attempt", delivery.delivery_attempts.to_string())
            .json(&DeliveryView::from(delivery.clone()))
            .send()
            .await
            // With its causes: the dead-letter reason should name the
            // address rule when it refused the resolved address.
            .map_err(|e| format!("push to the endpoint failed: {}", error_chain(&e)))?;
        match response.status() {
            s if s.is_success() => Ok(()),
            s => Err(format!("the endpoint answered {s}")),
        }
    }
}

/// One supervised delivery loop per push subscription.
pub struct PushDeliveries {
    store: SharedMessageStore,
    transport: Arc<dyn PushTransport>,
    running: Mutex<HashMap<Uuid, JoinHandle<()>>>,
}

impl PushDeliveries {
    pub fn new(store: SharedMessageStore, transport: Arc<dyn PushTransport>) -> Self {
        PushDeliveries { store, transport, running: Mutex::new(HashMap::new()) }
    }

    /// Starts delivering for a push subscription (again is harmless).
    pub fn start(&self, tenant: TenantId, subscription: Uuid) {
        let mut running = self.running.lock();
        running.retain(|_, handle| !handle.is_finished());
        if running.contains_key(&subscription) {
            return;
        }
        let (store, transport) = (self.store.clone(), self.transport.clone());
        let supervisor = actix_web::rt::spawn(supervise(store, transport, tenant, subscription));
        running.insert(subscription, supervisor);
    }

    /// Stops delivering for a subscription that was deleted.
    pub fn stop(&self, subscription: Uuid) {
        if let Some(handle) = self.running.lock().remove(&subscription) {
            handle.abort();
        }
    }

    /// How many delivery loops are alive (for tests and the log).
    pub fn running(&self) -> usize {
        self.running.lock().values().filter(|h| !h.is_finished()).count()
    }
}

/// Runs the loop in a task of its own so that a panic ends only that task;
/// restarts it within the limit, and ends when the loop ends (the
/// subscription is gone).
async fn supervise(store: SharedMessageStore, transport: Arc<dyn PushTransport>, tenant: TenantId, subscription: Uuid) {
    let mut restarts = 0;
    loop {
        let run = actix_web::rt::spawn(run_push_subscription(store.clone(), transport.clone(), tenant, subscription));
        match run.await {
            Ok(()) => return,
            Err(e) if restarts < MAX_RESTARTS => {
                restarts += 1;
                tracing::error!(%subscription, error = %e, restarts, "push delivery died; restarting");
                actix_web::rt::time::sleep(RESTART_BACKOFF * restarts).await;
            }
            Err(e) => {
                tracing::error!(%subscription, error = %e, "push delivery died too often; given up");
                return;
            }
        }
    }
}
