//! The knowledge graph's request and response shapes, as the OpenAPI document
//! shows them, and their mapping to the core's types.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hotswap_actors::domain::{GraphEntity, GraphRelationship, GraphSchema};
use hotswap_actors::graph::{GraphError, QueryAnswer};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::web::ApiError;

impl From<GraphError> for ApiError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::Invalid(details) => ApiError::validation(details),
            GraphError::NotFound(m) => ApiError::NotFound(m),
            GraphError::Forbidden(m) => ApiError::Forbidden(m),
            GraphError::Conflict { message, details } => {
                let mut extra = Map::new();
                extra.insert("details".into(), json!(details));
                ApiError::Conflict { message, extra }
            }
            GraphError::Store(e) => e.into(),
        }
    }
}

/// The same JSON read as the core's type: the documented shapes here and
/// the core's are written to match field for field.
pub fn into_core<A: Serialize, B: DeserializeOwned>(a: &A) -> Result<B, ApiError> {
    serde_json::to_value(a)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::BadRequest(format!("the JSON body has the wrong shape: {e}")))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityView {
    id: Uuid,
    #[serde(rename = "type")]
    #[schema(example = "Team")]
    entity_type: String,
    #[schema(value_type = Object)]
    properties: Map<String, Value>,
    /// 1 when created; each change adds one.
    version: u64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The user who created it, or "system" for what the actors maintain.
    created_by: String,
}

