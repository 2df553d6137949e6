//! Rate limits per endpoint group, after authentication: keyed by user when
//! the request carries a valid token, by client address otherwise. Each
//! group has its own window (GCRA from governor: a burst of N, refilled
//! evenly over a minute). Logins are also counted per (username, address):
//! a window per username alone, shared by every address, would let anyone
//! keep a chosen user from signing in by sending a wrong password now and
//! then. Guessing spread over many addresses is bounded by the per-account
//! lockout instead (`auth.max_failed_logins_per_account`).
//!
//! With Redis (`[redis] url`), the windows are kept there and shared by every
//! instance (`shared_windows`). When Redis does not answer, each instance
//! falls back to its own windows here, which lets reads and writes through
//! up to the limit per instance (open), except logins, which are refused
//! with 503 until Redis answers (closed): a guesser must not gain an
//! allowance per instance while the shared count is out of reach.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use super::client::{network_key, TrustedProxies};
use super::principal::principal_of;
use super::settings::RateLimitSettings;
use super::shared_windows::SharedWindows;
use crate::web::ApiError;

/// Who a window belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    User(Uuid),
    Address(IpAddr),
    /// The peer address is unknown (a test harness, a Unix socket).
    Unknown,
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::User(id) => write!(f, "user:{id}"),
            ClientKey::Address(ip) => write!(f, "ip:{ip}"),
            ClientKey::Unknown => f.write_str("unknown"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Login,
    Deployments,
    Clusters,
    Approvals,
    Global,
}

impl Group {
    /// The group's name in shared window keys.
    fn name(self) -> &'static str {
        match self {
            Group::Login => "login",
            Group::Deployments => "deployments",
            Group::Clusters => "clusters",
            Group::Approvals => "approvals",
            Group::Global => "global",
        }
    }
}

/// The group of a request, or `None` for paths that are never limited.
///
/// The deployments and approvals groups guard what changes things (runs
/// created, verbs, decisions); reading runs and approvals counts in the
/// global window, since a client following a run (the dashboard's run page,
/// `hotswap deploy --watch`) reads it again after every step and would
/// otherwise be refused after ten reads a minute.
pub fn group_of(method: &Method, path: &str) -> Option<Group> {
    let under = |prefix: &str| path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
    if path == "/health" || path == "/health/ready" {
        return None;
    }
    // A password change checks the current password: it is limited as a login is.
    if *method == Method::POST && matches!(path, "/api/v1/authentication/login" | "/api/v1/authentication/password") {
        return Some(Group::Login);
    }
    let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    Some(if under("/api/v1/deployments") && !reads {
        Group::Deployments
    } else if under("/api/v1/clusters") {
        Group::Clusters
    } else if under("/api/v1/approvals") && !reads {
        Group::Approvals
    } else {
        Group::Global
    })
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// One window per key for one group.
struct Window<K: Hash + Eq + Clone> {
    limit: u32,
    limiter: Keyed<K>,
}

impl<K: Hash + Eq + Clone> Window<K> {
    fn new(per_minute: u32) -> Option<Window<K>> {
        let limit = NonZeroU32::new(per_minute)?;
        let limiter = RateLimiter::keyed(Quota::per_minute(limit)).with_middleware::<StateInformationMiddleware>();
        Some(Window { limit: limit.get(), limiter })
    }

    fn check(&self, key: &K) -> Decision {
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let refill = snapshot.quota().replenish_interval() * (self.limit - remaining.min(self.limit));
                Decision { limit: self.limit, remaining, reset_after: refill, retry_after: None }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                Decision { limit: self.limit, remaining: 0, reset_after: wait, retry_after: Some(wait) }
            }
        }
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The outcome of one check, rendered as X-RateLimit-* headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub limit: u32,
    pub remaining: u32,
    /// Until the window is full again.
    pub reset_after: Duration,
    /// Set when the request is refused.
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// Whole seconds to wait, at least one.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(0).max(1)
    }

    pub fn headers(&self) -> [(HeaderName, HeaderValue); 3] {
        let reset = SystemTime::now()
            .checked_add(self.reset_after)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .unwrap_or(0);
        [
            (HeaderName::from_static("x-ratelimit-limit"), HeaderValue::from(self.limit)),
            (HeaderName::from_static("x-ratelimit-remaining"), HeaderValue::from(self.remaining)),
            (HeaderName::from_static("x-ratelimit-reset"), HeaderValue::from(reset)),
        ]
    }

    /// The tighter of two decisions for one request.
    fn tighter(self, other: Decision) -> Decision {
        match (self.retry_after.is_some(), other.retry_after.is_some()) {
            (true, false) => self,
            (false, true) => other,
            _ if other.remaining < self.remaining => other,
            _ => self,
        }
    }
}

