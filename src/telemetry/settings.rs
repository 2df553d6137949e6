//! `[logging]` and `[telemetry]`.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSettings {
    pub format: LogFormat,
    pub level: String,
}

/// Traces: OpenTelemetry export over OTLP/HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub otlp_endpoint: crate::crypto::ServiceUrl,
    pub service_name: String,
    pub level: String,
    pub sample_ratio: f64,
}

impl TelemetrySettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err("telemetry.sample_ratio must lie between 0 and 1".into());
        }
        let endpoint = self.otlp_endpoint.trim();
        if !endpoint.is_empty() && !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return Err(format!(
                "telemetry.otlp_endpoint '{}' must be an http:// or https:// URL such as http://127.0.0.1:4318",
                self.otlp_endpoint.shown().trim()
            ));
        }
        Ok(())
    }
}
