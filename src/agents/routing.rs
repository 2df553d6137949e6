//! Agent sessions held by other instances (`[redis] url` set): a node call
//! for a host whose agent is connected to instance B, made on instance A, is
//! sent to B over Redis and answered back the same way.
//!
//! - The registry: `{prefix}:agent-session:{node}` names the instance (its
//!   Redis origin) holding the host's session, with a TTL of
//!   `agent.heartbeat_timeout` refreshed by every heartbeat; a call reads it
//!   to know where to go. An instance that dies stops refreshing it.
//! - `agents` (every instance): each holder says a host is live (at connect
//!   and every heartbeat, with its report) or gone. The others make the host
//!   a node of their own cluster with a [`RemoteLink`], so that their runs
//!   see it like a local one; silence past the heartbeat timeout detaches it.
//! - `agents:req:{origin}` and `agents:reply:{origin}`: a command for the
//!   host and its answer, matched by id, waited for `agent.command_timeout`
//!   plus the time Redis may take on each leg.
//! - A call whose holder is lost meanwhile does not wait for that timeout:
//!   when the agent reconnects to another instance (or to this one) the
//!   command is sent again to where its session is now (every agent command
//!   names the state it wants, so a host that did it already answers at
//!   once); when the holder falls silent and the agent has not reappeared,
//!   the call fails, naming the instance it lost.
//!
//! Without Redis none of this exists: an instance knows its own sessions only.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hotswap_actors::domain::{AgentCommand, Environment, HealthLimits, HostReport, ModuleSlots, TenantId};
use hotswap_actors::node::{AdoptModule, AgentLink, NodeEntry};
use hotswap_actors::orchestrator::HostArrival;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::hub::AgentHub;
use crate::redis::Redis;

const NOTICES: &str = "agents";
/// Messages that may wait in each listener before the subscriber drops some.
const BACKLOG: usize = 4096;

/// What the instance holding a host's session tells the others.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Notice {
    #[serde(rename_all = "camelCase")]
    Live {
        origin: Uuid,
        tenant: TenantId,
        environment: Environment,
        node_id: Uuid,
        hostname: String,
        report: Option<HostReport>,
        /// The holder's `cluster.instance_id` and when its session began
        /// (absent from instances older than these fields).
        #[serde(default)]
        instance: Option<String>,
        #[serde(default)]
        connected_since: Option<DateTime<Utc>>,
    },
    #[serde(rename_all = "camelCase")]
    Gone { origin: Uuid, node_id: Uuid },
    /// An Admin retired the host: every instance takes its node out.
    #[serde(rename_all = "camelCase")]
    Removed { origin: Uuid, tenant: TenantId, node_id: Uuid },
    /// An Admin revoked an enrolment token: every instance ends the sessions
    /// of the hosts enrolled with it.
    #[serde(rename_all = "camelCase")]
    TokenRevoked { origin: Uuid, tenant: TenantId, token_id: Uuid },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    id: u64,
    reply_to: Uuid,
    tenant: TenantId,
    node_id: Uuid,
    command: AgentCommand,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    id: u64,
    answer: Result<ModuleSlots, String>,
    report: Option<HostReport>,
}

/// A host another instance holds the session of, as this one knows it.
struct RemoteHost {
    origin: Uuid,
    entry: Arc<NodeEntry>,
    report: Arc<RwLock<Option<HostReport>>>,
    heard: Instant,
    holder: Holder,
}

/// Who holds a host's session, as its latest notice said.
#[derive(Debug, Clone, Default)]
pub struct Holder {
    pub instance: Option<String>,
    pub connected_since: Option<DateTime<Utc>>,
}

/// What this instance knows of a session another instance holds.
pub struct RemoteSession {
    pub holder: Holder,
    pub entry: Arc<NodeEntry>,
    pub report: Option<HostReport>,
}

/// A call sent to the instance holding a host's session, waiting for its answer.
struct PendingCall {
    node_id: Uuid,
    /// The Redis origin of the instance the request went to.
    holder: Uuid,
    done: oneshot::Sender<Waited>,
}

