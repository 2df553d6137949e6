//! The knowledge graph's storage contract. The traversals run on the
//! in-memory index `crate::graph` keeps per tenant; the store is what that
//! index is loaded from and what makes each write durable.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;
use crate::domain::{GraphChange, GraphEntity, GraphRelationship, GraphSchema, GraphSnapshot, NewAuditEntry, TenantId};

#[async_trait]
pub trait GraphStore: Send + Sync {
    /// The tenant's schema, `None` until one was saved (the built-in one applies).
    async fn graph_schema(&self, tenant: TenantId) -> StoreResult<Option<GraphSchema>>;
    /// Replaces the tenant's schema (the caller checks the version order).
    async fn save_graph_schema(&self, schema: &GraphSchema, audit: &NewAuditEntry) -> StoreResult<()>;
    /// Applies `change` to the tenant's graph in one atomic step: upserts by
    /// id, then deletions (an entity's relationships go with it). Every record
    /// must belong to `tenant`. `audit` is `None` only for the actors' sync,
    /// whose originating change is audited where it is made.
    async fn write_graph(
        &self,
        tenant: TenantId,
        change: &GraphChange,
        audit: Option<&NewAuditEntry>,
    ) -> StoreResult<()>;
    async fn graph_entity(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<GraphEntity>>;
    /// The entities among `ids` that exist, in no particular order.
    async fn graph_entities(&self, tenant: TenantId, ids: &[Uuid]) -> StoreResult<Vec<GraphEntity>>;
    /// The relationships among `ids` that exist, in no particular order.
    async fn graph_relationships(&self, tenant: TenantId, ids: &[Uuid]) -> StoreResult<Vec<GraphRelationship>>;
    /// Everything the tenant's graph holds (to build the index).
    async fn load_graph(&self, tenant: TenantId) -> StoreResult<GraphSnapshot>;
    /// Ids of the tenant's entities (of `entity_type`, when named) whose
    /// top-level `property` equals the scalar `value` (numbers compared as
    /// numbers), in no particular order. A selective `eq` filter of a match
    /// starts here (PostgreSQL: the GIN index on properties) instead of at
    /// every entity of the type. May answer more (the caller filters again),
    /// never fewer.
    async fn graph_entity_ids_where(
        &self,
        tenant: TenantId,
        entity_type: Option<&str>,
        property: &str,
        value: &serde_json::Value,
    ) -> StoreResult<Vec<Uuid>>;
    /// Whether `graph_entity_ids_where` is answered from an index on the
    /// properties. Only then does a match start at the store: a store that
    /// would scan every entity is slower than the in-memory index's type set.
    fn graph_has_property_index(&self) -> bool {
        false
    }
}
