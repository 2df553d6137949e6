//! Several instances on one store: each keeps its own in-memory index of a
//! tenant's graph, loaded once. Every commit is told to the others as the
//! ids it wrote ([`GraphCommitted`]), and each applies those records as the
//! store holds them now ([`GraphService::apply_from_peer`]), so that reading
//! them again makes the order of two notices irrelevant. How the notices
//! travel (the server's Redis backplane) is not the core's business.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{GraphChange, TenantId};

/// What one commit wrote, by id: enough for another instance to read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphCommitted {
    pub tenant: TenantId,
    pub entities: Vec<Uuid>,
    pub relationships: Vec<Uuid>,
    pub deleted_entities: Vec<Uuid>,
    pub deleted_relationships: Vec<Uuid>,
    /// The tenant's schema was replaced.
    pub schema: bool,
}

impl GraphCommitted {
    pub fn of(tenant: TenantId, change: &GraphChange) -> GraphCommitted {
        GraphCommitted {
            tenant,
            entities: change.upsert_entities.iter().map(|e| e.id).collect(),
            relationships: change.upsert_relationships.iter().map(|r| r.id).collect(),
            deleted_entities: change.delete_entities.clone(),
            deleted_relationships: change.delete_relationships.clone(),
            schema: false,
        }
    }
}

/// Tells the other instances what this one committed. Called after the
/// store has the change; it must not wait (a notice is sent in the
/// background, and a lost one leaves the others stale until they reload).
pub trait GraphPeers: Send + Sync {
    fn committed(&self, notice: GraphCommitted);
}
