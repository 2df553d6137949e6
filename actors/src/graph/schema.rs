//! Checks writes against a tenant's graph schema, and schema changes against
//! the data already stored.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Map, Value};

use crate::domain::{
    holds_nul, json_holds_nul, nul_refusal, EntityTypeDefinition, GraphEntity, GraphRelationship, GraphSchema,
    PropertyDefinition, PropertyKind, RelationshipTypeDefinition, TenantId,
};

/// The version of the schema every tenant starts with.
pub const BUILTIN_SCHEMA_VERSION: &str = "1.0.0";

/// Entity and relationship types the actors write.
pub mod types {
    pub const TENANT: &str = "Tenant";
    pub const ENVIRONMENT: &str = "Environment";
    pub const CLUSTER: &str = "Cluster";
    pub const NODE: &str = "Node";
    pub const MODULE: &str = "Module";
    pub const MODULE_VERSION: &str = "ModuleVersion";
    pub const RUN: &str = "Run";
    pub const CONTAINS: &str = "CONTAINS";
    pub const RUNS: &str = "RUNS";
    pub const DEPENDS_ON: &str = "DEPENDS_ON";
    pub const DEPLOYED: &str = "DEPLOYED";
    pub const TOUCHED: &str = "TOUCHED";
}

/// `[A-Za-z0-9_]{1,100}`, for entity, relationship and property names alike.
pub fn valid_type_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 100 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn required_string() -> PropertyDefinition {
    PropertyDefinition { kind: PropertyKind::String, required: true, pattern: None, min: Some(1.0), max: None }
}

fn entity_type(required: &[&str]) -> EntityTypeDefinition {
    EntityTypeDefinition { properties: required.iter().map(|p| (p.to_string(), required_string())).collect() }
}

fn relationship(sources: &[&str], targets: &[&str]) -> RelationshipTypeDefinition {
    RelationshipTypeDefinition {
        source_types: sources.iter().map(|s| s.to_string()).collect(),
        target_types: targets.iter().map(|s| s.to_string()).collect(),
        properties: BTreeMap::new(),
    }
}

/// The schema of a tenant that never saved one: the types the actors write,
/// and any other type allowed.
pub fn builtin_schema(tenant: TenantId) -> GraphSchema {
    use types::*;
    let entity_types = [
        (TENANT, entity_type(&["name"])),
        (ENVIRONMENT, entity_type(&["name"])),
        (CLUSTER, entity_type(&["environment"])),
        (NODE, entity_type(&["hostname", "environment"])),
        (MODULE, entity_type(&["name"])),
        (MODULE_VERSION, entity_type(&["name", "version"])),
        (RUN, entity_type(&["module", "version", "status"])),
    ];
    let relationship_types = [
        (
            CONTAINS,
            relationship(&[TENANT, ENVIRONMENT, CLUSTER, MODULE], &[ENVIRONMENT, CLUSTER, NODE, MODULE_VERSION]),
        ),
        (RUNS, relationship(&[NODE], &[MODULE_VERSION])),
        (DEPENDS_ON, relationship(&[MODULE_VERSION], &[MODULE])),
        (DEPLOYED, relationship(&[RUN], &[MODULE_VERSION])),
        (TOUCHED, relationship(&[RUN], &[NODE])),
    ];
    GraphSchema {
        tenant_id: tenant,
        version: BUILTIN_SCHEMA_VERSION.into(),
        entity_types: entity_types.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        relationship_types: relationship_types.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        allow_undeclared_types: true,
        updated_at: Utc::now(),
    }
}

/// Problems with a schema itself: names, patterns, bounds.
pub fn check_schema(schema: &GraphSchema) -> Vec<String> {
    let mut problems = Vec::new();
    // Stored as jsonb too, which cannot hold NUL.
    if serde_json::to_value(schema).is_ok_and(|v| json_holds_nul(&v)) {
        problems.push(nul_refusal("the schema"));
    }
    if semver::Version::parse(&schema.version).is_err() {
        problems.push(format!("version '{}' is not a semantic version such as 1.2.0", schema.version));
    }
    let mut check_props = |owner: &str, props: &BTreeMap<String, PropertyDefinition>| {
        for (name, def) in props {
            if !valid_type_name(name) {
                problems.push(format!("{owner}: property name '{name}' must match [A-Za-z0-9_]{{1,100}}"));
            }
            if let Some(p) = &def.pattern {
                if let Err(e) = regex::Regex::new(p) {
                    problems.push(format!("{owner}.{name}: pattern is not a regular expression: {e}"));
                }
            }
            if let (Some(min), Some(max)) = (def.min, def.max) {
                if min > max {
                    problems.push(format!("{owner}.{name}: min {min} is above max {max}"));
                }
            }
        }
    };
    for (name, def) in &schema.entity_types {
        check_props(name, &def.properties);
    }
    for (name, def) in &schema.relationship_types {
        check_props(name, &def.properties);
    }
    for name in schema.entity_types.keys().chain(schema.relationship_types.keys()) {
        if !valid_type_name(name) {
            problems.push(format!("type name '{name}' must match [A-Za-z0-9_]{{1,100}}"));
        }
    }
    for (name, def) in &schema.relationship_types {
        for t in def.source_types.iter().chain(&def.target_types) {
            if !schema.entity_types.contains_key(t) {
                problems.push(format!("{name}: entity type '{t}' is not declared"));
            }
        }
    }
    problems
}

