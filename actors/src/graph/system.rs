//! The actors' state as entities and relationships. The same functions serve
//! the incremental sync (one record at a time, as it changes) and the full
//! rebuild (every record), which is why the two agree.
//!
//! Ids are derived from the state (a node's and a run's own id, a v5 id of
//! the natural key otherwise), so that writing the same state twice changes
//! nothing.

use chrono::Utc;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::schema::types::*;
use crate::domain::{
    Environment, GraphChange, GraphEntity, GraphRelationship, ModuleSlots, ModuleVersion, NodeRecord, RunRecord,
    TenantId, TenantRecord, GRAPH_SYSTEM_AUTHOR,
};

fn key_id(tenant: TenantId, kind: &str, key: &str) -> Uuid {
    Uuid::new_v5(&tenant, format!("{kind}\u{0}{key}").as_bytes())
}

pub fn environment_id(tenant: TenantId, env: Environment) -> Uuid {
    key_id(tenant, ENVIRONMENT, env.as_str())
}

pub fn cluster_id(tenant: TenantId, env: Environment) -> Uuid {
    key_id(tenant, CLUSTER, env.as_str())
}

pub fn module_id(tenant: TenantId, name: &str) -> Uuid {
    key_id(tenant, MODULE, name)
}

pub fn module_version_id(tenant: TenantId, name: &str, version: &str) -> Uuid {
    key_id(tenant, MODULE_VERSION, &format!("{name}\u{0}{version}"))
}

/// The one RUNS relationship of a node and a module (its target moves with
/// the active version).
pub fn runs_id(tenant: TenantId, node_id: Uuid, module: &str) -> Uuid {
    key_id(tenant, RUNS, &format!("{node_id}\u{0}{module}"))
}

fn rel_id(tenant: TenantId, kind: &str, source: Uuid, target: Uuid) -> Uuid {
    key_id(tenant, kind, &format!("{source}\u{0}{target}"))
}

