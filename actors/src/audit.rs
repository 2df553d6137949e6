//! Audit retention: the periodic purge of entries past their retention
//! period. Which entries a run's history makes is a domain rule
//! ([`crate::domain::audit_entries`]), re-exported here for the adapters.

pub use crate::domain::audit_entries::{actor_data, lockout_entry, run_entries, ACTOR_KEY};

/// Deletes audit entries older than the retention period, in batches, on
/// an interval. One per process; with a task lease, only the instance that
/// holds it purges.
pub struct AuditRetention {
    pub store: crate::store::SharedStore,
    pub settings: crate::settings::AuditSettings,
    /// The cluster-wide lease of the purge (`None`: every pass runs).
    pub lease: Option<crate::cluster::TaskLease>,
}

impl AuditRetention {
    /// Purges every `purge_interval` for the life of the process; a slow
    /// purge is finished before the next starts ([`crate::cluster::run_every`]).
    pub fn start(self) {
        let (every, lease) = (self.settings.purge_interval, self.lease.clone());
        crate::cluster::run_every(every, lease, move || {
            let (store, settings) = (self.store.clone(), self.settings.clone());
            async move {
                purge_old_entries(store, settings).await;
            }
        });
    }
}

/// One pass: batch after batch until none is left; returns how many went.
pub async fn purge_old_entries(store: crate::store::SharedStore, settings: crate::settings::AuditSettings) -> u64 {
    let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(settings.retention_days));
    let mut total = 0;
    loop {
        match store.purge_audit(cutoff, settings.purge_batch).await {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                // Lets other work at the store between batches.
                tokio::task::yield_now().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit retention pass stopped early");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(deleted = total, retention_days = settings.retention_days, "old audit entries deleted");
    }
    total
}
