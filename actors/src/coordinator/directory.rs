//! The directory of the coordinators live in this process, by run, and of
//! those whose latest checkpoint cannot be saved (for `/health/ready` and
//! the admin tree).

use std::collections::HashMap;

use actix::prelude::*;
use parking_lot::RwLock;
use uuid::Uuid;

use super::actor::Coordinator;
use crate::approval::{ApprovalSettled, SettledListeners};
use crate::domain::TenantId;

/// The live coordinators, by run.
#[derive(Default)]
pub struct RunDirectory {
    live: RwLock<HashMap<Uuid, Addr<Coordinator>>>,
    /// Signalled when the last live coordinator stops.
    idle: tokio::sync::Notify,
    /// Coordinators whose latest checkpoint has not been saved yet, with why.
    cannot_save: RwLock<HashMap<Uuid, SaveTrouble>>,
}

/// A coordinator that keeps failing to save its checkpoint: it retries with
/// backoff and, meanwhile, is reported on `/health/ready` and in the admin tree.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaveTrouble {
    pub execution_id: Uuid,
    pub tenant_id: TenantId,
    /// When the first of the failed attempts in a row was made.
    pub since: chrono::DateTime<chrono::Utc>,
    pub failed_attempts: u32,
    pub last_error: String,
}

impl SettledListeners for RunDirectory {
    fn listener(&self, execution_id: Uuid) -> Option<Recipient<ApprovalSettled>> {
        self.get(execution_id).map(|coordinator| coordinator.recipient())
    }
}

impl RunDirectory {
    pub fn get(&self, id: Uuid) -> Option<Addr<Coordinator>> {
        self.live.read().get(&id).filter(|a| a.connected()).cloned()
    }
    pub(super) fn insert(&self, id: Uuid, addr: Addr<Coordinator>) {
        self.live.write().insert(id, addr);
    }
    pub(super) fn remove(&self, id: Uuid) {
        let now_idle = {
            let mut live = self.live.write();
            live.remove(&id);
            live.values().all(|a| !a.connected())
        };
        if now_idle {
            self.idle.notify_one();
        }
    }
    /// Resolves once the last live coordinator has stopped since the previous
    /// call (at once if it stopped in between: the signal is kept).
    pub async fn fell_idle(&self) {
        self.idle.notified().await
    }
    /// Notes one more failed save of the run's checkpoint.
    pub(super) fn save_failed(&self, tenant: TenantId, id: Uuid, error: &str) {
        let mut troubles = self.cannot_save.write();
        let trouble = troubles.entry(id).or_insert_with(|| SaveTrouble {
            execution_id: id,
            tenant_id: tenant,
            since: chrono::Utc::now(),
            failed_attempts: 0,
            last_error: String::new(),
        });
        trouble.failed_attempts += 1;
        trouble.last_error = error.to_string();
    }

    /// The run's checkpoint was saved, or its coordinator stopped.
    pub(super) fn save_settled(&self, id: Uuid) {
        if self.cannot_save.read().contains_key(&id) {
            self.cannot_save.write().remove(&id);
        }
    }

    /// The coordinators that cannot save their checkpoint right now, oldest trouble first.
    pub fn cannot_save(&self) -> Vec<SaveTrouble> {
        let mut troubles: Vec<SaveTrouble> = self.cannot_save.read().values().cloned().collect();
        troubles.sort_by_key(|t| (t.since, t.execution_id));
        troubles
    }

    pub(super) fn save_trouble(&self, id: Uuid) -> Option<SaveTrouble> {
        self.cannot_save.read().get(&id).cloned()
    }

    /// The runs with a live coordinator here.
    pub fn ids(&self) -> Vec<Uuid> {
        self.live.read().keys().copied().collect()
    }
    pub fn len(&self) -> usize {
        self.live.read().values().filter(|a| a.connected()).count()
    }
    /// Whether at least `limit` coordinators are live. Every create asks, and
    /// the map holds no fewer entries than live coordinators, so below the
    /// limit the answer comes without walking a thousand runs in flight.
    pub fn at_least(&self, limit: usize) -> bool {
        let live = self.live.read();
        limit == 0 || live.len() >= limit && live.values().filter(|a| a.connected()).nth(limit - 1).is_some()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