/// How the wait for an answer from the session's holder ended.
enum Waited {
    Answered(Box<Reply>),
    /// The agent's session is now held by this origin: ask there.
    Moved(Uuid),
    /// The holder fell silent and the agent did not reappear anywhere.
    Lost(String),
}

pub struct AgentRouting {
    redis: Arc<Redis>,
    /// How long the registry keeps a session no heartbeat refreshed.
    ttl: Duration,
    command_timeout: Duration,
    /// What remote hosts' reports are judged by, as local ones'.
    limits: HealthLimits,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, PendingCall>>,
    remote: Mutex<HashMap<Uuid, RemoteHost>>,
    /// Hosts an Admin removed, and when: a notice that the host is live,
    /// sent by its holder just before the removal reached it, must not make
    /// it a node again. Kept for `ttl`; a host enrolled again after that is
    /// heard as usual.
    removed: Mutex<HashMap<Uuid, Instant>>,
}

impl AgentRouting {
    /// Starts listening for notices, requests and replies; the hub sends its
    /// sessions' comings and goings through the answer.
    pub fn start(hub: Arc<AgentHub>, redis: Arc<Redis>) -> Arc<AgentRouting> {
        let routing = Arc::new(AgentRouting {
            ttl: hub.settings.heartbeat_timeout,
            // Each leg of a call over Redis may take up to its command timeout.
            command_timeout: hub.settings.command_timeout + 2 * redis.settings().command_timeout,
            redis: redis.clone(),
            limits: hub.settings.host_limits(),
            next_id: AtomicU64::new(0),
            pending: Mutex::default(),
            remote: Mutex::default(),
            removed: Mutex::default(),
        });
        let origin = redis.origin();
        let mut notices = redis.listen(NOTICES, BACKLOG);
        let mut requests = redis.listen(&format!("agents:req:{origin}"), BACKLOG);
        let mut replies = redis.listen(&format!("agents:reply:{origin}"), BACKLOG);
        let (me, owner) = (routing.clone(), hub.clone());
        actix_web::rt::spawn(async move {
            while let Some(payload) = notices.recv().await {
                match serde_json::from_slice::<Notice>(&payload) {
                    Ok(notice) => me.on_notice(&owner, notice).await,
                    Err(e) => tracing::warn!(error = %e, "ignoring an agent notice this instance does not understand"),
                }
            }
        });
        let (me, owner) = (routing.clone(), hub.clone());
        actix_web::rt::spawn(async move {
            while let Some(payload) = requests.recv().await {
                match serde_json::from_slice::<Request>(&payload) {
                    Ok(request) => {
                        let (me, owner) = (me.clone(), owner.clone());
                        actix_web::rt::spawn(async move { me.serve(&owner, request).await });
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring an agent request this instance does not understand"),
                }
            }
        });
        let me = routing.clone();
        actix_web::rt::spawn(async move {
            while let Some(payload) = replies.recv().await {
                match serde_json::from_slice::<Reply>(&payload) {
                    Ok(reply) => {
                        if let Some(call) = me.pending.lock().remove(&reply.id) {
                            let _ = call.done.send(Waited::Answered(Box::new(reply)));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring an agent reply this instance does not understand"),
                }
            }
        });
        // Hosts of an instance that went silent (killed, cut off) leave.
        let (me, owner) = (routing.clone(), hub);
        actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.forget_silent(&owner);
            }
        });
        routing
    }

    fn origin(&self) -> Uuid {
        self.redis.origin()
    }

    fn session_key(&self, node_id: Uuid) -> String {
        self.redis.key(&format!("agent-session:{node_id}"))
    }

