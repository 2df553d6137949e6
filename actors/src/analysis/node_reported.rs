//! The default provider: the metrics each node reports with its health
//! check, judged with `[pipeline.canary]`'s thresholds.

use std::time::Duration;

use async_trait::async_trait;

use super::{AnalysisError, AnalysisScope, Measurement, MetricsProvider, Patience, Readings};
use crate::domain::{MetricQuery, NodeMetrics};
use crate::settings::CanaryThresholds;

pub struct NodeReported {
    metrics: Vec<MetricQuery>,
}

impl NodeReported {
    pub fn new(limits: &CanaryThresholds) -> Self {
        let metric = |name: &str, unit: &str, rise: f64, floor: f64| MetricQuery {
            name: name.into(),
            query: String::new(),
            max_rise_percent: Some(rise),
            floor,
            max: None,
            unit: unit.into(),
        };
        let l = limits;
        NodeReported {
            metrics: vec![
                metric("error rate", "%", l.error_rate_rise_percent, l.error_rate_floor),
                metric("latency", " ms", l.latency_rise_percent, l.latency_floor_ms),
                metric("CPU", "%", l.cpu_rise_percent, l.usage_floor),
                metric("memory", "%", l.memory_rise_percent, l.usage_floor),
            ],
        }
    }

    /// A node's report as readings named like this provider's metrics.
    pub fn readings(metrics: &NodeMetrics) -> Readings {
        Readings::from([
            ("error rate".to_string(), metrics.error_rate),
            ("latency".to_string(), metrics.latency_ms),
            ("CPU".to_string(), metrics.cpu_usage),
            ("memory".to_string(), metrics.memory_usage),
        ])
    }
}

#[async_trait]
impl MetricsProvider for NodeReported {
    fn describe(&self) -> String {
        "the nodes' reported metrics".into()
    }

    /// The reports are already in hand: nothing to wait for.
    fn patience(&self) -> Patience {
        Patience { timeout: Duration::ZERO, retry_interval: Duration::from_millis(100) }
    }

    async fn measure(&self, scope: AnalysisScope) -> Result<Measurement, AnalysisError> {
        let readings = scope.nodes.iter().map(|n| (n.node_id, Self::readings(&n.reported))).collect();
        Ok(Measurement { metrics: self.metrics.clone(), readings })
    }
}
