//! One lock per tenant (striped) around an upload's quota check and the
//! store of the version it admits. Without it, uploads of new modules that
//! arrive together each read the count before any of them stored, and all
//! fit a quota only one of them fits.
//!
//! The locks are this process's own. Across instances the store checks the
//! quota again as it inserts, under the tenant's admission lock
//! (`RegistryStore::admit_module_version`); this lock still serves the
//! in-memory store and keeps one instance's uploads of a tenant from waiting
//! for that one on several database connections.

use std::sync::Arc;

use hotswap_actors::domain::TenantId;
use tokio::sync::{Mutex, MutexGuard};

/// Tenants share a stripe by their id: a collision only makes two tenants'
/// uploads wait for each other's quota check, never lets one past.
const STRIPES: usize = 64;

#[derive(Clone)]
pub struct QuotaLocks {
    stripes: Arc<Vec<Mutex<()>>>,
}

impl Default for QuotaLocks {
    fn default() -> Self {
        QuotaLocks { stripes: Arc::new((0..STRIPES).map(|_| Mutex::new(())).collect()) }
    }
}

impl QuotaLocks {
    /// Waits for `tenant`'s lock; it is held until the guard drops.
    pub async fn lock(&self, tenant: TenantId) -> MutexGuard<'_, ()> {
        let stripe = (tenant.as_u128() % STRIPES as u128) as usize;
        self.stripes[stripe].lock().await
    }
}
