//! Loads settings: config/default.toml, then config/$HOTSWAP_ENV.toml, then
//! HOTSWAP__SECTION__KEY environment variables. Bad settings stop start-up
//! with a message naming the key. Where no config directory is found, the
//! profiles built into the binary stand in for it (`embedded`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hotswap_actors::settings::{
    ApprovalSettings, AuditSettings, PipelineSettings, RecoverySettings, SimulationSettings, SupervisionSettings,
};

use serde::Deserialize;

mod cross_checks;
mod embedded;

// Each adapter owns the settings of its section; `Settings` gathers them.
pub use crate::agents::settings::{AgentSettings, DriftPolicy};
pub use crate::analysis::settings::{AnalysisProvider, AnalysisSettings};
pub use crate::auth::settings::{
    AuthSettings, RateLimitSettings, SecurityHeaderSettings, KNOWN_DEFAULT_SECRETS, MAX_TOKEN_LEEWAY,
    MIN_JWT_SECRET_BYTES, MIN_SAFE_BCRYPT_COST,
};
pub use crate::crypto::Secret;
pub use crate::http::ApiDocsSettings;
pub use crate::live::settings::WebsocketSettings;
pub use crate::messaging::settings::{MessagingBackend, MessagingSettings};
pub use crate::metrics::MetricsSettings;
pub use crate::notify::NotificationSettings;
pub use crate::redis::RedisSettings;
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
    /// `[cluster]`: this instance's name and the run leases' length.
    #[serde(default)]
    pub cluster: hotswap_actors::cluster::ClusterSettings,
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
    /// `[agent]`: sessions with `hotswap agent` on real hosts.
    #[serde(default)]
    pub agent: AgentSettings,
    /// `[messaging]`: the message bus's back-end and timings.
    #[serde(default)]
    pub messaging: MessagingSettings,
    /// `[redis]`: the backplane of several instances; empty url = none.
    #[serde(default)]
    pub redis: RedisSettings,
    /// `[analysis]`: where the canary analysis reads its metrics.
    #[serde(default)]
    pub analysis: AnalysisSettings,
    /// `[graph]`: what the knowledge graph keeps.
    #[serde(default)]
    pub graph: hotswap_actors::graph::GraphSettings,
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
    /// Accept what only a developer's machine may use: a published JWT
    /// secret, the demo users, self-approval, cheap password hashes, Vault
    /// over plain HTTP. Set in the development and test profiles only; every
    /// start with it on says so loudly.
    #[serde(default)]
    pub insecure_dev_mode: bool,
    /// Leave the process's memory to the kernel's transparent huge pages
    /// setting; off by default, the server opts out (see `huge_pages`).
    #[serde(default)]
    pub transparent_huge_pages: bool,
}

impl ServerSettings {
    fn validate(&self) -> Result<(), String> {
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("server.bind '{}' is not an address such as 127.0.0.1:8080", self.bind));
        }
        if self.json_limit == 0 {
            return Err("server.json_limit must be above zero".into());
        }
        if self.tls.enabled() && (self.tls.cert_file.trim().is_empty() || self.tls.key_file.trim().is_empty()) {
            return Err("server.tls needs both cert_file and key_file".into());
        }
        Ok(())
    }
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

impl CorsSettings {
    fn validate(&self) -> Result<(), String> {
        if self.allow_credentials && self.allowed_origins.iter().any(|o| o == "*") {
            return Err("cors.allowed_origins may not hold \"*\" while cors.allow_credentials is true".into());
        }
        // A browser sends its Origin as scheme://host[:port]; anything else
        // (a TOML list pasted into the variable, a path) never matches and
        // would silently allow no one.
        let bad: Vec<&str> =
            self.allowed_origins.iter().map(String::as_str).filter(|o| *o != "*" && !is_origin(o)).collect();
        if !bad.is_empty() {
            return Err(format!(
                "cors.allowed_origins: '{}' is not an origin such as https://ops.example.com or \
                 http://localhost:3000 (scheme://host[:port], no path; in HOTSWAP__CORS__ALLOWED_ORIGINS \
                 separate them with commas, without brackets or quotes)",
                bad.join("', '")
            ));
        }
        Ok(())
    }
}

