//! Settings the core reads. The root crate loads them from configuration files
//! and environment variables; here they are plain, already validated values.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::Environment;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    pub rolling_batch_size: usize,
    #[serde(with = "humantime_serde")]
    pub rolling_health_check_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub bluegreen_smoke_test_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub bluegreen_smoke_test_interval: Duration,
    pub canary_steps: Vec<u32>,
    #[serde(with = "humantime_serde")]
    pub canary_bake_time: Duration,
    #[serde(with = "humantime_serde")]
    pub node_request_timeout: Duration,
    pub restore_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub restore_retry_delay: Duration,
    /// Runs this process executes at once; a new run beyond it is refused
    /// (429 with Retry-After) rather than admitted to wait behind the others.
    #[serde(default = "PipelineSettings::default_max_active_runs")]
    pub max_active_runs: usize,
    /// When a canary's metrics count as a regression (`[pipeline.canary]`).
    #[serde(default)]
    pub canary: CanaryThresholds,
}

/// How far each metric of the canary nodes may rise over their own baseline,
/// in percent, before the step fails. A baseline below its floor counts as
/// the floor, so that a rise from nothing is measured against something.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CanaryThresholds {
    pub error_rate_rise_percent: f64,
    /// In percentage points of error rate.
    pub error_rate_floor: f64,
    pub latency_rise_percent: f64,
    /// In milliseconds.
    pub latency_floor_ms: f64,
    pub cpu_rise_percent: f64,
    pub memory_rise_percent: f64,
    /// In percent of CPU or memory.
    pub usage_floor: f64,
}

impl Default for CanaryThresholds {
    fn default() -> Self {
        CanaryThresholds {
            error_rate_rise_percent: 50.0,
            error_rate_floor: 0.1,
            latency_rise_percent: 100.0,
            latency_floor_ms: 1.0,
            cpu_rise_percent: 30.0,
            memory_rise_percent: 30.0,
            usage_floor: 1.0,
        }
    }
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            rolling_batch_size: 2,
            rolling_health_check_delay: Duration::from_secs(30),
            bluegreen_smoke_test_timeout: Duration::from_secs(300),
            bluegreen_smoke_test_interval: Duration::from_secs(5),
            canary_steps: vec![10, 30, 50, 100],
            canary_bake_time: Duration::from_secs(900),
            node_request_timeout: Duration::from_secs(10),
            restore_attempts: 5,
            restore_retry_delay: Duration::from_millis(200),
            max_active_runs: Self::default_max_active_runs(),
            canary: CanaryThresholds::default(),
        }
    }
}

impl PipelineSettings {
    fn default_max_active_runs() -> usize {
        1_000
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.max_active_runs == 0 {
            return Err("pipeline.max_active_runs must be at least 1".into());
        }
        if self.rolling_batch_size == 0 {
            return Err("pipeline.rolling_batch_size must be at least 1".into());
        }
        validate_canary_steps(&self.canary_steps).map_err(|e| format!("pipeline.canary_steps {e}"))?;
        if self.node_request_timeout.is_zero() {
            return Err("pipeline.node_request_timeout must be above zero".into());
        }
        if self.bluegreen_smoke_test_interval.is_zero() {
            return Err("pipeline.bluegreen_smoke_test_interval must be above zero".into());
        }
        Ok(())
    }
}

