//! The artifact sweep: removes stored bytes that no version names any more,
//! on an interval. Deleting a version only removes its record, because other
//! versions and tenants may share the same bytes by digest.

use std::time::Duration;

use actix::prelude::*;
use actix_web::web;

use super::Registry;

pub struct ArtifactSweeper {
    pub registry: web::Data<Registry>,
    pub interval: Duration,
    pub grace: Duration,
    /// The cluster-wide lease of the sweep (`None`: every pass runs).
    pub lease: Option<hotswap_actors::cluster::TaskLease>,
}

impl Actor for ArtifactSweeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |act, ctx| {
            let (registry, grace, lease) = (act.registry.clone(), act.grace, act.lease.clone());
            let sweep = async move {
                hotswap_actors::cluster::when_held(lease.as_ref(), async {
                    if let Err(e) = registry.artifacts.collect_garbage(registry.store.as_ref(), grace).await {
                        tracing::warn!(error = %e, "artifact sweep stopped early; it runs again at the next interval");
                    }
                })
                .await;
            };
            ctx.spawn(sweep.into_actor(act));
        });
    }
}
