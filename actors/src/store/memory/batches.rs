//! Deployment batches in memory.

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryStore;
use crate::domain::{BatchCursor, BatchRecord, BatchStatus, NewAuditEntry, TenantId};
use crate::store::{BatchStore, StoreResult};

#[async_trait]
impl BatchStore for MemoryStore {
    async fn save_batch(&self, batch: &BatchRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        self.batches.write().insert((batch.tenant_id, batch.batch_id), batch.clone());
        self.push_audit(std::slice::from_ref(audit));
        Ok(())
    }

    async fn get_batch(&self, tenant: TenantId, batch_id: Uuid) -> StoreResult<Option<BatchRecord>> {
        Ok(self.batches.read().get(&(tenant, batch_id)).cloned())
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
            .values()
            .filter(|b| b.tenant_id == tenant && before.is_none_or(|cursor| b.cursor() < cursor))
            .collect();
        mine.sort_by_key(|b| std::cmp::Reverse(b.cursor()));
        Ok(mine.into_iter().take(limit).cloned().collect())
    }

    async fn batches_in_flight(&self) -> StoreResult<Vec<BatchRecord>> {
        let mut running: Vec<BatchRecord> =
            self.batches.read().values().filter(|b| b.status == BatchStatus::Running).cloned().collect();
        running.sort_by_key(|b| (b.created_at, b.batch_id));
        Ok(running)
    }
}
