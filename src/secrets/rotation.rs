//! The background actor that rotates secrets when their policy says so and
//! warns before a version expires. It also reloads the JWT key ring on every
//! check and every few seconds between, so that a rotation made by another
//! instance reaches this one.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use hotswap_actors::domain::{AuditActor, AuditCategory, AuditResult, NewAuditEntry, DEFAULT_TENANT};

use super::manager::JWT_SIGNING_KEY;
use super::SecretManager;

/// How soon a JWT key rotated by another instance is known here (tokens
/// signed with it are refused here until then). A reload that finds the
/// same versions reads the metadata only.
const KEY_RELOAD_EVERY: Duration = Duration::from_secs(5);

pub struct SecretRotator {
    manager: Arc<SecretManager>,
    store: hotswap_actors::store::SharedStore,
    interval: Duration,
    checking: bool,
    reloading: bool,
    /// (secret, version) already warned about, so a warning is sent once.
    warned: HashSet<(String, u32)>,
    /// The cluster-wide lease of rotations and warnings (`None`: this
    /// instance does them); every instance reloads the key ring regardless.
    lease: Option<hotswap_actors::cluster::TaskLease>,
}

impl SecretRotator {
    pub fn new(manager: Arc<SecretManager>, store: hotswap_actors::store::SharedStore, interval: Duration) -> Self {
        SecretRotator {
            manager,
            store,
            interval,
            checking: false,
            reloading: false,
            warned: HashSet::new(),
            lease: None,
        }
    }

    /// Rotates and warns only while this instance holds `lease`.
    pub fn once_per_cluster(mut self, lease: hotswap_actors::cluster::TaskLease) -> Self {
        self.lease = Some(lease);
        self
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        if self.checking {
            return;
        }
        self.checking = true;
        let manager = self.manager.clone();
        let warned = self.warned.clone();
        let store = self.store.clone();
        let lease = self.lease.clone();
        let pass = async move {
            let rotates_here = match &lease {
                Some(lease) => lease.held().await,
                None => true,
            };
            let newly_warned =
                if rotates_here { rotate_due_and_warn(&manager, &store, &warned).await } else { Vec::new() };
            if let Err(e) = manager.load_jwt_keys().await {
                tracing::warn!(secret = JWT_SIGNING_KEY, error = %e, "cannot reload the JWT signing keys");
            }
            newly_warned
        };
        ctx.spawn(pass.into_actor(self).map(|newly_warned, act, _| {
            act.checking = false;
            act.warned.extend(newly_warned);
        }));
    }
}

/// Rotates every secret whose policy says so and warns once per version
/// about those about to expire; answers the versions newly warned about.
async fn rotate_due_and_warn(
    manager: &SecretManager,
    store: &hotswap_actors::store::SharedStore,
    warned: &HashSet<(String, u32)>,
) -> Vec<(String, u32)> {
    let mut newly_warned = Vec::new();
    let secrets = match manager.list().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "secret rotation check: cannot list secrets");
            return newly_warned;
        }
    };
    let now = Utc::now();
    for meta in secrets {
        if meta.rotation_due(now) {
            if let Err(e) = manager.rotate(&meta.id, AuditActor::system()).await {
                tracing::warn!(secret = %meta.id, error = %e, "scheduled rotation failed; retried on the next check");
            }
        } else if meta.expiring(now) && !warned.contains(&(meta.id.clone(), meta.current_version)) {
            tracing::warn!(secret = %meta.id, version = meta.current_version, expires_at = ?meta.expires_at,
                        "secret expires soon; rotate it (POST /api/v1/secrets/{}/rotate)", meta.id);
            let entry =
                NewAuditEntry::new(DEFAULT_TENANT, AuditActor::system(), AuditCategory::Security, "SecretExpiring")
                    .resource("Secret", &meta.id)
                    .result(AuditResult::Failure)
                    .message(format!("version {} expires at {:?}", meta.current_version, meta.expires_at));
            if let Err(e) = store.append_audit(&[entry]).await {
                tracing::warn!(error = %e, "cannot audit an expiry warning");
            }
            newly_warned.push((meta.id.clone(), meta.current_version));
        }
    }
    newly_warned
}

impl SecretRotator {
    /// Reloads the JWT key ring between checks, so that a rotation made by
    /// another instance reaches this one within [`KEY_RELOAD_EVERY`].
    fn reload_keys(&mut self, ctx: &mut Context<Self>) {
        if self.reloading || self.checking {
            return;
        }
        self.reloading = true;
        let manager = self.manager.clone();
        let reload = async move {
            if let Err(e) = manager.load_jwt_keys().await {
                tracing::debug!(secret = JWT_SIGNING_KEY, error = %e, "cannot reload the JWT signing keys");
            }
        };
        ctx.spawn(reload.into_actor(self).map(|(), act, _| act.reloading = false));
    }
}

impl Actor for SecretRotator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |act, ctx| act.check(ctx));
        if self.interval > KEY_RELOAD_EVERY {
            ctx.run_interval(KEY_RELOAD_EVERY, |act, ctx| act.reload_keys(ctx));
        }
    }
}
