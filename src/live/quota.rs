//! Live sessions held open per tenant, for its `websocketSessions` quota. A
//! connection takes a place before its upgrade and gives it back when its
//! session ends, however it ends (the slot is dropped with the session).

use std::collections::HashMap;
use std::sync::Arc;

use hotswap_actors::domain::{QuotaExceeded, QuotaKind, TenantId};
use hotswap_actors::CoreError;
use parking_lot::Mutex;

use crate::web::ApiError;
use crate::web::AppState;

#[derive(Default)]
pub struct SessionCounts {
    open: Mutex<HashMap<TenantId, u64>>,
}

/// One place of a tenant's quota, held by a live session.
#[derive(Debug)]
pub struct SessionSlot {
    counts: Arc<SessionCounts>,
    tenant: TenantId,
}

impl std::fmt::Debug for SessionCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCounts").field("tenants", &self.open.lock().len()).finish()
    }
}

impl SessionCounts {
    /// Sessions the tenant holds open now.
    pub fn open(&self, tenant: TenantId) -> u64 {
        self.open.lock().get(&tenant).copied().unwrap_or(0)
    }

    /// Takes a place unless the tenant already holds `limit` (u32::MAX: unlimited).
    pub fn acquire(self: &Arc<Self>, tenant: TenantId, limit: u32) -> Result<SessionSlot, QuotaExceeded> {
        let mut open = self.open.lock();
        let current = open.entry(tenant).or_insert(0);
        room(limit, *current)?;
        *current += 1;
        Ok(SessionSlot { counts: self.clone(), tenant })
    }
}

/// Whether one more session fits beside `current` under `limit` (u32::MAX: unlimited).
fn room(limit: u32, current: u64) -> Result<(), QuotaExceeded> {
    if limit != u32::MAX && current >= u64::from(limit) {
        return Err(QuotaExceeded { quota: QuotaKind::WebsocketSessions, limit, current });
    }
    Ok(())
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock();
        if let Some(n) = open.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

/// A place for a new live session of `tenant`, within its quota (403 beyond it).
pub async fn admit(state: &AppState, counts: &Arc<SessionCounts>, tenant: TenantId) -> Result<SessionSlot, ApiError> {
    counts.acquire(tenant, session_limit(state, tenant).await?).map_err(ApiError::Quota)
}

/// The refusal `admit` would give now, without taking a place: SignalR's
/// negotiate asks, so that every client hears of the quota, not only those
/// whose transport shows an HTTP answer (a WebSocket refused at its upgrade
/// reads, to the official client, as a connection "not found on the
/// server"), and so does a plain GET of /api/v1/ws (the dashboard's "why am I
/// not live"). The connection still takes its place when it opens, possibly
/// on another instance.
pub async fn check(state: &AppState, counts: &SessionCounts, tenant: TenantId) -> Result<(), ApiError> {
    room(session_limit(state, tenant).await?, counts.open(tenant)).map_err(ApiError::Quota)
}

/// The tenant's `websocketSessions` quota.
async fn session_limit(state: &AppState, tenant: TenantId) -> Result<u32, ApiError> {
    let record = state.orchestrator.tenants().get(tenant).await.map_err(|e| match e {
        CoreError::NotFound(_) => ApiError::Forbidden(format!("Tenant {tenant} does not exist")),
        other => other.into(),
    })?;
    Ok(record.quota.max_websocket_sessions)
}
