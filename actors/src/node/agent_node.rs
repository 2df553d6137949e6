//! What a node actor does when its node is a host with an agent: every
//! change goes to the agent first and is recorded once the agent confirms
//! it, with the slots the agent says the host now has. What the host should
//! run (its desired state) is recorded beside: a restore before it is sent,
//! so that a host away when the restore was decided gets it on reconnection;
//! anything else once the host has confirmed it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;

use super::actor::NodeActor;
use super::agent_link::AgentLink;
use super::directory::NodeEntry;
use super::messages::NodeError;
use super::step_interrupt::StepInterrupt;
use crate::domain::{AgentCommand, DesiredModule, ModuleSlots};
use crate::store::{within, StoreError};

/// The host's own account of its modules (sent when an agent connects): it
/// is the truth, and replaces what the store held.
#[derive(Message)]
#[rtype(result = "Result<(), NodeError>")]
pub struct AdoptHostState {
    pub modules: BTreeMap<String, ModuleSlots>,
}

/// Whether the node's record of a module is what the host has: true once
/// the host's own report was adopted (on connect), as long as every command
/// sent for the module since was answered. A command that was sent and never
/// answered (the connection broke) may have changed the host; a command that
/// was never sent (its wait for the away host ended first) did not.
#[derive(Debug, Default)]
pub struct RecordCertainty {
    /// The host's report was adopted by this incarnation of the actor.
    adopted: bool,
    /// Modules with a command sent and not answered yet (or never answered).
    unconfirmed: BTreeSet<String>,
    /// Modules whose commands from this incarnation all failed before they
    /// were sent (no route to the host: away, or held by an instance this one
    /// cannot reach), with no doubt left from an earlier one: the host has
    /// what the record said, as far as this incarnation is concerned.
    never_reached: BTreeSet<String>,
}

impl RecordCertainty {
    fn certain(&self, module: &str) -> bool {
        self.adopted && !self.unconfirmed.contains(module)
    }

    /// Whether a restore to the record's own slots needs nothing from the
    /// host: its record is certain, or this incarnation never got the run's
    /// change to it.
    fn nothing_to_restore(&self, module: &str) -> bool {
        self.certain(module) || (self.never_reached.contains(module) && !self.unconfirmed.contains(module))
    }
}

/// Why a request failed, and whether the agent may have received it.
struct Refusal {
    error: NodeError,
    sent: bool,
}

