//! Impact analysis (who depends on a module, where they run) and the release
//! order of a batch of modules, from the DEPENDS_ON relationships the
//! registry's versions declare.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use petgraph::visit::EdgeRef;
use petgraph::Direction as PgDirection;
use serde::Serialize;
use uuid::Uuid;

use super::index::TenantIndex;
use super::schema::types::{CLUSTER, CONTAINS, DEPENDS_ON, MODULE_VERSION, NODE, RUNS};
use super::service::{GraphError, GraphService};
use super::system::{module_id, module_version_id};
use crate::domain::{Environment, TenantId};
use crate::registry::{BrokenDependent, DependentsChecked};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependentModule {
    pub module: String,
    pub version: String,
    /// The module it depends on, and how.
    pub depends_on: String,
    pub requirement: String,
    /// For direct dependents: whether the analysed version meets the requirement.
    pub satisfied: Option<bool>,
    /// 1 for a direct dependent, 2 for a dependent of one, and so on.
    pub depth: u32,
    pub running_nodes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedNode {
    pub node_id: Uuid,
    pub hostname: String,
    pub environment: String,
    pub modules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedCluster {
    pub cluster_id: Uuid,
    pub environment: String,
    pub nodes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImpactReport {
    pub module: String,
    pub version: String,
    pub dependents: Vec<DependentModule>,
    /// The first nodes running the module or a dependent (see `nodes_total`).
    pub nodes: Vec<AffectedNode>,
    /// How many nodes run the module or a dependent in all.
    pub nodes_total: usize,
    pub clusters: Vec<AffectedCluster>,
    pub tenants: Vec<TenantId>,
    /// One per dependent version whose requirement the version does not
    /// meet, naming a few of the nodes that run both and counting the rest.
    pub conflicts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseItem {
    pub module: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseStep {
    pub module: String,
    pub version: String,
    /// Steps of the same wave do not depend on each other.
    pub wave: u32,
    /// Modules of the batch that must go out first.
    pub depends_on: Vec<String>,
}

fn prop(index: &TenantIndex, id: Uuid, name: &str) -> String {
    index
        .entities
        .get(&id)
        .and_then(|e| e.properties.get(name))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// Nodes with a RUNS relationship into the version entity `version`.
fn nodes_running(index: &TenantIndex, version: Uuid) -> Vec<Uuid> {
    let Some(runs) = index.rel_type_id(RUNS) else { return Vec::new() };
    let Some(&v) = index.nodes.get(&version) else { return Vec::new() };
    index
        .graph
        .edges_directed(v, PgDirection::Incoming)
        .filter(|e| e.weight().rel_type == runs)
        .map(|e| index.graph[e.source()])
        .collect()
}

/// Nodes running any version of `module`: the RUNS relationships into each
/// version the module contains. Read from the module's side, so the cost is
/// the module's versions and the nodes running them, not every node of the
/// tenant (the scan of every run asks this).
fn nodes_running_module(index: &TenantIndex, tenant: TenantId, module: &str) -> Vec<Uuid> {
    let (Some(contains), Some(&m)) = (index.rel_type_id(CONTAINS), index.nodes.get(&module_id(tenant, module))) else {
        return Vec::new();
    };
    let is_node = |id: &Uuid| index.entity_type(*id) == Some(NODE);
    let versions = index
        .graph
        .edges_directed(m, PgDirection::Outgoing)
        .filter(|e| e.weight().rel_type == contains)
        .map(|e| index.graph[e.target()])
        .filter(|v| index.entity_type(*v) == Some(MODULE_VERSION));
    versions.flat_map(|v| nodes_running(index, v)).filter(is_node).collect()
}

/// One dependent module version reached from the analysed module: the
/// relationship that holds its requirement, and how far away it is.
struct Hop {
    edge: Uuid,
    dependent_version: Uuid,
    depends_on: String,
    depth: u32,
}

fn parse_version(version: &str) -> Result<semver::Version, GraphError> {
    semver::Version::parse(version)
        .map_err(|e| GraphError::Invalid(vec![format!("version '{version}' is not a semantic version: {e}")]))
}

/// Whether a direct dependent's requirement accepts `version` (`None` for
/// dependents further away, whose requirement is on another module).
fn satisfied(hop: &Hop, requirement: &str, version: &semver::Version) -> Option<bool> {
    (hop.depth == 1).then(|| semver::VersionReq::parse(requirement).map(|r| r.matches(version)).unwrap_or(false))
}

/// A dependent version whose requirement is refused, with the nodes that run
/// both it and the module, by environment, hostnames sorted. `running` is
/// the nodes running the dependent version ([`nodes_running`]).
fn broken_dependent(
    index: &TenantIndex,
    hop: &Hop,
    requirement: &str,
    running: &[Uuid],
    module_nodes: &BTreeSet<Uuid>,
) -> BrokenDependent {
    let mut nodes: BTreeMap<Environment, Vec<String>> = BTreeMap::new();
    for &n in running.iter().filter(|n| module_nodes.contains(n)) {
        // Nodes are written with the environment's own name; one that does not
        // parse cannot be on a run's path.
        if let Ok(env) = prop(index, n, "environment").parse::<Environment>() {
            nodes.entry(env).or_default().push(prop(index, n, "hostname"));
        }
    }
    for hosts in nodes.values_mut() {
        hosts.sort();
    }
    BrokenDependent {
        dependent: format!(
            "{} {}",
            prop(index, hop.dependent_version, "name"),
            prop(index, hop.dependent_version, "version")
        ),
        requirement: requirement.to_string(),
        nodes,
    }
}

/// The clusters holding `nodes`, with how many of them each holds.
fn clusters_of<'a>(index: &TenantIndex, nodes: impl Iterator<Item = &'a Uuid>) -> Vec<AffectedCluster> {
    let mut clusters: BTreeMap<Uuid, usize> = BTreeMap::new();
    for n in nodes {
        let Some(&ix) = index.nodes.get(n) else { continue };
        for e in index.graph.edges_directed(ix, PgDirection::Incoming) {
            let c = index.graph[e.source()];
            if index.entity_type(c) == Some(CLUSTER) {
                *clusters.entry(c).or_default() += 1;
            }
        }
    }
    clusters
        .into_iter()
        .map(|(id, n)| AffectedCluster { cluster_id: id, environment: prop(index, id, "environment"), nodes: n })
        .collect()
}

/// An affected node with what orders the report's list: its environment in
/// promotion order, then its host name.
struct Listed {
    environment: Option<Environment>,
    hostname: String,
    id: Uuid,
    modules: BTreeSet<String>,
}

impl Listed {
    fn order(&self) -> (Option<Environment>, &str) {
        (self.environment, &self.hostname)
    }
}

/// The first `limit` affected nodes in promotion order, then by host name;
/// only those are turned into report rows.
fn first_nodes(index: &TenantIndex, nodes: BTreeMap<Uuid, BTreeSet<String>>, limit: usize) -> Vec<AffectedNode> {
    let mut listed: Vec<Listed> = nodes
        .into_iter()
        .map(|(id, modules)| Listed {
            environment: prop(index, id, "environment").parse::<Environment>().ok(),
            hostname: prop(index, id, "hostname"),
            id,
            modules,
        })
        .collect();
    if listed.len() > limit {
        listed.select_nth_unstable_by(limit, |a, b| a.order().cmp(&b.order()));
        listed.truncate(limit);
    }
    listed.sort_by(|a, b| a.order().cmp(&b.order()));
    listed
        .into_iter()
        .map(|node| AffectedNode {
            node_id: node.id,
            environment: prop(index, node.id, "environment"),
            hostname: node.hostname,
            modules: node.modules.into_iter().collect(),
        })
        .collect()
}

impl GraphService {
    /// The module versions that depend on `module`, level by level, with each
    /// relationship's requirement (held by the store); `NotFound` for a
    /// module the graph does not know.
    async fn dependents_of(
        &self,
        tenant: TenantId,
        module: &str,
    ) -> Result<(Vec<Hop>, HashMap<Uuid, String>), GraphError> {
        let mut hops: Vec<Hop> = Vec::new();
        let known = self
            .with_index(tenant, |index| {
                let mut seen = BTreeSet::from([module.to_string()]);
                let mut queue = VecDeque::from([(module.to_string(), 1u32)]);
                let depends = index.rel_type_id(DEPENDS_ON);
                while let Some((name, depth)) = queue.pop_front() {
                    let Some(&m) = index.nodes.get(&module_id(tenant, &name)) else { continue };
                    for e in index.graph.edges_directed(m, PgDirection::Incoming) {
                        if Some(e.weight().rel_type) != depends || depth > 20 {
                            continue;
                        }
                        let dv = index.graph[e.source()];
                        hops.push(Hop { edge: e.weight().id, dependent_version: dv, depends_on: name.clone(), depth });
                        let dependent = prop(index, dv, "name");
                        if seen.insert(dependent.clone()) {
                            queue.push_back((dependent, depth + 1));
                        }
                    }
                }
                index.nodes.contains_key(&module_id(tenant, module))
            })
            .await?;
        if !known {
            return Err(GraphError::NotFound(format!("module '{module}' is not in the graph")));
        }
        if hops.is_empty() {
            return Ok((hops, HashMap::new()));
        }
        let edge_ids: Vec<Uuid> = hops.iter().map(|h| h.edge).collect();
        let requirements: HashMap<Uuid, String> = self
            .store()
            .graph_relationships(tenant, &edge_ids)
            .await?
            .into_iter()
            .map(|r| {
                let req = r.properties.get("requirement").and_then(|v| v.as_str()).unwrap_or("*").to_string();
                (r.id, req)
            })
            .collect();
        Ok((hops, requirements))
    }

    /// The scan's check (as the registry's verifier hands it on): the
    /// report's conflicts and its count of direct dependents, without listing every node that runs the module (a run
    /// to 100,000 nodes would list them all). The nodes are read only when a
    /// direct dependent's requirement refuses the version.
    pub async fn dependency_check(
        &self,
        tenant: TenantId,
        module: &str,
        version: &str,
    ) -> Result<DependentsChecked, GraphError> {
        let new_version = parse_version(version)?;
        let (hops, requirements) = self.dependents_of(tenant, module).await?;
        let requirement = |hop: &Hop| requirements.get(&hop.edge).cloned().unwrap_or_else(|| "*".into());
        let refused: Vec<(&Hop, String)> = hops
            .iter()
            .map(|h| (h, requirement(h)))
            .filter(|(h, r)| satisfied(h, r, &new_version) == Some(false))
            .collect();
        let direct = hops.iter().filter(|h| h.depth == 1).count();
        if refused.is_empty() {
            return Ok(DependentsChecked { direct, broken: Vec::new() });
        }
        let broken = self
            .with_index(tenant, |index| {
                let module_nodes: BTreeSet<Uuid> = nodes_running_module(index, tenant, module).into_iter().collect();
                refused
                    .iter()
                    .map(|(hop, requirement)| {
                        let running = nodes_running(index, hop.dependent_version);
                        broken_dependent(index, hop, requirement, &running, &module_nodes)
                    })
                    .filter(|b| !b.nodes.is_empty())
                    .collect()
            })
            .await?;
        Ok(DependentsChecked { direct, broken })
    }

    /// What releasing `version` of `module` touches. The affected nodes are
    /// listed up to `node_limit` (by environment, then host name) and counted
    /// in full; each conflict names a few of its nodes and counts the rest,
    /// so the report does not grow with the cluster.
    pub async fn impact(
        &self,
        tenant: TenantId,
        module: &str,
        version: &str,
        node_limit: usize,
    ) -> Result<ImpactReport, GraphError> {
        let new_version = parse_version(version)?;
        let (hops, requirements) = self.dependents_of(tenant, module).await?;
        let report = self
            .with_index(tenant, |index| {
                let mut dependents = Vec::new();
                let mut conflicts = Vec::new();
                let mut nodes: BTreeMap<Uuid, BTreeSet<String>> = BTreeMap::new();
                let module_nodes: BTreeSet<Uuid> = nodes_running_module(index, tenant, module).into_iter().collect();
                for n in &module_nodes {
                    nodes.entry(*n).or_default().insert(module.to_string());
                }
                for h in &hops {
                    let requirement = requirements.get(&h.edge).cloned().unwrap_or_else(|| "*".into());
                    let name = prop(index, h.dependent_version, "name");
                    let ver = prop(index, h.dependent_version, "version");
                    let running = nodes_running(index, h.dependent_version);
                    for n in &running {
                        nodes.entry(*n).or_default().insert(name.clone());
                    }
                    let meets = satisfied(h, &requirement, &new_version);
                    if meets == Some(false) {
                        let broken = broken_dependent(index, h, &requirement, &running, &module_nodes);
                        conflicts.extend(broken.conflict(module, version));
                    }
                    dependents.push(DependentModule {
                        module: name,
                        version: ver,
                        depends_on: h.depends_on.clone(),
                        requirement,
                        satisfied: meets,
                        depth: h.depth,
                        running_nodes: running.len(),
                    });
                }
                dependents.sort_by(|a, b| (a.depth, &a.module, &a.version).cmp(&(b.depth, &b.module, &b.version)));
                conflicts.sort();
                let clusters = clusters_of(index, nodes.keys());
                let nodes_total = nodes.len();
                ImpactReport {
                    module: module.to_string(),
                    version: version.to_string(),
                    dependents,
                    nodes: first_nodes(index, nodes, node_limit),
                    nodes_total,
                    clusters,
                    tenants: vec![tenant],
                    conflicts,
                }
            })
            .await?;
        Ok(report)
    }

    /// The order a batch must go out in: each module after the modules of
    /// the batch its version depends on. A cycle is a conflict naming it.
    pub async fn release_plan(&self, tenant: TenantId, items: &[ReleaseItem]) -> Result<Vec<ReleaseStep>, GraphError> {
        let mut problems = Vec::new();
        if items.is_empty() {
            problems.push("modules must name at least one module".to_string());
        }
        let mut names = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            if !names.insert(item.module.clone()) {
                problems.push(format!("modules[{i}]: module '{}' appears twice", item.module));
            }
        }
        let deps: Result<BTreeMap<String, BTreeSet<String>>, Vec<String>> = self
            .with_index(tenant, |index| {
                let mut missing = Vec::new();
                let mut deps = BTreeMap::new();
                let depends = index.rel_type_id(DEPENDS_ON);
                for (i, item) in items.iter().enumerate() {
                    let v = module_version_id(tenant, &item.module, &item.version);
                    let Some(&ix) = index.nodes.get(&v) else {
                        missing.push(format!("modules[{i}]: {} {} is not in the registry", item.module, item.version));
                        continue;
                    };
                    let on: BTreeSet<String> = index
                        .graph
                        .edges_directed(ix, PgDirection::Outgoing)
                        .filter(|e| Some(e.weight().rel_type) == depends)
                        .map(|e| prop(index, index.graph[e.target()], "name"))
                        .filter(|n| names.contains(n) && n != &item.module)
                        .collect();
                    deps.insert(item.module.clone(), on);
                }
                if missing.is_empty() {
                    Ok(deps)
                } else {
                    Err(missing)
                }
            })
            .await?;
        let deps = match deps {
            Ok(d) if problems.is_empty() => d,
            Ok(_) => return Err(GraphError::Invalid(problems)),
            Err(missing) => {
                problems.extend(missing);
                return Err(GraphError::Invalid(problems));
            }
        };
        let versions: HashMap<&str, &str> = items.iter().map(|i| (i.module.as_str(), i.version.as_str())).collect();
        let mut wave_of: BTreeMap<String, u32> = BTreeMap::new();
        let mut steps = Vec::new();
        let mut wave = 1;
        while wave_of.len() < deps.len() {
            let ready: Vec<String> = deps
                .iter()
                .filter(|(m, on)| !wave_of.contains_key(*m) && on.iter().all(|d| wave_of.contains_key(d)))
                .map(|(m, _)| m.clone())
                .collect();
            if ready.is_empty() {
                let cycle = find_cycle(&deps, &wave_of);
                return Err(GraphError::Conflict {
                    message: format!("the batch has a dependency cycle: {}", cycle.join(" -> ")),
                    details: cycle,
                });
            }
            for m in ready {
                wave_of.insert(m.clone(), wave);
                steps.push(ReleaseStep {
                    version: versions.get(m.as_str()).copied().unwrap_or_default().to_string(),
                    depends_on: deps.get(&m).map(|d| d.iter().cloned().collect()).unwrap_or_default(),
                    module: m,
                    wave,
                });
            }
            wave += 1;
        }
        Ok(steps)
    }
}

/// A cycle among the modules not yet placed, as names, first one repeated at the end.
fn find_cycle(deps: &BTreeMap<String, BTreeSet<String>>, placed: &BTreeMap<String, u32>) -> Vec<String> {
    let Some(start) = deps.keys().find(|m| !placed.contains_key(*m)) else { return Vec::new() };
    // Every unplaced module waits on an unplaced one, so following them must repeat.
    let mut path: Vec<String> = vec![start.clone()];
    loop {
        let Some(at) = path.last() else { return path };
        let next = deps.get(at).and_then(|on| on.iter().find(|d| !placed.contains_key(*d))).cloned();
        let Some(next) = next else { return path };
        if let Some(pos) = path.iter().position(|p| p == &next) {
            let mut cycle = path.split_off(pos);
            cycle.push(next);
            return cycle;
        }
        path.push(next);
    }
}