impl From<GraphEntity> for EntityView {
    fn from(e: GraphEntity) -> Self {
        EntityView {
            id: e.id,
            entity_type: e.entity_type,
            properties: e.properties,
            version: e.version,
            created_at: e.created_at,
            updated_at: e.updated_at,
            created_by: e.created_by,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelationshipView {
    id: Uuid,
    #[serde(rename = "type")]
    #[schema(example = "OWNS")]
    relationship_type: String,
    source_id: Uuid,
    target_id: Uuid,
    #[schema(value_type = Object)]
    properties: Map<String, Value>,
    weight: f64,
    directed: bool,
    created_at: DateTime<Utc>,
    created_by: String,
}

impl From<GraphRelationship> for RelationshipView {
    fn from(r: GraphRelationship) -> Self {
        RelationshipView {
            id: r.id,
            relationship_type: r.relationship_type,
            source_id: r.source_id,
            target_id: r.target_id,
            properties: r.properties,
            weight: r.weight,
            directed: r.directed,
            created_at: r.created_at,
            created_by: r.created_by,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEntityBody {
    /// `[A-Za-z0-9_]{1,100}`; the actors' types (Node, Module, ...) are theirs alone.
    #[serde(rename = "type")]
    #[schema(example = "Team", pattern = "^[A-Za-z0-9_]{1,100}$")]
    pub entity_type: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateEntityBody {
    /// Replaces every property.
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    /// When given, the stored version must be this one (else 409).
    #[serde(default)]
    pub version: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRelationshipBody {
    #[serde(rename = "type")]
    #[schema(example = "OWNS", pattern = "^[A-Za-z0-9_]{1,100}$")]
    pub relationship_type: String,
    pub source_id: Uuid,
    pub target_id: Uuid,
    /// At least 0; 1 when left out.
    #[serde(default)]
    pub weight: Option<f64>,
    /// True when left out.
    #[serde(default)]
    pub directed: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRelationshipBody {
    #[serde(default)]
    pub weight: Option<f64>,
    /// Replaces every property when given.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkEntity {
    /// A name the relationships of the same request can use (`sourceRef`, `targetRef`).
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    #[serde(rename = "type")]
    #[schema(pattern = "^[A-Za-z0-9_]{1,100}$")]
    pub entity_type: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkRelationship {
    #[serde(rename = "type")]
    #[schema(pattern = "^[A-Za-z0-9_]{1,100}$")]
    pub relationship_type: String,
    /// A stored entity; or give `sourceRef`.
    #[serde(default)]
    pub source_id: Option<Uuid>,
    #[serde(default)]
    pub source_ref: Option<String>,
    #[serde(default)]
    pub target_id: Option<Uuid>,
    #[serde(default)]
    pub target_ref: Option<String>,
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub directed: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
}

/// Up to 10,000 entities and relationships together, created all or nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkBody {
    #[serde(default)]
    pub entities: Vec<BulkEntity>,
    #[serde(default)]
    pub relationships: Vec<BulkRelationship>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkView {
    pub entities: Vec<EntityView>,
    pub relationships: Vec<RelationshipView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RelationshipsParams {
    /// outgoing, incoming or both (the default).
    #[param(value_type = Option<String>, example = "outgoing", pattern = "^(outgoing|incoming|both)$")]
    pub direction: Option<String>,
    /// Only relationships of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub relationship_type: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SchemaParams {
    /// Apply even though stored records break the new schema.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImpactParams {
    #[param(example = "auth", pattern = "^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")]
    pub module: String,
    /// The version about to go out.
    #[param(example = "2.0.0", pattern = "^(0|[1-9][0-9]{0,8})\\.(0|[1-9][0-9]{0,8})\\.(0|[1-9][0-9]{0,8})$")]
    pub version: String,
    /// How many affected nodes to list: 1 to 1000; default 100. `nodesTotal` counts them all.
    #[param(minimum = 1, maximum = 1000)]
    pub node_limit: Option<u32>,
}

/// The most affected nodes one impact report lists.
pub const IMPACT_NODES_MAX: u32 = 1000;

/// Affected nodes listed when the request does not say.
pub const IMPACT_NODES_DEFAULT: u32 = 100;

// ---------------------------------------------------------------- schema

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PropertyKindDto {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    Any,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PropertyDefinitionDto {
    #[serde(rename = "type")]
    kind: PropertyKindDto,
    #[serde(default)]
    required: bool,
    /// A regular expression string values must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pattern: Option<String>,
    /// Bounds of a number, or of a string's length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityTypeDto {
    #[serde(default)]
    properties: BTreeMap<String, PropertyDefinitionDto>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelationshipTypeDto {
    /// Entity types allowed at the source; empty allows any.
    #[serde(default)]
    source_types: Vec<String>,
    #[serde(default)]
    target_types: Vec<String>,
    #[serde(default)]
    properties: BTreeMap<String, PropertyDefinitionDto>,
}

/// A tenant's graph schema; each change must raise `version` (semver).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = GraphSchemaBody)]
pub struct SchemaBody {
    #[schema(example = "1.1.0")]
    pub version: String,
    #[serde(default)]
    pub entity_types: BTreeMap<String, EntityTypeDto>,
    #[serde(default)]
    pub relationship_types: BTreeMap<String, RelationshipTypeDto>,
    /// Whether types left out may be written (true when left out).
    #[serde(default = "yes")]
    pub allow_undeclared_types: bool,
    /// What `GET` answers beside the schema; ignored here, so that a schema
    /// read can be sent back changed.
    #[serde(default, skip_serializing, rename = "updatedAt")]
    #[schema(read_only, value_type = Option<String>, format = DateTime)]
    pub _updated_at: Option<Value>,
}

fn yes() -> bool {
    true
}

impl SchemaBody {
    pub fn into_schema(self, tenant: Uuid) -> Result<GraphSchema, ApiError> {
        let mut value = serde_json::to_value(&self)
            .map_err(|e| ApiError::BadRequest(format!("the JSON body has the wrong shape: {e}")))?;
        if let Value::Object(m) = &mut value {
            m.insert("tenantId".into(), json!(tenant));
            m.insert("updatedAt".into(), json!(Utc::now()));
        }
        serde_json::from_value(value)
            .map_err(|e| ApiError::BadRequest(format!("the JSON body has the wrong shape: {e}")))
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaView {
    version: String,
    #[schema(value_type = BTreeMap<String, EntityTypeDto>)]
    entity_types: Value,
    #[schema(value_type = BTreeMap<String, RelationshipTypeDto>)]
    relationship_types: Value,
    allow_undeclared_types: bool,
    updated_at: DateTime<Utc>,
}

impl From<GraphSchema> for SchemaView {
    fn from(s: GraphSchema) -> Self {
        SchemaView {
            version: s.version,
            entity_types: serde_json::to_value(&s.entity_types).unwrap_or(Value::Null),
            relationship_types: serde_json::to_value(&s.relationship_types).unwrap_or(Value::Null),
            allow_undeclared_types: s.allow_undeclared_types,
            updated_at: s.updated_at,
        }
    }
}

// ---------------------------------------------------------------- queries

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum DirectionDto {
    Outgoing,
    Incoming,
    Both,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum OperatorDto {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    StartsWith,
    Exists,
    Regex,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterDto {
    #[schema(example = "environment")]
    property: String,
    operator: OperatorDto,
    /// What to compare with (any JSON value): an array for `in`, true/false
    /// for `exists`, a pattern for `regex`.
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    value: Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelationshipPatternDto {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "RUNS")]
    relationship_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direction: Option<DirectionDto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_type: Option<String>,
    #[serde(default)]
    filters: Vec<FilterDto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_weight: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_weight: Option<f64>,
    /// 1 to 5 hops (1 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::schema_limits::whole_number")]
    #[schema(minimum = 1, maximum = 5)]
    depth: Option<u32>,
}

/// Entities of a type whose properties pass every filter and that have every
/// relationship pattern.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Node")]
    entity_type: Option<String>,
    #[serde(default)]
    filters: Vec<FilterDto>,
    #[serde(default)]
    relationships: Vec<RelationshipPatternDto>,
    /// 1 to 1,000 (100 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::schema_limits::whole_number")]
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `nextCursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AlgorithmDto {
    Bfs,
    Dfs,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraverseBody {
    start_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direction: Option<DirectionDto>,
    #[serde(default)]
    relationship_types: Vec<String>,
    /// Only entities of these types are answered; all are walked through.
    #[serde(default)]
    entity_types: Vec<String>,
    /// 1 to 10 (3 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::schema_limits::whole_number")]
    #[schema(minimum = 1, maximum = 10)]
    max_depth: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    algorithm: Option<AlgorithmDto>,
    /// 1 to 1,000.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::schema_limits::whole_number")]
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathBody {
    source_id: Uuid,
    target_id: Uuid,
    /// Outgoing when left out; undirected relationships go both ways anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direction: Option<DirectionDto>,
    #[serde(default)]
    relationship_types: Vec<String>,
    /// All paths: 1 to 6 hops (4 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::schema_limits::whole_number")]
    #[schema(minimum = 1, maximum = 6)]
    max_depth: Option<u32>,
    /// All paths: 1 to 100 paths (10 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::schema_limits::whole_number")]
    #[schema(minimum = 1, maximum = 100)]
    max_paths: Option<u32>,
}

impl PathBody {
    /// The bounds the document states for `maxDepth` and `maxPaths`, which
    /// only all-paths reads: shortest-path refuses the same values so that
    /// one body means one thing on both routes.
    pub fn check_bounds(&self) -> Result<(), ApiError> {
        let mut problems = Vec::new();
        if self.max_depth.is_some_and(|d| !(1..=hotswap_actors::graph::query::MAX_ALL_PATHS_DEPTH).contains(&d)) {
            problems
                .push(format!("maxDepth must be between 1 and {}", hotswap_actors::graph::query::MAX_ALL_PATHS_DEPTH));
        }
        if self.max_paths.is_some_and(|p| !(1..=hotswap_actors::graph::query::MAX_ALL_PATHS).contains(&p)) {
            problems.push(format!("maxPaths must be between 1 and {}", hotswap_actors::graph::query::MAX_ALL_PATHS));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(problems))
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PathItem {
    entity_ids: Vec<Uuid>,
    relationship_ids: Vec<Uuid>,
    total_weight: f64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryView {
    entities: Vec<EntityView>,
    relationships: Vec<RelationshipView>,
    /// Every match (match), entity reached (traverse), entity on the path, or path.
    total_count: u64,
    execution_time_ms: f64,
    from_cache: bool,
    /// Which index or scan answered, e.g. "index:entityType(Node) rows=12 -> filter:properties(1)".
    plan: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    /// Shortest path: the sum of its weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    total_weight: Option<f64>,
    /// Shortest path: how many relationships it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    hops: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paths: Option<Vec<PathItem>>,
}

impl From<QueryAnswer> for QueryView {
    fn from(a: QueryAnswer) -> Self {
        QueryView {
            entities: a.entities.into_iter().map(EntityView::from).collect(),
            relationships: a.relationships.into_iter().map(RelationshipView::from).collect(),
            total_count: a.total_count,
            execution_time_ms: a.execution_time_ms,
            from_cache: a.from_cache,
            plan: a.plan,
            next_cursor: a.next_cursor,
            total_weight: a.total_weight,
            hops: a.hops,
            paths: a.paths.map(|ps| {
                ps.into_iter()
                    .map(|p| PathItem {
                        entity_ids: p.entity_ids,
                        relationship_ids: p.relationship_ids,
                        total_weight: p.total_weight,
                    })
                    .collect()
            }),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseModule {
    #[schema(example = "auth")]
    pub module: String,
    #[schema(example = "2.0.0")]
    pub version: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleasePlanBody {
    pub modules: Vec<ReleaseModule>,
}
