//! Loads settings: config/default.toml, then config/$HOTSWAP_ENV.toml, then
//! HOTSWAP__SECTION__KEY environment variables. Bad settings stop start-up
//! with a message naming the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hotswap_actors::settings::{
    ApprovalSettings, AuditSettings, PipelineSettings, RecoverySettings, SimulationSettings, SupervisionSettings,
};

use crate::notify::NotificationSettings;
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

/// A string that never shows in `Debug` output.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "<redacted>" })
    }
}

/// Secrets that shipped in a file somewhere, and so protect nothing.
pub const KNOWN_DEFAULT_SECRETS: [&str; 2] = [
    "hotswap-development-only-jwt-secret-change-me-0123456789",
    "DistributedKernelSecretKey-ChangeInProduction-MinimumLength32Characters",
];

/// The shortest JWT secret accepted, in bytes (HS256 wants 256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// The most clock leeway token checks may allow.
pub const MAX_TOKEN_LEEWAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    #[serde(with = "humantime_serde")]
    pub token_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub token_leeway: Duration,
    pub bcrypt_cost: u32,
    pub max_failed_logins: u32,
    #[serde(with = "humantime_serde")]
    pub lockout_duration: Duration,
    pub min_password_length: usize,
    pub demo_users: bool,
}

/// Requests per minute per client for each endpoint group; 0 lifts a
/// group's limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub global: u32,
    pub login: u32,
    pub deployments: u32,
    pub clusters: u32,
    pub approvals: u32,
    /// Peers whose X-Forwarded-For and X-Forwarded-Proto headers are believed:
    /// addresses such as 10.0.0.7 or networks such as 10.0.0.0/8.
    pub trusted_proxies: Vec<String>,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityHeaderSettings {
    pub content_security_policy: String,
    pub referrer_policy: String,
    pub permissions_policy: String,
    /// Sent only over TLS, ours or a trusted proxy's (X-Forwarded-Proto: https).
    pub strict_transport_security: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// "" serves /metrics on server.bind, behind a token; an address serves it
    /// there instead, without a token (keep that address private).
    pub bind: String,
    /// The role a token needs for /metrics on server.bind.
    pub role: String,
    /// Serve Prometheus metrics at all.
    pub enabled: bool,
    /// Where they are served; the role guard covers "/metrics".
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiDocsSettings {
    /// Serve the OpenAPI document at /api-docs/openapi.json, without a token.
    pub enabled: bool,
    /// Serve Swagger UI at /swagger-ui/ (needs `enabled`).
    pub swagger_ui: bool,
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

/// Where module artifacts' bytes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactBackend {
    /// A content-addressed directory (`artifact_dir`).
    Filesystem,
    /// The PostgreSQL store's database (store.backend must be "postgres").
    Postgres,
}

/// The module registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    pub artifact_backend: ArtifactBackend,
    pub artifact_dir: PathBuf,
    /// Largest artifact accepted, in bytes (larger uploads get 413).
    pub max_artifact_bytes: usize,
    /// How often stored artifacts that no version names are removed.
    #[serde(with = "humantime_serde")]
    pub gc_interval: Duration,
    /// How long a stored artifact is kept after its last write, named or not
    /// (an upload writes the bytes before it records the version).
    #[serde(with = "humantime_serde")]
    pub gc_grace: Duration,
}

/// What the Security Scan and uploads insist on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// Signatures must verify against a trusted, unrevoked key, at upload
    /// (422 otherwise) and in the Security Scan.
    pub strict_mode: bool,
    /// A run's module version must be in the registry.
    pub require_registered_modules: bool,
    /// The smallest trusted RSA key, in bits (at least 2048).
    pub min_key_bits: u32,
}

