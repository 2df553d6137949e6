//! The in-memory knowledge graph: entities and relationships by tenant.

use std::collections::HashMap;

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryStore;
use crate::domain::{GraphChange, GraphEntity, GraphRelationship, GraphSchema, GraphSnapshot, NewAuditEntry, TenantId};
use crate::store::{GraphStore, StoreError, StoreResult};

#[derive(Default)]
pub(super) struct Graphs {
    schemas: HashMap<TenantId, GraphSchema>,
    tenants: HashMap<TenantId, TenantGraph>,
}

#[derive(Default)]
struct TenantGraph {
    entities: HashMap<Uuid, GraphEntity>,
    relationships: HashMap<Uuid, GraphRelationship>,
}

impl TenantGraph {
    /// Applies the change as PostgreSQL does, refusing (before changing
    /// anything) what its constraints refuse: a record of another tenant, a
    /// relationship whose ends will not exist.
    fn apply(&mut self, tenant: TenantId, change: &GraphChange) -> StoreResult<()> {
        if let Some(e) = change.upsert_entities.iter().find(|e| e.tenant_id != tenant) {
            return Err(StoreError::Other(format!("entity {} belongs to another tenant", e.id)));
        }
        if let Some(r) = change.upsert_relationships.iter().find(|r| r.tenant_id != tenant) {
            return Err(StoreError::Other(format!("relationship {} belongs to another tenant", r.id)));
        }
        let upserted: std::collections::HashSet<Uuid> = change.upsert_entities.iter().map(|e| e.id).collect();
        let deleted: std::collections::HashSet<Uuid> = change.delete_entities.iter().copied().collect();
        for r in &change.upsert_relationships {
            for end in [r.source_id, r.target_id] {
                let exists = upserted.contains(&end) || self.entities.contains_key(&end);
                if !exists {
                    return Err(StoreError::NotFound(format!("entity {end} not found")));
                }
            }
        }
        for e in &change.upsert_entities {
            self.entities.insert(e.id, e.clone());
        }
        for r in &change.upsert_relationships {
            self.relationships.insert(r.id, r.clone());
        }
        for id in &change.delete_relationships {
            self.relationships.remove(id);
        }
        if !deleted.is_empty() {
            for id in &deleted {
                self.entities.remove(id);
            }
            self.relationships.retain(|_, r| !deleted.contains(&r.source_id) && !deleted.contains(&r.target_id));
        }
        Ok(())
    }
}

#[async_trait]
impl GraphStore for MemoryStore {
    async fn graph_schema(&self, tenant: TenantId) -> StoreResult<Option<GraphSchema>> {
        Ok(self.graphs.read().schemas.get(&tenant).cloned())
    }

    async fn save_graph_schema(&self, schema: &GraphSchema, audit: &NewAuditEntry) -> StoreResult<()> {
        self.graphs.write().schemas.insert(schema.tenant_id, schema.clone());
        self.push_audit(std::slice::from_ref(audit));
        Ok(())
    }

    async fn write_graph(
        &self,
        tenant: TenantId,
        change: &GraphChange,
        audit: Option<&NewAuditEntry>,
    ) -> StoreResult<()> {
        {
            let mut graphs = self.graphs.write();
            graphs.tenants.entry(tenant).or_default().apply(tenant, change)?;
        }
        if let Some(audit) = audit {
            self.push_audit(std::slice::from_ref(audit));
        }
        Ok(())
    }

    async fn graph_entity(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<GraphEntity>> {
        Ok(self.graphs.read().tenants.get(&tenant).and_then(|g| g.entities.get(&id).cloned()))
    }

    async fn graph_entities(&self, tenant: TenantId, ids: &[Uuid]) -> StoreResult<Vec<GraphEntity>> {
        let graphs = self.graphs.read();
        let Some(g) = graphs.tenants.get(&tenant) else { return Ok(Vec::new()) };
        Ok(ids.iter().filter_map(|id| g.entities.get(id).cloned()).collect())
    }

    async fn graph_relationships(&self, tenant: TenantId, ids: &[Uuid]) -> StoreResult<Vec<GraphRelationship>> {
        let graphs = self.graphs.read();
        let Some(g) = graphs.tenants.get(&tenant) else { return Ok(Vec::new()) };
        Ok(ids.iter().filter_map(|id| g.relationships.get(id).cloned()).collect())
    }

    async fn graph_entity_ids_where(
        &self,
        tenant: TenantId,
        entity_type: Option<&str>,
        property: &str,
        value: &serde_json::Value,
    ) -> StoreResult<Vec<Uuid>> {
        let graphs = self.graphs.read();
        let Some(g) = graphs.tenants.get(&tenant) else { return Ok(Vec::new()) };
        let equal = |stored: &serde_json::Value| match (stored.as_f64(), value.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => stored == value,
        };
        Ok(g.entities
            .values()
            .filter(|e| entity_type.is_none_or(|t| e.entity_type == t))
            .filter(|e| e.properties.get(property).is_some_and(equal))
            .map(|e| e.id)
            .collect())
    }

    async fn load_graph(&self, tenant: TenantId) -> StoreResult<GraphSnapshot> {
        let graphs = self.graphs.read();
        let Some(g) = graphs.tenants.get(&tenant) else { return Ok(GraphSnapshot::default()) };
        Ok(GraphSnapshot {
            entities: g.entities.values().cloned().collect(),
            relationships: g.relationships.values().cloned().collect(),
        })
    }
}
