//! `[messaging]`: which back-end keeps the bus's messages, and its timings.

use std::time::Duration;

use hotswap_actors::messaging::{RetryPolicy, MAX_PAYLOAD_BYTES};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessagingBackend {
    /// In the process; lost on exit. For development and tests.
    Memory,
    /// Tables in the `[store]` database.
    Postgres,
    /// NATS JetStream streams and consumers.
    Jetstream,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagingSettings {
    pub backend: MessagingBackend,
    /// The original `/api/messages` API creates a topic (FanOut, no schema)
    /// the first time it names one.
    pub auto_create_topics: bool,
    /// The wait before the first retry of a failed delivery.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// Each further retry waits this many times longer ...
    pub retry_multiplier: u32,
    /// ... up to this.
    #[serde(with = "humantime_serde")]
    pub retry_cap: Duration,
    /// Largest message payload in bytes (at most 1 MiB).
    pub max_payload_bytes: usize,
    /// ExactlyOnce topics answer a repeated idempotency key this long.
    #[serde(with = "humantime_serde")]
    pub idempotency_window: Duration,
    /// How often acknowledged and expired messages past their topic's
    /// retention are removed.
    #[serde(with = "humantime_serde")]
    pub retention_sweep_interval: Duration,
    /// The longest a consume request may long-poll (`waitMs`).
    #[serde(with = "humantime_serde")]
    pub max_consume_wait: Duration,
    /// How long a push subscription's endpoint may take to answer a delivery.
    #[serde(with = "humantime_serde")]
    pub push_timeout: Duration,
    /// Addresses or networks push endpoints may reach beyond public
    /// addresses (loopback, link-local, private... are refused otherwise;
    /// `push_policy`).
    pub push_allowed_networks: Vec<String>,
    /// The NATS server of the `jetstream` back-end.
    pub nats_url: crate::crypto::ServiceUrl,
    /// Starts every stream, subject and bucket name the `jetstream`
    /// back-end makes (letters, digits, `_`), so installations can share a server.
    pub nats_prefix: String,
    /// One HotSwap instance per `nats_prefix`: how long its hold on the
    /// prefix lasts unrenewed before another instance may take it over
    /// (a killed one on the same host is taken over at once).
    #[serde(with = "humantime_serde")]
    pub nats_owner_lease: Duration,
    /// Topics one tenant may have. The bus keeps state per topic, so without
    /// a limit one tenant could grow it for everyone.
    pub max_topics_per_tenant: usize,
    /// Subscriptions one tenant may have, over all its topics.
    pub max_subscriptions_per_tenant: usize,
}

impl Default for MessagingSettings {
    fn default() -> Self {
        let retry = RetryPolicy::default();
        MessagingSettings {
            backend: MessagingBackend::Memory,
            auto_create_topics: true,
            retry_initial: retry.initial,
            retry_multiplier: retry.multiplier,
            retry_cap: retry.cap,
            max_payload_bytes: MAX_PAYLOAD_BYTES,
            idempotency_window: Duration::from_secs(24 * 3600),
            retention_sweep_interval: Duration::from_secs(60),
            max_consume_wait: Duration::from_secs(30),
            push_timeout: Duration::from_secs(10),
            push_allowed_networks: Vec::new(),
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_prefix: "HS".into(),
            nats_owner_lease: Duration::from_secs(15),
            max_topics_per_tenant: 1_000,
            max_subscriptions_per_tenant: 5_000,
        }
    }
}

impl MessagingSettings {
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { initial: self.retry_initial, multiplier: self.retry_multiplier, cap: self.retry_cap }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.retry_initial.is_zero() || self.retry_cap < self.retry_initial {
            return Err("messaging.retry_initial must be above zero and at most messaging.retry_cap".into());
        }
        if self.max_topics_per_tenant == 0 || self.max_subscriptions_per_tenant == 0 {
            return Err("messaging.max_topics_per_tenant and max_subscriptions_per_tenant must be at least 1".into());
        }
        super::push_policy::PushAddressPolicy::new(&self.push_allowed_networks)?;
        if self.retry_multiplier == 0 {
            return Err("messaging.retry_multiplier must be at least 1".into());
        }
        if self.max_payload_bytes == 0 || self.max_payload_bytes > MAX_PAYLOAD_BYTES {
            return Err(format!("messaging.max_payload_bytes must be between 1 and {MAX_PAYLOAD_BYTES}"));
        }
        let prefix_ok = !self.nats_prefix.is_empty()
            && self.nats_prefix.len() <= 32
            && self.nats_prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !prefix_ok {
            return Err("messaging.nats_prefix must be 1-32 letters, digits or '_'".into());
        }
        let positive = [
            ("idempotency_window", self.idempotency_window),
            ("retention_sweep_interval", self.retention_sweep_interval),
            ("max_consume_wait", self.max_consume_wait),
            ("push_timeout", self.push_timeout),
            ("nats_owner_lease", self.nats_owner_lease),
        ];
        match positive.iter().find(|(_, d)| d.is_zero()) {
            Some((key, _)) => Err(format!("messaging.{key} must be above zero")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_a_zero_multiplier_is_not() {
        assert_eq!(MessagingSettings::default().validate(), Ok(()));
        let bad = MessagingSettings { retry_multiplier: 0, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("retry_multiplier"));
        let big = MessagingSettings { max_payload_bytes: MAX_PAYLOAD_BYTES + 1, ..Default::default() };
        assert!(big.validate().is_err());
        let net = MessagingSettings { push_allowed_networks: vec!["10.0.0.0/33".into()], ..Default::default() };
        assert!(net.validate().unwrap_err().contains("push_allowed_networks"));
    }
}
