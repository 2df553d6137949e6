//! `[agent]`: how the server keeps sessions with `hotswap agent` processes.

use std::time::Duration;

use hotswap_actors::domain::HealthLimits;
use serde::Deserialize;

/// What to do when a host reconnects with modules other than the desired ones.
pub use hotswap_actors::domain::DriftPolicy;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// How often agents send a heartbeat (told to each agent on connect).
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// A session with no frame for this long is closed; the node is then unreachable.
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// Lifetime of an enrolment token when the request names none.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// The longest lifetime an enrolment token may be given.
    #[serde(with = "humantime_serde")]
    pub max_token_ttl: Duration,
    /// How long the server waits for an agent to answer one command
    /// (download, verification and hooks included).
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    pub drift: DriftPolicy,
    /// How long a revoked or expired enrolment token is kept (listed, and
    /// found by its id) before the sweep forgets it, unless an agent
    /// that joined with it is still known; zero keeps every token.
    #[serde(with = "humantime_serde")]
    pub token_retention: Duration,
    /// How often that sweep runs (once per cluster of instances).
    #[serde(with = "humantime_serde")]
    pub token_sweep_interval: Duration,
    /// A host whose CPU use (the whole host's, as its agent reports it) is
    /// above this, in percent, is unhealthy; 100 never.
    #[serde(default = "AgentSettings::default_host_limit")]
    pub host_cpu_limit: f64,
    /// The same for the host's memory use.
    #[serde(default = "AgentSettings::default_host_limit")]
    pub host_memory_limit: f64,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(15),
            token_ttl: Duration::from_secs(24 * 3600),
            max_token_ttl: Duration::from_secs(30 * 24 * 3600),
            command_timeout: Duration::from_secs(60),
            drift: DriftPolicy::Reconcile,
            token_retention: Duration::from_secs(30 * 24 * 3600),
            token_sweep_interval: Duration::from_secs(3600),
            host_cpu_limit: Self::default_host_limit(),
            host_memory_limit: Self::default_host_limit(),
        }
    }
}

impl AgentSettings {
    fn default_host_limit() -> f64 {
        90.0
    }

    /// What agent hosts' reports are judged by: the host limits, and the
    /// error rate limit every node has.
    pub fn host_limits(&self) -> HealthLimits {
        HealthLimits {
            cpu_percent: self.host_cpu_limit,
            memory_percent: self.host_memory_limit,
            ..HealthLimits::default()
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        for (name, limit) in [("host_cpu_limit", self.host_cpu_limit), ("host_memory_limit", self.host_memory_limit)] {
            if !(limit > 0.0 && limit <= 100.0) {
                return Err(format!("agent.{name} must be a percentage above 0 and at most 100 (100: never unhealthy for it), not {limit}"));
            }
        }
        if self.heartbeat_interval.is_zero() {
            return Err("agent.heartbeat_interval must be positive".into());
        }
        if self.heartbeat_timeout <= self.heartbeat_interval {
            return Err("agent.heartbeat_timeout must be longer than agent.heartbeat_interval".into());
        }
        if self.token_ttl.is_zero() || self.token_ttl > self.max_token_ttl {
            return Err("agent.token_ttl must be positive and at most agent.max_token_ttl".into());
        }
        if self.command_timeout.is_zero() {
            return Err("agent.command_timeout must be positive".into());
        }
        if self.token_sweep_interval.is_zero() {
            return Err(
                "agent.token_sweep_interval must be positive (token_retention = \"0s\" keeps every token)".into()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_limits_are_percentages_above_zero_up_to_a_hundred() {
        let limits = |cpu: f64, memory: f64| AgentSettings {
            host_cpu_limit: cpu,
            host_memory_limit: memory,
            ..AgentSettings::default()
        };
        assert!(limits(90.0, 90.0).validate().is_ok());
        assert!(limits(100.0, 50.5).validate().is_ok(), "100 never counts the host's use");
        for (cpu, memory) in [(0.0, 90.0), (90.0, 100.5), (f64::NAN, 90.0), (-5.0, 90.0)] {
            let refused = limits(cpu, memory).validate().unwrap_err();
            assert!(refused.contains("must be a percentage above 0 and at most 100"), "{refused}");
        }
        let judged = limits(97.0, 95.0).host_limits();
        assert_eq!((judged.cpu_percent, judged.memory_percent, judged.error_rate_percent), (97.0, 95.0, 5.0));
    }
}