fn kind_matches(kind: PropertyKind, value: &Value) -> bool {
    match kind {
        PropertyKind::String => value.is_string(),
        PropertyKind::Number => value.is_number(),
        PropertyKind::Integer => value.is_i64() || value.is_u64(),
        PropertyKind::Boolean => value.is_boolean(),
        PropertyKind::Object => value.is_object(),
        PropertyKind::Array => value.is_array(),
        PropertyKind::Any => true,
    }
}

fn check_properties(
    owner: &str,
    defs: &BTreeMap<String, PropertyDefinition>,
    properties: &Map<String, Value>,
    problems: &mut Vec<String>,
) {
    // PostgreSQL's jsonb cannot hold NUL (it answers an error, not a row):
    // refused here, on either store, with the property named.
    for (name, value) in properties {
        if holds_nul(name) || json_holds_nul(value) {
            let shown = name.replace('\0', "\\u0000");
            problems.push(format!("{owner}: {}", nul_refusal(&format!("property '{shown}'"))));
        }
    }
    for (name, def) in defs {
        let Some(value) = properties.get(name).filter(|v| !v.is_null()) else {
            if def.required {
                problems.push(format!("{owner}: property '{name}' is required"));
            }
            continue;
        };
        if !kind_matches(def.kind, value) {
            problems.push(format!("{owner}: property '{name}' must be of type {:?}", def.kind));
            continue;
        }
        let measure = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => Some(s.chars().count() as f64),
            _ => None,
        };
        if let (Some(m), Some(min)) = (measure, def.min) {
            if m < min {
                problems.push(format!("{owner}: property '{name}' is below its minimum {min}"));
            }
        }
        if let (Some(m), Some(max)) = (measure, def.max) {
            if m > max {
                problems.push(format!("{owner}: property '{name}' is above its maximum {max}"));
            }
        }
        if let (Some(pattern), Value::String(s)) = (&def.pattern, value) {
            // A pattern that does not compile was refused with the schema.
            if regex::Regex::new(pattern).is_ok_and(|re| !re.is_match(s)) {
                problems.push(format!("{owner}: property '{name}' does not match the pattern {pattern}"));
            }
        }
    }
    for name in properties.keys() {
        if !valid_type_name(name) {
            problems.push(format!("{owner}: property name '{name}' must match [A-Za-z0-9_]{{1,100}}"));
        }
    }
}

/// Every problem with `entity` under `schema`, each prefixed with `label`.
pub fn check_entity(schema: &GraphSchema, label: &str, entity: &GraphEntity) -> Vec<String> {
    let mut problems = Vec::new();
    if !valid_type_name(&entity.entity_type) {
        problems.push(format!("{label}: type '{}' must match [A-Za-z0-9_]{{1,100}}", entity.entity_type));
        return problems;
    }
    match schema.entity_types.get(&entity.entity_type) {
        Some(def) => check_properties(label, &def.properties, &entity.properties, &mut problems),
        None if schema.allow_undeclared_types => {
            check_properties(label, &BTreeMap::new(), &entity.properties, &mut problems)
        }
        None => problems.push(format!("{label}: entity type '{}' is not in the schema", entity.entity_type)),
    }
    problems
}

/// Every problem with `rel` under `schema`; `types` gives the entity type of
/// each end (`None` when the end does not exist).
pub fn check_relationship(
    schema: &GraphSchema,
    label: &str,
    rel: &GraphRelationship,
    source_type: Option<&str>,
    target_type: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !valid_type_name(&rel.relationship_type) {
        problems.push(format!("{label}: type '{}' must match [A-Za-z0-9_]{{1,100}}", rel.relationship_type));
    }
    if !(rel.weight.is_finite() && rel.weight >= 0.0) {
        problems.push(format!("{label}: weight must be a finite number >= 0"));
    }
    if source_type.is_none() {
        problems.push(format!("{label}: source entity {} not found", rel.source_id));
    }
    if target_type.is_none() {
        problems.push(format!("{label}: target entity {} not found", rel.target_id));
    }
    match schema.relationship_types.get(&rel.relationship_type) {
        Some(def) => {
            let allowed =
                |list: &[String], t: Option<&str>| list.is_empty() || t.is_none_or(|t| list.iter().any(|a| a == t));
            if !allowed(&def.source_types, source_type) {
                problems.push(format!(
                    "{label}: a {} relationship cannot start at a {} (allowed: {})",
                    rel.relationship_type,
                    source_type.unwrap_or_default(),
                    def.source_types.join(", ")
                ));
            }
            if !allowed(&def.target_types, target_type) {
                problems.push(format!(
                    "{label}: a {} relationship cannot end at a {} (allowed: {})",
                    rel.relationship_type,
                    target_type.unwrap_or_default(),
                    def.target_types.join(", ")
                ));
            }
            check_properties(label, &def.properties, &rel.properties, &mut problems);
        }
        None if schema.allow_undeclared_types => {
            check_properties(label, &BTreeMap::new(), &rel.properties, &mut problems)
        }
        None => problems.push(format!("{label}: relationship type '{}' is not in the schema", rel.relationship_type)),
    }
    problems
}
