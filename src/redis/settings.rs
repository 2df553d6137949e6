//! `[redis]`: the backplane shared by several instances. An empty `url`
//! means no Redis: one instance works alone, as before.

use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]`; empty: no Redis.
    pub url: String,
    /// Every key and channel starts with this, so that several deployments
    /// (or test runs) can share one Redis.
    pub key_prefix: String,
    /// A command that takes longer counts as Redis being down.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// How long an authenticated request may reuse a user or revocation read
    /// by an earlier one; invalidations over Redis end it sooner. Zero: off.
    #[serde(with = "humantime_serde")]
    pub auth_cache_ttl: Duration,
    /// The most users and tokens the auth cache keeps each.
    pub auth_cache_capacity: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: String::new(),
            key_prefix: "hotswap".into(),
            command_timeout: Duration::from_millis(500),
            auth_cache_ttl: Duration::from_secs(30),
            auth_cache_capacity: 100_000,
        }
    }
}

impl RedisSettings {
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.enabled() {
            redis::Client::open(self.url.trim()).map_err(|e| format!("redis.url is not a Redis URL: {e}"))?;
        }
        if self.key_prefix.trim().is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return Err("redis.key_prefix must be a word without spaces".into());
        }
        if self.command_timeout.is_zero() {
            return Err("redis.command_timeout must be above zero".into());
        }
        Ok(())
    }
}

/// The URL may carry a password: it is never printed.
impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &if self.enabled() { "<set>" } else { "" })
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .field("auth_cache_ttl", &self.auth_cache_ttl)
            .field("auth_cache_capacity", &self.auth_cache_capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_and_prefixes_are_refused_and_passwords_never_printed() {
        assert!(RedisSettings::default().validate().is_ok());
        let bad = RedisSettings { url: "http://x".into(), ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("redis.url"));
        let spaced = RedisSettings { key_prefix: "a b".into(), ..Default::default() };
        assert!(spaced.validate().is_err());
        let secret = RedisSettings { url: "redis://:hunter2@127.0.0.1:6379".into(), ..Default::default() };
        assert!(secret.validate().is_ok());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