    /// This instance holds the host's session (connect and each heartbeat):
    /// the registry says so for `ttl` more, and every instance hears it.
    pub async fn live(&self, entry: &NodeEntry, report: Option<HostReport>, holder: Holder) {
        let (key, origin, ttl) = (self.session_key(entry.node_id), self.origin(), self.ttl.as_millis() as u64);
        let claimed = self
            .redis
            .run(|mut c| async move {
                redis::cmd("SET").arg(key).arg(origin.to_string()).arg("PX").arg(ttl).query_async::<()>(&mut c).await
            })
            .await;
        if let Err(e) = claimed {
            tracing::warn!(node = %entry.hostname, error = %e, "could not record the agent's session in redis");
        }
        let notice = Notice::Live {
            origin,
            tenant: entry.tenant_id,
            environment: entry.environment,
            node_id: entry.node_id,
            hostname: entry.hostname.clone(),
            report,
            instance: holder.instance,
            connected_since: holder.connected_since,
        };
        self.notify(&notice).await;
    }

    /// The session this instance held ended: the registry forgets it unless
    /// another instance holds a newer one.
    pub async fn gone(&self, node_id: Uuid) {
        let (key, origin) = (self.session_key(node_id), self.origin().to_string());
        let released = self
            .redis
            .run(|mut c| async move {
                redis::Script::new(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                )
                .key(key)
                .arg(origin)
                .invoke_async::<i64>(&mut c)
                .await
            })
            .await;
        if let Err(e) = released {
            tracing::warn!(%node_id, error = %e, "could not remove the agent's session from redis");
        }
        self.notify(&Notice::Gone { origin: self.origin(), node_id }).await;
    }

    /// An Admin retired the host on this instance: the others take it out too.
    pub async fn removed(&self, tenant: TenantId, node_id: Uuid) {
        self.forget_remote(node_id);
        self.notify(&Notice::Removed { origin: self.origin(), tenant, node_id }).await;
    }

    /// An Admin revoked an enrolment token on this instance: the others end
    /// the sessions they hold of hosts enrolled with it.
    pub async fn token_revoked(&self, tenant: TenantId, token_id: Uuid) {
        self.notify(&Notice::TokenRevoked { origin: self.origin(), tenant, token_id }).await;
    }

    /// Forgets a removed host's remote session and ignores its holder's
    /// notices for a while (see `removed`).
    fn forget_remote(&self, node_id: Uuid) {
        self.remote.lock().remove(&node_id);
        let now = Instant::now();
        let mut removed = self.removed.lock();
        removed.retain(|_, at| now.duration_since(*at) < self.ttl);
        removed.insert(node_id, now);
    }

    fn recently_removed(&self, node_id: Uuid) -> bool {
        self.removed.lock().get(&node_id).is_some_and(|at| at.elapsed() < self.ttl)
    }

