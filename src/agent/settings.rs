//! What `hotswap agent` is told: command-line flags, then HOTSWAP_AGENT__*
//! variables, then an optional TOML file (`--config`), in that order of
//! precedence. Per-module hook overrides can only come from the file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hotswap_actors::domain::ModuleHooks;
use serde::Deserialize;

/// `hotswap agent` flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentArgs {
    /// The HotSwap server, e.g. https://hotswap.example.com; several
    /// instances separated by commas are tried in turn.
    #[arg(long)]
    pub server: Option<String>,
    /// An enrolment token (needed for the first connection only).
    #[arg(long)]
    pub token: Option<String>,
    /// Where the agent keeps its state, modules and links.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The name the host has in its cluster (default: the system's hostname).
    #[arg(long)]
    pub hostname: Option<String>,
    /// A PEM file with the CA certificate(s) the server's certificate is checked against,
    /// instead of the host's trusted CAs.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// A TOML file with any of these settings and per-module `[hooks.<module>]`.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub server: String,
    #[serde(default)]
    pub token: Option<String>,
    pub data_dir: PathBuf,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Longest a hook may run before it is killed and its step fails.
    #[serde(with = "humantime_serde", default = "default_hook_timeout")]
    pub hook_timeout: Duration,
    /// The longest wait between two connection attempts.
    #[serde(with = "humantime_serde", default = "default_max_backoff")]
    pub max_backoff: Duration,
    /// Report the host's CPU and memory use (sysinfo) beside what the health
    /// hook says. Off makes the health hook the only judge, for hosts whose
    /// load has nothing to do with the module.
    #[serde(default = "yes")]
    pub host_metrics: bool,
    /// Refuse modules that carry no signature.
    #[serde(default = "yes")]
    pub require_signatures: bool,
    /// Versions of each module kept on disk besides the serving, previous
    /// and standby ones (the most recently staged); older ones are deleted.
    #[serde(default = "default_keep_versions")]
    pub keep_versions: usize,
    /// Hooks that replace the module descriptor's, per module.
    #[serde(default)]
    pub hooks: BTreeMap<String, ModuleHooks>,
}

fn default_hook_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_keep_versions() -> usize {
    2
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

fn yes() -> bool {
    true
}

impl AgentConfig {
    pub fn load(args: &AgentArgs) -> Result<AgentConfig, String> {
        let mut builder = config::Config::builder();
        if let Some(file) = &args.config {
            builder = builder.add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml));
        }
        builder = builder
            .add_source(config::Environment::with_prefix("HOTSWAP_AGENT").prefix_separator("__").separator("__"));
        let set =
            |b: config::ConfigBuilder<config::builder::DefaultState>, key: &str, value: Option<String>| match value {
                Some(v) => b.set_override(key, v),
                None => Ok(b),
            };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        builder = set(builder, "server", args.server.clone()).map_err(|e| e.to_string())?;
        builder = set(builder, "token", args.token.clone()).map_err(|e| e.to_string())?;
        builder = set(builder, "data_dir", path(&args.data_dir)).map_err(|e| e.to_string())?;
        builder = set(builder, "hostname", args.hostname.clone()).map_err(|e| e.to_string())?;
        builder = set(builder, "ca", path(&args.ca)).map_err(|e| e.to_string())?;
        let mut config: AgentConfig = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| format!("agent settings: {e} (--server and --data-dir are required)"))?;
        config.validate()?;
        // Hooks are given paths under it (HOTSWAP_ARTIFACT): absolute, so that
        // a hook that changes directory still finds them.
        config.data_dir = std::path::absolute(&config.data_dir)
            .map_err(|e| format!("--data-dir {}: {e}", config.data_dir.display()))?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let servers = self.servers();
        if servers.is_empty() {
            return Err("--server must name at least one http:// or https:// URL".into());
        }
        if let Some(bad) = servers.iter().find(|s| !(s.starts_with("http://") || s.starts_with("https://"))) {
            return Err(format!("--server must be an http:// or https:// URL, not '{bad}'"));
        }
        if self.hook_timeout.is_zero() || self.max_backoff.is_zero() {
            return Err("hook_timeout and max_backoff must be positive".into());
        }
        Ok(())
    }

    /// The instances of the server, in the order they are tried: `server`
    /// split at commas. The agent stays with one while it answers and moves
    /// to the next when a connection fails.
    pub fn servers(&self) -> Vec<String> {
        self.server.split(',').map(|s| s.trim().trim_end_matches('/').to_string()).filter(|s| !s.is_empty()).collect()
    }

    /// The name the host has in its cluster.
    pub fn hostname(&self) -> String {
        self.hostname.clone().filter(|h| !h.trim().is_empty()).unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_data_directory_is_made_absolute_for_the_hooks() {
        let args = AgentArgs {
            server: Some("http://127.0.0.1:8080".into()),
            data_dir: Some(PathBuf::from("agent-data")),
            ..AgentArgs::default()
        };
        let config = AgentConfig::load(&args).unwrap();
        assert!(config.data_dir.is_absolute(), "{}", config.data_dir.display());
        assert!(config.data_dir.ends_with("agent-data"));
    }
}
