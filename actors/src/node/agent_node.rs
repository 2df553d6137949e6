//! What a node actor does when its node is a host with an agent: every
//! change goes to the agent first and is recorded once the agent confirms
//! it, with the slots the agent says the host now has. What the host should
//! run (its desired state) is recorded beside: a restore before it is sent,
//! so that a host away when the restore was decided gets it on reconnection;
//! anything else once the host has confirmed it.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;

use super::actor::NodeActor;
use super::agent_link::AgentLink;
use super::directory::NodeEntry;
use super::messages::NodeError;
use crate::domain::{AgentCommand, DesiredModule, ModuleSlots};
use crate::store::{within, StoreError};

/// The host's own account of its modules (sent when an agent connects): it
/// is the truth, and replaces what the store held.
#[derive(Message)]
#[rtype(result = "Result<(), NodeError>")]
pub struct AdoptHostState {
    pub modules: BTreeMap<String, ModuleSlots>,
}

impl NodeActor {
    /// Sends `command` to the agent, then records the slots it answers with.
    pub(super) fn ask_agent(&mut self, command: AgentCommand) -> ResponseActFuture<Self, Result<(), NodeError>> {
        let hostname = self.entry.hostname.clone();
        let link = self.entry.agent_link();
        let module = command.module().to_string();
        let sets_desired = !matches!(command, AgentCommand::Verify { .. });
        let pending_restore = match &command {
            AgentCommand::Restore { slots, .. } => Some(self.desired(&module, slots.clone(), true)),
            _ => None,
        };
        // A step waits for an away host up to `pipeline.node_request_timeout`;
        // a restore does not (beyond a restart's grace): it is recorded as
        // pending first, and the host gets it when it reconnects.
        let wait = match &pending_restore {
            Some(_) => self.entry.reconnect_grace(),
            None => self.entry.reconnect_grace().max(self.entry.link_wait()),
        };
        let (store, deadline, entry) = (self.store.clone(), self.store_deadline(), self.entry.clone());
        let ask = async move {
            if let Some(desired) = pending_restore {
                let saved = within(deadline, store.set_desired_module(&desired)).await;
                saved.map_err(|e| record_error(&hostname, e))?;
            }
            let link = match link {
                Some(link) => link,
                None => wait_for_link(&entry, wait).await.ok_or_else(|| {
                    NodeError::Failed(format!("{hostname} is not reachable: its agent did not connect within {wait:?}"))
                })?,
            };
            link.command(command).await.map_err(|e| NodeError::Failed(format!("{hostname}: {e}")))
        };
        Box::pin(ask.into_actor(self).then(move |answer, act, _ctx| match answer {
            // What the host now runs is recorded unfenced: it is the truth.
            Ok(slots) if sets_desired => act.persist_confirmed(module, slots),
            Ok(slots) => act.persist(module, slots, None),
            Err(e) => Box::pin(fut::ready(Err(e))),
        }))
    }

    fn desired(&self, module: &str, slots: ModuleSlots, restore_pending: bool) -> DesiredModule {
        DesiredModule {
            tenant_id: self.entry.tenant_id,
            node_id: self.entry.node_id,
            module: module.to_string(),
            slots,
            restore_pending,
            updated_at: Utc::now(),
        }
    }

    /// Records what the host confirmed, then makes it the desired state: the
    /// module is no longer drifted, and no restore is pending any more.
    fn persist_confirmed(
        &mut self,
        module: String,
        slots: ModuleSlots,
    ) -> ResponseActFuture<Self, Result<(), NodeError>> {
        let desired = self.desired(&module, slots.clone(), false);
        let (store, deadline) = (self.store.clone(), self.store_deadline());
        let (entry, hostname) = (self.entry.clone(), self.entry.hostname.clone());
        Box::pin(self.persist(module.clone(), slots, None).then(move |saved, act, _ctx| {
            async move {
                saved?;
                within(deadline, store.set_desired_module(&desired)).await.map_err(|e| record_error(&hostname, e))?;
                entry.clear_drift(&module);
                Ok(())
            }
            .into_actor(act)
        }))
    }
}

/// The agent's link once it connects, if it does within `wait` (for a step,
/// the longer of the node's reconnection grace after a restart and its link
/// wait, `pipeline.node_request_timeout`): a host away for longer fails the
/// step, as a simulated node that does not answer would. The wait is a timer
/// woken by the link changing, not a poll.
async fn wait_for_link(entry: &NodeEntry, wait: std::time::Duration) -> Option<Arc<dyn AgentLink>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Registered before the check, so that a connection in between is not missed.
        let mut changed = std::pin::pin!(entry.link_changed());
        changed.as_mut().enable();
        if let Some(link) = entry.agent_link() {
            return Some(link);
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return entry.agent_link();
        }
    }
}

fn record_error(hostname: &str, e: StoreError) -> NodeError {
    match e {
        StoreError::Unavailable(e) => {
            NodeError::StoreUnavailable(format!("{hostname} could not record its desired state: {e}"))
        }
        e => NodeError::Failed(format!("{hostname} could not record its desired state: {e}")),
    }
}

impl Handler<AdoptHostState> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(), NodeError>>;

    fn handle(&mut self, msg: AdoptHostState, _ctx: &mut Self::Context) -> Self::Result {
        // The host's latest report wins over the one it connected with: a
        // command handled in between has already changed the host.
        let reported = self.entry.agent_link().and_then(|l| l.last_report()).map(|r| r.modules);
        let msg = AdoptHostState { modules: reported.unwrap_or(msg.modules) };
        // Modules the store knows and the host does not are gone from it.
        let mut changes: Vec<(String, ModuleSlots)> = self
            .modules
            .keys()
            .filter(|m| !msg.modules.contains_key(*m))
            .map(|m| (m.clone(), ModuleSlots::default()))
            .collect();
        changes.extend(msg.modules.into_iter().filter(|(m, slots)| self.modules.get(m) != Some(slots)));
        let mut chain: ResponseActFuture<Self, Result<(), NodeError>> = Box::pin(fut::ready(Ok(())));
        for (module, slots) in changes {
            chain = Box::pin(chain.then(move |done, act, _ctx| match done {
                Ok(()) => act.persist(module, slots, None),
                Err(e) => Box::pin(fut::ready(Err(e))),
            }));
        }
        chain
    }
}
