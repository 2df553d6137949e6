//! Leases in memory. One process uses a memory store, so its runs are in
//! practice always its own; the rules are PostgreSQL's all the same, so that
//! the conformance suite holds both to one contract.

use std::time::Instant;

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryStore;
use crate::domain::RunOwner;
use crate::store::{ClaimedRun, LeaseStore, StoreResult};

impl MemoryStore {
    /// Moves the expiry of every lease `owner` holds on an active run to
    /// `until`; answers those runs.
    fn set_expiry(&self, owner: &str, until: Instant) -> Vec<(crate::domain::TenantId, Uuid)> {
        let mut runs = self.runs.write();
        let held: Vec<_> = runs
            .active()
            .filter(|r| r.owner.as_ref().is_some_and(|o| o.instance == owner))
            .map(|r| (r.tenant_id, r.execution_id))
            .collect();
        for key in &held {
            runs.lease_expiry.insert(*key, until);
        }
        held
    }
}

#[async_trait]
impl LeaseStore for MemoryStore {
    async fn claim_runs(&self, owner: &str, limit: u32) -> StoreResult<Vec<ClaimedRun>> {
        let now = Instant::now();
        let until = now + self.lease_ttl.0;
        let mut runs = self.runs.write();
        let mut claimable: Vec<_> = runs
            .active()
            .filter(|r| match &r.owner {
                None => true,
                Some(_) => runs.lease_expiry.get(&(r.tenant_id, r.execution_id)).is_none_or(|at| *at <= now),
            })
            .map(|r| (r.created_at, r.tenant_id, r.execution_id))
            .collect();
        claimable.sort();
        claimable.truncate(limit as usize);
        let mut claimed = Vec::with_capacity(claimable.len());
        for (_, tenant_id, execution_id) in claimable {
            let Some(run) = runs.by_id.get_mut(&(tenant_id, execution_id)) else { continue };
            let epoch = run.owner.as_ref().map_or(0, |o| o.epoch) + 1;
            run.owner = Some(RunOwner { instance: owner.to_string(), epoch });
            runs.lease_expiry.insert((tenant_id, execution_id), until);
            claimed.push(ClaimedRun { tenant_id, execution_id, epoch });
        }
        Ok(claimed)
    }

    async fn renew_runs(&self, owner: &str) -> StoreResult<Vec<Uuid>> {
        let held = self.set_expiry(owner, Instant::now() + self.lease_ttl.0);
        Ok(held.into_iter().map(|(_, id)| id).collect())
    }

    async fn release_runs(&self, owner: &str) -> StoreResult<u64> {
        Ok(self.set_expiry(owner, Instant::now()).len() as u64)
    }

    async fn hold_task(&self, task: &str, owner: &str) -> StoreResult<bool> {
        let now = Instant::now();
        let mut leases = self.task_leases.lock();
        let held = leases.get(task).is_some_and(|(holder, until)| holder != owner && *until > now);
        if held {
            return Ok(false);
        }
        leases.insert(task.to_string(), (owner.to_string(), now + self.lease_ttl.0));
        Ok(true)
    }
}
