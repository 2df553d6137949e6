//! One agent's WebSocket session: an actor that turns frames into calls on
//! the hub and the core, and commands into frames. The first frame must be
//! `hello`; nothing is sent to the agent before it is registered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use hotswap_actors::domain::{
    AgentCommand, AgentFrame, ArtifactInfo, HostReport, ModuleHooks, ModuleSlots, ServerFrame,
};
use hotswap_actors::node::NodeEntry;
use parking_lot::RwLock;
use tokio::sync::oneshot;

use super::hub::{AgentHub, Credential};

type Answer = Result<ModuleSlots, String>;

/// Longest time between two checks that the session's tenant is still active.
const SUSPENSION_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

pub struct AgentSession {
    pub(super) hub: Arc<AgentHub>,
    pub(super) credential: Credential,
    pub(super) address: Option<String>,
    last_frame: Instant,
    next_id: u64,
    pending: HashMap<u64, oneshot::Sender<Answer>>,
    report: Arc<RwLock<Option<HostReport>>>,
    /// Set once `hello` has been handled.
    node: Option<Arc<NodeEntry>>,
    /// The signing keys this session last sent the agent (in its welcome or
    /// a `trustedKeys` frame).
    keys_sent: Vec<String>,
}

impl AgentSession {
    pub fn new(hub: Arc<AgentHub>, credential: Credential, address: Option<String>) -> Self {
        AgentSession {
            hub,
            credential,
            address,
            last_frame: Instant::now(),
            next_id: 0,
            pending: HashMap::new(),
            report: Arc::default(),
            node: None,
            keys_sent: Vec::new(),
        }
    }

    fn send(&self, ctx: &mut ws::WebsocketContext<Self>, frame: &ServerFrame) {
        match serde_json::to_string(frame) {
            Ok(text) => ctx.text(text),
            Err(e) => tracing::error!(error = %e, "could not encode a frame for an agent"),
        }
    }

    fn close(ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, why: &str) {
        ctx.close(Some(CloseReason { code, description: Some(close_reason(why)) }));
        ctx.stop();
    }

    fn on_frame(&mut self, frame: AgentFrame, ctx: &mut ws::WebsocketContext<Self>) {
        match frame {
            AgentFrame::Hello { node_id, hostname, agent_version, report } => {
                if self.node.is_some() {
                    return Self::close(ctx, CloseCode::Protocol, "hello sent twice");
                }
                *self.report.write() = Some(report.clone());
                let link = self.hub.link(self.credential.tenant(), ctx.address(), self.report.clone());
                let hub = self.hub.clone();
                let (credential, address) = (self.credential.clone(), self.address.clone());
                let hello = super::hub::Hello { node_id, hostname, agent_version, report, address };
                // Nothing else is handled until the host is registered.
                ctx.wait(async move { hub.register(&credential, hello, link).await }.into_actor(self).map(
                    |registered, act, ctx| match registered {
                        Ok((entry, welcome)) => {
                            let report = act.report.read().clone();
                            act.hub.session_started(
                                &entry,
                                &act.credential,
                                ctx.address(),
                                act.address.clone(),
                                report,
                            );
                            act.node = Some(entry.clone());
                            if let ServerFrame::Welcome { trusted_keys, .. } = &welcome {
                                act.keys_sent = trusted_keys.clone();
                            }
                            act.send(ctx, &welcome);
                            // Commands can flow now: bring the host to its desired state.
                            let hub = act.hub.clone();
                            ctx.spawn(async move { hub.reconcile(&entry).await }.into_actor(act));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "agent refused at registration");
                            Self::close(ctx, CloseCode::Policy, &e);
                        }
                    },
                ));
            }
            AgentFrame::Heartbeat { report } => {
                *self.report.write() = Some(report.clone());
                self.beat();
                if let Some(node) = &self.node {
                    self.hub.heard_from(node, Some(report));
                }
            }
            AgentFrame::Reply { id, slots, error, report } => {
                *self.report.write() = Some(report.clone());
                self.beat();
                // Other instances show the host from the reports passed on:
                // they hear of a change at once, not at the next heartbeat.
                if let Some(node) = &self.node {
                    self.hub.heard_from(node, Some(report));
                }
                if let Some(tx) = self.pending.remove(&id) {
                    let answer = match (slots, error) {
                        (_, Some(e)) => Err(e),
                        (Some(slots), None) => Ok(slots),
                        (None, None) => Err("the agent answered with neither slots nor an error".into()),
                    };
                    let _ = tx.send(answer);
                }
            }
        }
    }

    fn beat(&self) {
        if let Some(node) = &self.node {
            node.beat();
        }
    }
}

