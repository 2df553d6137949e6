//! How a canary's metrics are judged: one metric, the query that measures
//! it and the limits it must stay within.

use serde::{Deserialize, Serialize};

/// A metric the canary analysis measures on every canary node, before the
/// first step (its baseline) and after each bake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricQuery {
    /// What the messages call it, such as "error rate".
    pub name: String,
    /// The provider's query; for Prometheus a PromQL expression in which
    /// `$node`, `$module` and `$version` stand for the node's hostname, the
    /// module and the version the run deploys.
    pub query: String,
    /// How far the value may rise over the node's own baseline, in percent.
    /// `None` judges the metric by `max` alone.
    #[serde(default, alias = "max_rise_percent")]
    pub max_rise_percent: Option<f64>,
    /// A baseline below this counts as this, so that a rise from nothing is
    /// measured against something.
    #[serde(default = "MetricQuery::default_floor")]
    pub floor: f64,
    /// An absolute ceiling, whatever the baseline.
    #[serde(default)]
    pub max: Option<f64>,
    /// Printed after values in messages, such as "%" or " ms".
    #[serde(default)]
    pub unit: String,
}

impl MetricQuery {
    fn default_floor() -> f64 {
        1.0
    }

    /// Every problem with this definition, prefixed with `at` (where it was found).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() || self.name.len() > 100 {
            problems.push(format!("{at}.name must hold 1 to 100 characters"));
        }
        if self.query.trim().is_empty() || self.query.len() > 4_000 {
            problems.push(format!("{at}.query must hold 1 to 4000 characters"));
        }
        if self.max_rise_percent.is_none() && self.max.is_none() {
            problems.push(format!("{at} needs maxRisePercent, max or both: otherwise nothing is judged"));
        }
        let finite_non_negative = |v: f64| v.is_finite() && v >= 0.0;
        if self.max_rise_percent.is_some_and(|v| !finite_non_negative(v)) {
            problems.push(format!("{at}.maxRisePercent must be a non-negative number"));
        }
        if !self.floor.is_finite() || self.floor <= 0.0 {
            problems.push(format!("{at}.floor must be above zero"));
        }
        if self.max.is_some_and(|v| !v.is_finite()) {
            problems.push(format!("{at}.max must be a number"));
        }
        problems
    }
}

/// The canary analysis a module descriptor asks for (`"analysis"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModuleAnalysis {
    /// Queries that replace the configured `[analysis] queries` for this
    /// module's runs.
    #[serde(default)]
    pub queries: Vec<MetricQuery>,
}
