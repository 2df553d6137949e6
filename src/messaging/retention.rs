//! The periodic retention sweep: drops acknowledged and expired messages
//! older than their topic's retention, and idempotency keys past the window.

use std::time::Duration;

use hotswap_actors::messaging::SharedMessageStore;
use tokio::time::{interval, MissedTickBehavior};

pub struct RetentionSweep {
    pub store: SharedMessageStore,
    pub every: Duration,
    pub idempotency_window: Duration,
    /// The cluster-wide lease of the sweep (`None`: every pass runs).
    pub lease: Option<hotswap_actors::cluster::TaskLease>,
}

impl RetentionSweep {
    /// Runs on the current actix runtime for the life of the process. Each
    /// pass is awaited before the next tick is taken, and ticks missed during
    /// a slow pass are not made up, so passes never overlap or bunch up.
    pub fn start(self) {
        actix_web::rt::spawn(async move {
            let mut tick = interval(self.every);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                hotswap_actors::cluster::when_held(self.lease.as_ref(), self.pass()).await;
            }
        });
    }

    async fn pass(&self) {
        match self.store.sweep(chrono::Utc::now(), self.idempotency_window).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "messaging retention removed messages"),
            Err(e) => tracing::warn!(error = %e, "messaging retention sweep failed"),
        }
    }
}
