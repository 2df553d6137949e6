//! The periodic work that runs beside the API: rate-limit and revocation
//! sweeps, audit retention, the artifact sweep, secret rotation, message
//! and enrolment-token retention. Each pass finishes before the next tick is taken, so a slow
//! pass never overlaps the next.
//!
//! The sweeps of shared data run once per cluster of instances: each asks
//! its task lease (`hotswap_actors::cluster::TaskLease`) before a pass. The
//! rate-limit and revocation sweeps stay per instance: they forget what this
//! process holds in memory.

use std::time::Duration;

use actix::Actor;
use actix_web::web;
use hotswap_actors::audit::AuditRetention;
use hotswap_actors::orchestrator::Orchestrator;

use super::adapters::Adapters;
use crate::auth::rate_limit::RateLimits;
use crate::auth::AuthState;
use crate::config::Settings;
use crate::registry::ArtifactSweeper;
use crate::secrets::rotation::SecretRotator;

/// How often idle rate-limit windows and expired token revocations are dropped.
const RATE_LIMIT_SWEEP: Duration = Duration::from_secs(60);
const REVOCATION_SWEEP: Duration = Duration::from_secs(600);

/// The names of the cluster-wide tasks' leases (the batch runner's is the core's).
pub const AUDIT_RETENTION_TASK: &str = "audit-retention";
pub const ARTIFACT_SWEEP_TASK: &str = "artifact-sweep";
pub const SECRET_ROTATION_TASK: &str = "secret-rotation";
pub const MESSAGE_RETENTION_TASK: &str = "message-retention";
pub const TOKEN_RETENTION_TASK: &str = "enrolment-token-retention";

/// Starts every background task; those over shared data under a task lease
/// of `orchestrator`'s.
pub fn start(
    settings: &Settings,
    adapters: &Adapters,
    limits: Option<web::Data<RateLimits>>,
    orchestrator: &Orchestrator,
) {
    spawn_sweeps(adapters.auth.clone(), limits);
    follow_tenant_signals(adapters.auth.clone(), orchestrator.clone());
    let lease = |name| Some(orchestrator.task_lease(name));
    AuditRetention {
        store: adapters.store.clone(),
        settings: settings.audit.clone(),
        lease: lease(AUDIT_RETENTION_TASK),
    }
    .start();
    let (interval, grace) = (settings.registry.gc_interval, settings.registry.gc_grace);
    ArtifactSweeper { registry: adapters.registry.clone(), interval, grace, lease: lease(ARTIFACT_SWEEP_TASK) }.start();
    if settings.secrets.rotation_enabled {
        let manager = adapters.secrets.clone().into_inner();
        let rotator = SecretRotator::new(manager, adapters.store.clone(), settings.secrets.check_interval);
        rotator.once_per_cluster(orchestrator.task_lease(SECRET_ROTATION_TASK)).start();
    }
    crate::agents::token_retention::TokenRetention {
        store: adapters.store.clone(),
        keep: settings.agent.token_retention,
        every: settings.agent.token_sweep_interval,
        lease: lease(TOKEN_RETENTION_TASK),
    }
    .start();
    crate::messaging::RetentionSweep {
        store: adapters.bus.store.clone(),
        every: settings.messaging.retention_sweep_interval,
        idempotency_window: settings.messaging.idempotency_window,
        lease: lease(MESSAGE_RETENTION_TASK),
    }
    .start();
}

/// A tenant changed through any instance (suspended, activated, deleted:
/// the signal that makes its live sessions check themselves) is read again
/// by this instance's tenant actor, so that the checks made without a store
/// read (an agent session's, every second) see the change at once rather
/// than at the next `tenants.refresh_interval`.
fn follow_tenant_signals(auth: web::Data<AuthState>, orchestrator: Orchestrator) {
    let mut signals = auth.signals.subscribe();
    actix_web::rt::spawn(async move {
        loop {
            match signals.recv().await {
                Ok(signal) if signal.user.is_none() => orchestrator.tenants().refresh(signal.tenant),
                Ok(_) => {}
                // Missed signals: the periodic refresh catches up.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
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
