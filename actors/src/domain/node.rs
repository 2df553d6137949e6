use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Environment, TenantId};

/// One version as a node holds it. The faults are the simulation knobs that
/// apply while the node runs this version; they are empty outside simulation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionSlot {
    pub version: String,
    #[serde(default, skip_serializing_if = "VersionFaults::is_empty")]
    pub faults: VersionFaults,
}

impl VersionSlot {
    pub fn plain(version: impl Into<String>) -> Self {
        VersionSlot { version: version.into(), faults: VersionFaults::default() }
    }
}

/// What a node holds for one module: the serving version, the one it replaced
/// and the blue-green standby slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleSlots {
    pub active: Option<VersionSlot>,
    pub previous: Option<VersionSlot>,
    pub standby: Option<VersionSlot>,
}

impl ModuleSlots {
    pub fn active_version(&self) -> Option<&str> {
        self.active.as_ref().map(|s| s.version.as_str())
    }
    pub fn is_empty(&self) -> bool {
        self.active.is_none() && self.previous.is_none() && self.standby.is_none()
    }
    /// The active and the previous version: the ones the node has served.
    pub fn served_versions(&self) -> impl Iterator<Item = &str> {
        [&self.active, &self.previous].into_iter().flatten().map(|slot| slot.version.as_str())
    }
}

/// The durable part of a node: identity and module state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRecord {
    pub tenant_id: TenantId,
    pub node_id: Uuid,
    pub hostname: String,
    pub environment: Environment,
    pub modules: BTreeMap<String, ModuleSlots>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeMetrics {
    pub cpu_usage: f64,
    pub memory_usage: f64,
    pub latency_ms: f64,
    pub error_rate: f64,
    pub requests_per_second: f64,
}

impl NodeMetrics {
    pub fn average<'a>(samples: impl IntoIterator<Item = &'a NodeMetrics>) -> Option<NodeMetrics> {
        let mut sum = NodeMetrics::default();
        let mut n = 0.0;
        for m in samples {
            sum.cpu_usage += m.cpu_usage;
            sum.memory_usage += m.memory_usage;
            sum.latency_ms += m.latency_ms;
            sum.error_rate += m.error_rate;
            sum.requests_per_second += m.requests_per_second;
            n += 1.0;
        }
        (n > 0.0).then(|| NodeMetrics {
            cpu_usage: sum.cpu_usage / n,
            memory_usage: sum.memory_usage / n,
            latency_ms: sum.latency_ms / n,
            error_rate: sum.error_rate / n,
            // Throughput adds up across nodes rather than averaging.
            requests_per_second: sum.requests_per_second,
        })
    }
}

/// A node's health verdict with the reasons behind a negative one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeHealth {
    pub healthy: bool,
    pub reasons: Vec<String>,
    pub metrics: NodeMetrics,
}

/// The limits above which a node counts as unhealthy, in percent. Simulated
/// nodes are judged by the defaults; agent hosts by `[agent]
/// host_cpu_limit` and `host_memory_limit` (their CPU and memory are the
/// whole host's, whatever else runs on it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthLimits {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub error_rate_percent: f64,
}

impl Default for HealthLimits {
    fn default() -> Self {
        HealthLimits { cpu_percent: 90.0, memory_percent: 90.0, error_rate_percent: 5.0 }
    }
}

impl NodeHealth {
    /// Judged by the default limits.
    pub fn evaluate(metrics: NodeMetrics, forced_unhealthy: bool) -> NodeHealth {
        Self::evaluate_within(metrics, forced_unhealthy, &HealthLimits::default())
    }

    pub fn evaluate_within(metrics: NodeMetrics, forced_unhealthy: bool, limits: &HealthLimits) -> NodeHealth {
        let mut reasons = Vec::new();
        if metrics.cpu_usage > limits.cpu_percent {
            reasons.push(format!("CPU {:.1}% above {}%", metrics.cpu_usage, limits.cpu_percent));
        }
        if metrics.memory_usage > limits.memory_percent {
            reasons.push(format!("memory {:.1}% above {}%", metrics.memory_usage, limits.memory_percent));
        }
        if metrics.error_rate > limits.error_rate_percent {
            reasons.push(format!("error rate {:.2}% above {}%", metrics.error_rate, limits.error_rate_percent));
        }
        if forced_unhealthy {
            reasons.push("health check failed (simulated)".to_string());
        }
        NodeHealth { healthy: reasons.is_empty(), reasons, metrics }
    }
}

/// What a node running a given version reports, as set by the knobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionFaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unhealthy: bool,
}

impl Eq for VersionFaults {}

impl VersionFaults {
    pub fn is_empty(&self) -> bool {
        self == &VersionFaults::default()
    }

    pub fn apply(&self, mut metrics: NodeMetrics) -> NodeMetrics {
        if let Some(v) = self.error_rate {
            metrics.error_rate = v;
        }
        if let Some(v) = self.latency_ms {
            metrics.latency_ms = v;
        }
        if let Some(v) = self.cpu {
            metrics.cpu_usage = v;
        }
        metrics
    }
}
