//! The settings of identity and API security: `[auth]`, `[rate_limit]` and
//! `[security_headers]`.

use std::time::Duration;

use serde::Deserialize;

use crate::crypto::Secret;

/// Secrets that shipped in a file somewhere, and so protect nothing.
pub const KNOWN_DEFAULT_SECRETS: [&str; 2] = [
    "hotswap-development-only-jwt-secret-change-me-0123456789",
    "DistributedKernelSecretKey-ChangeInProduction-MinimumLength32Characters",
];

/// The shortest JWT secret accepted, in bytes (HS256 wants 256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// The most clock leeway token checks may allow.
pub const MAX_TOKEN_LEEWAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    #[serde(with = "humantime_serde")]
    pub token_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub token_leeway: Duration,
    pub bcrypt_cost: u32,
    pub max_failed_logins: u32,
    #[serde(with = "humantime_serde")]
    pub lockout_duration: Duration,
    pub min_password_length: usize,
    pub demo_users: bool,
}

/// Requests per minute per client for each endpoint group; 0 lifts a
/// group's limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub global: u32,
    pub login: u32,
    pub deployments: u32,
    pub clusters: u32,
    pub approvals: u32,
    /// Peers whose X-Forwarded-For and X-Forwarded-Proto headers are believed:
    /// addresses such as 10.0.0.7 or networks such as 10.0.0.0/8.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityHeaderSettings {
    pub content_security_policy: String,
    pub referrer_policy: String,
    pub permissions_policy: String,
    /// Sent only over TLS, ours or a trusted proxy's (X-Forwarded-Proto: https).
    pub strict_transport_security: String,
}
