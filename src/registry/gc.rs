//! The artifact sweep: removes stored bytes that no version names any more,
//! on an interval. Deleting a version only removes its record, because other
//! versions and tenants may share the same bytes by digest.

use std::time::Duration;

use actix_web::web;

use super::Registry;

pub struct ArtifactSweeper {
    pub registry: web::Data<Registry>,
    pub interval: Duration,
    pub grace: Duration,
    /// The cluster-wide lease of the sweep (`None`: every pass runs).
    pub lease: Option<hotswap_actors::cluster::TaskLease>,
}

impl ArtifactSweeper {
    /// Sweeps every `interval` for the life of the process; a slow sweep is
    /// finished before the next starts ([`hotswap_actors::cluster::run_every`]).
    pub fn start(self) {
        let (interval, lease) = (self.interval, self.lease.clone());
        hotswap_actors::cluster::run_every(interval, lease, move || {
            let (registry, grace) = (self.registry.clone(), self.grace);
            async move {
                if let Err(e) = registry.artifacts.collect_garbage(registry.store.as_ref(), grace).await {
                    tracing::warn!(error = %e, "artifact sweep stopped early; it runs again at the next interval");
                }
            }
        });
    }
}