impl Settings {
    fn validate_registry(&self) -> Result<(), ConfigError> {
        let r = &self.registry;
        if r.max_artifact_bytes == 0 {
            return Err(ConfigError("registry.max_artifact_bytes must be above zero".into()));
        }
        if r.gc_interval.is_zero() {
            return Err(ConfigError("registry.gc_interval must be above zero".into()));
        }
        if r.artifact_backend == ArtifactBackend::Filesystem && r.artifact_dir.as_os_str().is_empty() {
            return Err(ConfigError("registry.artifact_dir is required with artifact_backend = \"filesystem\"".into()));
        }
        if r.artifact_backend == ArtifactBackend::Postgres && self.store.backend != StoreBackend::Postgres {
            return Err(ConfigError(
                "registry.artifact_backend = \"postgres\" needs store.backend = \"postgres\"".into(),
            ));
        }
        if self.security.min_key_bits < crate::crypto::rsa_sig::MIN_KEY_BITS {
            return Err(ConfigError(format!(
                "security.min_key_bits must be at least {}",
                crate::crypto::rsa_sig::MIN_KEY_BITS
            )));
        }
        if self.is_production() && !(self.security.strict_mode && self.security.require_registered_modules) {
            tracing::warn!("security.strict_mode or require_registered_modules is off in production");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretsBackend {
    /// In process memory (development): lost on exit.
    Memory,
    /// HashiCorp Vault's KV v2 engine.
    Vault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultAuth {
    Token,
    Approle,
}

/// Secrets and their rotation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSettings {
    pub backend: SecretsBackend,
    /// Run the background actor that rotates due secrets and warns before expiry.
    pub rotation_enabled: bool,
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// The policy of the JWT signing key (`jwt-signing-key`).
    pub jwt_policy: crate::secrets::RotationPolicy,
    pub vault: VaultSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// https://vault.example.com:8200
    pub address: String,
    /// The KV v2 engine's mount path.
    pub mount: String,
    /// Our secrets live under this path in the mount.
    pub path_prefix: String,
    pub auth: VaultAuth,
    pub token: Secret,
    pub role_id: Secret,
    pub secret_id: Secret,
    /// Where the AppRole auth method is mounted.
    pub approle_path: String,
    /// PEM CA bundle that signed Vault's certificate; empty uses the system's.
    pub ca_cert_file: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Further attempts after a connection failure, 429 or 5xx.
    pub retries: u32,
    #[serde(with = "humantime_serde")]
    pub retry_delay: Duration,
}

impl Settings {
    fn validate_secrets(&self) -> Result<(), ConfigError> {
        let s = &self.secrets;
        if s.check_interval.is_zero() {
            return Err(ConfigError("secrets.check_interval must be above zero".into()));
        }
        s.jwt_policy.validate("secrets.jwt_policy").map_err(ConfigError)?;
        if s.backend == SecretsBackend::Vault {
            let v = &s.vault;
            let https = v.address.starts_with("https://");
            if !https && !v.address.starts_with("http://") {
                return Err(ConfigError(
                    "secrets.vault.address must be an https:// URL such as https://vault:8200".into(),
                ));
            }
            // Vault tokens and secrets must not cross the network in clear.
            if self.is_production() && !https {
                return Err(ConfigError("secrets.vault.address must use https in production".into()));
            }
            if v.mount.trim_matches('/').is_empty() || v.timeout.is_zero() {
                return Err(ConfigError("secrets.vault.mount must be set and secrets.vault.timeout above zero".into()));
            }
            let missing = match v.auth {
                VaultAuth::Token => v.token.expose().is_empty(),
                VaultAuth::Approle => v.role_id.expose().is_empty() || v.secret_id.expose().is_empty(),
            };
            if missing {
                return Err(ConfigError(
                    "secrets.vault: auth = \"token\" needs token; auth = \"approle\" needs role_id and secret_id"
                        .into(),
                ));
            }
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

    const PROD_SECRET: (&str, &str) = ("HOTSWAP__AUTH__JWT_SECRET", "a-production-secret-of-at-least-32-bytes!");
    const PROD_URL: (&str, &str) = ("HOTSWAP__STORE__URL", "postgres://u:secret@db/hotswap");

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
        let e = load("production", &[PROD_SECRET]).unwrap_err();
        assert!(e.to_string().contains("store.url"), "{e}");
        let p = load("production", &[PROD_URL, PROD_SECRET]).unwrap();
        assert!(!p.simulation.enabled);
        assert!(!format!("{:?}", p.store).contains("secret"));
    }

    #[test]
    fn production_refuses_weak_secrets_and_demo_users() {
        let e = load("production", &[PROD_URL]).unwrap_err();
        assert!(e.to_string().contains("auth.jwt_secret"), "{e}");
        for weak in KNOWN_DEFAULT_SECRETS.into_iter().chain(["short-secret"]) {
            let e = load("production", &[PROD_URL, ("HOTSWAP__AUTH__JWT_SECRET", weak)]).unwrap_err();
            assert!(e.to_string().contains("auth.jwt_secret"), "{e}");
        }
        let e = load("production", &[PROD_URL, PROD_SECRET, ("HOTSWAP__AUTH__DEMO_USERS", "true")]).unwrap_err();
        assert!(e.to_string().contains("auth.demo_users"), "{e}");
        let p = load("production", &[PROD_URL, PROD_SECRET]).unwrap();
        assert!(!p.auth.demo_users);
        assert!(p.cors.allowed_origins.is_empty());
        assert!(!p.api_docs.swagger_ui);
        assert_eq!(p.auth.bcrypt_cost, 12);
        // Secrets stay out of `hotswap config`.
        assert!(!format!("{p:?}").contains(PROD_SECRET.1));
    }

    #[test]
    fn registry_and_security_keys_are_checked() {
        let p = load("production", &[PROD_URL, PROD_SECRET]).unwrap();
        assert!(p.security.strict_mode && p.security.require_registered_modules);
        assert_eq!(p.registry.max_artifact_bytes, 64 * 1024 * 1024);
        let t = load("test", &[]).unwrap();
        assert!(!t.security.strict_mode && !t.security.require_registered_modules);
        let e = load("test", &[("HOTSWAP__SECURITY__MIN_KEY_BITS", "1024")]).unwrap_err();
        assert!(e.to_string().contains("security.min_key_bits"), "{e}");
        let e = load("test", &[("HOTSWAP__REGISTRY__ARTIFACT_BACKEND", "postgres")]).unwrap_err();
        assert!(e.to_string().contains("registry.artifact_backend"), "{e}");
        let e = load("test", &[("HOTSWAP__REGISTRY__MAX_ARTIFACT_BYTES", "0")]).unwrap_err();
        assert!(e.to_string().contains("max_artifact_bytes"), "{e}");
    }

    #[test]
    fn secrets_keys_are_checked() {
        let d = load("development", &[]).unwrap();
        assert_eq!(d.secrets.backend, SecretsBackend::Memory);
        assert_eq!(d.secrets.jwt_policy.rotation_window, Duration::from_secs(48 * 3600));
        let vault = ("HOTSWAP__SECRETS__BACKEND", "vault");
        let e = load("development", &[vault, ("HOTSWAP__SECRETS__VAULT__ADDRESS", "vault:8200")]).unwrap_err();
        assert!(e.to_string().contains("secrets.vault.address"), "{e}");
        let addr = ("HOTSWAP__SECRETS__VAULT__ADDRESS", "https://vault:8200");
        let e = load("development", &[vault, addr]).unwrap_err();
        assert!(e.to_string().contains("needs token"), "{e}");
        let token = ("HOTSWAP__SECRETS__VAULT__TOKEN", "s.vault-token-value");
        let ok = load("development", &[vault, addr, token]).unwrap();
        assert!(!format!("{ok:?}").contains("s.vault-token-value"), "the token stays out of `hotswap config`");
        let plain = ("HOTSWAP__SECRETS__VAULT__ADDRESS", "http://vault:8200");
        let e = load("production", &[PROD_URL, PROD_SECRET, vault, plain, token]).unwrap_err();
        assert!(e.to_string().contains("https in production"), "{e}");
        let e = load("test", &[("HOTSWAP__SECRETS__JWT_POLICY__ROTATION_WINDOW", "1000d")]).unwrap_err();
        assert!(e.to_string().contains("secrets.jwt_policy"), "{e}");
    }

    #[test]
    fn profiles_set_the_security_defaults() {
        let dev = load("development", &[]).unwrap();
        assert!(dev.auth.demo_users);
        assert_eq!(dev.rate_limit.deployments, 100);
        assert!(dev.api_docs.swagger_ui);
        let test = load("test", &[]).unwrap();
        assert!(test.auth.demo_users);
        assert_eq!(test.auth.bcrypt_cost, 4);
        assert!(!test.rate_limit.enabled);
        let e = load("test", &[("HOTSWAP__AUTH__TOKEN_LEEWAY", "5m")]).unwrap_err();
        assert!(e.to_string().contains("auth.token_leeway"), "{e}");
        let e = load("test", &[("HOTSWAP__RATE_LIMIT__TRUSTED_PROXIES", "10.0.0.1,nowhere")]).unwrap_err();
        assert!(e.to_string().contains("rate_limit.trusted_proxies"), "{e}");
        let ok = load("test", &[("HOTSWAP__RATE_LIMIT__TRUSTED_PROXIES", "10.0.0.1,192.168.0.0/16,::1")]).unwrap();
        assert_eq!(ok.rate_limit.trusted_proxies.len(), 3);
    }
}
