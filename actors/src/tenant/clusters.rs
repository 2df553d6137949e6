//! A tenant's simulated clusters: one per environment, sized by the
//! configuration and capped by the tenant's nodes-per-environment quota.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::Addr;
use chrono::Utc;
use uuid::Uuid;

use crate::domain::{Environment, NodeRecord, Quota, TenantId};
use crate::error::CoreError;
use crate::node::{spawn_node, StopNode};
use crate::node::{ClusterDirectory, NodeEntry};
use crate::settings::SimulationSettings;
use crate::store::SharedStore;
use crate::supervision::{ActorThreads, Settled, StopChild, Supervisor};

pub struct Clusters {
    pub store: SharedStore,
    pub node_supervisor: Addr<Supervisor>,
    pub directory: Arc<ClusterDirectory>,
    pub simulation: Arc<SimulationSettings>,
    /// Records node state, in batches, within the deadline of a store call.
    pub slot_writer: crate::node::SlotWriter,
    /// The threads node actors are spread over.
    pub threads: ActorThreads,
}

impl Clusters {
    /// Nodes the tenant's cluster of `env` gets.
    pub fn size(&self, env: Environment, quota: &Quota) -> usize {
        self.simulation.nodes.get(env).min(quota.max_nodes_per_environment as usize)
    }

    /// Creates the tenant's clusters unless it has some already. Node ids
    /// derive from tenant and hostname, so a restarted process finds the same
    /// nodes, with their module state, in the store.
    /// Forgets the stored simulated nodes of `env` that are not among
    /// `members` (its agents' nodes and the simulated ones it has now): a
    /// process that made 2,000 nodes and restarts with 3 left the other
    /// 1,997 in the store, where the Security Scan, the knowledge graph and
    /// impact reports kept counting them as hosts lacking every module.
    async fn forget_former_nodes(
        &self,
        tenant: TenantId,
        env: Environment,
        members: &[Arc<NodeEntry>],
    ) -> Result<(), CoreError> {
        let current: std::collections::HashSet<Uuid> = members.iter().map(|m| m.node_id).collect();
        let former: Vec<Uuid> = self
            .store
            .nodes_in(tenant, env)
            .await?
            .iter()
            .map(|n| n.node_id)
            .filter(|id| !current.contains(id))
            .collect();
        if !former.is_empty() {
            let forgotten = self.store.forget_nodes(tenant, &former).await?;
            tracing::info!(%tenant, environment = %env, forgotten, "forgot simulated nodes the cluster no longer has");
        }
        Ok(())
    }

    pub async fn provision(&self, tenant: TenantId, quota: &Quota) -> Result<(), CoreError> {
        if self.directory.has_tenant(tenant) {
            return Ok(());
        }
        // Hosts that enrolled before (a restarted process) stay nodes of their
        // clusters, unreachable until their agents reconnect.
        let agents = self.store.list_agents(tenant).await?;
        for env in Environment::ALL {
            let mut entries: Vec<Arc<NodeEntry>> = agents
                .iter()
                .filter(|a| a.environment == env)
                .map(|a| Arc::new(NodeEntry::awaiting_agent(tenant, a.node_id, a.hostname.clone(), env)))
                .collect();
            for i in 1..=self.size(env, quota) {
                let hostname = format!("{}-node-{i:02}", env.slug());
                let node_id = Uuid::new_v5(&tenant, hostname.as_bytes());
                let record = NodeRecord {
                    tenant_id: tenant,
                    node_id,
                    hostname: hostname.clone(),
                    environment: env,
                    modules: BTreeMap::new(),
                    updated_at: Utc::now(),
                };
                self.store.register_node(&record).await?;
                entries.push(Arc::new(NodeEntry::new(tenant, node_id, hostname, env)));
            }
            self.forget_former_nodes(tenant, env, &entries).await?;
            for entry in &entries {
                spawn_node(
                    &self.node_supervisor,
                    &self.threads,
                    entry.clone(),
                    &self.slot_writer,
                    self.simulation.clone(),
                );
            }
            self.directory.insert(tenant, env, entries);
        }
        // The supervisor handles messages in order: once it answers, every node has started.
        self.node_supervisor.send(Settled).await.map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(())
    }

    /// Stops the tenant's node actors and forgets its clusters; the node
    /// records stay in the store with the tenant's other history.
    pub fn deprovision(&self, tenant: TenantId) {
        for entry in self.directory.remove_tenant(tenant) {
            self.node_supervisor.do_send(StopChild { tenant: Some(tenant), id: format!("node:{}", entry.hostname) });
            if let Some(addr) = entry.addr() {
                addr.do_send(StopNode);
            }
        }
    }
}