impl NodeActor {
    /// Sends `command` to the agent, then records the slots it answers with.
    /// A wait for an away agent ends early once `interrupt` is set (the run
    /// was aborted): the host then counts as not reached.
    pub(super) fn ask_agent(
        &mut self,
        command: AgentCommand,
        interrupt: StepInterrupt,
    ) -> ResponseActFuture<Self, Result<(), NodeError>> {
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
        // A restore the host certainly needs nothing for (the run's change
        // never reached it: its wait ended before the host came back) is
        // done once it is recorded as pending; an away host is not waited for.
        let already_there = match &command {
            AgentCommand::Restore { slots, .. } => {
                self.certainty.nothing_to_restore(&module)
                    && self.modules.get(&module).cloned().unwrap_or_default() == *slots
            }
            _ => false,
        };
        // Whether an earlier command for the module is still unanswered: a
        // request that is never sent leaves that doubt as it found it.
        let doubted_before = self.certainty.unconfirmed.contains(&module);
        if sets_desired {
            self.certainty.unconfirmed.insert(module.clone());
        }
        let (store, deadline, entry) = (self.store.clone(), self.store_deadline(), self.entry.clone());
        let not_sent = |error: String| Refusal { error: NodeError::Failed(error), sent: false };
        // The agent's answer (the module's slots), or None for a restore
        // the away host certainly needs nothing for.
        let ask = async move {
            if let Some(desired) = pending_restore {
                let saved = within(deadline, store.set_desired_module(&desired)).await;
                saved.map_err(|e| Refusal { error: record_error(&hostname, e), sent: false })?;
            }
            let link = match link {
                Some(link) => link,
                None if already_there => return Ok(None),
                None => match wait_for_link(&entry, wait, &interrupt).await {
                    AwayWait::Connected(link) => link,
                    AwayWait::TimedOut => return Err(not_sent(not_connected(&hostname, wait))),
                    AwayWait::Interrupted => {
                        return Err(not_sent(format!(
                            "{hostname} is not reachable: the run was aborted while its agent was away"
                        )));
                    }
                },
            };
            match link.command(command).await {
                Ok(slots) => Ok(Some(slots)),
                Err(e) => Err(Refusal { error: NodeError::Failed(format!("{hostname}: {e}")), sent: true }),
            }
        };
        Box::pin(ask.into_actor(self).then(move |answer, act, _ctx| {
            // Answered: the host has what the record says. Never sent: it has
            // what it had before this request, so an earlier command left
            // unanswered (a load cut off when the agent was killed) still
            // casts its doubt, and a restore retried after this one must
            // still reach the host rather than count as already there.
            let still_doubted = match &answer {
                Err(Refusal { sent: true, .. }) => true,
                Err(Refusal { sent: false, .. }) => doubted_before,
                Ok(_) => false,
            };
            if !still_doubted {
                act.certainty.unconfirmed.remove(&module);
            }
            match &answer {
                Err(Refusal { sent: false, .. }) if !doubted_before => {
                    act.certainty.never_reached.insert(module.clone());
                }
                Err(Refusal { sent: false, .. }) => {}
                _ => {
                    act.certainty.never_reached.remove(&module);
                }
            }
            match answer {
                // What the host now runs is recorded unfenced: it is the truth.
                Ok(Some(slots)) if sets_desired => act.persist_confirmed(module, slots),
                Ok(Some(slots)) => act.persist(module, slots, None),
                // A restore the away host needs nothing for: no answer to record.
                Ok(None) => Box::pin(fut::ready(Ok(()))),
                Err(refusal) => Box::pin(fut::ready(Err(refusal.error))),
            }
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

/// Why a request to an away host failed once its wait (`wait`, zero for a
/// restore once a restart's grace is over) ended without the agent.
fn not_connected(hostname: &str, wait: std::time::Duration) -> String {
    if wait.is_zero() {
        format!("{hostname} is not reachable: its agent is not connected")
    } else {
        format!("{hostname} is not reachable: its agent did not connect within {wait:?}")
    }
}

/// How a wait for an away host's agent ended.
enum AwayWait {
    Connected(Arc<dyn AgentLink>),
    TimedOut,
    /// The run was aborted meanwhile.
    Interrupted,
}

/// The agent's link once it connects, if it does within `wait` (for a step,
/// the longer of the node's reconnection grace after a restart and its link
/// wait, `pipeline.node_request_timeout`): a host away for longer fails the
/// step, as a simulated node that does not answer would. The wait is a timer
/// woken by the link changing or by `interrupt`, not a poll.
async fn wait_for_link(entry: &NodeEntry, wait: std::time::Duration, interrupt: &StepInterrupt) -> AwayWait {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Registered before the check, so that a connection in between is not missed.
        let mut changed = std::pin::pin!(entry.link_changed());
        changed.as_mut().enable();
        if let Some(link) = entry.agent_link() {
            return AwayWait::Connected(link);
        }
        if interrupt.is_set() {
            return AwayWait::Interrupted;
        }
        tokio::select! {
            _ = changed => {}
            _ = interrupt.interrupted() => return AwayWait::Interrupted,
            _ = tokio::time::sleep_until(deadline) => {
                return entry.agent_link().map_or(AwayWait::TimedOut, AwayWait::Connected);
            }
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
        // From here on the record is the host's own account.
        self.certainty = RecordCertainty { adopted: true, ..RecordCertainty::default() };
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
