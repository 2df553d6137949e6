//! Long-polling a pull subscription: what the consume route will call.

use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use uuid::Uuid;

use super::error::MessagingError;
use super::model::Delivery;
use super::store::MessageStore;
use crate::domain::TenantId;

/// A floor on re-checks when the store says something is due but nothing
/// could be leased (an ordered key still in flight): avoids a busy loop.
const MIN_RECHECK: Duration = Duration::from_millis(10);

/// Leases up to `max` deliveries, waiting up to `wait` for some to arrive.
/// Wakes on the store's change notifications and when a backoff or lease
/// deadline falls due; answers an empty list when `wait` passes.
pub async fn consume(
    store: &dyn MessageStore,
    tenant: TenantId,
    subscription: Uuid,
    max: usize,
    wait: Duration,
) -> Result<Vec<Delivery>, MessagingError> {
    let until = Instant::now() + wait;
    let changes = store.changes();
    loop {
        // Registered before looking, so a publish between the look and the
        // wait still wakes us.
        let notified = changes.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let got = store.lease(tenant, subscription, max, Utc::now()).await?;
        let now = Instant::now();
        if !got.is_empty() || now >= until {
            return Ok(got);
        }
        let mut wake = until;
        if let Some(due) = store.next_due(tenant, subscription).await? {
            let in_ = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO).max(MIN_RECHECK);
            // Checked: a due time centuries ahead must not overflow the clock.
            wake = now.checked_add(in_).map_or(wake, |w| wake.min(w));
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}
