//! The knowledge graph's records: entities, relationships and the schema
//! writes are checked against. Plain data; the rules live in `crate::graph`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::TenantId;

/// `created_by` of what the actors write (and `hotswap graph rebuild` repairs);
/// users cannot change or delete these.
pub const GRAPH_SYSTEM_AUTHOR: &str = "system";

/// A thing in the fleet, or one a user added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphEntity {
    pub tenant_id: TenantId,
    pub id: Uuid,
    #[serde(rename = "type")]
    pub entity_type: String,
    pub properties: Map<String, Value>,
    /// 1 when created, incremented on each change.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
}

/// An edge between two entities of the same tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphRelationship {
    pub tenant_id: TenantId,
    pub id: Uuid,
    #[serde(rename = "type")]
    pub relationship_type: String,
    pub source_id: Uuid,
    pub target_id: Uuid,
    pub properties: Map<String, Value>,
    /// Non-negative; the cost shortest paths add up.
    pub weight: f64,
    /// An undirected relationship can be walked both ways whatever the
    /// direction a query asks for.
    pub directed: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// What a property must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PropertyKind {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    Any,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDefinition {
    #[serde(rename = "type")]
    pub kind: PropertyKind,
    #[serde(default)]
    pub required: bool,
    /// A regular expression a string value must match (anywhere; anchor it
    /// with ^ and $ for the whole value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Bounds of a number, or of a string's length in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityTypeDefinition {
    #[serde(default)]
    pub properties: BTreeMap<String, PropertyDefinition>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelationshipTypeDefinition {
    /// Entity types allowed at the source; empty allows any.
    #[serde(default)]
    pub source_types: Vec<String>,
    /// Entity types allowed at the target; empty allows any.
    #[serde(default)]
    pub target_types: Vec<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, PropertyDefinition>,
}

/// A tenant's graph schema. Each change is a new, higher semantic version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphSchema {
    pub tenant_id: TenantId,
    pub version: String,
    #[serde(default)]
    pub entity_types: BTreeMap<String, EntityTypeDefinition>,
    #[serde(default)]
    pub relationship_types: BTreeMap<String, RelationshipTypeDefinition>,
    /// Whether types the schema does not declare may be written (without
    /// property checks). True in the built-in schema, so that users can add
    /// their own types before declaring them.
    #[serde(default = "yes")]
    pub allow_undeclared_types: bool,
    pub updated_at: DateTime<Utc>,
}

fn yes() -> bool {
    true
}

/// Everything a tenant's graph holds, as loaded into the in-memory index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphSnapshot {
    pub entities: Vec<GraphEntity>,
    pub relationships: Vec<GraphRelationship>,
}

/// One atomic change of a tenant's graph: upserts by id, then deletions
/// (deleting an entity deletes its relationships).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphChange {
    pub upsert_entities: Vec<GraphEntity>,
    pub upsert_relationships: Vec<GraphRelationship>,
    pub delete_entities: Vec<Uuid>,
    pub delete_relationships: Vec<Uuid>,
}

impl GraphChange {
    pub fn is_empty(&self) -> bool {
        self.upsert_entities.is_empty()
            && self.upsert_relationships.is_empty()
            && self.delete_entities.is_empty()
            && self.delete_relationships.is_empty()
    }

    pub fn extend(&mut self, other: GraphChange) {
        self.upsert_entities.extend(other.upsert_entities);
        self.upsert_relationships.extend(other.upsert_relationships);
        self.delete_entities.extend(other.delete_entities);
        self.delete_relationships.extend(other.delete_relationships);
    }
}
