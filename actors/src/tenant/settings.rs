use serde::Deserialize;

/// `[tenants]` in the configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// What suspending a tenant does to its runs in progress.
    #[serde(default)]
    pub on_suspend: OnSuspend,
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
