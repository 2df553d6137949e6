//! Identity and API security: tokens, passwords, users, the authentication
//! middleware and role guard, rate limits and security headers.
//!
//! - `jwt`: issuing and verifying HS256 tokens
//! - `password`: bcrypt on the blocking pool, with a dummy hash for unknown users
//! - `principal`: the caller of a request, as the middleware found it
//! - `bearer`: where a request's token is read from (header, live subprotocol, query)
//! - `middleware`: the authentication middleware (bearer token to `Principal`)
//! - `extractors`: `Caller` and `Tenant`
//! - `require_role`: the per-route role guard and the `/metrics` guard
//! - `users`: login, demo users and user management over the store
//! - `own_password`: a user changing its own password
//! - `rate_limit`: per-group windows keyed by user or client address
//! - `client`: client addresses behind trusted proxies
//! - `span_client`: the request span records that address, not a forwarded header's
//! - `headers`: security headers on every response

mod audited;
pub mod auth_cache;
pub mod bearer;
pub mod client;
pub mod extractors;
pub mod headers;
pub mod jwt;
pub mod key_refresh;
pub mod login_failures;
pub mod middleware;
mod own_password;
pub mod password;
pub mod principal;
pub mod rate_limit;
pub mod require_role;
pub mod route_access;
pub mod session_signals;
pub mod settings;
pub mod shared_windows;
pub mod span_client;
mod tenant_override;
pub use tenant_override::{acting_tenant, OverrideUse};
pub mod users;

use hotswap_actors::domain::{LockoutPolicy, TenantId, TenantStatus};
use hotswap_actors::store::{SharedStore, StoreError};

pub use audited::Audited;
pub use extractors::{Caller, Tenant, TENANT_OVERRIDE};
use jwt::{TokenError, TokenService};
pub use middleware::authenticate;
use password::PasswordHasher;
pub use principal::{principal_of, Principal};
pub use require_role::{metrics_guard, RequireRole};
pub use route_access::RouteAccess;
pub use settings::AuthSettings;

/// What authentication and user management need, shared by every worker.
pub struct AuthState {
    pub tokens: TokenService,
    pub passwords: PasswordHasher,
    pub store: SharedStore,
    pub settings: AuthSettings,
    /// Wrong passwords per (username, address): the first lockout.
    pub login_failures: login_failures::LoginFailures,
    /// Revocations and users read by earlier requests (with Redis only).
    pub cache: Option<std::sync::Arc<auth_cache::AuthCache>>,
    /// Tells open live sessions to check themselves when access changes.
    pub signals: session_signals::SessionSignals,
    /// Reloads the key ring when a token names a key not loaded here yet.
    pub key_refresh: key_refresh::KeyRefresh,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState").field("tokens", &self.tokens).field("passwords", &self.passwords).finish()
    }
}

impl AuthState {
    pub async fn new(settings: &AuthSettings, store: SharedStore) -> Result<AuthState, String> {
        Ok(AuthState {
            tokens: TokenService::new(settings)?,
            passwords: PasswordHasher::new(settings.bcrypt_cost).await.map_err(|e| e.to_string())?,
            store,
            settings: settings.clone(),
            login_failures: login_failures::LoginFailures::default(),
            cache: None,
            signals: Default::default(),
            key_refresh: Default::default(),
        })
    }

    pub fn lockout_policy(&self) -> LockoutPolicy {
        // The store locks the account for every address only at the
        // per-account ceiling; per address, `login_failures` locks first.
        LockoutPolicy {
            max_failed_attempts: self.settings.max_failed_logins_per_account.max(self.settings.max_failed_logins),
            duration: self.settings.lockout_duration,
        }
    }

    /// Forgets revocations no token can need any more: those of tokens past
    /// `exp` plus the leeway verification still grants them (forgetting at
    /// `exp` would let a revoked token back in for the leeway).
    pub async fn purge_revocations(&self, now: chrono::DateTime<chrono::Utc>) -> Result<u64, StoreError> {
        let leeway = chrono::Duration::from_std(self.settings.token_leeway).unwrap_or(chrono::Duration::zero());
        let cutoff = now.checked_sub_signed(leeway).unwrap_or(now);
        self.store.purge_expired_tokens(cutoff).await
    }

    /// Tells every instance that a tenant's status changed: cached statuses
    /// are forgotten and its open live sessions check themselves.
    pub async fn tenant_changed(&self, tenant: TenantId) {
        if let Some(cache) = &self.cache {
            cache.forget_tenant(tenant).await;
        }
        self.signals.tenant_changed(tenant).await;
    }

    /// A bearer token as the caller it names: signature, lifetime, issuer and
    /// audience, then not revoked, then a user that exists and is active.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, TokenError> {
        self.authenticate_with(token, true).await
    }

    /// As `authenticate`, reading the store even with a cache: for a live
    /// session told that its user changed, which must not trust a cached
    /// answer that the change's invalidation may not have reached yet.
    pub async fn authenticate_uncached(&self, token: &str) -> Result<Principal, TokenError> {
        self.authenticate_with(token, false).await
    }

    async fn authenticate_with(&self, token: &str, cached: bool) -> Result<Principal, TokenError> {
        let claims = match self.tokens.verify(token) {
            // Rotated on another instance since this one last loaded the ring.
            Err(TokenError::UnknownKey) if self.key_refresh.refresh().await => self.tokens.verify(token)?,
            verified => verified?,
        };
        let store_down = |e: StoreError| {
            tracing::warn!(error = %e, "cannot check a token against the store");
            TokenError::Unavailable
        };
        let (revoked, user, tenant_status) = match self.cache.as_ref().filter(|_| cached) {
            Some(cache) => (
                cache.is_token_revoked(&self.store, claims.tenant_id, &claims.jti).await,
                cache.user(&self.store, claims.tenant_id, claims.sub).await,
                cache.tenant_status(&self.store, claims.tenant_id).await,
            ),
            None => match self.store.token_holder(claims.tenant_id, claims.sub, &claims.jti).await {
                Ok(holder) => (Ok(holder.revoked), Ok(holder.user.map(std::sync::Arc::new)), Ok(holder.tenant_status)),
                Err(e) => (Err(e), Ok(None), Ok(None)),
            },
        };
        if revoked.map_err(store_down)? {
            return Err(TokenError::Revoked);
        }
        let user = user.map_err(store_down)?;
        let Some(user) = user.filter(|u| u.is_active) else {
            return Err(TokenError::UnknownUser);
        };
        // A deleted tenant's users keep their records but no access: their
        // tokens end with it, not when they expire.
        let tenant_status = tenant_status.map_err(store_down)?;
        if matches!(tenant_status, Some(TenantStatus::Deleted | TenantStatus::Deprovisioning)) {
            return Err(TokenError::TenantDeleted);
        }
        if claims.pwv != jwt::password_fingerprint(&user) {
            return Err(TokenError::Revoked);
        }
        Ok(Principal {
            user_id: user.id,
            tenant_id: user.tenant_id,
            username: user.username.clone(),
            email: user.email.clone(),
            roles: user.roles.clone(),
            expires_at: claims.expires_at(),
            jti: claims.jti.clone(),
            tenant_suspended: tenant_status == Some(TenantStatus::Suspended),
        })
    }
}
