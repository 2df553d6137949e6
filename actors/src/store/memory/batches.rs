//! Deployment batches in memory. Finished batches are kept in the same
//! window per tenant as finished runs, so that a process releasing every few
//! minutes for months does not grow without end.

use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryStore;
use crate::domain::{BatchCursor, BatchRecord, BatchStatus, NewAuditEntry, TenantId};
use crate::store::{BatchStore, StoreResult};

/// Every tenant's batches, and the order their finished ones finished in.
#[derive(Default)]
pub(super) struct Batches {
    by_id: HashMap<(TenantId, Uuid), BatchRecord>,
    /// Per tenant, the ids of finished batches, oldest finish first.
    finished: HashMap<TenantId, VecDeque<Uuid>>,
}

impl Batches {
    /// Stores `batch`; once more than `window` of the tenant's batches have
    /// finished, the one that finished first is forgotten.
    fn put(&mut self, batch: &BatchRecord, window: usize) {
        let key = (batch.tenant_id, batch.batch_id);
        let was_running = self.by_id.get(&key).is_none_or(|b| b.status == BatchStatus::Running);
        self.by_id.insert(key, batch.clone());
        if batch.status == BatchStatus::Running || !was_running {
            return;
        }
        let finished = self.finished.entry(batch.tenant_id).or_default();
        finished.push_back(batch.batch_id);
        while finished.len() > window {
            let Some(oldest) = finished.pop_front() else { break };
            self.by_id.remove(&(batch.tenant_id, oldest));
        }
    }
}

#[async_trait]
impl BatchStore for MemoryStore {
    async fn save_batch(&self, batch: &BatchRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        self.batches.write().put(batch, self.finished_window.0);
        self.push_audit(std::slice::from_ref(audit));
        Ok(())
    }

    async fn get_batch(&self, tenant: TenantId, batch_id: Uuid) -> StoreResult<Option<BatchRecord>> {
        Ok(self.batches.read().by_id.get(&(tenant, batch_id)).cloned())
    }

    async fn recent_batches(
        &self,
        tenant: TenantId,
        limit: usize,
        before: Option<BatchCursor>,
    ) -> StoreResult<Vec<BatchRecord>> {
        let batches = self.batches.read();
        // Sorted by reference, and only the page cloned.
        let mut mine: Vec<&BatchRecord> = batches
            .by_id
            .values()
            .filter(|b| b.tenant_id == tenant && before.is_none_or(|cursor| b.cursor() < cursor))
            .collect();
        mine.sort_by_key(|b| std::cmp::Reverse(b.cursor()));
        Ok(mine.into_iter().take(limit).cloned().collect())
    }

    async fn batches_in_flight(&self) -> StoreResult<Vec<BatchRecord>> {
        let mut running: Vec<BatchRecord> =
            self.batches.read().by_id.values().filter(|b| b.status == BatchStatus::Running).cloned().collect();
        running.sort_by_key(|b| (b.created_at, b.batch_id));
        Ok(running)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{AuditActor, Environment};

    fn batch(tenant: TenantId, status: BatchStatus) -> BatchRecord {
        BatchRecord {
            tenant_id: tenant,
            batch_id: Uuid::new_v4(),
            target_environment: Environment::Development,
            strategy: None,
            requester_email: "ops@example.com".into(),
            metadata: Default::default(),
            allow_downgrade: false,
            created_by: AuditActor::system(),
            status,
            message: String::new(),
            steps: Vec::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn finished_batches_beyond_the_window_are_forgotten_oldest_finish_first() {
        let (mine, theirs) = (TenantId::new_v4(), TenantId::new_v4());
        let mut batches = Batches::default();
        let running = batch(mine, BatchStatus::Running);
        batches.put(&running, 2);
        let done: Vec<BatchRecord> = (0..3).map(|_| batch(mine, BatchStatus::Succeeded)).collect();
        let other = batch(theirs, BatchStatus::Failed);
        batches.put(&other, 2);
        for b in &done {
            batches.put(b, 2);
            // Saved again once finished (a repeated save): counted once.
            batches.put(b, 2);
        }
        let kept = |b: &BatchRecord, batches: &Batches| batches.by_id.contains_key(&(b.tenant_id, b.batch_id));
        assert!(!kept(&done[0], &batches), "the first to finish left");
        assert!(kept(&done[1], &batches) && kept(&done[2], &batches));
        assert!(kept(&running, &batches), "a running batch is never forgotten");
        assert!(kept(&other, &batches), "another tenant's window is its own");
        // The running one finishing pushes the next oldest out.
        let mut finished = running.clone();
        finished.status = BatchStatus::Failed;
        batches.put(&finished, 2);
        assert!(kept(&finished, &batches) && !kept(&done[1], &batches) && kept(&done[2], &batches));
    }
}
