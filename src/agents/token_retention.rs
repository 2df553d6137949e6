//! The periodic sweep of enrolment tokens: every token made is kept while it
//! can enrol hosts and while an agent that joined with it is known (revoking
//! it ends that agent's session); after that, `agent.token_retention` past
//! its revocation or expiry, it is forgotten, so the tokens kept do not grow
//! with every token ever made.

use std::time::Duration;

use hotswap_actors::store::SharedStore;

pub struct TokenRetention {
    pub store: SharedStore,
    /// How long a dead token is kept (zero: for ever, and the sweep never runs).
    pub keep: Duration,
    /// How often the sweep looks for tokens past their retention.
    pub every: Duration,
    /// The cluster-wide lease of the sweep (`None`: every pass runs).
    pub lease: Option<hotswap_actors::cluster::TaskLease>,
}

impl TokenRetention {
    /// Runs every `every` for the life of the process (not at all when
    /// tokens are kept for ever); passes never overlap
    /// ([`hotswap_actors::cluster::run_every`]).
    pub fn start(self) {
        if self.keep.is_zero() {
            return;
        }
        let (every, lease) = (self.every, self.lease.clone());
        let sweep = std::rc::Rc::new(self);
        hotswap_actors::cluster::run_every(every, lease, move || {
            let sweep = sweep.clone();
            async move { sweep.pass().await }
        });
    }

    async fn pass(&self) {
        let Ok(keep) = chrono::Duration::from_std(self.keep) else { return };
        let dead_before = chrono::Utc::now() - keep;
        match self.store.prune_enrolment_tokens(dead_before).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "enrolment tokens past their retention forgotten"),
            Err(e) => tracing::warn!(error = %e, "the enrolment token sweep failed; it runs again at its next pass"),
        }
    }
}
