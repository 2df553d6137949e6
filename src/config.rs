//! Loads settings: config/default.toml, then config/$HOTSWAP_ENV.toml, then
//! HOTSWAP__SECTION__KEY environment variables. Bad settings stop start-up
//! with a message naming the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hotswap_actors::settings::{PipelineSettings, SimulationSettings, SupervisionSettings};
use serde::Deserialize;

use crate::store::postgres::PgPoolSettings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The profile that was loaded (HOTSWAP_ENV); not read from files.
    #[serde(skip)]
    pub profile: String,
    pub server: ServerSettings,
    pub logging: LoggingSettings,
    pub store: StoreSettings,
    pub pipeline: PipelineSettings,
    pub simulation: SimulationSettings,
    pub supervision: SupervisionSettings,
    pub websocket: WebsocketSettings,
    pub telemetry: TelemetrySettings,
    pub metrics: MetricsSettings,
}

/// Live updates: /api/v1/ws and the SignalR hub at /hubs/deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebsocketSettings {
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub client_timeout: Duration,
    pub send_buffer: usize,
    #[serde(with = "humantime_serde")]
    pub flush_delay: Duration,
    pub max_message_bytes: usize,
    pub max_invalid_messages: u32,
    pub max_subscriptions: usize,
    #[serde(with = "humantime_serde")]
    pub signalr_keep_alive: Duration,
    #[serde(with = "humantime_serde")]
    pub signalr_client_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub signalr_negotiate_ttl: Duration,
}

/// Traces: OpenTelemetry export over OTLP/HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub otlp_endpoint: String,
    pub service_name: String,
    pub level: String,
    pub sample_ratio: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub enabled: bool,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub workers: usize,
    pub json_limit: usize,
    #[serde(with = "humantime_serde")]
    pub client_request_timeout: Duration,
    pub trace_url: String,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Memory,
    Postgres,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    pub url: String,
    pub pool: PgPoolSettings,
}

// The URL may carry a password: never print it.
impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("backend", &self.backend)
            .field("url", &if self.url.is_empty() { "" } else { "<set>" })
            .field("pool", &self.pool)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// Keys whose environment-variable form is a comma-separated list.
const LIST_KEYS: [&str; 1] = ["pipeline.canary_steps"];

impl Settings {
    /// Loads the profile named by HOTSWAP_ENV (default "development") from
    /// the config directory (HOTSWAP_CONFIG_DIR, default ./config).
    pub fn load() -> Result<Settings, ConfigError> {
        let profile = std::env::var("HOTSWAP_ENV").unwrap_or_else(|_| "development".to_string());
        let dir = std::env::var("HOTSWAP_CONFIG_DIR").map(PathBuf::from).unwrap_or_else(|_| default_config_dir());
        Self::load_from(&dir, &profile, std::env::vars())
    }

    /// Loads from an explicit directory, profile and set of environment variables.
    pub fn load_from(
        dir: &Path,
        profile: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let default = dir.join("default.toml");
        if !default.exists() {
            return Err(ConfigError(format!("{} not found (set HOTSWAP_CONFIG_DIR)", default.display())));
        }
        let vars: std::collections::HashMap<String, String> =
            vars.into_iter().filter(|(k, _)| k.starts_with("HOTSWAP__")).collect();
        let mut env = config::Environment::with_prefix("HOTSWAP")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .source(Some(vars));
        for key in LIST_KEYS {
            env = env.with_list_parse_key(key);
        }
        let loaded = config::Config::builder()
            .add_source(config::File::from(default))
            .add_source(config::File::from(dir.join(format!("{profile}.toml"))).required(false))
            .add_source(env)
            .build()
            .map_err(|e| ConfigError(e.to_string()))?;
        let mut settings: Settings = loaded.try_deserialize().map_err(|e| ConfigError(e.to_string()))?;
        settings.profile = profile.to_string();
        settings.validate()?;
        Ok(settings)
    }

    pub fn is_production(&self) -> bool {
        self.profile == "production"
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.pipeline.validate().map_err(ConfigError)?;
        self.simulation.validate().map_err(ConfigError)?;
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError(format!(
                "server.bind '{}' is not an address such as 127.0.0.1:8080",
                self.server.bind
            )));
        }
        if self.server.json_limit == 0 {
            return Err(ConfigError("server.json_limit must be above zero".into()));
        }
        if self.store.backend == StoreBackend::Postgres && self.store.url.trim().is_empty() {
            return Err(ConfigError(
                "store.url is required when store.backend = \"postgres\" (HOTSWAP__STORE__URL)".into(),
            ));
        }
        if self.store.pool.max_size == 0 {
            return Err(ConfigError("store.pool.max_size must be at least 1".into()));
        }
        let ws = &self.websocket;
        if ws.ping_interval.is_zero() || ws.client_timeout <= ws.ping_interval {
            return Err(ConfigError(
                "websocket.ping_interval must be above zero and websocket.client_timeout longer than it".into(),
            ));
        }
        if ws.signalr_keep_alive.is_zero() || ws.signalr_client_timeout <= ws.signalr_keep_alive {
            return Err(ConfigError(
                "websocket.signalr_keep_alive must be above zero and websocket.signalr_client_timeout longer than it"
                    .into(),
            ));
        }
        if ws.send_buffer == 0 || ws.max_subscriptions == 0 || ws.max_invalid_messages == 0 {
            return Err(ConfigError(
                "websocket.send_buffer, max_subscriptions and max_invalid_messages must be at least 1".into(),
            ));
        }
        if ws.max_message_bytes < 64 {
            return Err(ConfigError("websocket.max_message_bytes must be at least 64".into()));
        }
        if !(0.0..=1.0).contains(&self.telemetry.sample_ratio) {
            return Err(ConfigError("telemetry.sample_ratio must lie between 0 and 1".into()));
        }
        let endpoint = self.telemetry.otlp_endpoint.trim();
        if !endpoint.is_empty() && !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return Err(ConfigError(format!(
                "telemetry.otlp_endpoint '{endpoint}' must be an http:// or https:// URL such as http://127.0.0.1:4318"
            )));
        }
        if !self.metrics.path.starts_with('/') {
            return Err(ConfigError(format!("metrics.path '{}' must start with /", self.metrics.path)));
        }
        Ok(())
    }
}

