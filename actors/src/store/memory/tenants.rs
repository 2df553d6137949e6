//! Tenants in memory, admission, and the run counts kept beside the runs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::domain::{NewAuditEntry, QuotaExceeded, RunEvent, RunRecord, TenantId, TenantRecord, TenantStatus};
use crate::store::{AdmissionCheck, RunCounts, StoreError, StoreResult, TenantStore, UsageCounts};

#[async_trait]
impl TenantStore for MemoryStore {
    async fn create_tenant(&self, tenant: &TenantRecord, audit: &[NewAuditEntry]) -> StoreResult<()> {
        let mut tenants = self.tenants.write();
        if tenants.contains_key(&tenant.tenant_id) {
            return Err(StoreError::Conflict(format!("tenant {} exists", tenant.tenant_id)));
        }
        let wanted = tenant.subdomain.to_lowercase();
        if tenants.values().any(|t| t.subdomain.to_lowercase() == wanted) {
            return Err(StoreError::Conflict(format!("Subdomain '{}' is already taken", tenant.subdomain)));
        }
        tenants.insert(tenant.tenant_id, tenant.clone());
        drop(tenants);
        self.push_audit(audit);
        Ok(())
    }

    async fn get_tenant(&self, tenant: TenantId) -> StoreResult<Option<TenantRecord>> {
        Ok(self.tenants.read().get(&tenant).cloned())
    }

    async fn list_tenants(&self, status: Option<TenantStatus>) -> StoreResult<Vec<TenantRecord>> {
        let mut found: Vec<TenantRecord> =
            self.tenants.read().values().filter(|t| status.is_none_or(|s| t.status == s)).cloned().collect();
        found.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.tenant_id.cmp(&b.tenant_id)));
        Ok(found)
    }

    async fn save_tenant(&self, tenant: &TenantRecord, audit: &[NewAuditEntry]) -> StoreResult<()> {
        let mut tenants = self.tenants.write();
        let Some(stored) = tenants.get(&tenant.tenant_id) else {
            return Err(StoreError::NotFound(format!("Tenant {} not found", tenant.tenant_id)));
        };
        if stored.revision >= tenant.revision {
            return Err(StoreError::Stale(format!(
                "tenant {} is at revision {}, not saving revision {}",
                tenant.tenant_id, stored.revision, tenant.revision
            )));
        }
        tenants.insert(tenant.tenant_id, tenant.clone());
        drop(tenants);
        self.push_audit(audit);
        Ok(())
    }

    async fn admit_run(
        &self,
        run: &RunRecord,
        events: &[RunEvent],
        since: DateTime<Utc>,
        check: AdmissionCheck<'_>,
    ) -> StoreResult<Result<(), QuotaExceeded>> {
        // The write lock is the admission's lock: counting and inserting are one step.
        let mut runs = self.runs.write();
        if let Err(over) = check(&runs.counts(run.tenant_id, since, &run.request.module_name)) {
            return Ok(Err(over));
        }
        let evicted = self.insert_run(&mut runs, run)?;
        drop(runs);
        self.after_insert(run, events, evicted);
        Ok(Ok(()))
    }

    async fn run_counts(&self, tenant: TenantId, since: DateTime<Utc>, module: &str) -> StoreResult<RunCounts> {
        Ok(self.runs.read().counts(tenant, since, module))
    }

    async fn usage_counts(&self, tenant: TenantId, from: DateTime<Utc>, to: DateTime<Utc>) -> StoreResult<UsageCounts> {
        let mut usage = UsageCounts::default();
        let runs = self.runs.read();
        for run in runs.by_id.values() {
            if run.tenant_id != tenant || run.created_at < from || run.created_at > to {
                continue;
            }
            *usage.runs_by_status.entry(run.status.as_str().to_string()).or_default() += 1;
            usage.node_updates += runs.change_count(run) as u64;
        }
        usage.approval_events = self
            .events
            .read()
            .iter()
            .filter(|((t, _), _)| *t == tenant)
            .flat_map(|(_, events)| events.iter())
            .filter(|e| e.kind.starts_with("Approval") && e.at >= from && e.at <= to)
            .count() as u64;
        Ok(usage)
    }
}
