//! Leases in memory. One process uses a memory store, so its runs are in
//! practice always its own; the rules are PostgreSQL's all the same, so that
//! the conformance suite holds both to one contract.

use std::time::Instant;

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryStore;
use crate::domain::ModuleSlots;
use crate::domain::RunOwner;
use crate::domain::TenantId;
use crate::store::{ClaimedRun, LeaseStore, NodeStore, RelayedAnswer, RelayedVerb, RunFence, StoreError, StoreResult};

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

    /// Refuses a write for `node_id` when the fence's run has moved to
    /// another lease epoch. One process holds a memory store, so no other
    /// instance can take the run between this check and the write.
    pub(super) fn check_fence(&self, fence: &RunFence, node_id: Uuid) -> StoreResult<()> {
        let epoch = {
            let runs = self.runs.read();
            runs.by_id.get(&(fence.tenant_id, fence.execution_id)).and_then(|r| r.owner.as_ref()).map(|o| o.epoch)
        };
        match epoch {
            Some(epoch) if epoch != fence.epoch => Err(StoreError::Fenced(format!(
                "deployment {} has lease epoch {epoch}, not {}: node {node_id} not changed",
                fence.execution_id, fence.epoch
            ))),
            _ => Ok(()),
        }
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

    async fn set_module_slots_fenced(
        &self,
        node_id: Uuid,
        module: &str,
        slots: &ModuleSlots,
        fence: &RunFence,
    ) -> StoreResult<()> {
        self.check_fence(fence, node_id)?;
        self.set_module_slots(fence.tenant_id, node_id, module, slots).await
    }

    async fn take_finished_run(&self, tenant: TenantId, execution_id: Uuid, owner: &str) -> StoreResult<Option<u64>> {
        let until = Instant::now() + self.lease_ttl.0;
        let mut runs = self.runs.write();
        let Some(run) = runs.by_id.get_mut(&(tenant, execution_id)) else { return Ok(None) };
        if run.status.is_active() {
            return Ok(None);
        }
        let epoch = run.owner.as_ref().map_or(0, |o| o.epoch) + 1;
        run.owner = Some(RunOwner { instance: owner.to_string(), epoch });
        runs.lease_expiry.insert((tenant, execution_id), until);
        Ok(Some(epoch))
    }

    async fn relay_verb(&self, verb: &RelayedVerb) -> StoreResult<()> {
        self.relayed.lock().push((verb.clone(), None));
        Ok(())
    }

    async fn relayed_verbs(&self, runs: &[Uuid]) -> StoreResult<Vec<RelayedVerb>> {
        let relayed = self.relayed.lock();
        let waiting = relayed.iter().filter(|(v, answer)| answer.is_none() && runs.contains(&v.execution_id));
        Ok(waiting.map(|(v, _)| v.clone()).collect())
    }

    async fn answer_relayed_verb(&self, request_id: Uuid, answer: &RelayedAnswer) -> StoreResult<()> {
        let mut relayed = self.relayed.lock();
        if let Some((_, slot @ None)) = relayed.iter_mut().find(|(v, _)| v.request_id == request_id) {
            *slot = Some(answer.clone());
        }
        Ok(())
    }

    async fn take_relayed_answer(&self, request_id: Uuid) -> StoreResult<Option<RelayedAnswer>> {
        let mut relayed = self.relayed.lock();
        let Some(at) = relayed.iter().position(|(v, answer)| v.request_id == request_id && answer.is_some()) else {
            return Ok(None);
        };
        Ok(relayed.remove(at).1)
    }

    async fn withdraw_relayed_verb(&self, request_id: Uuid) -> StoreResult<bool> {
        let mut relayed = self.relayed.lock();
        let Some(at) = relayed.iter().position(|(v, answer)| v.request_id == request_id && answer.is_none()) else {
            return Ok(false);
        };
        relayed.remove(at);
        Ok(true)
    }
}
