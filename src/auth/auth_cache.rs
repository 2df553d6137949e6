//! A cache for the two store reads every authenticated request makes: "is
//! this token revoked?" and "who is this user now?". Used only with Redis:
//! a change to a user (disabled, roles, password) or a logout on any
//! instance is published on the `auth` channel and every instance forgets
//! what it cached about that user or token.
//!
//! The cache is trusted only while this instance hears the channel: when the
//! subscription drops (Redis down), every read goes to the store again until
//! it is back, and what was cached before is never used again (it may have
//! missed an invalidation). A read that raced an invalidation is not kept:
//! each read notes how many invalidations this instance had heard before it
//! asked the store, and keeps its answer only if none arrived meanwhile.
//! `auth_cache_ttl` bounds what a change made outside the API (straight in
//! the database) can leave behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hotswap_actors::domain::{TenantId, TenantStatus, UserRecord};
use hotswap_actors::store::{SharedStore, StoreResult};
use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::redis::Redis;

const CHANNEL: &str = "auth";
/// Invalidations heard and not yet applied; past that they are dropped, and
/// the cache is cleared instead (see `listen`).
const QUEUE: usize = 1024;

/// What another instance (or this one) changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Invalidation {
    User {
        tenant: TenantId,
        id: Uuid,
    },
    Token {
        tenant: TenantId,
        jti: String,
    },
    /// The tenant was suspended, activated or deleted.
    Tenant {
        tenant: TenantId,
    },
}

/// When an answer was read: the subscription's generation and how many
/// invalidations had been heard. An answer is good while both still hold.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    generation: u64,
    heard: u64,
}

/// A user as read (None: no such user), with when it was read.
type CachedUser = (Stamp, Option<Arc<UserRecord>>);

pub struct AuthCache {
    redis: Arc<Redis>,
    users: Cache<(TenantId, Uuid), CachedUser>,
    revoked: Cache<(TenantId, String), (Stamp, bool)>,
    /// Each tenant's status (None: no such tenant stored).
    tenants: Cache<TenantId, (Stamp, Option<TenantStatus>)>,
    heard: Arc<AtomicU64>,
}

impl AuthCache {
    /// Starts listening for invalidations; `None` when the TTL is zero.
    pub fn start(redis: Arc<Redis>) -> Option<Arc<AuthCache>> {
        let (ttl, capacity) = (redis.settings().auth_cache_ttl, redis.settings().auth_cache_capacity);
        if ttl.is_zero() {
            return None;
        }
        let cache = Arc::new(AuthCache {
            users: Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
            revoked: Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
            tenants: Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
            heard: Arc::default(),
            redis: redis.clone(),
        });
        let heard = redis.listen(CHANNEL, QUEUE);
        tokio::spawn(listen(Arc::downgrade(&cache), heard));
        Some(cache)
    }

    fn stamp(&self) -> Option<Stamp> {
        let health = self.redis.health();
        health
            .is_subscribed()
            .then(|| Stamp { generation: health.generation(), heard: self.heard.load(Ordering::Acquire) })
    }

    /// Whether the token is revoked, from the cache or the store.
    pub async fn is_token_revoked(&self, store: &SharedStore, tenant: TenantId, jti: &str) -> StoreResult<bool> {
        let before = self.stamp();
        let key = (tenant, jti.to_string());
        if let (Some(now), Some((at, revoked))) = (before, self.revoked.get(&key)) {
            if at.generation == now.generation {
                return Ok(revoked);
            }
        }
        let revoked = store.is_token_revoked(tenant, jti).await?;
        if let Some(before) = before.filter(|b| self.stamp() == Some(*b)) {
            self.revoked.insert(key, (before, revoked));
        }
        Ok(revoked)
    }

