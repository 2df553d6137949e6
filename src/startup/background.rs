//! The periodic work that runs beside the API: rate-limit and revocation
//! sweeps, audit retention, the artifact sweep. Each pass finishes before the
//! next tick is taken, so a slow pass never overlaps the next.

use std::time::Duration;

use actix::Actor;
use actix_web::web;
use hotswap_actors::audit::AuditRetention;

use super::adapters::Adapters;
use crate::auth::rate_limit::RateLimits;
use crate::auth::AuthState;
use crate::config::Settings;
use crate::registry::ArtifactSweeper;

/// How often idle rate-limit windows and expired token revocations are dropped.
const RATE_LIMIT_SWEEP: Duration = Duration::from_secs(60);
const REVOCATION_SWEEP: Duration = Duration::from_secs(600);

/// Starts every background task.
pub fn start(settings: &Settings, adapters: &Adapters, limits: Option<web::Data<RateLimits>>) {
    spawn_sweeps(adapters.auth.clone(), limits);
    AuditRetention { store: adapters.store.clone(), settings: settings.audit.clone() }.start();
    let (interval, grace) = (settings.registry.gc_interval, settings.registry.gc_grace);
    ArtifactSweeper { registry: adapters.registry.clone(), interval, grace }.start();
    crate::messaging::RetentionSweep {
        store: adapters.bus.store.clone(),
        every: settings.messaging.retention_sweep_interval,
        idempotency_window: settings.messaging.idempotency_window,
    }
    .start();
}

/// Background sweeps: idle rate-limit windows, expired token revocations.
fn spawn_sweeps(auth: web::Data<AuthState>, limits: Option<web::Data<RateLimits>>) {
    if let Some(limits) = limits {
        actix_web::rt::spawn(async move {
            let mut tick = actix_web::rt::time::interval(RATE_LIMIT_SWEEP);
            loop {
                tick.tick().await;
                limits.forget_idle();
            }
        });
    }
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(REVOCATION_SWEEP);
        loop {
            tick.tick().await;
            match auth.purge_revocations(chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(purged = n, "forgot expired token revocations"),
                Err(e) => tracing::warn!(error = %e, "purging expired token revocations failed"),
            }
        }
    });
}