/// Every group's windows.
pub struct RateLimits {
    global: Option<Window<ClientKey>>,
    login: Option<Window<ClientKey>>,
    login_username: Option<Window<(String, Option<IpAddr>)>>,
    deployments: Option<Window<ClientKey>>,
    clusters: Option<Window<ClientKey>>,
    approvals: Option<Window<ClientKey>>,
    proxies: TrustedProxies,
    ipv6_prefix: u8,
    /// The windows in Redis, when there is one; the ones above are then the
    /// fallback while it does not answer.
    shared: Option<SharedWindows>,
}

impl RateLimits {
    /// `None` when rate limiting is off.
    pub fn new(settings: &RateLimitSettings) -> Option<RateLimits> {
        settings.enabled.then(|| RateLimits {
            global: Window::new(settings.global),
            login: Window::new(settings.login),
            login_username: Window::new(settings.login),
            deployments: Window::new(settings.deployments),
            clusters: Window::new(settings.clusters),
            approvals: Window::new(settings.approvals),
            proxies: TrustedProxies::new(&settings.trusted_proxies),
            ipv6_prefix: settings.ipv6_prefix,
            shared: None,
        })
    }

    /// Counts in Redis from now on, shared with every other instance.
    pub fn shared_through(mut self, shared: SharedWindows) -> RateLimits {
        self.shared = Some(shared);
        self
    }

    fn window(&self, group: Group) -> Option<&Window<ClientKey>> {
        match group {
            Group::Login => self.login.as_ref(),
            Group::Deployments => self.deployments.as_ref(),
            Group::Clusters => self.clusters.as_ref(),
            Group::Approvals => self.approvals.as_ref(),
            Group::Global => self.global.as_ref(),
        }
    }

    /// The decision for one request of `group` from `key`: from the shared
    /// window, or from this instance's own while Redis does not answer
    /// (refused with 503 for logins; see the module documentation).
    pub async fn check(&self, group: Group, key: &ClientKey) -> Result<Option<Decision>, ApiError> {
        let Some(window) = self.window(group) else { return Ok(None) };
        self.shared_or_local(group.name(), &key.to_string(), window.limit, group == Group::Login, || window.check(key))
            .await
            .map(Some)
    }

    async fn shared_or_local(
        &self,
        group: &str,
        key: &str,
        limit: u32,
        closed: bool,
        local: impl FnOnce() -> Decision,
    ) -> Result<Decision, ApiError> {
        let Some(shared) = &self.shared else { return Ok(local()) };
        match shared.check(group, key, limit).await {
            Ok(decision) => Ok(decision),
            Err(e) if closed => {
                tracing::warn!(error = %e, "refusing a login: the shared rate limit cannot be checked");
                Err(ApiError::Unavailable("logins are paused while the shared rate limit cannot be checked".into()))
            }
            Err(_) => Ok(local()),
        }
    }

    /// The client's address as the windows count it (a network for IPv6).
    pub fn client_address(&self, req: &HttpRequest) -> Option<IpAddr> {
        self.proxies.client_ip(req).map(|ip| network_key(ip, self.ipv6_prefix))
    }

    /// The per-(username, address) login window, checked once the body names
    /// the user. Combined with `by_address`, the decision of the middleware.
    pub async fn check_login_username(
        &self,
        username: &str,
        from: Option<IpAddr>,
        by_address: Option<Decision>,
    ) -> Result<Option<Decision>, ApiError> {
        let by_name = match &self.login_username {
            Some(w) => {
                let pair = (username.to_lowercase(), from);
                let address = from.map(|ip| ip.to_string()).unwrap_or_default();
                // Hashed: a username is whatever the body says, of any length.
                let shared_key = crate::crypto::sha256_hex(format!("{}\n{address}", pair.0).as_bytes());
                Some(self.shared_or_local("login-user", &shared_key, w.limit, true, || w.check(&pair)).await?)
            }
            None => None,
        };
        Ok(match (by_name, by_address) {
            (Some(a), Some(b)) => Some(a.tighter(b)),
            (a, b) => a.or(b),
        })
    }

