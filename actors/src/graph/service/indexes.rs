//! Which index of each tenant's graph this instance holds: loaded from the
//! store on first use, marked stale when it may miss what the store holds
//! (another instance's commit it could not apply, or notices it never heard),
//! and then loaded again, with writers moved from the stale index to the new
//! one. The other instances' commits are applied here too.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use super::{GraphError, GraphService, QueryCache, TenantGraph};
use crate::domain::{GraphChange, TenantId};
use crate::graph::index::TenantIndex;
use crate::graph::schema::builtin_schema;

impl TenantGraph {
    fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Acquire)
    }

    fn mark_stale(&self) {
        self.stale.store(true, Ordering::Release);
    }
}

impl GraphService {
    /// Tells `peers` of every commit from now on (set once, at start-up).
    pub fn tell_peers(&self, peers: Arc<dyn crate::graph::peers::GraphPeers>) {
        if self.peers.set(peers).is_err() {
            tracing::warn!("the graph's peers were set twice; the first stay");
        }
    }

    /// Applies what another instance committed to this one's index, as the
    /// store holds those records now (one missing there was deleted since).
    /// A tenant this instance has not loaded is left alone: it will load
    /// what the store holds when first used.
    pub async fn apply_from_peer(&self, notice: crate::graph::peers::GraphCommitted) -> Result<(), GraphError> {
        let Some(graph) = self.tenants.lock().get(&notice.tenant).cloned() else { return Ok(()) };
        let tenant = notice.tenant;
        let _writer = graph.writer.lock().await;
        if graph.is_stale() {
            // The reload that replaces it reads the store, this commit included.
            return Ok(());
        }
        if notice.schema {
            if let Some(schema) = self.store.graph_schema(tenant).await? {
                *graph.schema.write() = schema;
            }
        }
        let entities = self.store.graph_entities(tenant, &notice.entities).await?;
        let relationships = self.store.graph_relationships(tenant, &notice.relationships).await?;
        let found: HashSet<Uuid> = entities.iter().map(|e| e.id).chain(relationships.iter().map(|r| r.id)).collect();
        let mut change = GraphChange {
            upsert_entities: entities,
            upsert_relationships: relationships,
            delete_entities: notice.deleted_entities,
            delete_relationships: notice.deleted_relationships,
        };
        change.delete_entities.extend(notice.entities.into_iter().filter(|id| !found.contains(id)));
        change.delete_relationships.extend(notice.relationships.into_iter().filter(|id| !found.contains(id)));
        let touched = {
            let mut index = graph.index.write();
            // A deletion of what this index does not hold is nothing to do.
            change.delete_entities.retain(|id| index.nodes.contains_key(id));
            change.delete_relationships.retain(|id| index.edges.contains_key(id));
            // A relationship whose ends this index lacks cannot be placed:
            // the store had them, so the index is older than that; reload it.
            let arriving: HashSet<Uuid> = change.upsert_entities.iter().map(|e| e.id).collect();
            let known = |id: &Uuid| index.nodes.contains_key(id) || arriving.contains(id);
            let placeable = change.upsert_relationships.iter().all(|r| known(&r.source_id) && known(&r.target_id));
            if !placeable {
                drop(index);
                self.forget(tenant);
                return Ok(());
            }
            let touched = index.touched_types(&change);
            index.apply(&change);
            touched
        };
        graph.cache.lock().invalidate(&touched);
        Ok(())
    }

    /// The tenant's index, loaded from the store when this instance has none
    /// or the one it has went stale.
    pub(super) async fn tenant(&self, tenant: TenantId) -> Result<Arc<TenantGraph>, GraphError> {
        let current =
            |graphs: &HashMap<TenantId, Arc<TenantGraph>>| graphs.get(&tenant).filter(|t| !t.is_stale()).cloned();
        let stale = {
            let graphs = self.tenants.lock();
            if let Some(t) = current(&graphs) {
                return Ok(t);
            }
            graphs.get(&tenant).cloned()
        };
        // A write under way on the stale index finishes first, so that what it
        // commits is in the store read below; writers waiting behind it see
        // the index is stale and start again on the new one (`writing`).
        // Taken before `loading`, in the order writers take them.
        let _stale_writer = match &stale {
            Some(old) => Some(old.writer.clone().lock_owned().await),
            None => None,
        };
        let _loading = self.loading.lock().await;
        if let Some(t) = current(&self.tenants.lock()) {
            return Ok(t);
        }
        let snapshot = self.store.load_graph(tenant).await?;
        let schema = self.store.graph_schema(tenant).await?.unwrap_or_else(|| builtin_schema(tenant));
        let graph = Arc::new(TenantGraph {
            writer: Arc::default(),
            stale: Default::default(),
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

    /// Marks the tenant's index stale, so that the next use loads it from the store.
    pub fn forget(&self, tenant: TenantId) {
        if let Some(graph) = self.tenants.lock().get(&tenant) {
            graph.mark_stale();
        }
    }

    /// Marks every loaded index stale: this instance may have missed other
    /// instances' notices (its subscription to them was lost for a while).
    pub fn forget_all(&self) {
        for graph in self.tenants.lock().values() {
            graph.mark_stale();
        }
    }

    /// The tenant's index with its writer lock held, on an index that is not
    /// stale (a reload may replace the index while a writer waits for it).
    pub(super) async fn writing(
        &self,
        tenant: TenantId,
    ) -> Result<(Arc<TenantGraph>, OwnedMutexGuard<()>), GraphError> {
        loop {
            let graph = self.tenant(tenant).await?;
            let writer = graph.writer.clone().lock_owned().await;
            if !graph.is_stale() {
                return Ok((graph, writer));
            }
        }
    }
}
