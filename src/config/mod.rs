//! Loads settings: config/default.toml, then config/$HOTSWAP_ENV.toml, then
//! HOTSWAP__SECTION__KEY environment variables. Bad settings stop start-up
//! with a message naming the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hotswap_actors::settings::{
    ApprovalSettings, AuditSettings, PipelineSettings, RecoverySettings, SimulationSettings, SupervisionSettings,
};

use serde::Deserialize;

mod registry;

// Each adapter owns the settings of its section; `Settings` gathers them.
pub use crate::auth::settings::{
    AuthSettings, RateLimitSettings, SecurityHeaderSettings, KNOWN_DEFAULT_SECRETS, MAX_TOKEN_LEEWAY,
    MIN_JWT_SECRET_BYTES,
};
pub use crate::crypto::Secret;
pub use crate::http::ApiDocsSettings;
pub use crate::live::settings::WebsocketSettings;
pub use crate::metrics::MetricsSettings;
pub use crate::notify::NotificationSettings;
pub use crate::registry::settings::{ArtifactBackend, RegistrySettings, SecuritySettings};
pub use crate::secrets::settings::{SecretsBackend, SecretsSettings, VaultAuth, VaultSettings};
pub use crate::store::settings::{StoreBackend, StoreSettings};
pub use crate::telemetry::settings::{LogFormat, LoggingSettings, TelemetrySettings};

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
    pub recovery: RecoverySettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub cors: CorsSettings,
    pub security_headers: SecurityHeaderSettings,
    pub metrics: MetricsSettings,
    pub api_docs: ApiDocsSettings,
    pub websocket: WebsocketSettings,
    pub telemetry: TelemetrySettings,
    pub approvals: ApprovalSettings,
    pub notifications: NotificationSettings,
    pub audit: AuditSettings,
    /// `[tenants]`: what suspension does to runs in progress.
    #[serde(default)]
    pub tenants: hotswap_actors::tenant::TenantSettings,
    pub registry: RegistrySettings,
    pub security: SecuritySettings,
    pub secrets: SecretsSettings,
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
    pub tls: TlsSettings,
}

/// HTTPS: both files set turns TLS on for server.bind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

impl TlsSettings {
    pub fn enabled(&self) -> bool {
        !self.cert_file.trim().is_empty() || !self.key_file.trim().is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Origins such as https://ops.example.com; "*" allows any (never with credentials).
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub allow_credentials: bool,
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// Keys whose environment-variable form is a comma-separated list.
const LIST_KEYS: [&str; 7] = [
    "pipeline.canary_steps",
    "approvals.required_environments",
    "notifications.webhooks",
    "rate_limit.trusted_proxies",
    "cors.allowed_origins",
    "cors.allowed_methods",
    "cors.allowed_headers",
];

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
        self.approvals.validate().map_err(ConfigError)?;
        self.notifications.validate().map_err(ConfigError)?;
        self.audit.validate().map_err(ConfigError)?;
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
        self.validate_security()?;
        self.validate_registry()?;
        self.validate_secrets()
    }

    fn validate_security(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        let secret = auth.jwt_secret.expose();
        if secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError(format!(
                "auth.jwt_secret must be at least {MIN_JWT_SECRET_BYTES} bytes (HOTSWAP__AUTH__JWT_SECRET)"
            )));
        }
        if self.is_production() {
            if self.approvals.allow_self_approval {
                return Err(ConfigError("approvals.allow_self_approval must be false in production".into()));
            }
            if KNOWN_DEFAULT_SECRETS.contains(&secret) {
                return Err(ConfigError(
                    "auth.jwt_secret is a published default; set a secret of your own (HOTSWAP__AUTH__JWT_SECRET)"
                        .into(),
                ));
            }
            if auth.demo_users {
                return Err(ConfigError("auth.demo_users must be false in production".into()));
            }
        }
        if auth.token_leeway > MAX_TOKEN_LEEWAY {
            return Err(ConfigError(format!("auth.token_leeway must be at most {}s", MAX_TOKEN_LEEWAY.as_secs())));
        }
        if auth.token_lifetime < Duration::from_secs(1) {
            return Err(ConfigError("auth.token_lifetime must be at least 1s".into()));
        }
        if !(4..=31).contains(&auth.bcrypt_cost) {
            return Err(ConfigError("auth.bcrypt_cost must be between 4 and 31".into()));
        }
        if auth.max_failed_logins == 0 {
            return Err(ConfigError("auth.max_failed_logins must be at least 1".into()));
        }
        if auth.jwt_issuer.trim().is_empty() || auth.jwt_audience.trim().is_empty() {
            return Err(ConfigError("auth.jwt_issuer and auth.jwt_audience must not be empty".into()));
        }
        if auth.min_password_length < 8 {
            return Err(ConfigError("auth.min_password_length must be at least 8".into()));
        }
        for proxy in &self.rate_limit.trusted_proxies {
            if crate::auth::client::IpNet::parse(proxy).is_none() {
                return Err(ConfigError(format!(
                    "rate_limit.trusted_proxies: '{proxy}' is not an address or network such as 10.0.0.0/8"
                )));
            }
        }
        if self.cors.allow_credentials && self.cors.allowed_origins.iter().any(|o| o == "*") {
            return Err(ConfigError(
                "cors.allowed_origins may not hold \"*\" while cors.allow_credentials is true".into(),
            ));
        }
        if self.server.tls.enabled()
            && (self.server.tls.cert_file.trim().is_empty() || self.server.tls.key_file.trim().is_empty())
        {
            return Err(ConfigError("server.tls needs both cert_file and key_file".into()));
        }
        if !self.metrics.bind.trim().is_empty() && self.metrics.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError(format!(
                "metrics.bind '{}' is not an address such as 127.0.0.1:9090",
                self.metrics.bind
            )));
        }
        if self.metrics.role.parse::<hotswap_actors::domain::Role>().is_err() {
            return Err(ConfigError(format!("metrics.role '{}' is not Admin, Deployer or Viewer", self.metrics.role)));
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
mod tests;