    /// Drops the state of keys whose windows are full again.
    pub fn forget_idle(&self) {
        for w in [&self.global, &self.login, &self.deployments, &self.clusters, &self.approvals].into_iter().flatten() {
            w.forget_idle();
        }
        if let Some(w) = &self.login_username {
            w.forget_idle();
        }
    }
}

/// The response of a refused request: 429 with Retry-After and the headers.
pub fn too_many(decision: Decision) -> ApiError {
    ApiError::TooManyRequests { retry_after: decision.retry_after_secs(), headers: decision.headers().to_vec() }
}

/// The rate-limit middleware: wrap it inside `authenticate`.
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(limits) = req.app_data::<web::Data<RateLimits>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    let Some(group) = group_of(req.method(), req.path()) else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    let key = match principal_of(req.request()) {
        Ok(p) => ClientKey::User(p.user_id),
        Err(_) => limits.client_address(req.request()).map(ClientKey::Address).unwrap_or(ClientKey::Unknown),
    };
    let decision = match limits.check(group, &key).await {
        Ok(Some(decision)) => decision,
        Ok(None) => return next.call(req).await.map(ServiceResponse::map_into_left_body),
        Err(refused) => return Ok(req.error_response(refused).map_into_right_body()),
    };
    if decision.retry_after.is_some() {
        return Ok(req.error_response(too_many(decision)).map_into_right_body());
    }
    // The login handler tightens the decision with its per-(username, address) window.
    req.extensions_mut().insert(decision);
    let mut res = next.call(req).await?;
    let decision = res.request().extensions().get::<Decision>().copied().unwrap_or(decision);
    if !res.headers().contains_key("x-ratelimit-limit") {
        for (name, value) in decision.headers() {
            res.headers_mut().insert(name, value);
        }
    }
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fall_into_their_groups() {
        assert_eq!(group_of(&Method::GET, "/health"), None);
        assert_eq!(group_of(&Method::POST, "/api/v1/authentication/login"), Some(Group::Login));
        assert_eq!(group_of(&Method::POST, "/api/v1/authentication/password"), Some(Group::Login));
        assert_eq!(group_of(&Method::GET, "/api/v1/authentication/me"), Some(Group::Global));
        assert_eq!(group_of(&Method::POST, "/api/v1/deployments"), Some(Group::Deployments));
        assert_eq!(group_of(&Method::POST, "/api/v1/deployments/x/pause"), Some(Group::Deployments));
        assert_eq!(group_of(&Method::GET, "/api/v1/deployments"), Some(Group::Global), "reads count globally");
        assert_eq!(group_of(&Method::GET, "/api/v1/deployments/x/events"), Some(Group::Global));
        assert_eq!(group_of(&Method::POST, "/api/v1/deploymentsx"), Some(Group::Global));
        assert_eq!(group_of(&Method::GET, "/api/v1/clusters/QA"), Some(Group::Clusters));
        assert_eq!(group_of(&Method::POST, "/api/v1/approvals/deployments/x/approve"), Some(Group::Approvals));
        assert_eq!(group_of(&Method::GET, "/api/v1/approvals/pending"), Some(Group::Global));
    }

    #[test]
    fn windows_count_down_and_refuse() {
        let w = Window::<ClientKey>::new(3).unwrap();
        let key = ClientKey::User(Uuid::new_v4());
        let remaining: Vec<u32> = (0..3).map(|_| w.check(&key).remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = w.check(&key);
        assert!(refused.retry_after.is_some());
        assert!((19..=20).contains(&refused.retry_after_secs()), "{refused:?}");
        // Another key has a window of its own.
        assert_eq!(w.check(&ClientKey::Unknown).remaining, 2);
        assert!(Window::<ClientKey>::new(0).is_none());
    }
}
