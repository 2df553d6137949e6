//! `[analysis]`: where the canary analysis reads its metrics.

use std::time::Duration;

use hotswap_actors::domain::MetricQuery;
use serde::Deserialize;

use crate::crypto::ServiceUrl;

/// The source of canary metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisProvider {
    /// What each node reports with its health check, judged with `[pipeline.canary]`.
    #[default]
    Nodes,
    /// PromQL queries against a Prometheus server's HTTP API.
    Prometheus,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisSettings {
    pub provider: AnalysisProvider,
    /// The Prometheus server, such as http://prometheus:9090.
    pub url: ServiceUrl,
    /// How long a canary step keeps asking a Prometheus that does not answer
    /// before the step fails.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The pause between two attempts while Prometheus does not answer.
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
    /// Deadline of one HTTP request to Prometheus.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Queries asked in every canary step, unless the module's descriptor
    /// brings its own (`"analysis": {"queries": [...]}`).
    pub queries: Vec<MetricQuery>,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        AnalysisSettings {
            provider: AnalysisProvider::Nodes,
            url: ServiceUrl::default(),
            timeout: Duration::from_secs(120),
            retry_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            queries: Vec::new(),
        }
    }
}

impl AnalysisSettings {
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.provider == AnalysisProvider::Prometheus {
            match reqwest::Url::parse(&self.url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                _ => problems.push(format!(
                    "analysis.url '{}' is not an http(s) URL such as http://prometheus:9090 (needed by provider = \"prometheus\")",
                    self.url.shown()
                )),
            }
        }
        if self.timeout.is_zero() || self.retry_interval.is_zero() || self.request_timeout.is_zero() {
            problems.push("analysis.timeout, retry_interval and request_timeout must be above zero".into());
        }
        for (i, query) in self.queries.iter().enumerate() {
            problems.extend(query.problems(&format!("analysis.queries[{i}]")));
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(problems.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_needs_a_url_and_queries_need_a_limit() {
        let mut settings = AnalysisSettings { provider: AnalysisProvider::Prometheus, ..Default::default() };
        assert!(settings.validate().unwrap_err().contains("analysis.url"));
        settings.url = "http://127.0.0.1:9090".into();
        assert_eq!(settings.validate(), Ok(()));
        settings.queries.push(MetricQuery {
            name: "errors".into(),
            query: "up".into(),
            max_rise_percent: None,
            floor: 1.0,
            max: None,
            unit: String::new(),
        });
        assert!(settings.validate().unwrap_err().contains("analysis.queries[0] needs maxRisePercent, max or both"));
        assert!(AnalysisSettings::default().validate().is_ok(), "the nodes provider needs nothing");
    }
}
