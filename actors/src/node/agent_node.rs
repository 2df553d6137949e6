//! What a node actor does when its node is a host with an agent: every
//! change goes to the agent first and is recorded once the agent confirms
//! it, with the slots the agent says the host now has.

use std::collections::BTreeMap;

use actix::prelude::*;

use super::actor::NodeActor;
use super::messages::NodeError;
use crate::domain::{AgentCommand, ModuleSlots};

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
        let Some(link) = self.entry.agent_link() else {
            let err = NodeError::Failed(format!("{hostname} is not reachable: its agent is not connected"));
            return Box::pin(fut::ready(Err(err)));
        };
        let module = command.module().to_string();
        Box::pin(async move { link.command(command).await }.into_actor(self).then(
            move |answer, act, _ctx| match answer {
                // What the host now runs is recorded unfenced: it is the truth.
                Ok(slots) => act.persist(module, slots, None),
                Err(e) => Box::pin(fut::ready(Err(NodeError::Failed(format!("{hostname}: {e}"))))),
            },
        ))
    }
}

impl Handler<AdoptHostState> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(), NodeError>>;

    fn handle(&mut self, msg: AdoptHostState, _ctx: &mut Self::Context) -> Self::Result {
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
