use std::time::Duration;

use serde::Deserialize;

/// `[tenants]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// What suspending a tenant does to its runs in progress.
    #[serde(default)]
    pub on_suspend: OnSuspend,
    /// How often each instance reads every tenant again from the store, to
    /// learn what another instance changed when no signal told it (Redis
    /// down or not configured). Zero: only signals and admissions.
    #[serde(default = "default_refresh_interval", with = "humantime_serde")]
    pub refresh_interval: Duration,
}

fn default_refresh_interval() -> Duration {
    Duration::from_secs(10)
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings { on_suspend: OnSuspend::default(), refresh_interval: default_refresh_interval() }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSuspend {
    /// They carry on to the end; only new runs and verbs are refused.
    #[default]
    Continue,
    /// They are paused, and resumed when the tenant is activated again.
    Pause,
}
