//! The wake-up: a verb or an approval decision is stored durably by
//! whichever instance received it; the run's owner notices by polling the
//! store (within `approvals.poll_interval`) and, where a back-plane exists
//! (Redis pub/sub), at once through [`WakeUp`].

use std::sync::Arc;

use uuid::Uuid;

use crate::domain::TenantId;

/// What the owner of a run does when woken: read the run's news from the store.
pub type OnWake = Arc<dyn Fn(TenantId, Uuid) + Send + Sync>;

/// Tells the instance that owns a run that the store holds news for it.
/// Best effort: a lost wake-up only delays the owner until its next poll.
pub trait WakeUp: Send + Sync {
    /// Sent by the instance that stored the news.
    fn notify(&self, tenant: TenantId, execution_id: Uuid);
    /// Called once at start-up: every notification from any instance is
    /// handed to `on_wake` (which ignores runs this instance does not own).
    fn listen(&self, on_wake: OnWake);
}

/// No back-plane: owners find news by polling the store.
pub struct PollOnly;

impl WakeUp for PollOnly {
    fn notify(&self, _tenant: TenantId, _execution_id: Uuid) {}

    fn listen(&self, _on_wake: OnWake) {}
}
