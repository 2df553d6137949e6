//! Connection tokens handed out by negotiate, each usable once until it
//! expires. A client negotiates with one instance and then connects with the
//! token, and behind a load balancer the connection may reach another
//! instance: with Redis the token is kept there (`{prefix}:signalr:{token}`,
//! expiring with the token), so that any instance can take it, once. Without
//! Redis, or while it does not answer, a token is good on the instance that
//! issued it only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotswap_actors::domain::TenantId;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::live::identity::SessionIdentity;
use crate::redis::Redis;

/// Who negotiated a token: the connection must be opened by the same user,
/// and carries over the tenant a system Admin named at negotiate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Negotiated {
    pub tenant_id: TenantId,
    pub home_tenant_id: TenantId,
    pub user: String,
}

impl From<&SessionIdentity> for Negotiated {
    fn from(identity: &SessionIdentity) -> Self {
        Negotiated {
            tenant_id: identity.tenant_id,
            home_tenant_id: identity.home_tenant_id,
            user: identity.user.clone(),
        }
    }
}

#[derive(Default)]
pub struct Negotiations {
    local: Mutex<HashMap<String, (Negotiated, Instant)>>,
    shared: Option<Arc<Redis>>,
}

impl Negotiations {
    /// Tokens shared through Redis, when it is set.
    pub fn new(shared: Option<Arc<Redis>>) -> Self {
        Negotiations { local: Mutex::default(), shared }
    }

    pub async fn issue(&self, negotiated: Negotiated, ttl: Duration) -> String {
        let token = Uuid::new_v4().simple().to_string();
        if let Some(redis) = &self.shared {
            let (key, millis) = (redis.key(&format!("signalr:{token}")), ttl.as_millis().max(1) as u64);
            let value = serde_json::to_string(&negotiated).unwrap_or_default();
            let stored = redis
                .run(|mut c| async move {
                    redis::cmd("SET").arg(key).arg(value).arg("PX").arg(millis).query_async::<()>(&mut c).await
                })
                .await;
            match stored {
                Ok(()) => return token,
                Err(e) => tracing::warn!(error = %e, "a SignalR token is kept on this instance only"),
            }
        }
        let now = Instant::now();
        let mut local = self.local.lock();
        local.retain(|_, (_, until)| *until > now);
        local.insert(token.clone(), (negotiated, now + ttl));
        token
    }

    /// The token's negotiation, if it is known, unused and unexpired; it
    /// cannot be taken again, here or on another instance.
    pub async fn take(&self, token: &str) -> Option<Negotiated> {
        let here = self.local.lock().remove(token);
        if let Some((negotiated, until)) = here {
            return (until > Instant::now()).then_some(negotiated);
        }
        let redis = self.shared.as_ref()?;
        let key = redis.key(&format!("signalr:{token}"));
        let value = redis
            .run(|mut c| async move { redis::cmd("GETDEL").arg(key).query_async::<Option<String>>(&mut c).await })
            .await
            .ok()??;
        serde_json::from_str(&value).ok()
    }
}