    async fn notify(&self, notice: &Notice) {
        match serde_json::to_vec(notice) {
            Ok(payload) => {
                if let Err(e) = self.redis.publish(NOTICES, payload).await {
                    tracing::warn!(error = %e, "could not tell the other instances about an agent");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not encode an agent notice"),
        }
    }

    async fn on_notice(self: &Arc<Self>, hub: &AgentHub, notice: Notice) {
        match notice {
            Notice::Live { origin, .. }
            | Notice::Gone { origin, .. }
            | Notice::Removed { origin, .. }
            | Notice::TokenRevoked { origin, .. }
                if origin == self.origin() => {}
            Notice::TokenRevoked { tenant, token_id, .. } => hub.end_sessions_of_token(tenant, token_id),
            Notice::Removed { tenant, node_id, .. } => {
                self.forget_remote(node_id);
                hub.forget_host(tenant, node_id);
            }
            Notice::Live { node_id, .. } if self.recently_removed(node_id) => {}
            Notice::Live { origin, tenant, environment, node_id, hostname, report, instance, connected_since } => {
                self.end_calls(node_id, |holder| holder != origin, || Waited::Moved(origin));
                let holder = Holder { instance, connected_since };
                if hub.holds(node_id) {
                    // This instance holds a session too: its own link wins
                    // until that session ends.
                    return;
                }
                {
                    let mut remote = self.remote.lock();
                    if let Some(known) = remote.get_mut(&node_id).filter(|h| h.origin == origin) {
                        known.heard = Instant::now();
                        known.holder = holder;
                        known.entry.beat();
                        if report.is_some() {
                            *known.report.write() = report;
                        }
                        return;
                    }
                }
                if !hub.orchestrator.has_clusters(tenant) {
                    // Its clusters are made with the host in them when it is.
                    return;
                }
                let modules = report.as_ref().map(|r| r.modules.clone()).unwrap_or_default();
                let report = Arc::new(RwLock::new(report));
                let link = Arc::new(RemoteLink { routing: self.clone(), tenant, node_id, report: report.clone() });
                let arrival = HostArrival { tenant, node_id, hostname: hostname.clone(), environment, modules, link };
                match hub.orchestrator.attach_agent(arrival).await {
                    Ok(entry) => {
                        tracing::info!(node = %hostname, instance = %origin, "agent connected to another instance; its node calls go there");
                        let host = RemoteHost { origin, entry, report, heard: Instant::now(), holder };
                        self.remote.lock().insert(node_id, host);
                    }
                    Err(e) => {
                        tracing::warn!(node = %hostname, error = %e, "could not attach a host of another instance")
                    }
                }
            }
            Notice::Gone { origin, node_id } => {
                let gone = {
                    let mut remote = self.remote.lock();
                    match remote.get(&node_id) {
                        Some(host) if host.origin == origin => remote.remove(&node_id),
                        _ => None,
                    }
                };
                if let Some(host) = gone {
                    self.detach(hub, &host);
                }
            }
        }
    }

    fn forget_silent(&self, hub: &AgentHub) {
        let silent: Vec<RemoteHost> = {
            let mut remote = self.remote.lock();
            let ids: Vec<Uuid> =
                remote.iter().filter(|(_, h)| h.heard.elapsed() > self.ttl).map(|(id, _)| *id).collect();
            ids.iter().filter_map(|id| remote.remove(id)).collect()
        };
        for host in silent {
            tracing::warn!(node = %host.entry.hostname, instance = %host.origin, "no news of a host of another instance within the heartbeat timeout");
            let instance = host.holder.instance.clone().unwrap_or_else(|| host.origin.to_string());
            let why = format!(
                "no news within {:?} of instance {instance}, which held the agent's session, and the agent has not reconnected",
                self.ttl
            );
            self.end_calls(host.entry.node_id, |holder| holder == host.origin, || Waited::Lost(why.clone()));
            self.detach(hub, &host);
        }
    }

    /// Ends the calls waiting on `node_id`'s holder that `which` picks.
    fn end_calls(&self, node_id: Uuid, which: impl Fn(Uuid) -> bool, outcome: impl Fn() -> Waited) {
        let ended: Vec<PendingCall> = {
            let mut pending = self.pending.lock();
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, call)| call.node_id == node_id && which(call.holder))
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| pending.remove(id)).collect()
        };
        for call in ended {
            let _ = call.done.send(outcome());
        }
    }

    fn detach(&self, hub: &AgentHub, host: &RemoteHost) {
        if !hub.holds(host.entry.node_id) {
            hub.orchestrator.detach_agent(host.entry.tenant_id, host.entry.environment, host.entry.node_id);
        }
    }

    /// The session of `node_id` if another instance holds it.
    pub fn remote_session(&self, node_id: Uuid) -> Option<RemoteSession> {
        let remote = self.remote.lock();
        let host = remote.get(&node_id)?;
        let report = host.report.read().clone();
        Some(RemoteSession { holder: host.holder.clone(), entry: host.entry.clone(), report })
    }

    /// This instance holds the session now: the host is no longer remote,
    /// and calls still waiting on its former holder are sent again, here.
    pub fn local_now(&self, node_id: Uuid) {
        self.remote.lock().remove(&node_id);
        let here = self.origin();
        self.end_calls(node_id, |holder| holder != here, || Waited::Moved(here));
    }

    /// Does a request from another instance on the session this one holds.
    async fn serve(&self, hub: &AgentHub, request: Request) {
        let session = hub.session_of(request.node_id).filter(|s| s.tenant == request.tenant);
        let (answer, report) = match session.and_then(|s| s.entry.agent_link().map(|l| (s.entry.clone(), l))) {
            Some((entry, link)) => {
                let module = request.command.module().to_string();
                let answer = link.command(request.command).await;
                // This instance's copy of the node follows what the host now has.
                if let (Ok(slots), Some(addr)) = (&answer, entry.addr()) {
                    addr.do_send(AdoptModule { module, slots: slots.clone() });
                }
                (answer, link.last_report())
            }
            None => (Err("the agent's session ended on the instance that held it".to_string()), None),
        };
        let reply = Reply { id: request.id, answer, report };
        match serde_json::to_vec(&reply) {
            Ok(payload) => {
                if let Err(e) = self.redis.publish(&format!("agents:reply:{}", request.reply_to), payload).await {
                    tracing::warn!(error = %e, "could not answer another instance's agent request");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not encode an agent reply"),
        }
    }

    /// Sends `command` to the instance holding the host's session and waits
    /// for its answer, following the session if it moves meanwhile.
    async fn call(&self, tenant: TenantId, node_id: Uuid, command: AgentCommand) -> Result<Reply, String> {
        let deadline = tokio::time::Instant::now() + self.command_timeout;
        let mut holder = self.holder_of(node_id).await?;
        loop {
            match self.ask(holder, tenant, node_id, command.clone(), deadline).await? {
                Waited::Answered(reply) => return Ok(*reply),
                Waited::Moved(next) => {
                    tracing::info!(%node_id, from = %holder, to = %next, "the agent's session moved while a request was on its way; asking where it is now");
                    holder = next;
                }
                Waited::Lost(why) => return Err(why),
            }
        }
    }

    /// The Redis origin of the instance holding the host's session.
    async fn holder_of(&self, node_id: Uuid) -> Result<Uuid, String> {
        let key = self.session_key(node_id);
        let holder = self
            .redis
            .run(|mut c| async move { redis::cmd("GET").arg(key).query_async::<Option<String>>(&mut c).await })
            .await
            .map_err(|e| format!("cannot find the instance holding the agent's session: {e}"))?;
        holder
            .and_then(|h| Uuid::parse_str(&h).ok())
            .ok_or_else(|| "the agent is not connected to any instance".to_string())
    }

    /// One request to `holder`, waited for until `deadline` or until the
    /// session moves or its holder is lost.
    async fn ask(
        &self,
        holder: Uuid,
        tenant: TenantId,
        node_id: Uuid,
        command: AgentCommand,
        deadline: tokio::time::Instant,
    ) -> Result<Waited, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (done, rx) = oneshot::channel();
        self.pending.lock().insert(id, PendingCall { node_id, holder, done });
        let request = Request { id, reply_to: self.origin(), tenant, node_id, command };
        let sent = match serde_json::to_vec(&request) {
            Ok(payload) => {
                self.redis.publish(&format!("agents:req:{holder}"), payload).await.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            self.pending.lock().remove(&id);
            return Err(format!("could not reach the instance holding the agent's session: {e}"));
        }
        let waited = tokio::time::timeout_at(deadline, rx).await;
        self.pending.lock().remove(&id);
        match waited {
            Ok(Ok(waited)) => Ok(waited),
            Ok(Err(_)) => Err("the request to the agent's instance was dropped".into()),
            Err(_) => Err(format!("the agent's instance did not answer within {:?}", self.command_timeout)),
        }
    }
}

/// A host whose agent is connected to another instance.
pub struct RemoteLink {
    routing: Arc<AgentRouting>,
    tenant: TenantId,
    node_id: Uuid,
    report: Arc<RwLock<Option<HostReport>>>,
}

#[async_trait]
impl AgentLink for RemoteLink {
    async fn command(&self, command: AgentCommand) -> Result<ModuleSlots, String> {
        let reply = self.routing.call(self.tenant, self.node_id, command).await?;
        if reply.report.is_some() {
            *self.report.write() = reply.report;
        }
        reply.answer
    }

    fn last_report(&self) -> Option<HostReport> {
        self.report.read().clone()
    }

    fn health_limits(&self) -> HealthLimits {
        self.routing.limits
    }
}