/// `scheme://host[:port]` with nothing after it, as a browser's Origin header.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else { return false };
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    // An IPv6 host is bracketed; the port, if any, follows the last ':' outside them.
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
        && (host.starts_with('[') == host.ends_with(']'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    scheme_ok && host_ok && port_ok
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// Keys whose environment-variable form is a comma-separated list.
const LIST_KEYS: [&str; 8] = [
    "pipeline.canary_steps",
    "approvals.required_environments",
    "notifications.webhooks",
    "rate_limit.trusted_proxies",
    "cors.allowed_origins",
    "cors.allowed_methods",
    "cors.allowed_headers",
    "messaging.push_allowed_networks",
];

impl Settings {
    /// Loads the profile named by HOTSWAP_ENV (default "development") from
    /// the config directory: HOTSWAP_CONFIG_DIR, else ./config, else the one
    /// beside the executable, else the profiles built into the binary.
    pub fn load() -> Result<Settings, ConfigError> {
        let profile = std::env::var("HOTSWAP_ENV").unwrap_or_else(|_| "development".to_string());
        match std::env::var("HOTSWAP_CONFIG_DIR") {
            // Named explicitly: a directory without default.toml is a mistake to report.
            Ok(dir) => Self::load_from(Path::new(&dir), &profile, std::env::vars()),
            Err(_) => match found_config_dir() {
                Some(dir) => Self::load_from(&dir, &profile, std::env::vars()),
                None => Self::load_embedded(&profile, std::env::vars()),
            },
        }
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
        let overlay = dir.join(format!("{profile}.toml"));
        if !overlay.exists() && embedded::profile(profile).is_none() {
            return Err(unknown_profile(profile, &format!("no {} and none built in", overlay.display()), dir));
        }
        let files = config::Config::builder()
            .add_source(config::File::from(default))
            .add_source(config::File::from(overlay).required(false));
        Self::build(files, profile, vars)
    }

    /// Loads from the profiles built into the binary (the checkout's config/
    /// as it was when the binary was built), then the environment variables.
    pub fn load_embedded(
        profile: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let toml = |text: &str| config::File::from_str(text, config::FileFormat::Toml);
        let Some(overlay) = embedded::profile(profile) else {
            return Err(unknown_profile(profile, "no config directory and none built in", Path::new("")));
        };
        let files = config::Config::builder().add_source(toml(embedded::DEFAULT)).add_source(toml(overlay));
        Self::build(files, profile, vars)
    }

    /// The profile's files overlaid by HOTSWAP__SECTION__KEY variables, then checked.
    fn build(
        files: config::ConfigBuilder<config::builder::DefaultState>,
        profile: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
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
        let loaded = files.add_source(env).build().map_err(|e| ConfigError(e.to_string()))?;
        let mut settings: Settings = loaded.try_deserialize().map_err(|e| ConfigError(e.to_string()))?;
        settings.profile = profile.to_string();
        settings.validate()?;
        Ok(settings)
    }

    /// Each section checks itself; what spans sections (and what only
    /// `server.insecure_dev_mode` allows) is checked in `cross_checks`. Every
    /// problem found is reported at once, so that an operator setting up a
    /// profile fixes them in one go rather than one start at a time.
    fn validate(&self) -> Result<(), ConfigError> {
        // A missing sealing key is the production profile's usual first
        // refusal: say which variable sets it rather than "0 bytes".
        let secrets = self.missing_sealing_key().map_or_else(|| self.secrets.validate(), Err);
        let sections = [
            self.server.validate(),
            self.logging.validate(),
            self.pipeline.validate(),
            self.simulation.validate(),
            self.cluster.validate(),
            self.approvals.validate(),
            self.notifications.validate(),
            self.audit.validate(),
            self.store.validate(),
            self.auth.validate(),
            self.rate_limit.validate(),
            self.cors.validate(),
            self.metrics.validate(),
            self.websocket.validate(),
            self.telemetry.validate(),
            self.registry.validate(),
            self.security.validate(),
            secrets,
            self.agent.validate(),
            self.messaging.validate(),
            self.redis.validate(),
            self.analysis.validate(),
        ];
        let mut problems: Vec<String> = sections.into_iter().filter_map(Result::err).collect();
        problems.extend(self.problems_across_sections());
        match problems.as_slice() {
            [] => Ok(()),
            [one] => Err(ConfigError(one.clone())),
            several => Err(ConfigError(format!("{} problems:\n  - {}", several.len(), several.join("\n  - ")))),
        }
    }
}

/// A misspelt HOTSWAP_ENV (`prodution`) would otherwise start on the bare
/// defaults (the memory store, simulated clusters) under a name that looks
/// right in the logs: refuse it, listing the profiles there are (the built-in
/// ones and those with a file in `dir`).
fn unknown_profile(profile: &str, why: &str, dir: &Path) -> ConfigError {
    let mut known: Vec<String> = embedded::names().map(str::to_string).collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(profile) = name.strip_suffix(".toml").filter(|p| *p != "default") {
                known.push(profile.to_string());
            }
        }
    }
    known.sort();
    known.dedup();
    ConfigError(format!("HOTSWAP_ENV '{profile}' names no profile ({why}); the profiles are {}", known.join(", ")))
}

/// ./config when run from the checkout, else the one beside the executable;
/// `None` when neither holds a default.toml.
fn found_config_dir() -> Option<PathBuf> {
    let here = PathBuf::from("config");
    if here.join("default.toml").exists() {
        return Some(here);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|p| p.join("config")))
        .filter(|p| p.join("default.toml").exists())
}

#[cfg(test)]
mod tests;
