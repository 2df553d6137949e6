//! Hosts joining and leaving their tenant's clusters. An agent that connects
//! becomes (or becomes again) a node of its environment; its node actor is
//! started once and stays while the agent is away, answering "not
//! reachable", so that a run treats the host like any failed node.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::Orchestrator;
use crate::domain::{Environment, ModuleSlots, NodeRecord, TenantId};
use crate::error::CoreError;
use crate::node::{spawn_node, AdoptHostState, AgentLink, NodeEntry, NodeKind, StopNode};
use crate::supervision::{Settled, StopChild};

/// A host as it introduces itself when its agent connects.
pub struct HostArrival {
    pub tenant: TenantId,
    pub node_id: Uuid,
    pub hostname: String,
    pub environment: Environment,
    /// The modules the host actually has: they replace what the store held.
    pub modules: BTreeMap<String, ModuleSlots>,
    pub link: Arc<dyn AgentLink>,
}

impl Orchestrator {
    /// Makes the host a node of its cluster (registering it the first time)
    /// and records the state it reports. Answers its directory entry.
    pub async fn attach_agent(&self, arrival: HostArrival) -> Result<Arc<NodeEntry>, CoreError> {
        let inner = &self.inner;
        let existing = inner
            .clusters
            .nodes(arrival.tenant, arrival.environment)
            .iter()
            .find(|n| n.node_id == arrival.node_id)
            .cloned();
        let entry = match existing {
            Some(entry) if entry.kind == NodeKind::Agent => entry,
            Some(_) => {
                return Err(CoreError::Refused(format!(
                    "node {} is a simulated node; an agent cannot take its place",
                    arrival.node_id
                )))
            }
            None => {
                let record = NodeRecord {
                    tenant_id: arrival.tenant,
                    node_id: arrival.node_id,
                    hostname: arrival.hostname.clone(),
                    environment: arrival.environment,
                    modules: BTreeMap::new(),
                    updated_at: Utc::now(),
                };
                inner.store.register_node(&record).await?;
                let entry = Arc::new(NodeEntry::of_kind(
                    arrival.tenant,
                    arrival.node_id,
                    arrival.hostname.clone(),
                    arrival.environment,
                    NodeKind::Agent,
                ));
                spawn_node(
                    &inner.node_supervisor,
                    &inner.deps.threads,
                    entry.clone(),
                    &inner.slot_writer,
                    Arc::new(inner.settings.simulation.clone()),
                );
                // The supervisor handles messages in order: once it answers, the node has started.
                inner.node_supervisor.send(Settled).await.map_err(|e| CoreError::Internal(e.to_string()))?;
                inner.clusters.add_node(entry.clone());
                entry
            }
        };
        // A request to this host while its agent is away waits this long for it.
        entry.set_link_wait(inner.settings.pipeline.node_request_timeout);
        entry.set_agent_link(Some(arrival.link));
        entry.beat();
        let Some(addr) = entry.addr() else {
            return Err(CoreError::Unavailable(format!("the node actor of {} is restarting", arrival.hostname)));
        };
        // Not awaited: after a restart the node actor may be holding a resumed
        // run's request until this very agent answers it, over a session that
        // carries commands only once registration is done.
        let hostname = arrival.hostname.clone();
        actix::spawn(async move {
            match addr.send(AdoptHostState { modules: arrival.modules }).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(node = %hostname, error = %e, "could not record the host's reported state")
                }
                Err(e) => tracing::warn!(node = %hostname, error = %e, "the node actor did not take the host's state"),
            }
        });
        Ok(entry)
    }

    /// Whether this process has made the tenant's clusters yet (a host of a
    /// tenant it has not met is made a node when it does).
    pub fn has_clusters(&self, tenant: TenantId) -> bool {
        self.inner.clusters.has_tenant(tenant)
    }

    /// A retired host leaves this process's clusters for good: its node
    /// actor stops. Answers whether this process held the node. Every
    /// instance does this; the store's records went once, with the agent's
    /// (`AgentStore::remove_agent`).
    pub fn remove_agent_node(&self, tenant: TenantId, node_id: Uuid) -> bool {
        let inner = &self.inner;
        let Some(entry) = inner.clusters.remove_node(tenant, node_id) else { return false };
        inner.node_supervisor.do_send(StopChild { tenant: Some(tenant), id: format!("node:{}", entry.hostname) });
        if let Some(addr) = entry.addr() {
            addr.do_send(StopNode);
        }
        true
    }

    /// The agent of `node_id` went away: the node stays, unreachable.
    pub fn detach_agent(&self, tenant: TenantId, environment: Environment, node_id: Uuid) {
        if let Some(entry) = self.inner.clusters.nodes(tenant, environment).iter().find(|n| n.node_id == node_id) {
            entry.set_agent_link(None);
        }
    }
}