/// Steps rise strictly, lie in 1..=100 and end at 100, so every canary ends
/// with the whole environment on the new version.
pub fn validate_canary_steps(steps: &[u32]) -> Result<(), String> {
    if steps.is_empty() || steps.len() > 10 {
        return Err("must hold between 1 and 10 steps".into());
    }
    if steps.iter().any(|s| *s == 0 || *s > 100) {
        return Err("must be percentages between 1 and 100".into());
    }
    if steps.windows(2).any(|w| w[0] >= w[1]) {
        return Err("must rise strictly".into());
    }
    if steps.last() != Some(&100) {
        return Err("must end at 100".into());
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCounts {
    pub development: usize,
    pub qa: usize,
    pub staging: usize,
    pub production: usize,
}

impl NodeCounts {
    pub fn get(&self, env: Environment) -> usize {
        match env {
            Environment::Development => self.development,
            Environment::Qa => self.qa,
            Environment::Staging => self.staging,
            Environment::Production => self.production,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationSettings {
    pub enabled: bool,
    pub nodes: NodeCounts,
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub metrics_sample_interval: Duration,
    /// How many cluster samples each environment keeps.
    pub metrics_retention: usize,
}

impl Default for SimulationSettings {
    fn default() -> Self {
        SimulationSettings {
            enabled: true,
            nodes: NodeCounts { development: 3, qa: 5, staging: 10, production: 20 },
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
            metrics_sample_interval: Duration::from_secs(10),
            metrics_retention: 8640,
        }
    }
}

impl SimulationSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat_interval.is_zero() || self.metrics_sample_interval.is_zero() {
            return Err("simulation.heartbeat_interval and metrics_sample_interval must be above zero".into());
        }
        if self.heartbeat_timeout <= self.heartbeat_interval {
            return Err("simulation.heartbeat_timeout must be longer than simulation.heartbeat_interval".into());
        }
        Ok(())
    }
}

/// How hard a supervisor tries before it gives a child up: at most
/// `max_restarts` within `within`, waiting `backoff` (doubling up to
/// `max_backoff`) before each restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    pub max_restarts: u32,
    #[serde(with = "humantime_serde")]
    pub within: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            within: Duration::from_secs(60),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisionSettings {
    pub node: RestartPolicy,
    pub coordinator: RestartPolicy,
    #[serde(default)]
    pub approval: RestartPolicy,
    #[serde(default)]
    pub tenant: RestartPolicy,
    /// Threads (actix arbiters) the node and coordinator actors are spread
    /// over: 0 for one per core, 1 to keep them all on the System's thread.
    #[serde(default)]
    pub actor_threads: usize,
}

/// What start-up does with runs that were in flight when the process stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InFlightPolicy {
    /// Pick each run up at its last checkpoint and carry on.
    #[default]
    Resume,
    /// Restore every node each run changed and end it Failed.
    Rollback,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverySettings {
    pub in_flight: InFlightPolicy,
    /// How often the store's active runs are compared with the live
    /// coordinators; a run found without one twice in a row gets one.
    #[serde(with = "humantime_serde", default = "RecoverySettings::default_reconcile_interval")]
    pub reconcile_interval: Duration,
    /// Longest an actor (coordinator, node) waits for one store call; past
    /// it the call counts as the store being unavailable and is retried, so a
    /// half-open connection cannot hang a run or a node's mailbox.
    #[serde(with = "humantime_serde", default = "RecoverySettings::default_store_call_timeout")]
    pub store_call_timeout: Duration,
}

impl RecoverySettings {
    fn default_reconcile_interval() -> Duration {
        Duration::from_secs(5)
    }
    fn default_store_call_timeout() -> Duration {
        Duration::from_secs(15)
    }
}

impl Default for RecoverySettings {
    fn default() -> Self {
        RecoverySettings {
            in_flight: InFlightPolicy::default(),
            reconcile_interval: Self::default_reconcile_interval(),
            store_call_timeout: Self::default_store_call_timeout(),
        }
    }
}

/// When runs wait for a human, and for how long.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSettings {
    /// How long an approval stays pending before it expires and fails its run.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Environments whose runs always need approval when they are on the
    /// run's path, whatever the request says.
    pub required_environments: Vec<Environment>,
    /// Whether the user who requested a run may approve it.
    pub allow_self_approval: bool,
    /// How often a waiting run reads its approval from the store, so that a
    /// decision taken by another instance wakes it too.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        ApprovalSettings {
            timeout: Duration::from_secs(24 * 3600),
            required_environments: Vec::new(),
            allow_self_approval: true,
            poll_interval: Duration::from_secs(5),
        }
    }
}

impl ApprovalSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.timeout.is_zero() {
            return Err("approvals.timeout must be above zero".into());
        }
        if self.poll_interval.is_zero() {
            return Err("approvals.poll_interval must be above zero".into());
        }
        Ok(())
    }

    /// Whether a run of `request` must wait for approval: when it asks to and
    /// targets Staging or Production, or when its path crosses a required
    /// environment.
    pub fn required_for(&self, request: &crate::domain::DeploymentRequest) -> bool {
        let target = request.target_environment;
        let asked = request.require_approval && matches!(target, Environment::Staging | Environment::Production);
        asked || target.path().iter().any(|env| self.required_environments.contains(env))
    }
}

/// How long the audit trail keeps entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    pub retention_days: u32,
    /// How often the retention actor looks for old entries.
    #[serde(with = "humantime_serde")]
    pub purge_interval: Duration,
    /// Entries deleted per statement, so that no delete holds locks for long.
    pub purge_batch: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings { retention_days: 90, purge_interval: Duration::from_secs(3600), purge_batch: 1000 }
    }
}

impl AuditSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.retention_days == 0 {
            return Err("audit.retention_days must be at least 1".into());
        }
        if self.purge_batch == 0 || self.purge_interval.is_zero() {
            return Err("audit.purge_batch and audit.purge_interval must be above zero".into());
        }
        Ok(())
    }
}
