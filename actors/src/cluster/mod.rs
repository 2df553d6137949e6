//! Several instances on one store: who this instance is, how long its leases
//! last, and the wake-up that tells a run's owner that another instance
//! stored news for the run (a verb, an approval decision).
//!
//! The leases themselves are the store's ([`crate::store::LeaseStore`]); the
//! orchestrator renews them, takes over expired ones and lets lost runs go.

mod tasks;
mod wake;

use std::time::Duration;

use serde::Deserialize;

pub use tasks::{run_every, when_held, TaskLease, TaskLeases};
pub use wake::{OnWake, PollOnly, WakeUp};

/// `[cluster]`: this instance's name and the length of the run leases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// How long a run or task lease lasts unless renewed; the owner renews
    /// at a third of it, and another instance takes a run over once it has
    /// expired. The same on every instance of a cluster.
    #[serde(with = "humantime_serde", default = "ClusterSettings::default_lease_ttl")]
    pub lease_ttl: Duration,
    /// This instance's name in leases, the admin tree and each run's
    /// `ownerInstance`. Empty: the host's name and a random suffix, new at
    /// every start.
    #[serde(default)]
    pub instance_id: String,
    /// How often an instance looks in the store for verbs another instance
    /// received for the runs it drives. A Redis wake-up makes it look at once;
    /// this bounds the wait without Redis (or when a wake-up is lost).
    #[serde(with = "humantime_serde", default = "ClusterSettings::default_verb_poll_interval")]
    pub verb_poll_interval: Duration,
}

impl ClusterSettings {
    fn default_lease_ttl() -> Duration {
        crate::store::DEFAULT_LEASE_TTL
    }

    fn default_verb_poll_interval() -> Duration {
        Duration::from_millis(250)
    }

    /// How often the leases are renewed and expired ones looked for.
    pub fn renew_interval(&self) -> Duration {
        self.lease_ttl / 3
    }

    /// The configured instance id, or the host's name with a random suffix.
    pub fn resolved_instance_id(&self) -> String {
        let configured = self.instance_id.trim();
        if !configured.is_empty() {
            return configured.to_string();
        }
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let host = if host.is_empty() { "hotswap".to_string() } else { host };
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}", &suffix[..8])
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.lease_ttl < Duration::from_millis(300) {
            return Err("cluster.lease_ttl must be at least 300ms".into());
        }
        if self.verb_poll_interval < Duration::from_millis(10) || self.verb_poll_interval > Duration::from_secs(5) {
            return Err("cluster.verb_poll_interval must be between 10ms and 5s".into());
        }
        if self.instance_id.len() > 128 {
            return Err("cluster.instance_id must be at most 128 characters".into());
        }
        Ok(())
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            lease_ttl: Self::default_lease_ttl(),
            instance_id: String::new(),
            verb_poll_interval: Self::default_verb_poll_interval(),
        }
    }
}
