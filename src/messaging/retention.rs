//! The periodic retention sweep: drops acknowledged and expired messages
//! older than their topic's retention, and idempotency keys past the window.

use std::time::Duration;

use hotswap_actors::messaging::SharedMessageStore;

pub struct RetentionSweep {
    pub store: SharedMessageStore,
    pub every: Duration,
    pub idempotency_window: Duration,
    /// The cluster-wide lease of the sweep (`None`: every pass runs).
    pub lease: Option<hotswap_actors::cluster::TaskLease>,
}

impl RetentionSweep {
    /// Runs every `every` for the life of the process; passes never overlap
    /// ([`hotswap_actors::cluster::run_every`]).
    pub fn start(self) {
        let (every, lease) = (self.every, self.lease.clone());
        let sweep = std::rc::Rc::new(self);
        hotswap_actors::cluster::run_every(every, lease, move || {
            let sweep = sweep.clone();
            async move { sweep.pass().await }
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
