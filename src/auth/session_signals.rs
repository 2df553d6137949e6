//! "Check yourselves now": the nudge open live sessions get when something
//! that grants them access changes (a logout, a password reset, a user
//! disabled or given other roles, a tenant suspended or deleted).
//!
//! A signal names only who it concerns (a tenant, and a user in it or every
//! user of it); it carries no verdict. The sessions it concerns run their
//! usual check against the store at once (`live::revalidation`), so a lost or
//! duplicated signal costs at most a wait for the slow poll or one check too
//! many, never a wrong answer.
//!
//! Signals go to this process's sessions through a broadcast channel, and,
//! when `[redis] url` is set, to every other instance's over the `sessions`
//! channel.

use std::sync::Arc;

use hotswap_actors::domain::TenantId;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::redis::Redis;

const CHANNEL: &str = "sessions";
/// Signals a slow session may fall behind by before it is told it lagged
/// (and then checks itself anyway).
const BACKLOG: usize = 256;

/// Whose sessions must check themselves now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSignal {
    pub tenant: TenantId,
    /// One user's sessions; `None`: every session of the tenant.
    pub user: Option<Uuid>,
}

impl SessionSignal {
    /// Whether a session of `user` in `tenant` must check itself.
    pub fn concerns(&self, tenant: TenantId, user: Uuid) -> bool {
        self.tenant == tenant && self.user.is_none_or(|u| u == user)
    }
}

/// The signals of one process (cheap to clone).
#[derive(Clone)]
pub struct SessionSignals {
    local: broadcast::Sender<SessionSignal>,
    redis: Option<Arc<Redis>>,
}

impl std::fmt::Debug for SessionSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSignals").field("shared", &self.redis.is_some()).finish()
    }
}

impl Default for SessionSignals {
    fn default() -> Self {
        SessionSignals { local: broadcast::channel(BACKLOG).0, redis: None }
    }
}

impl SessionSignals {
    /// Also sends and hears signals over Redis, so that sessions held by
    /// other instances close too. Must run inside a Tokio runtime.
    pub fn shared(redis: Arc<Redis>) -> SessionSignals {
        let signals = SessionSignals { local: broadcast::channel(BACKLOG).0, redis: Some(redis.clone()) };
        let local = signals.local.clone();
        let origin = redis.origin();
        let mut heard = redis.listen(CHANNEL, BACKLOG);
        tokio::spawn(async move {
            while let Some(bytes) = heard.recv().await {
                let Ok(remote) = serde_json::from_slice::<Remote>(&bytes) else { continue };
                // This instance's own signals reached its sessions already.
                if remote.origin != origin {
                    let _ = local.send(remote.signal);
                }
            }
        });
        signals
    }

    /// The signals sent from now on, by this instance or (with Redis) any other.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionSignal> {
        self.local.subscribe()
    }

    /// Tells the sessions of `user` in `tenant` to check themselves.
    pub async fn user_changed(&self, tenant: TenantId, user: Uuid) {
        self.send(SessionSignal { tenant, user: Some(user) }).await;
    }

    /// Tells every session of `tenant` to check itself.
    pub async fn tenant_changed(&self, tenant: TenantId) {
        self.send(SessionSignal { tenant, user: None }).await;
    }

    async fn send(&self, signal: SessionSignal) {
        // No receiver: no session is open here; not an error.
        let _ = self.local.send(signal);
        if let Some(redis) = &self.redis {
            let remote = Remote { origin: redis.origin(), signal };
            let Ok(bytes) = serde_json::to_vec(&remote) else { return };
            if let Err(e) = redis.publish(CHANNEL, bytes).await {
                // Other instances' sessions fall back to their poll.
                tracing::warn!(error = %e, "cannot tell other instances' live sessions to check themselves");
            }
        }
    }
}

/// A signal on the Redis channel, with the instance that sent it.
#[derive(Serialize, Deserialize)]
struct Remote {
    origin: Uuid,
    signal: SessionSignal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_concerns_its_user_or_its_whole_tenant() {
        let (tenant, user) = (TenantId::new_v4(), Uuid::new_v4());
        let one = SessionSignal { tenant, user: Some(user) };
        assert!(one.concerns(tenant, user));
        assert!(!one.concerns(tenant, Uuid::new_v4()));
        assert!(!one.concerns(TenantId::new_v4(), user));
        let all = SessionSignal { tenant, user: None };
        assert!(all.concerns(tenant, Uuid::new_v4()));
        assert!(!all.concerns(TenantId::new_v4(), user));
    }

    /// Two instances on one Redis: a signal sent on one reaches the other's
    /// sessions, and each instance's own sessions hear it once.
    #[actix_web::test]
    async fn signals_reach_the_sessions_of_other_instances_over_redis() {
        use crate::redis::{Redis, RedisSettings};
        use std::time::Duration;
        let prefix = format!("test-{}", Uuid::new_v4().simple());
        let settings = RedisSettings { url: "redis://127.0.0.1:6379".into(), key_prefix: prefix, ..Default::default() };
        let (one, two) = (
            Redis::start(&settings, uuid::Uuid::nil()).unwrap().unwrap(),
            Redis::start(&settings, uuid::Uuid::nil()).unwrap().unwrap(),
        );
        let (sender, receiver) = (SessionSignals::shared(one.clone()), SessionSignals::shared(two.clone()));
        let (mut here, mut there) = (sender.subscribe(), receiver.subscribe());
        for _ in 0..250 {
            if one.health().is_subscribed() && two.health().is_subscribed() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(one.health().is_subscribed() && two.health().is_subscribed(), "never subscribed");
        let signal = SessionSignal { tenant: TenantId::new_v4(), user: Some(Uuid::new_v4()) };
        sender.user_changed(signal.tenant, signal.user.unwrap()).await;
        let within = Duration::from_secs(5);
        assert_eq!(tokio::time::timeout(within, there.recv()).await.unwrap().ok(), Some(signal));
        assert_eq!(here.recv().await.ok(), Some(signal));
        // Its own signal, echoed by Redis, is not heard a second time here.
        assert!(tokio::time::timeout(Duration::from_millis(300), here.recv()).await.is_err());
    }

    #[actix_web::test]
    async fn sessions_hear_signals_sent_after_they_subscribed() {
        let signals = SessionSignals::default();
        let mut heard = signals.subscribe();
        let tenant = TenantId::new_v4();
        signals.tenant_changed(tenant).await;
        assert_eq!(heard.recv().await.ok(), Some(SessionSignal { tenant, user: None }));
    }
}
