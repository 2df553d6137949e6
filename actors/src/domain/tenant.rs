//! Tenants: who owns every record, their lifecycle, subscription tiers and
//! the quotas that come with them.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every record belongs to a tenant.
pub type TenantId = Uuid;

/// The system (operator) tenant: seeded at start-up; the demo users live here.
pub const DEFAULT_TENANT: TenantId = Uuid::from_u128(0x0000_0000_0000_0000_0000_0000_0000_0001);

/// Where a tenant is in its life. Moves are checked by [`TenantStatus::can_become`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TenantStatus {
    /// Created; its clusters are being set up.
    Provisioning,
    Active,
    /// Users can sign in and read; runs cannot start and verbs are refused.
    Suspended,
    /// Being torn down on its way to Deleted.
    Deprovisioning,
    /// Soft-deleted: kept for the record, nothing works any more.
    Deleted,
}

impl TenantStatus {
    pub const ALL: [TenantStatus; 5] = [
        TenantStatus::Provisioning,
        TenantStatus::Active,
        TenantStatus::Suspended,
        TenantStatus::Deprovisioning,
        TenantStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Provisioning => "Provisioning",
            TenantStatus::Active => "Active",
            TenantStatus::Suspended => "Suspended",
            TenantStatus::Deprovisioning => "Deprovisioning",
            TenantStatus::Deleted => "Deleted",
        }
    }

    /// Case-insensitive.
    pub fn parse(s: &str) -> Option<TenantStatus> {
        Self::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// The lifecycle: Provisioning → Active ⇄ Suspended; Active or Suspended →
    /// Deprovisioning → Deleted; a failed provisioning goes straight to Deleted.
    /// Deleted is final.
    pub fn can_become(self, next: TenantStatus) -> bool {
        use TenantStatus::*;
        matches!(
            (self, next),
            (Provisioning, Active)
                | (Provisioning, Deleted)
                | (Active, Suspended)
                | (Suspended, Active)
                | (Active | Suspended, Deprovisioning)
                | (Deprovisioning, Deleted)
        )
    }

    /// Whether the tenant has clusters and a live actor.
    pub fn is_live(self) -> bool {
        !matches!(self, TenantStatus::Deleted)
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Subscription tiers, in ascending order, as in the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tier {
    Free,
    Starter,
    Professional,
    Enterprise,
    Custom,
}

impl Tier {
    pub const ALL: [Tier; 5] = [Tier::Free, Tier::Starter, Tier::Professional, Tier::Enterprise, Tier::Custom];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "Free",
            Tier::Starter => "Starter",
            Tier::Professional => "Professional",
            Tier::Enterprise => "Enterprise",
            Tier::Custom => "Custom",
        }
    }

    /// A name (case-insensitive) or the original's enum number (0-4).
    pub fn parse(s: &str) -> Option<Tier> {
        if let Ok(n) = s.trim().parse::<usize>() {
            return Self::ALL.get(n).copied();
        }
        Self::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// The quotas a tenant of this tier gets, until an operator sets others.
    pub fn default_quota(self) -> Quota {
        let q = |concurrent, per_day, nodes, modules, storage_gb, sessions| Quota {
            max_concurrent_runs: concurrent,
            max_runs_per_day: per_day,
            max_nodes_per_environment: nodes,
            max_modules: modules,
            max_artifact_storage_gb: storage_gb,
            max_websocket_sessions: sessions,
        };
        match self {
            // Concurrent runs and storage as in the original's table.
            Tier::Free => q(1, 10, 2, 3, 1, 5),
            Tier::Starter => q(3, 50, 5, 10, 10, 25),
            Tier::Professional => q(10, 200, 10, 50, 50, 100),
            Tier::Enterprise => q(50, 1_000, 20, 200, 500, 1_000),
            Tier::Custom => Quota::UNLIMITED,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits per tenant. `u32::MAX` means unlimited (the original's "int max").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// Runs that hold their module at once (running, paused, awaiting approval, rolling back).
    pub max_concurrent_runs: u32,
    /// Runs created per UTC day.
    pub max_runs_per_day: u32,
    /// Simulated nodes per environment's cluster.
    pub max_nodes_per_environment: u32,
    /// Distinct modules the tenant deploys.
    pub max_modules: u32,
    pub max_artifact_storage_gb: u32,
    /// Live-update sessions (WebSocket and SignalR) at once.
    pub max_websocket_sessions: u32,
}

impl Quota {
    pub const UNLIMITED: Quota = Quota {
        max_concurrent_runs: u32::MAX,
        max_runs_per_day: u32::MAX,
        max_nodes_per_environment: u32::MAX,
        max_modules: u32::MAX,
        max_artifact_storage_gb: u32::MAX,
        max_websocket_sessions: u32::MAX,
    };
}

/// Which quota a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum QuotaKind {
    ConcurrentRuns,
    RunsPerDay,
    NodesPerEnvironment,
    Modules,
    ArtifactStorage,
    WebsocketSessions,
}

impl QuotaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::ConcurrentRuns => "concurrentRuns",
            QuotaKind::RunsPerDay => "runsPerDay",
            QuotaKind::NodesPerEnvironment => "nodesPerEnvironment",
            QuotaKind::Modules => "modules",
            QuotaKind::ArtifactStorage => "artifactStorageGb",
            QuotaKind::WebsocketSessions => "websocketSessions",
        }
    }

    /// Rate-like quotas free up with time (429); capacity quotas need
    /// something removed or a bigger tier (403).
    pub fn is_rate(self) -> bool {
        matches!(self, QuotaKind::ConcurrentRuns | QuotaKind::RunsPerDay)
    }
}