/// ./config when run from the checkout, else the one beside the executable.
fn default_config_dir() -> PathBuf {
    let here = PathBuf::from("config");
    if here.join("default.toml").exists() {
        return here;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|p| p.join("config")))
        .filter(|p| p.join("default.toml").exists())
        .unwrap_or(here)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
    }

    fn load(profile: &str, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load_from(&dir(), profile, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn profiles_layer_over_the_defaults() {
        let dev = load("development", &[]).unwrap();
        assert_eq!(dev.pipeline.canary_bake_time, Duration::from_secs(900));
        assert_eq!(dev.simulation.nodes.production, 20);
        let test = load("test", &[]).unwrap();
        assert!(test.pipeline.canary_bake_time <= Duration::from_secs(1));
        assert!(test.pipeline.rolling_health_check_delay <= Duration::from_secs(1));
        assert!(test.pipeline.bluegreen_smoke_test_timeout <= Duration::from_secs(1));
    }

    #[test]
    fn environment_variables_win() {
        let s = load(
            "development",
            &[
                ("HOTSWAP__SERVER__BIND", "127.0.0.1:18080"),
                ("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "2s"),
                ("HOTSWAP__SIMULATION__NODES__PRODUCTION", "10000"),
                ("HOTSWAP__PIPELINE__CANARY_STEPS", "25,50,100"),
            ],
        )
        .unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:18080");
        assert_eq!(s.pipeline.canary_bake_time, Duration::from_secs(2));
        assert_eq!(s.simulation.nodes.production, 10000);
        assert_eq!(s.pipeline.canary_steps, vec![25, 50, 100]);
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = load("development", &[("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "soon")]).unwrap_err();
        assert!(e.to_string().contains("canary_bake_time"), "{e}");
        let e = load("development", &[("HOTSWAP__PIPELINE__CANARY_STEPS", "50,10")]).unwrap_err();
        assert!(e.to_string().contains("pipeline.canary_steps"), "{e}");
        let e = load("development", &[("HOTSWAP__SERVER__BIND", "nowhere")]).unwrap_err();
        assert!(e.to_string().contains("server.bind"), "{e}");
        let e = load("development", &[("HOTSWAP__PIPELINE__NO_SUCH_KEY", "1")]).unwrap_err();
        assert!(e.to_string().contains("no_such_key"), "{e}");
    }

    #[test]
    fn live_update_and_telemetry_keys_are_checked() {
        let d = load("development", &[]).unwrap();
        assert_eq!(d.websocket.ping_interval, Duration::from_secs(5));
        assert_eq!(d.websocket.client_timeout, Duration::from_secs(10));
        assert!(d.telemetry.otlp_endpoint.is_empty() && d.metrics.enabled);
        let e = load("development", &[("HOTSWAP__WEBSOCKET__CLIENT_TIMEOUT", "1s")]).unwrap_err();
        assert!(e.to_string().contains("websocket.client_timeout"), "{e}");
        let e = load("development", &[("HOTSWAP__WEBSOCKET__SEND_BUFFER", "0")]).unwrap_err();
        assert!(e.to_string().contains("send_buffer"), "{e}");
        let e = load("development", &[("HOTSWAP__TELEMETRY__OTLP_ENDPOINT", "collector:4318")]).unwrap_err();
        assert!(e.to_string().contains("telemetry.otlp_endpoint"), "{e}");
        let e = load("development", &[("HOTSWAP__TELEMETRY__SAMPLE_RATIO", "2")]).unwrap_err();
        assert!(e.to_string().contains("sample_ratio"), "{e}");
        let e = load("development", &[("HOTSWAP__METRICS__PATH", "metrics")]).unwrap_err();
        assert!(e.to_string().contains("metrics.path"), "{e}");
    }

    #[test]
    fn production_requires_a_database_url() {
        let e = load("production", &[]).unwrap_err();
        assert!(e.to_string().contains("store.url"), "{e}");
        let p = load("production", &[("HOTSWAP__STORE__URL", "postgres://u:secret@db/hotswap")]).unwrap();
        assert!(!p.simulation.enabled);
        assert!(!format!("{:?}", p.store).contains("secret"));
    }
}
