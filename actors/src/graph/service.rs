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

use super::index::TenantIndex;
use super::query::{self, MatchQuery, PathQuery, TraverseQuery};
use super::schema::{self, builtin_schema};
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
    writer: tokio::sync::Mutex<()>,
    index: RwLock<TenantIndex>,
    schema: RwLock<GraphSchema>,
    cache: Mutex<QueryCache>,
}

pub struct GraphService {
    store: SharedStore,
    tenants: Mutex<HashMap<TenantId, Arc<TenantGraph>>>,
    loading: tokio::sync::Mutex<()>,
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
    pub fn new(store: SharedStore) -> Arc<GraphService> {
        Arc::new(GraphService { store, tenants: Mutex::new(HashMap::new()), loading: tokio::sync::Mutex::new(()) })
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    async fn tenant(&self, tenant: TenantId) -> Result<Arc<TenantGraph>, GraphError> {
        if let Some(t) = self.tenants.lock().get(&tenant) {
            return Ok(t.clone());
        }
        let _loading = self.loading.lock().await;
        if let Some(t) = self.tenants.lock().get(&tenant) {
            return Ok(t.clone());
        }
        let snapshot = self.store.load_graph(tenant).await?;
        let schema = self.store.graph_schema(tenant).await?.unwrap_or_else(|| builtin_schema(tenant));
        let graph = Arc::new(TenantGraph {
            writer: tokio::sync::Mutex::new(()),
            index: RwLock::new(TenantIndex::load(snapshot)),
            schema: RwLock::new(schema),
            cache: Mutex::new(QueryCache::default()),
        });
        self.tenants.lock().insert(tenant, graph.clone());
        Ok(graph)
    }

    /// Loads the index of each tenant now rather than on first use.
    pub async fn preload(&self, tenants: &[TenantId]) -> Result<(), GraphError> {
        for t in tenants {
            self.tenant(*t).await?;
        }
        Ok(())
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
        let graph = self.tenant(tenant).await?;
        let _writer = graph.writer.lock().await;
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
        let graph = self.tenant(tenant).await?;
        let _writer = graph.writer.lock().await;
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
        let graph = self.tenant(tenant).await?;
        let _writer = graph.writer.lock().await;
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
        let graph = self.tenant(tenant).await?;
        let _writer = graph.writer.lock().await;
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
        let graph = self.tenant(tenant).await?;
        let _writer = graph.writer.lock().await;
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
        let graph = self.tenant(tenant).await?;
        let _writer = graph.writer.lock().await;
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

    // ------------------------------------------------------------ queries

    /// Answers from the cache, or runs `compute` on the index and caches it.
    async fn cached(
        &self,
        tenant: TenantId,
        key: String,
        deps: Deps,
        compute: impl FnOnce(&TenantIndex) -> Result<query::Found, GraphError>,
    ) -> Result<QueryAnswer, GraphError> {
        let started = Instant::now();
        let graph = self.tenant(tenant).await?;
        if let Some((_, answer)) = graph.cache.lock().entries.get(&key) {
            let mut answer = answer.clone();
            answer.from_cache = true;
            answer.execution_time_ms = started.elapsed().as_secs_f64() * 1000.0;
            return Ok(answer);
        }
        let (found, entities) = {
            let index = graph.index.read();
            let found = compute(&index)?;
            let entities: Vec<GraphEntity> =
                found.entities.iter().filter_map(|id| index.entities.get(id).cloned()).collect();
            (found, entities)
        };
        let relationships = self.relationships_in_order(tenant, &found.relationships).await?;
        let answer = QueryAnswer {
            entities,
            relationships,
            total_count: found.total,
            execution_time_ms: started.elapsed().as_secs_f64() * 1000.0,
            from_cache: false,
            plan: found.plan,
            next_cursor: found.next_cursor,
            total_weight: found.total_weight,
            hops: found.total_weight.map(|_| found.relationships.len()),
            paths: (!found.paths.is_empty() || key.starts_with("allPaths")).then(|| {
                found
                    .paths
                    .iter()
                    .map(|p| PathView {
                        entity_ids: p.entities.clone(),
                        relationship_ids: p.relationships.clone(),
                        total_weight: p.total_weight,
                    })
                    .collect()
            }),
        };
        let mut cache = graph.cache.lock();
        if cache.entries.len() >= CACHE_CAPACITY {
            cache.entries.clear();
        }
        cache.entries.insert(key, (deps, answer.clone()));
        Ok(answer)
    }

    pub async fn match_entities(&self, tenant: TenantId, q: MatchQuery) -> Result<QueryAnswer, GraphError> {
        let key = format!("match:{}", serde_json::to_string(&q).unwrap_or_default());
        // Depends on the entity type and on every relationship and target type
        // named; a pattern without a type or without a target type may reach anything.
        let mut deps: BTreeSet<String> = q.entity_type.iter().cloned().collect();
        let mut open = q.entity_type.is_none();
        for p in &q.relationships {
            match (&p.relationship_type, &p.target_type) {
                (Some(r), Some(t)) => {
                    deps.insert(r.clone());
                    deps.insert(t.clone());
                }
                _ => open = true,
            }
        }
        let deps = (!open).then_some(deps);
        self.cached(tenant, key, deps, |index| {
            let (filters, patterns) = query::compile_match(&q, index).map_err(GraphError::Invalid)?;
            Ok(query::run_match(index, &q, &filters, &patterns))
        })
        .await
    }

    pub async fn traverse(&self, tenant: TenantId, q: TraverseQuery) -> Result<QueryAnswer, GraphError> {
        let mut problems = Vec::new();
        if q.max_depth.is_some_and(|d| !(1..=query::MAX_TRAVERSE_DEPTH).contains(&d)) {
            problems.push(format!("maxDepth must be between 1 and {}", query::MAX_TRAVERSE_DEPTH));
        }
        if q.limit.is_some_and(|l| !(1..=query::MAX_LIMIT).contains(&l)) {
            problems.push(format!("limit must be between 1 and {}", query::MAX_LIMIT));
        }
        if !problems.is_empty() {
            return Err(GraphError::Invalid(problems));
        }
        let key = format!("traverse:{}", serde_json::to_string(&q).unwrap_or_default());
        let start = q.start_id;
        self.cached(tenant, key, None, |index| query::run_traverse(index, &q).ok_or_else(|| not_found_entity(start)))
            .await
    }

    fn check_path_ends(index: &TenantIndex, q: &PathQuery) -> Result<(), GraphError> {
        let missing: Vec<String> = [("sourceId", q.source_id), ("targetId", q.target_id)]
            .into_iter()
            .filter(|(_, id)| !index.nodes.contains_key(id))
            .map(|(name, id)| format!("{name}: entity {id} not found"))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(GraphError::NotFound(missing.join("; ")))
        }
    }

    pub async fn shortest_path(&self, tenant: TenantId, q: PathQuery) -> Result<QueryAnswer, GraphError> {
        let key = format!("shortestPath:{}", serde_json::to_string(&q).unwrap_or_default());
        self.cached(tenant, key, None, |index| {
            Self::check_path_ends(index, &q)?;
            let path = query::shortest_path(index, &q).ok_or_else(|| {
                GraphError::NotFound(format!(
                    "no path from {} to {} in direction {:?}{}",
                    q.source_id,
                    q.target_id,
                    q.direction,
                    if q.relationship_types.is_empty() {
                        String::new()
                    } else {
                        format!(" over {}", q.relationship_types.join(", "))
                    }
                ))
            })?;
            Ok(query::Found {
                total: path.entities.len() as u64,
                entities: path.entities,
                relationships: path.relationships,
                plan: "dijkstra:petgraph(stopAtTarget)".into(),
                total_weight: Some(path.total_weight),
                ..query::Found::default()
            })
        })
        .await
    }

    pub async fn all_paths(&self, tenant: TenantId, q: PathQuery) -> Result<QueryAnswer, GraphError> {
        let mut problems = Vec::new();
        if q.max_depth.is_some_and(|d| !(1..=query::MAX_ALL_PATHS_DEPTH).contains(&d)) {
            problems.push(format!("maxDepth must be between 1 and {}", query::MAX_ALL_PATHS_DEPTH));
        }
        if q.max_paths.is_some_and(|d| !(1..=query::MAX_ALL_PATHS).contains(&d)) {
            problems.push(format!("maxPaths must be between 1 and {}", query::MAX_ALL_PATHS));
        }
        if !problems.is_empty() {
            return Err(GraphError::Invalid(problems));
        }
        let key = format!("allPaths:{}", serde_json::to_string(&q).unwrap_or_default());
        self.cached(tenant, key, None, |index| {
            Self::check_path_ends(index, &q)?;
            let paths = query::all_paths(index, &q).unwrap_or_default();
            let mut entities = Vec::new();
            let mut relationships = Vec::new();
            for p in &paths {
                for e in &p.entities {
                    if !entities.contains(e) {
                        entities.push(*e);
                    }
                }
                for r in &p.relationships {
                    if !relationships.contains(r) {
                        relationships.push(*r);
                    }
                }
            }
            Ok(query::Found {
                total: paths.len() as u64,
                entities,
                relationships,
                plan: "dfs:petgraph(simplePaths, bounded)".into(),
                paths,
                ..query::Found::default()
            })
        })
        .await
    }

    // ------------------------------------------------------------ the actors' part

    /// Writes what the actors' state says, skipping what the graph already
    /// holds as it is (so repeating a change writes nothing). Schema checks do
    /// not apply: the actors' types are the built-in ones.
    pub async fn apply_system(&self, tenant: TenantId, change: GraphChange) -> Result<(), GraphError> {
        let change = system::dedupe(change);
        let graph = self.tenant(tenant).await?;
        let _writer = graph.writer.lock().await;
        let change = self.normalise(&graph, tenant, change).await?;
        self.commit(tenant, &graph, &change, None).await
    }

    /// Drops upserts that change nothing and deletions of what is not there;
    /// keeps `createdAt` and counts `version` for entities that change.
    async fn normalise(
        &self,
        graph: &TenantGraph,
        tenant: TenantId,
        mut change: GraphChange,
    ) -> Result<GraphChange, GraphError> {
        let existing_rels: Vec<Uuid> = {
            let index = graph.index.read();
            change.upsert_entities.retain_mut(|e| match index.entities.get(&e.id) {
                Some(old) if old.entity_type == e.entity_type && old.properties == e.properties => false,
                Some(old) => {
                    e.version = old.version + 1;
                    e.created_at = old.created_at;
                    true
                }
                None => true,
            });
            change.delete_entities.retain(|id| index.nodes.contains_key(id));
            change.delete_relationships.retain(|id| index.edges.contains_key(id));
            change.upsert_relationships.iter().map(|r| r.id).filter(|id| index.edges.contains_key(id)).collect()
        };
        if !existing_rels.is_empty() {
            let old: HashMap<Uuid, GraphRelationship> =
                self.store.graph_relationships(tenant, &existing_rels).await?.into_iter().map(|r| (r.id, r)).collect();
            change.upsert_relationships.retain_mut(|r| match old.get(&r.id) {
                Some(o) => {
                    let same = o.relationship_type == r.relationship_type
                        && o.source_id == r.source_id
                        && o.target_id == r.target_id
                        && o.properties == r.properties
                        && o.weight == r.weight
                        && o.directed == r.directed;
                    r.created_at = o.created_at;
                    !same
                }
                None => true,
            });
        }
        Ok(change)
    }

    /// Makes the actors' part of the graph what `desired` says: writes what
    /// differs and deletes the actors' records it does not name.
    pub async fn rebuild_system(&self, tenant: TenantId, desired: GraphChange) -> Result<RebuildReport, GraphError> {
        let graph = self.tenant(tenant).await?;
        let _writer = graph.writer.lock().await;
        let wanted_entities: BTreeSet<Uuid> = desired.upsert_entities.iter().map(|e| e.id).collect();
        let wanted_rels: BTreeSet<Uuid> = desired.upsert_relationships.iter().map(|r| r.id).collect();
        let mut change = self.normalise(&graph, tenant, desired).await?;
        let (stale_entities, candidate_rels) = {
            let index = graph.index.read();
            let stale: Vec<Uuid> = index
                .entities
                .values()
                .filter(|e| e.created_by == GRAPH_SYSTEM_AUTHOR && !wanted_entities.contains(&e.id))
                .map(|e| e.id)
                .collect();
            let rels: Vec<Uuid> = index.edges.keys().filter(|id| !wanted_rels.contains(id)).copied().collect();
            (stale, rels)
        };
        let stale_rels: Vec<Uuid> = self
            .store
            .graph_relationships(tenant, &candidate_rels)
            .await?
            .into_iter()
            .filter(|r| r.created_by == GRAPH_SYSTEM_AUTHOR)
            .map(|r| r.id)
            .collect();
        change.delete_entities = stale_entities;
        change.delete_relationships = stale_rels;
        let report = RebuildReport {
            entities_written: change.upsert_entities.len(),
            relationships_written: change.upsert_relationships.len(),
            entities_deleted: change.delete_entities.len(),
            relationships_deleted: change.delete_relationships.len(),
        };
        self.commit(tenant, &graph, &change, None).await?;
        Ok(report)
    }

    /// Recomputes the actors' part of the tenant's graph from the store and
    /// repairs what differs (`hotswap graph rebuild`).
    pub async fn rebuild(&self, tenant: TenantId) -> Result<RebuildReport, GraphError> {
        let mut desired = GraphChange::default();
        if let Some(t) = self.store.get_tenant(tenant).await? {
            desired.extend(system::tenant_items(&t));
        }
        for env in Environment::ALL {
            for node in self.store.nodes_in(tenant, env).await? {
                desired.extend(system::node_items(&node));
            }
        }
        for version in self.store.all_module_versions(tenant).await? {
            desired.extend(system::version_items(&version));
        }
        let mut page = 1;
        loop {
            let filter = RunFilter { page, page_size: 500, ..RunFilter::default() };
            let runs = self.store.list_runs(tenant, &filter).await?;
            for summary in &runs.items {
                if let Some(run) = self.store.get_run(tenant, summary.execution_id).await? {
                    desired.extend(system::run_items(&run));
                }
            }
            if runs.items.is_empty() || u64::from(page) * 500 >= runs.total {
                break;
            }
            page += 1;
        }
        desired.delete_entities.clear();
        desired.delete_relationships.clear();
        self.rebuild_system(tenant, system::dedupe(desired)).await
    }

    /// Deletes a version's entity once nothing but its module refers to it
    /// (no node runs it, no run deployed it), as a rebuild would.
    pub async fn drop_unreferenced_version(
        &self,
        tenant: TenantId,
        name: &str,
        version: &str,
    ) -> Result<(), GraphError> {
        let graph = self.tenant(tenant).await?;
        let _writer = graph.writer.lock().await;
        let id = system::module_version_id(tenant, name, version);
        let referenced = {
            let index = graph.index.read();
            let Some(&ix) = index.nodes.get(&id) else { return Ok(()) };
            let contains = index.rel_type_id(schema::types::CONTAINS);
            let incoming = index
                .graph
                .edges_directed(ix, petgraph::Direction::Incoming)
                .any(|e| Some(e.weight().rel_type) != contains);
            incoming
        };
        if referenced {
            return Ok(());
        }
        let change = GraphChange { delete_entities: vec![id], ..GraphChange::default() };
        self.commit(tenant, &graph, &change, None).await
    }

    /// Runs `f` on the tenant's index (impact analysis, release plans).
    pub(super) async fn with_index<T>(
        &self,
        tenant: TenantId,
        f: impl FnOnce(&TenantIndex) -> T,
    ) -> Result<T, GraphError> {
        let graph = self.tenant(tenant).await?;
        let index = graph.index.read();
        Ok(f(&index))
    }

    /// Forgets the tenant's index, so that the next use loads it from the store.
    pub fn forget(&self, tenant: TenantId) {
        self.tenants.lock().remove(&tenant);
    }
}

fn not_found_entity(id: Uuid) -> GraphError {
    GraphError::NotFound(format!("entity {id} not found"))
}

fn not_found_relationship(id: Uuid) -> GraphError {
    GraphError::NotFound(format!("relationship {id} not found"))
}
