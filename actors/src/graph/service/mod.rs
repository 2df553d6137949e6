//! `GraphService`: the one writer of the graph and the one place queries
//! run. Each tenant's index is loaded from the store on first use and kept
//! in step with every write, which reaches the store first: the index never
//! shows what is not durable.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

mod indexes;
mod queries;
mod system_sync;

use super::index::TenantIndex;
use super::query::{self, MatchQuery, PathQuery, TraverseQuery};
use super::run_window::GraphSettings;
use super::schema;
use super::system;
use crate::domain::{
    AuditActor, AuditCategory, Environment, GraphChange, GraphEntity, GraphRelationship, GraphSchema, NewAuditEntry,
    TenantId, GRAPH_SYSTEM_AUTHOR,
};
use crate::store::{RunFilter, SharedStore, StoreError};

/// Most records one bulk request may create.
pub const MAX_BULK: usize = 10_000;
/// Cached answers kept per tenant; the cache starts again when full.
const CACHE_CAPACITY: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { message: String, details: Vec<String> },
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a new relationship starts or ends: a stored entity, or one created
/// in the same bulk request under a `ref` name.
#[derive(Debug, Clone, PartialEq)]
pub enum EndRef {
    Id(Uuid),
    Ref(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEntity {
    pub entity_type: String,
    pub properties: Map<String, Value>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewRelationship {
    pub relationship_type: String,
    pub source: EndRef,
    pub target: EndRef,
    pub weight: Option<f64>,
    pub directed: Option<bool>,
    pub properties: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RelationshipDirection {
    Outgoing,
    Incoming,
    #[default]
    Both,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathView {
    pub entity_ids: Vec<Uuid>,
    pub relationship_ids: Vec<Uuid>,
    pub total_weight: f64,
}

/// What every query answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryAnswer {
    pub entities: Vec<GraphEntity>,
    pub relationships: Vec<GraphRelationship>,
    pub total_count: u64,
    pub execution_time_ms: f64,
    pub from_cache: bool,
    pub plan: String,
    pub next_cursor: Option<String>,
    /// Shortest path: the sum of its weights.
    pub total_weight: Option<f64>,
    /// Shortest path: its relationships.
    pub hops: Option<usize>,
    /// All paths: each path, by ids.
    pub paths: Option<Vec<PathView>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphStatistics {
    pub entity_count: usize,
    pub relationship_count: usize,
    pub entities_by_type: Vec<(String, usize)>,
    pub relationships_by_type: Vec<(String, usize)>,
    pub schema_version: String,
    pub cached_queries: usize,
}

/// What `hotswap graph rebuild` changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RebuildReport {
    pub entities_written: usize,
    pub relationships_written: usize,
    pub entities_deleted: usize,
    pub relationships_deleted: usize,
}

/// The types a cached answer depends on; `None` depends on everything.
type Deps = Option<BTreeSet<String>>;

#[derive(Default)]
struct QueryCache {
    entries: HashMap<String, (Deps, QueryAnswer)>,
}

impl QueryCache {
    fn invalidate(&mut self, touched: &BTreeSet<String>) {
        if touched.is_empty() {
            return;
        }
        self.entries.retain(|_, (deps, _)| deps.as_ref().is_some_and(|d| d.is_disjoint(touched)));
    }
}

struct TenantGraph {
    /// Serialises writes, so that the store and the index apply them in the same order.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// This index may miss what the store holds (another instance's notice
    /// was lost, or could not be placed): the next use loads the tenant again
    /// (`indexes.rs`).
    stale: std::sync::atomic::AtomicBool,
    index: RwLock<TenantIndex>,
    schema: RwLock<GraphSchema>,
    cache: Mutex<QueryCache>,
}

pub struct GraphService {
    store: SharedStore,
    /// Finished runs kept per tenant (`run_window`).
    finished_runs: usize,
    tenants: Mutex<HashMap<TenantId, Arc<TenantGraph>>>,
    loading: tokio::sync::Mutex<()>,
    /// The other instances on the store, told of every commit (none alone).
    peers: std::sync::OnceLock<Arc<dyn crate::graph::peers::GraphPeers>>,
}

fn is_system_type(t: &str) -> bool {
    use super::schema::types::*;
    [TENANT, ENVIRONMENT, CLUSTER, NODE, MODULE, MODULE_VERSION, RUN, CONTAINS, RUNS, DEPENDS_ON, DEPLOYED, TOUCHED]
        .contains(&t)
}

fn audit(tenant: TenantId, actor: &AuditActor, event: &str, kind: &str, id: impl ToString) -> NewAuditEntry {
    NewAuditEntry::new(tenant, actor.clone(), AuditCategory::Administration, event).resource(kind, id)
}

impl GraphService {
    /// A graph with the default settings.
    pub fn new(store: SharedStore) -> Arc<GraphService> {
        GraphService::with_settings(store, &GraphSettings::default())
    }

    pub fn with_settings(store: SharedStore, settings: &GraphSettings) -> Arc<GraphService> {
        Arc::new(GraphService {
            store,
            finished_runs: settings.finished_runs,
            tenants: Mutex::new(HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
            peers: std::sync::OnceLock::new(),
        })
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Writes `change` to the store and then to the index, and drops the cached
    /// answers it may change. The caller holds the tenant's writer lock.
    async fn commit(
        &self,
        tenant: TenantId,
        graph: &TenantGraph,
        change: &GraphChange,
        audit: Option<&NewAuditEntry>,
    ) -> Result<(), GraphError> {
        if change.is_empty() {
            return Ok(());
        }
        self.store.write_graph(tenant, change, audit).await?;
        let touched = {
            let mut index = graph.index.write();
            let touched = index.touched_types(change);
            index.apply(change);
            touched
        };
        graph.cache.lock().invalidate(&touched);
        if let Some(peers) = self.peers.get() {
            peers.committed(crate::graph::peers::GraphCommitted::of(tenant, change));
        }
        Ok(())
    }

    // ------------------------------------------------------------ user writes

    /// Creates entities and relationships, all or nothing; every problem is
    /// reported together. Answers them as stored.
    pub async fn create(
        &self,
        tenant: TenantId,
        actor: &AuditActor,
        entities: Vec<NewEntity>,
        relationships: Vec<NewRelationship>,
    ) -> Result<(Vec<GraphEntity>, Vec<GraphRelationship>), GraphError> {
        if entities.len() + relationships.len() > MAX_BULK {
            return Err(GraphError::Invalid(vec![format!("at most {MAX_BULK} entities and relationships at once")]));
        }
        let (graph, _writer) = self.writing(tenant).await?;
        let now = Utc::now();
        let author = actor.name.clone();
        let mut problems = Vec::new();
        let mut refs: HashMap<String, (Uuid, String)> = HashMap::new();
        let schema = graph.schema.read().clone();
        let mut new_entities = Vec::with_capacity(entities.len());
        for (i, e) in entities.into_iter().enumerate() {
            let label = format!("entities[{i}]");
            if is_system_type(&e.entity_type) {
                problems.push(format!("{label}: type '{}' is maintained by the actors", e.entity_type));
            }
            let entity = GraphEntity {
                tenant_id: tenant,
                id: Uuid::new_v4(),
                entity_type: e.entity_type,
                properties: e.properties,
                version: 1,
                created_at: now,
                updated_at: now,
                created_by: author.clone(),
            };
            problems.extend(schema::check_entity(&schema, &label, &entity));
            if let Some(r) = e.reference {
                if refs.insert(r.clone(), (entity.id, entity.entity_type.clone())).is_some() {
                    problems.push(format!("{label}: ref '{r}' is used twice"));
                }
            }
            new_entities.push(entity);
        }
        let mut new_relationships = Vec::with_capacity(relationships.len());
        {
            let index = graph.index.read();
            let resolve = |end: &EndRef| -> (Uuid, Option<String>) {
                match end {
                    EndRef::Id(id) => (*id, index.entity_type(*id).map(str::to_string)),
                    EndRef::Ref(r) => match refs.get(r) {
                        Some((id, t)) => (*id, Some(t.clone())),
                        None => (Uuid::nil(), None),
                    },
                }
            };
            for (i, r) in relationships.into_iter().enumerate() {
                let label = format!("relationships[{i}]");
                if is_system_type(&r.relationship_type) {
                    problems.push(format!("{label}: type '{}' is maintained by the actors", r.relationship_type));
                }
                for end in [&r.source, &r.target] {
                    if let EndRef::Ref(name) = end {
                        if !refs.contains_key(name) {
                            problems.push(format!("{label}: ref '{name}' names no entity of this request"));
                        }
                    }
                }
                let (source_id, source_type) = resolve(&r.source);
                let (target_id, target_type) = resolve(&r.target);
                let rel = GraphRelationship {
                    tenant_id: tenant,
                    id: Uuid::new_v4(),
                    relationship_type: r.relationship_type,
                    source_id,
                    target_id,
                    properties: r.properties,
                    weight: r.weight.unwrap_or(1.0),
                    directed: r.directed.unwrap_or(true),
                    created_at: now,
                    created_by: author.clone(),
                };
                problems.extend(schema::check_relationship(
                    &schema,
                    &label,
                    &rel,
                    source_type.as_deref(),
                    target_type.as_deref(),
                ));
                new_relationships.push(rel);
            }
        }
        if !problems.is_empty() {
            return Err(GraphError::Invalid(problems));
        }
        let change = GraphChange {
            upsert_entities: new_entities,
            upsert_relationships: new_relationships,
            ..GraphChange::default()
        };
        let entry = NewAuditEntry::new(tenant, actor.clone(), AuditCategory::Administration, "GraphRecordsCreated")
            .resource("Graph", tenant)
            .message(format!(
                "{} entities and {} relationships created",
                change.upsert_entities.len(),
                change.upsert_relationships.len()
            ));
        self.commit(tenant, &graph, &change, Some(&entry)).await?;
        Ok((change.upsert_entities, change.upsert_relationships))
    }

    /// Replaces an entity's properties; `expected_version`, when given, must
    /// be the stored one (optimistic concurrency).
    pub async fn update_entity(
        &self,
        tenant: TenantId,
        actor: &AuditActor,
        id: Uuid,
        properties: Map<String, Value>,
        expected_version: Option<u64>,
    ) -> Result<GraphEntity, GraphError> {
        let (graph, _writer) = self.writing(tenant).await?;
        let mut entity = graph.index.read().entities.get(&id).cloned().ok_or_else(|| not_found_entity(id))?;
        if entity.created_by == GRAPH_SYSTEM_AUTHOR {
            return Err(GraphError::Forbidden(format!("entity {id} is maintained by the actors")));
        }
        if expected_version.is_some_and(|v| v != entity.version) {
            return Err(GraphError::Conflict {
                message: format!("entity {id} is at version {}, not {}", entity.version, expected_version.unwrap_or(0)),
                details: Vec::new(),
            });
        }
        entity.properties = properties;
        entity.version += 1;
        entity.updated_at = Utc::now();
        let problems = schema::check_entity(&graph.schema.read(), "entity", &entity);
        if !problems.is_empty() {
            return Err(GraphError::Invalid(problems));
        }
        let change = GraphChange { upsert_entities: vec![entity.clone()], ..GraphChange::default() };
        let entry = audit(tenant, actor, "GraphEntityUpdated", "GraphEntity", id);
        self.commit(tenant, &graph, &change, Some(&entry)).await?;
        Ok(entity)
    }

    /// Deletes a user's entity with its relationships.
    pub async fn delete_entity(&self, tenant: TenantId, actor: &AuditActor, id: Uuid) -> Result<(), GraphError> {
        let (graph, _writer) = self.writing(tenant).await?;
        let entity = graph.index.read().entities.get(&id).cloned().ok_or_else(|| not_found_entity(id))?;
        if entity.created_by == GRAPH_SYSTEM_AUTHOR {
            return Err(GraphError::Forbidden(format!("entity {id} is maintained by the actors")));
        }
        let change = GraphChange { delete_entities: vec![id], ..GraphChange::default() };
        let entry = audit(tenant, actor, "GraphEntityDeleted", "GraphEntity", id);
        self.commit(tenant, &graph, &change, Some(&entry)).await
    }

    pub async fn update_relationship(
        &self,
        tenant: TenantId,
        actor: &AuditActor,
        id: Uuid,
        weight: Option<f64>,
        properties: Option<Map<String, Value>>,
    ) -> Result<GraphRelationship, GraphError> {
        let (graph, _writer) = self.writing(tenant).await?;
        let mut rel = self.relationship_in(&graph, tenant, id).await?;
        if rel.created_by == GRAPH_SYSTEM_AUTHOR {
            return Err(GraphError::Forbidden(format!("relationship {id} is maintained by the actors")));
        }
        if let Some(w) = weight {
            rel.weight = w;
        }
        if let Some(p) = properties {
            rel.properties = p;
        }
        let problems = {
            let index = graph.index.read();
            schema::check_relationship(
                &graph.schema.read(),
                "relationship",
                &rel,
                index.entity_type(rel.source_id),
                index.entity_type(rel.target_id),
            )
        };
        if !problems.is_empty() {
            return Err(GraphError::Invalid(problems));
        }
        let change = GraphChange { upsert_relationships: vec![rel.clone()], ..GraphChange::default() };
        let entry = audit(tenant, actor, "GraphRelationshipUpdated", "GraphRelationship", id);
        self.commit(tenant, &graph, &change, Some(&entry)).await?;
        Ok(rel)
    }

    pub async fn delete_relationship(&self, tenant: TenantId, actor: &AuditActor, id: Uuid) -> Result<(), GraphError> {
        let (graph, _writer) = self.writing(tenant).await?;
        let rel = self.relationship_in(&graph, tenant, id).await?;
        if rel.created_by == GRAPH_SYSTEM_AUTHOR {
            return Err(GraphError::Forbidden(format!("relationship {id} is maintained by the actors")));
        }
        let change = GraphChange { delete_relationships: vec![id], ..GraphChange::default() };
        let entry = audit(tenant, actor, "GraphRelationshipDeleted", "GraphRelationship", id);
        self.commit(tenant, &graph, &change, Some(&entry)).await
    }

    // ------------------------------------------------------------ schema

    pub async fn schema(&self, tenant: TenantId) -> Result<GraphSchema, GraphError> {
        Ok(self.tenant(tenant).await?.schema.read().clone())
    }

    /// Replaces the schema with a higher version. When stored records would
    /// break it, refuses with each of them unless `force`.
    pub async fn replace_schema(
        &self,
        tenant: TenantId,
        actor: &AuditActor,
        mut schema: GraphSchema,
        force: bool,
    ) -> Result<GraphSchema, GraphError> {
        schema.tenant_id = tenant;
        schema.updated_at = Utc::now();
        let mut problems = schema::check_schema(&schema);
        let (graph, _writer) = self.writing(tenant).await?;
        let current = graph.schema.read().version.clone();
        if let (Ok(new), Ok(old)) = (semver::Version::parse(&schema.version), semver::Version::parse(&current)) {
            if new <= old {
                problems.push(format!("version {new} must be higher than the current {old}"));
            }
        }
        if !problems.is_empty() {
            return Err(GraphError::Invalid(problems));
        }
        let offending = self.violations(&graph, tenant, &schema).await?;
        if !offending.is_empty() && !force {
            return Err(GraphError::Conflict {
                message: format!(
                    "{} stored records would break schema {}; send force=true to apply it anyway",
                    offending.len(),
                    schema.version
                ),
                details: offending,
            });
        }
        let entry = audit(tenant, actor, "GraphSchemaChanged", "GraphSchema", &schema.version)
            .details(serde_json::json!({ "from": current, "forced": force, "violations": offending.len() }));
        self.store.save_graph_schema(&schema, &entry).await?;
        *graph.schema.write() = schema.clone();
        if let Some(peers) = self.peers.get() {
            peers.committed(crate::graph::peers::GraphCommitted { tenant, schema: true, ..Default::default() });
        }
        Ok(schema)
    }

    /// The stored records that break `schema` (at most 1,000 listed).
    async fn violations(
        &self,
        graph: &TenantGraph,
        tenant: TenantId,
        schema: &GraphSchema,
    ) -> Result<Vec<String>, GraphError> {
        let mut out = Vec::new();
        let rel_ids: Vec<Uuid> = {
            let index = graph.index.read();
            for e in index.entities.values() {
                let label = format!("entity {} ({})", e.id, e.entity_type);
                out.extend(schema::check_entity(schema, &label, e));
            }
            index.edges.keys().copied().collect()
        };
        let rels = self.store.graph_relationships(tenant, &rel_ids).await?;
        let index = graph.index.read();
        for r in &rels {
            let label = format!("relationship {} ({})", r.id, r.relationship_type);
            out.extend(schema::check_relationship(
                schema,
                &label,
                r,
                index.entity_type(r.source_id),
                index.entity_type(r.target_id),
            ));
        }
        out.sort();
        out.truncate(1000);
        Ok(out)
    }

    // ------------------------------------------------------------ reads

    pub async fn entity(&self, tenant: TenantId, id: Uuid) -> Result<GraphEntity, GraphError> {
        let graph = self.tenant(tenant).await?;
        let found = graph.index.read().entities.get(&id).cloned();
        found.ok_or_else(|| not_found_entity(id))
    }

    async fn relationship_in(
        &self,
        graph: &TenantGraph,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<GraphRelationship, GraphError> {
        if !graph.index.read().edges.contains_key(&id) {
            return Err(not_found_relationship(id));
        }
        self.store.graph_relationships(tenant, &[id]).await?.pop().ok_or_else(|| not_found_relationship(id))
    }

    pub async fn relationship(&self, tenant: TenantId, id: Uuid) -> Result<GraphRelationship, GraphError> {
        let graph = self.tenant(tenant).await?;
        self.relationship_in(&graph, tenant, id).await
    }

    /// The relationships at an entity, in `direction`, optionally of one type.
    pub async fn entity_relationships(
        &self,
        tenant: TenantId,
        id: Uuid,
        direction: RelationshipDirection,
        relationship_type: Option<&str>,
    ) -> Result<Vec<GraphRelationship>, GraphError> {
        let graph = self.tenant(tenant).await?;
        let ids: Vec<Uuid> = {
            let index = graph.index.read();
            let node = *index.nodes.get(&id).ok_or_else(|| not_found_entity(id))?;
            let type_id = relationship_type.map(|t| index.rel_type_id(t));
            let mut ids = Vec::new();
            let dirs: &[petgraph::Direction] = match direction {
                RelationshipDirection::Outgoing => &[petgraph::Direction::Outgoing],
                RelationshipDirection::Incoming => &[petgraph::Direction::Incoming],
                RelationshipDirection::Both => &[petgraph::Direction::Outgoing, petgraph::Direction::Incoming],
            };
            for d in dirs {
                for e in index.graph.edges_directed(node, *d) {
                    let w = petgraph::visit::EdgeRef::weight(&e);
                    if type_id.is_none_or(|t| t == Some(w.rel_type)) && !ids.contains(&w.id) {
                        ids.push(w.id);
                    }
                }
            }
            ids
        };
        self.relationships_in_order(tenant, &ids).await
    }

    async fn relationships_in_order(
        &self,
        tenant: TenantId,
        ids: &[Uuid],
    ) -> Result<Vec<GraphRelationship>, GraphError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_id: HashMap<Uuid, GraphRelationship> =
            self.store.graph_relationships(tenant, ids).await?.into_iter().map(|r| (r.id, r)).collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    pub async fn statistics(&self, tenant: TenantId) -> Result<GraphStatistics, GraphError> {
        let graph = self.tenant(tenant).await?;
        let index = graph.index.read();
        let stats = GraphStatistics {
            entity_count: index.entities.len(),
            relationship_count: index.edges.len(),
            entities_by_type: index.entity_counts(),
            relationships_by_type: index.relationship_counts(),
            schema_version: graph.schema.read().version.clone(),
            cached_queries: graph.cache.lock().entries.len(),
        };
        Ok(stats)
    }
}

fn not_found_entity(id: Uuid) -> GraphError {
    GraphError::NotFound(format!("entity {id} not found"))
}

fn not_found_relationship(id: Uuid) -> GraphError {
    GraphError::NotFound(format!("relationship {id} not found"))
}
