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

impl LoggingSettings {
    pub fn validate(&self) -> Result<(), String> {
        check_level_directives("logging.level", &self.level)
    }
}

/// The levels a filter directive may name.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Checks a filter such as `info` or `warn,hotswap=debug`. The filter itself
/// would read a bare word that is not a level (`loud`, `warnn`) as a target
/// and, finding no such target, log nothing at all: a typo must stop start-up
/// instead, naming `key`.
pub fn check_level_directives(key: &str, directives: &str) -> Result<(), String> {
    let refuse = |why: String| {
        Err(format!(
            "{key} '{directives}': {why}; write a level ({}) or target=level, comma-separated,              such as \"info\" or \"warn,hotswap=debug\"",
            LEVELS.join(", ")
        ))
    };
    if directives.trim().is_empty() {
        return refuse("is empty".into());
    }
    for part in directives.split(',').map(str::trim) {
        if part.is_empty() {
            return refuse("holds an empty directive".into());
        }
        let level = match part.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level.trim(),
            Some(_) => return refuse(format!("'{part}' names no target before '='")),
            None => part,
        };
        if !LEVELS.iter().any(|known| known.eq_ignore_ascii_case(level)) {
            return refuse(format!("'{level}' is not a level"));
        }
        if part.parse::<tracing_subscriber::filter::Directive>().is_err() {
            return refuse(format!("'{part}' is not a filter directive"));
        }
    }
    Ok(())
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
        check_level_directives("telemetry.level", &self.level)?;
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
