//! The cap on uploads read at once. Each upload may hold its artifact (up
//! to `registry.max_artifact_bytes`) and, for JSON, its base64 text in
//! memory while it is checked, so the cap bounds the memory all uploads
//! together can take: `max_concurrent_uploads` × about 2.3 × the largest
//! artifact. An upload past the cap is answered at once (503 with
//! Retry-After) instead of waiting with its body unread.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct UploadSlots {
    slots: Arc<Semaphore>,
    limit: usize,
}

/// Held while an upload is read and stored; the slot frees when it drops.
pub struct UploadSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl UploadSlots {
    pub fn new(limit: usize) -> UploadSlots {
        UploadSlots { slots: Arc::new(Semaphore::new(limit)), limit }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot, or `None` when `limit` uploads are in progress.
    pub fn try_take(&self) -> Option<UploadSlot> {
        self.slots.clone().try_acquire_owned().ok().map(UploadSlot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_frees_when_its_upload_ends() {
        let slots = UploadSlots::new(1);
        let first = slots.try_take();
        assert!(first.is_some());
        assert!(slots.try_take().is_none(), "the cap of one is taken");
        drop(first);
        assert!(slots.try_take().is_some());
    }
}
