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
/// The cheapest bcrypt cost accepted outside `server.insecure_dev_mode`:
/// below it an offline guess at a stolen hash costs too little.
pub const MIN_SAFE_BCRYPT_COST: u32 = 10;

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
    /// Wrong passwords in a row from one address before the account is
    /// locked for that address.
    pub max_failed_logins: u32,
    /// Wrong passwords in a row from anywhere before the account is locked
    /// for every address (the ceiling against guessing from many addresses;
    /// never below `max_failed_logins`).
    pub max_failed_logins_per_account: u32,
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
    /// IPv6 clients are counted by network: the first this many bits (64:
    /// one subscriber's usual allocation). 128 counts each address.
    pub ipv6_prefix: u8,
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

impl AuthSettings {
    /// The checks `[auth]` can make on its own; those that depend on
    /// `server.insecure_dev_mode` are the configuration's.
    pub fn validate(&self) -> Result<(), String> {
        if self.jwt_secret.expose().len() < MIN_JWT_SECRET_BYTES {
            return Err(format!(
                "auth.jwt_secret must be at least {MIN_JWT_SECRET_BYTES} bytes (HOTSWAP__AUTH__JWT_SECRET)"
            ));
        }
        if self.token_leeway > MAX_TOKEN_LEEWAY {
            return Err(format!("auth.token_leeway must be at most {}s", MAX_TOKEN_LEEWAY.as_secs()));
        }
        if self.token_lifetime < Duration::from_secs(1) {
            return Err("auth.token_lifetime must be at least 1s".into());
        }
        if !(4..=31).contains(&self.bcrypt_cost) {
            return Err("auth.bcrypt_cost must be between 4 and 31".into());
        }
        if self.max_failed_logins == 0 {
            return Err("auth.max_failed_logins must be at least 1".into());
        }
        if self.jwt_issuer.trim().is_empty() || self.jwt_audience.trim().is_empty() {
            return Err("auth.jwt_issuer and auth.jwt_audience must not be empty".into());
        }
        if self.min_password_length < 8 {
            return Err("auth.min_password_length must be at least 8".into());
        }
        Ok(())
    }

    /// Whether the signing secret is one published in a file somewhere.
    pub fn has_published_secret(&self) -> bool {
        KNOWN_DEFAULT_SECRETS.contains(&self.jwt_secret.expose())
    }
}

impl RateLimitSettings {
    pub fn validate(&self) -> Result<(), String> {
        for proxy in &self.trusted_proxies {
            if super::client::IpNet::parse(proxy).is_none() {
                return Err(format!(
                    "rate_limit.trusted_proxies: '{proxy}' is not an address or network such as 10.0.0.0/8"
                ));
            }
        }
        if !(1..=128).contains(&self.ipv6_prefix) {
            return Err("rate_limit.ipv6_prefix must lie between 1 and 128".into());
        }
        Ok(())
    }
}
