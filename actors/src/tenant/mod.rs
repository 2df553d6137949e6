//! Tenants as supervised actors. Each live tenant has one [`TenantActor`]
//! that owns its lifecycle and admits or refuses its new runs one at a time,
//! so that concurrent requests get exactly the quota. Use is always counted
//! from the runs as stored, so capacity comes back however a run ends:
//! success, failure, cancel, rollback, an escalated coordinator, a restart.

mod actor;
mod admission;
mod clusters;
mod lifecycle;
mod service;
mod settings;

pub use actor::{TenantActor, TenantDirectory};
pub use admission::{check_admission, start_of_day};
pub use clusters::Clusters;
pub use lifecycle::{TenantChanges, TenantCommand};
pub use service::{NewTenant, QuotaUse, TenantUsage, Tenants, UsageReport};
pub use settings::{OnSuspend, TenantSettings};

/// What the tenant actors share, for the orchestrator to build.
pub(crate) fn actor_deps(
    store: crate::store::SharedStore,
    supervisor: actix::Addr<crate::supervision::Supervisor>,
    clusters: Clusters,
    runs: std::sync::Arc<crate::coordinator::RunDirectory>,
    settings: TenantSettings,
    simulation: bool,
) -> actor::TenantDeps {
    actor::TenantDeps { store, directory: Default::default(), supervisor, clusters, runs, settings, simulation }
}

/// Now, to the microsecond: what PostgreSQL keeps of a tenant's times, so
/// that both stores hand back the record they were given.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
