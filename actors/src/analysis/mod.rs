//! Canary analysis: where a canary's metrics come from and how they are
//! judged. A [`MetricsProvider`] measures every canary node (its baseline
//! before the first step, then after each bake); [`judge`] compares each
//! node with its own baseline. The node-reported metrics
//! ([`NodeReported`]) are the default provider; the root crate adds
//! Prometheus.

mod judge;
mod node_reported;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::{Environment, MetricQuery, NodeMetrics, TenantId};

pub use judge::{judge, Verdict};
pub use node_reported::NodeReported;

/// One node's value of each metric, by the metric's name.
pub type Readings = BTreeMap<String, f64>;

/// A node the analysis measures, with the metrics it reported with its
/// health check just before.
#[derive(Debug, Clone)]
pub struct AnalysedNode {
    pub node_id: Uuid,
    pub hostname: String,
    pub reported: NodeMetrics,
}

/// What is measured: a run's module and version on some nodes.
#[derive(Debug, Clone)]
pub struct AnalysisScope {
    pub tenant: TenantId,
    pub module: String,
    /// The version the run deploys.
    pub version: String,
    pub environment: Environment,
    pub nodes: Vec<AnalysedNode>,
}

/// The metrics a provider measured, and the limits each must stay within.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub metrics: Vec<MetricQuery>,
    /// One entry per node of the scope, each holding every metric.
    pub readings: Vec<(Uuid, Readings)>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// The source did not answer (or answered without data): the step waits
    /// and asks again until the provider's patience runs out.
    #[error("{0}")]
    Unavailable(String),
    /// Asking again cannot help (no query is configured, a query is invalid).
    #[error("{0}")]
    Refused(String),
}

/// How long a step keeps asking an unavailable provider, and how often.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Patience {
    pub timeout: Duration,
    pub retry_interval: Duration,
}

#[async_trait]
pub trait MetricsProvider: Send + Sync {
    /// Names the source in messages, such as "Prometheus at http://...".
    fn describe(&self) -> String;

    fn patience(&self) -> Patience;

    /// Every metric of every node in `scope`, or why not.
    async fn measure(&self, scope: AnalysisScope) -> Result<Measurement, AnalysisError>;
}