fn props(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// An entity the actors write (`createdBy = "system"`), created now.
pub fn entity(tenant: TenantId, id: Uuid, entity_type: &str, properties: Value) -> GraphEntity {
    let now = Utc::now();
    GraphEntity {
        tenant_id: tenant,
        id,
        entity_type: entity_type.into(),
        properties: props(properties),
        version: 1,
        created_at: now,
        updated_at: now,
        created_by: GRAPH_SYSTEM_AUTHOR.into(),
    }
}

fn relationship(
    tenant: TenantId,
    id: Uuid,
    kind: &str,
    source: Uuid,
    target: Uuid,
    properties: Value,
) -> GraphRelationship {
    GraphRelationship {
        tenant_id: tenant,
        id,
        relationship_type: kind.into(),
        source_id: source,
        target_id: target,
        properties: props(properties),
        weight: 1.0,
        directed: true,
        created_at: Utc::now(),
        created_by: GRAPH_SYSTEM_AUTHOR.into(),
    }
}

/// A relationship the actors write, without properties, its id derived from its ends.
pub fn edge(tenant: TenantId, kind: &str, source: Uuid, target: Uuid) -> GraphRelationship {
    relationship(tenant, rel_id(tenant, kind, source, target), kind, source, target, json!({}))
}

pub fn tenant_items(t: &TenantRecord) -> GraphChange {
    let e = entity(
        t.tenant_id,
        t.tenant_id,
        TENANT,
        json!({ "name": t.name, "subdomain": t.subdomain, "status": format!("{:?}", t.status), "tier": format!("{:?}", t.tier) }),
    );
    GraphChange { upsert_entities: vec![e], ..GraphChange::default() }
}

/// A module and one of its versions, and the edge between them.
fn version_core(tenant: TenantId, name: &str, version: &str, change: &mut GraphChange) -> Uuid {
    let m = module_id(tenant, name);
    let v = module_version_id(tenant, name, version);
    change.upsert_entities.push(entity(tenant, m, MODULE, json!({ "name": name })));
    change.upsert_entities.push(entity(tenant, v, MODULE_VERSION, json!({ "name": name, "version": version })));
    change.upsert_relationships.push(edge(tenant, CONTAINS, m, v));
    v
}

/// An environment and its cluster, and the edge between them; answers the
/// cluster's id.
fn cluster_core(tenant: TenantId, env: Environment, change: &mut GraphChange) -> Uuid {
    let e = environment_id(tenant, env);
    let c = cluster_id(tenant, env);
    change.upsert_entities.push(entity(tenant, e, ENVIRONMENT, json!({ "name": env.as_str() })));
    change.upsert_entities.push(entity(tenant, c, CLUSTER, json!({ "environment": env.as_str() })));
    change.upsert_relationships.push(edge(tenant, CONTAINS, e, c));
    c
}

/// A node in the cluster `cluster` of its environment.
fn node_in(tenant: TenantId, cluster: Uuid, node_id: Uuid, hostname: &str, env: Environment, change: &mut GraphChange) {
    change.upsert_entities.push(entity(
        tenant,
        node_id,
        NODE,
        json!({ "hostname": hostname, "environment": env.as_str() }),
    ));
    change.upsert_relationships.push(edge(tenant, CONTAINS, cluster, node_id));
}

/// A node in its environment's cluster.
fn node_core(tenant: TenantId, node_id: Uuid, hostname: &str, env: Environment, change: &mut GraphChange) {
    let cluster = cluster_core(tenant, env, change);
    node_in(tenant, cluster, node_id, hostname, env, change);
}

/// What a node runs of one module: a RUNS relationship to the active
/// version, or none.
pub fn slot_items(tenant: TenantId, node_id: Uuid, module: &str, slots: &ModuleSlots) -> GraphChange {
    let mut change = GraphChange::default();
    let id = runs_id(tenant, node_id, module);
    match slots.active_version() {
        Some(version) => {
            let v = version_core(tenant, module, version, &mut change);
            change.upsert_relationships.push(relationship(tenant, id, RUNS, node_id, v, json!({ "module": module })));
        }
        None => change.delete_relationships.push(id),
    }
    change
}

pub fn node_items(node: &NodeRecord) -> GraphChange {
    let mut change = GraphChange::default();
    node_core(node.tenant_id, node.node_id, &node.hostname, node.environment, &mut change);
    for (module, slots) in &node.modules {
        change.extend(slot_items(node.tenant_id, node.node_id, module, slots));
    }
    change
}

/// A stored version, its module and what it depends on (with the requirement).
pub fn version_items(version: &ModuleVersion) -> GraphChange {
    let tenant = version.tenant_id;
    let mut change = GraphChange::default();
    let v = version_core(tenant, version.name(), version.version(), &mut change);
    for (dep, requirement) in &version.descriptor.dependencies {
        let m = module_id(tenant, dep);
        change.upsert_entities.push(entity(tenant, m, MODULE, json!({ "name": dep })));
        change.upsert_relationships.push(relationship(
            tenant,
            rel_id(tenant, DEPENDS_ON, v, m),
            DEPENDS_ON,
            v,
            m,
            json!({ "requirement": requirement }),
        ));
    }
    change
}

pub fn run_items(run: &RunRecord) -> GraphChange {
    run_items_from(run, 0)
}

/// The run itself and the nodes of its changes from the `first_change`th on:
/// the graph already holds the earlier ones when it got the run with that
/// many changes (they only grow). Each environment and cluster once, however
/// many of its nodes the run changed.
pub fn run_items_from(run: &RunRecord, first_change: usize) -> GraphChange {
    let tenant = run.tenant_id;
    let mut change = GraphChange::default();
    let request = &run.request;
    let v = version_core(tenant, &request.module_name, &request.version, &mut change);
    let mut run_entity = entity(
        tenant,
        run.execution_id,
        RUN,
        json!({
            "module": request.module_name,
            "version": request.version,
            "environment": request.target_environment.as_str(),
            "status": run.status.as_str(),
        }),
    );
    // When the run was created: the order in which runs leave the graph's
    // window (`run_window`), the same whichever write first adds it.
    run_entity.created_at = run.created_at;
    change.upsert_entities.push(run_entity);
    change.upsert_relationships.push(edge(tenant, DEPLOYED, run.execution_id, v));
    let mut clusters: Vec<(Environment, Uuid)> = Vec::new();
    for c in run.changes.iter().skip(first_change) {
        let cluster = match clusters.iter().find(|(env, _)| *env == c.environment) {
            Some((_, cluster)) => *cluster,
            None => {
                let cluster = cluster_core(tenant, c.environment, &mut change);
                clusters.push((c.environment, cluster));
                cluster
            }
        };
        node_in(tenant, cluster, c.node_id, &c.hostname, c.environment, &mut change);
        change.upsert_relationships.push(edge(tenant, TOUCHED, run.execution_id, c.node_id));
    }
    change
}

/// Takes out of `change` the nodes that `gone` names (a retired host's node,
/// which a finished run still lists among its changes) and every
/// relationship that ends at one of them.
pub fn without_nodes(change: &mut GraphChange, gone: impl Fn(&Uuid) -> bool) {
    let mut taken = std::collections::HashSet::new();
    change.upsert_entities.retain(|e| {
        let keep = e.entity_type != NODE || !gone(&e.id);
        if !keep {
            taken.insert(e.id);
        }
        keep
    });
    if !taken.is_empty() {
        change.upsert_relationships.retain(|r| !taken.contains(&r.source_id) && !taken.contains(&r.target_id));
    }
}

/// Keeps the last of each id, so that a change built from several records
/// upserts each entity and relationship once.
pub fn dedupe(mut change: GraphChange) -> GraphChange {
    let mut seen = std::collections::HashSet::new();
    change.upsert_entities.reverse();
    change.upsert_entities.retain(|e| seen.insert(e.id));
    change.upsert_entities.reverse();
    seen.clear();
    change.upsert_relationships.reverse();
    change.upsert_relationships.retain(|r| seen.insert(r.id));
    change.upsert_relationships.reverse();
    change
}