/// A refusal: which quota, its limit and the use when it was checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} quota exceeded: {current} of {limit} in use", .quota.as_str())]
pub struct QuotaExceeded {
    pub quota: QuotaKind,
    pub limit: u32,
    pub current: u64,
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRecord {
    pub tenant_id: TenantId,
    pub name: String,
    /// Lowercase, unique across tenants (see [`check_subdomain`]).
    pub subdomain: String,
    pub custom_domain: Option<String>,
    pub contact_email: String,
    pub status: TenantStatus,
    pub tier: Tier,
    pub quota: Quota,
    pub metadata: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Runs that suspension paused, resumed on activation (`[tenants] on_suspend = "pause"`).
    pub paused_runs: Vec<Uuid>,
    /// Increases with every save; a save of an older revision is refused.
    pub revision: u64,
}

impl TenantRecord {
    /// The system tenant as seeded on a fresh store.
    pub fn system(now: DateTime<Utc>) -> TenantRecord {
        TenantRecord {
            tenant_id: DEFAULT_TENANT,
            name: "System".into(),
            subdomain: SYSTEM_SUBDOMAIN.into(),
            custom_domain: None,
            contact_email: "admin@example.com".into(),
            status: TenantStatus::Active,
            tier: Tier::Custom,
            quota: Tier::Custom.default_quota(),
            metadata: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            suspended_at: None,
            deleted_at: None,
            paused_runs: Vec::new(),
            revision: 1,
        }
    }
}

pub const SYSTEM_SUBDOMAIN: &str = "system";

/// Subdomains that route elsewhere, as in the original, plus the system tenant's.
pub const RESERVED_SUBDOMAINS: [&str; 36] = [
    "www",
    "api",
    "admin",
    "app",
    "cdn",
    "ftp",
    "mail",
    "smtp",
    "pop",
    "imap",
    "webmail",
    "ns",
    "ns1",
    "ns2",
    "dns",
    "status",
    "help",
    "support",
    "docs",
    "blog",
    "forum",
    "shop",
    "store",
    "assets",
    "static",
    "images",
    "img",
    "files",
    "downloads",
    "dev",
    "staging",
    "test",
    "qa",
    "demo",
    "sandbox",
    SYSTEM_SUBDOMAIN,
];

/// Lowercases `raw` and checks it as the original did: 1-63 characters of
/// `[a-z0-9-]`, no hyphen at either end, not reserved.
pub fn check_subdomain(raw: &str) -> Result<String, String> {
    // Not trimmed (the API document's pattern has no white space); letters
    // of either case are taken and stored lowercased.
    let s = raw.to_lowercase();
    if s.is_empty() {
        return Err("subdomain is required".into());
    }
    if s.len() > 63 {
        return Err("subdomain must be at most 63 characters".into());
    }
    if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err("subdomain may hold only letters a-z, digits and hyphens".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("subdomain must not start or end with a hyphen".into());
    }
    if RESERVED_SUBDOMAINS.contains(&s.as_str()) {
        return Err(format!("subdomain '{s}' is reserved"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_moves() {
        use TenantStatus::*;
        assert!(Provisioning.can_become(Active));
        assert!(Active.can_become(Suspended) && Suspended.can_become(Active));
        assert!(Suspended.can_become(Deprovisioning) && Deprovisioning.can_become(Deleted));
        for next in TenantStatus::ALL {
            assert!(!Deleted.can_become(next), "Deleted is final ({next})");
        }
        assert!(!Active.can_become(Active));
        assert!(!Active.can_become(Deleted), "deletion goes through Deprovisioning");
        assert!(!Deprovisioning.can_become(Active));
    }

    #[test]
    fn subdomains() {
        assert_eq!(check_subdomain("Acme-Corp2").unwrap(), "acme-corp2");
        // Not trimmed: the API document's pattern has no white space.
        assert!(check_subdomain(" acme ").is_err());
        for bad in ["", "-acme", "acme-", "ac_me", "acmé", "www", "API", "system", &"a".repeat(64)] {
            assert!(check_subdomain(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(check_subdomain(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn tiers_parse_by_name_or_number_and_rise() {
        assert_eq!(Tier::parse("professional"), Some(Tier::Professional));
        assert_eq!(Tier::parse("4"), Some(Tier::Custom));
        assert_eq!(Tier::parse("5"), None);
        assert_eq!(Tier::parse("Gold"), None);
        let limits: Vec<u32> = Tier::ALL.iter().map(|t| t.default_quota().max_concurrent_runs).collect();
        assert_eq!(limits, [1, 3, 10, 50, u32::MAX]);
    }
}