impl Actor for AgentSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let timeout = self.hub.settings.heartbeat_timeout;
        // Checked at least every second, so that a suspended tenant's hosts
        // are cut off within seconds whatever the heartbeat interval.
        let every = self.hub.settings.heartbeat_interval.min(SUSPENSION_CHECK);
        ctx.run_interval(every, move |act, ctx| {
            if act.last_frame.elapsed() > timeout {
                tracing::warn!(node = ?act.node.as_ref().map(|n| n.hostname.clone()), "agent silent past the heartbeat timeout; closing its session");
                return Self::close(ctx, CloseCode::Away, "no heartbeat within agent.heartbeat_timeout");
            }
            let tenant = act.credential.tenant();
            if let Err(e) = act.hub.orchestrator.tenants().ensure_active(tenant) {
                tracing::warn!(%tenant, "the agent's tenant is not active; closing its session");
                Self::close(ctx, CloseCode::Policy, &e.to_string());
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        if let Some(node) = &self.node {
            self.hub.session_ended(node, ctx.address());
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for AgentSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_frame = Instant::now();
        match msg {
            Ok(ws::Message::Text(text)) => match serde_json::from_str::<AgentFrame>(&text) {
                Ok(frame) if self.node.is_some() || matches!(frame, AgentFrame::Hello { .. }) => {
                    self.on_frame(frame, ctx)
                }
                Ok(_) => Self::close(ctx, CloseCode::Protocol, "the first frame must be hello"),
                Err(e) => Self::close(ctx, CloseCode::Invalid, &format!("not an agent frame: {e}")),
            },
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Close(_)) | Err(_) => ctx.stop(),
            Ok(_) => {}
        }
    }
}

/// The longest reason a close frame carries: a control frame holds 125
/// bytes (RFC 6455 §5.5), two of them the code.
const MAX_CLOSE_REASON: usize = 123;

/// `why`, cut to fit a close frame: a longer reason makes the frame invalid,
/// and the agent would see a broken session instead of the reason.
fn close_reason(why: &str) -> String {
    if why.len() <= MAX_CLOSE_REASON {
        return why.to_string();
    }
    const MORE: &str = "…";
    let mut end = MAX_CLOSE_REASON - MORE.len();
    while !why.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MORE}", &why[..end])
}

/// A command for the agent; answers the receiver of its reply.
#[derive(Message)]
#[rtype(result = "oneshot::Receiver<Answer>")]
pub struct SendCommand {
    pub command: AgentCommand,
    pub artifact: Option<ArtifactInfo>,
    pub hooks: ModuleHooks,
    /// For a load, restore or switch: the tenant's signing keys now, sent ahead of the command
    /// when they differ from what the agent was last given.
    pub trusted_keys: Option<Vec<String>>,
}

impl Handler<SendCommand> for AgentSession {
    type Result = MessageResult<SendCommand>;

    fn handle(&mut self, msg: SendCommand, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.next_id += 1;
        let id = self.next_id;
        self.pending.insert(id, tx);
        if let Some(keys) = msg.trusted_keys.filter(|keys| *keys != self.keys_sent) {
            tracing::info!(node = ?self.node.as_ref().map(|n| n.hostname.clone()), keys = keys.len(), "sending the agent the tenant's changed signing keys");
            self.send(ctx, &ServerFrame::TrustedKeys { trusted_keys: keys.clone() });
            self.keys_sent = keys;
        }
        self.send(ctx, &ServerFrame::Command { id, command: msg.command, artifact: msg.artifact, hooks: msg.hooks });
        MessageResult(rx)
    }
}

/// Ends the session (its token was revoked, or its tenant suspended).
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndSession(pub String);

impl Handler<EndSession> for AgentSession {
    type Result = ();

    fn handle(&mut self, msg: EndSession, ctx: &mut Self::Context) {
        Self::close(ctx, CloseCode::Policy, &msg.0);
    }
}

#[cfg(test)]
mod tests {
    use super::{close_reason, MAX_CLOSE_REASON};

    #[test]
    fn a_close_reason_is_cut_to_fit_a_control_frame_on_a_character_boundary() {
        assert_eq!(close_reason("short"), "short");
        let long = format!("the hostname {} is taken", "é".repeat(100));
        let cut = close_reason(&long);
        assert!(cut.len() <= MAX_CLOSE_REASON && cut.ends_with('…'), "{cut}");
        assert!(long.starts_with(cut.trim_end_matches('…')));
    }
}
