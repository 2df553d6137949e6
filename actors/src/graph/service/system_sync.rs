//! The actors' part of the graph: their changes applied as they happen, the
//! rebuild that repairs drift, and versions dropped when no run names them.

use super::*;
use crate::graph::{run_history, run_window};

impl GraphService {
    // ------------------------------------------------------------ the actors' part

    /// Writes what the actors' state says, skipping what the graph already
    /// holds as it is (so repeating a change writes nothing). Schema checks do
    /// not apply: the actors' types are the built-in ones.
    pub async fn apply_system(&self, tenant: TenantId, change: GraphChange) -> Result<(), GraphError> {
        let change = system::dedupe(change);
        let (graph, _writer) = self.writing(tenant).await?;
        let mut change = self.normalise(&graph, tenant, change).await?;
        {
            // The window first: a run that leaves it takes its TOUCHED
            // relationships with it, and they do not count in a node's history.
            let index = graph.index.read();
            run_window::trim(&index, &mut change, self.finished_runs);
            run_history::bound(&index, &mut change);
        }
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
            // Most of the actors' relationships carry no properties (DEPLOYED,
            // TOUCHED, CONTAINS): the index alone tells those are unchanged,
            // and a run's every save no longer reads back each node it touched.
            change.upsert_relationships.retain(|r| !index.holds_unchanged(r));
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
        let (graph, _writer) = self.writing(tenant).await?;
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
        let mut known_nodes = std::collections::HashSet::new();
        for env in Environment::ALL {
            for node in self.store.nodes_in(tenant, env).await? {
                known_nodes.insert(node.node_id);
                desired.extend(system::node_items(&node));
            }
        }
        for version in self.store.all_module_versions(tenant).await? {
            desired.extend(system::version_items(&version));
        }
        // Runs come newest first, so the graph keeps the latest finished runs
        // and each node its latest runs' TOUCHED relationships, as the
        // incremental sync does.
        let held = self.tenant(tenant).await?.index.read().finished_runs.len();
        let mut window = run_window::NewestFinishedFirst::new(run_window::kept_by_rebuild(self.finished_runs, held));
        let mut history = run_history::NewestRunsFirst::default();
        let mut page = 1;
        loop {
            let filter = RunFilter { page, page_size: 500, ..RunFilter::default() };
            let runs = self.store.list_runs(tenant, &filter).await?;
            for summary in &runs.items {
                if let Some(run) = self.store.get_run(tenant, summary.execution_id).await? {
                    let mut items = system::run_items(&run);
                    // A retired host's node stays out, as its removal left it.
                    system::without_nodes(&mut items, |id| !known_nodes.contains(id));
                    window.keep(&mut items);
                    history.keep(&mut items);
                    desired.extend(items);
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
        let (graph, _writer) = self.writing(tenant).await?;
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

    /// Deletes the Module entities of `names` that nothing points at or from
    /// any more: a module whose last version was deleted, and the modules
    /// only that version depended on (a rebuild would not make them again).
    pub async fn drop_unreferenced_modules(&self, tenant: TenantId, names: &[&str]) -> Result<(), GraphError> {
        let (graph, _writer) = self.writing(tenant).await?;
        let unreferenced: Vec<Uuid> = {
            let index = graph.index.read();
            let alone = |ix| {
                index.graph.edges_directed(ix, petgraph::Direction::Incoming).next().is_none()
                    && index.graph.edges_directed(ix, petgraph::Direction::Outgoing).next().is_none()
            };
            names
                .iter()
                .map(|name| system::module_id(tenant, name))
                .filter(|id| index.nodes.get(id).is_some_and(|&ix| alone(ix)))
                .collect()
        };
        if unreferenced.is_empty() {
            return Ok(());
        }
        let change = GraphChange { delete_entities: unreferenced, ..GraphChange::default() };
        self.commit(tenant, &graph, &change, None).await
    }

    /// Runs `f` on the tenant's index (impact analysis, release plans).
    pub(in crate::graph) async fn with_index<T>(
        &self,
        tenant: TenantId,
        f: impl FnOnce(&TenantIndex) -> T,
    ) -> Result<T, GraphError> {
        let graph = self.tenant(tenant).await?;
        let index = graph.index.read();
        Ok(f(&index))
    }
}