    /// The user as stored, from the cache or the store.
    pub async fn user(&self, store: &SharedStore, tenant: TenantId, id: Uuid) -> StoreResult<Option<Arc<UserRecord>>> {
        let before = self.stamp();
        if let (Some(now), Some((at, user))) = (before, self.users.get(&(tenant, id))) {
            if at.generation == now.generation {
                return Ok(user);
            }
        }
        let user = store.get_user(tenant, id).await?.map(Arc::new);
        if let Some(before) = before.filter(|b| self.stamp() == Some(*b)) {
            self.users.insert((tenant, id), (before, user.clone()));
        }
        Ok(user)
    }

    /// The tenant's status, from the cache or the store.
    pub async fn tenant_status(&self, store: &SharedStore, tenant: TenantId) -> StoreResult<Option<TenantStatus>> {
        let before = self.stamp();
        if let (Some(now), Some((at, status))) = (before, self.tenants.get(&tenant)) {
            if at.generation == now.generation {
                return Ok(status);
            }
        }
        let status = store.get_tenant(tenant).await?.map(|t| t.status);
        if let Some(before) = before.filter(|b| self.stamp() == Some(*b)) {
            self.tenants.insert(tenant, (before, status));
        }
        Ok(status)
    }

    /// Forgets a tenant's status here and on every other instance.
    pub async fn forget_tenant(&self, tenant: TenantId) {
        self.announce(Invalidation::Tenant { tenant }).await;
    }

    /// Forgets a user here and on every other instance.
    pub async fn forget_user(&self, tenant: TenantId, id: Uuid) {
        self.announce(Invalidation::User { tenant, id }).await;
    }

    /// Forgets a token's revocation state here and on every other instance.
    pub async fn forget_token(&self, tenant: TenantId, jti: &str) {
        self.announce(Invalidation::Token { tenant, jti: jti.to_string() }).await;
    }

    async fn announce(&self, change: Invalidation) {
        // Here at once: this instance's next request must see the change.
        self.apply(&change);
        let payload = match serde_json::to_vec(&change) {
            Ok(payload) => payload,
            Err(e) => return tracing::error!(error = %e, "cannot encode an auth cache invalidation"),
        };
        if let Err(e) = self.redis.publish(CHANNEL, payload).await {
            // Instances that cannot hear Redis do not use their cache either;
            // one that still can keeps the entry at most auth_cache_ttl.
            tracing::warn!(error = %e, "cannot publish an auth cache invalidation");
        }
    }

    fn apply(&self, change: &Invalidation) {
        self.heard.fetch_add(1, Ordering::AcqRel);
        match change {
            Invalidation::User { tenant, id } => self.users.invalidate(&(*tenant, *id)),
            Invalidation::Token { tenant, jti } => self.revoked.invalidate(&(*tenant, jti.clone())),
            Invalidation::Tenant { tenant } => self.tenants.invalidate(tenant),
        }
    }
}

/// Applies what the channel says until the cache is dropped.
async fn listen(cache: std::sync::Weak<AuthCache>, mut heard: tokio::sync::mpsc::Receiver<Vec<u8>>) {
    while let Some(payload) = heard.recv().await {
        let Some(cache) = cache.upgrade() else { return };
        match serde_json::from_slice::<Invalidation>(&payload) {
            Ok(change) => cache.apply(&change),
            Err(e) => {
                // Unreadable: it named something, so forget everything.
                tracing::warn!(error = %e, "unreadable auth cache invalidation; clearing the cache");
                cache.heard.fetch_add(1, Ordering::AcqRel);
                cache.users.invalidate_all();
                cache.revoked.invalidate_all();
                cache.tenants.invalidate_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidations_read_back_as_written() {
        let change = Invalidation::Token { tenant: TenantId::default(), jti: "j1".into() };
        let json = serde_json::to_string(&change).unwrap();
        assert!(json.contains("\"kind\":\"token\""), "{json}");
        assert_eq!(serde_json::from_str::<Invalidation>(&json).unwrap(), change);
    }
}
