//! The server's side of every agent: who may connect, registering a host as
//! a node, the sessions open now, and enrolment tokens.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use actix::Addr;
use chrono::{DateTime, Utc};
use hotswap_actors::domain::{
    AgentRecord, AuditActor, AuditCategory, EnrolmentToken, Environment, HostReport, NewAuditEntry, ServerFrame,
    TenantId,
};
use hotswap_actors::error::CoreError;
use hotswap_actors::node::{AgentLink, NodeEntry};
use hotswap_actors::orchestrator::HostArrival;
use hotswap_actors::Orchestrator;
use parking_lot::RwLock;
use uuid::Uuid;

use super::credentials::{self, ENROLMENT_PREFIX, SESSION_PREFIX};
use super::link::{trusted_keys, WsAgentLink};
use super::routing::{AgentRouting, Holder, RemoteSession};
use super::session::{AgentSession, EndSession};
use super::settings::AgentSettings;

/// What an agent connected with.
#[derive(Clone)]
pub enum Credential {
    /// A first connection: the token names tenant and environment.
    Enrolment(EnrolmentToken),
    /// A reconnection of an agent enrolled before.
    Session(AgentRecord),
}

impl Credential {
    pub fn tenant(&self) -> TenantId {
        match self {
            Credential::Enrolment(t) => t.tenant_id,
            Credential::Session(a) => a.tenant_id,
        }
    }

    fn token_id(&self) -> Uuid {
        match self {
            Credential::Enrolment(t) => t.id,
            Credential::Session(a) => a.token_id,
        }
    }
}

/// The `hello` frame and where it came from.
pub struct Hello {
    pub node_id: Uuid,
    pub hostname: String,
    pub agent_version: String,
    pub report: HostReport,
    pub address: Option<String>,
}

/// A session open now.
#[derive(Clone)]
pub struct LiveSession {
    pub tenant: TenantId,
    pub token_id: Uuid,
    pub connected_since: DateTime<Utc>,
    pub address: Option<String>,
    pub entry: Arc<NodeEntry>,
    addr: Addr<AgentSession>,
}

pub struct AgentHub {
    pub orchestrator: Orchestrator,
    pub settings: AgentSettings,
    /// Tell agents to accept signatures of the bare artifact (`security.accept_artifact_signatures`).
    pub accept_bare_signatures: bool,
    sessions: RwLock<HashMap<Uuid, LiveSession>>,
    /// Node calls to hosts whose sessions other instances hold (`[redis] url`).
    routing: OnceLock<Arc<AgentRouting>>,
}

impl AgentHub {
    pub fn new(orchestrator: Orchestrator, settings: AgentSettings, accept_bare_signatures: bool) -> AgentHub {
        AgentHub {
            orchestrator,
            settings,
            accept_bare_signatures,
            sessions: RwLock::default(),
            routing: OnceLock::new(),
        }
    }

    /// Shares this instance's sessions with the others over Redis, and
    /// reaches theirs: a node call for any host goes where its session is.
    pub fn route_through(self: &Arc<Self>, redis: Arc<crate::redis::Redis>) {
        let _ = self.routing.set(AgentRouting::start(self.clone(), redis));
    }

    /// Whether this instance holds a session of `node_id` now.
    pub fn holds(&self, node_id: Uuid) -> bool {
        self.sessions.read().contains_key(&node_id)
    }

    pub fn session_of(&self, node_id: Uuid) -> Option<LiveSession> {
        self.sessions.read().get(&node_id).cloned()
    }

    /// Retires a host for good (an Admin's `DELETE /api/v1/agents/{nodeId}`):
    /// its agent record goes, so its session credential connects no more; an
    /// open session ends; its node leaves the clusters of this instance and,
    /// through Redis, of the others. Refused while a run of the tenant may
    /// still reach the host's environment.
    pub async fn remove_agent(
        &self,
        tenant: TenantId,
        actor: AuditActor,
        node_id: Uuid,
    ) -> Result<AgentRecord, CoreError> {
        let store = self.orchestrator.store();
        let agent = store.list_agents(tenant).await?.into_iter().find(|a| a.node_id == node_id);
        let agent = agent.ok_or_else(|| CoreError::NotFound(format!("agent {node_id} not found")))?;
        if let Some(run) = self.run_reaching(tenant, agent.environment).await? {
            return Err(CoreError::Refused(format!(
                "run {run} may still change nodes in {}, where {} is; remove the host once it has ended",
                agent.environment, agent.hostname
            )));
        }
        let audit = NewAuditEntry::new(tenant, actor, AuditCategory::Security, "AgentRemoved")
            .resource("Agent", node_id.to_string())
            .message(format!("{} ({}) removed: its node left the cluster", agent.hostname, agent.environment));
        store.remove_agent(tenant, node_id, &audit).await?;
        self.forget_host(tenant, node_id);
        if let Some(routing) = self.routing.get().cloned() {
            routing.removed(tenant, node_id).await;
        }
        Ok(agent)
    }

    /// Ends this instance's session of a removed host and takes its node out.
    pub fn forget_host(&self, tenant: TenantId, node_id: Uuid) {
        if let Some(session) = self.sessions.read().get(&node_id).filter(|s| s.tenant == tenant) {
            session.addr.do_send(EndSession("the host was removed from its cluster".into()));
        }
        self.orchestrator.remove_agent_node(tenant, node_id);
    }

    /// A run of the tenant that may still change nodes of `environment`: an
    /// active one whose path reaches it, or a finished one whose rollback is
    /// restoring nodes (the runs that still hold their module).
    async fn run_reaching(&self, tenant: TenantId, environment: Environment) -> Result<Option<Uuid>, CoreError> {
        let in_flight = self.orchestrator.store().runs_in_flight().await?;
        let reaching = in_flight
            .iter()
            .filter(|r| r.tenant_id == tenant)
            .find(|r| r.request.target_environment.path().contains(&environment));
        Ok(reaching.map(|r| r.execution_id))
    }

    /// The host's agent sent a frame: the other instances hear it is here.
    pub fn heard_from(&self, entry: &Arc<NodeEntry>, report: Option<HostReport>) {
        if let Some(routing) = self.routing.get().cloned() {
            let entry = entry.clone();
            let holder = Holder {
                instance: Some(self.orchestrator.instance_id().to_string()),
                connected_since: self.sessions.read().get(&entry.node_id).map(|s| s.connected_since),
            };
            actix_web::rt::spawn(async move { routing.live(&entry, report, holder).await });
        }
    }

    /// Who presents `secret`, if anyone may connect with it now.
    pub async fn authenticate(&self, secret: &str) -> Result<Credential, String> {
        let store = self.orchestrator.store();
        let refused = || "the credential is unknown, expired or revoked".to_string();
        let unavailable = |e: hotswap_actors::store::StoreError| format!("unavailable: {e}");
        let credential = if secret.starts_with(ENROLMENT_PREFIX) {
            let token = store.find_enrolment_token(&credentials::hash(secret)).await.map_err(unavailable)?;
            Credential::Enrolment(token.filter(|t| t.is_usable(Utc::now())).ok_or_else(refused)?)
        } else if secret.starts_with(SESSION_PREFIX) {
            let agent = store.find_agent_by_session(&credentials::hash(secret)).await.map_err(unavailable)?;
            let agent = agent.ok_or_else(refused)?;
            // The session lives as long as the token it was enrolled with.
            let token = store.get_enrolment_token(agent.tenant_id, agent.token_id).await.map_err(unavailable)?;
            if token.is_none_or(|t| t.revoked_at.is_some()) {
                return Err(refused());
            }
            Credential::Session(agent)
        } else {
            return Err(refused());
        };
        // As stored: another instance may have suspended the tenant. The
        // tenant's actor is then started here if it was not, so that the
        // session's checks every second have this instance's view of the
        // tenant to read, which signals and refreshes keep current.
        let tenants = self.orchestrator.tenants();
        tenants.ensure_active_stored(credential.tenant()).await.map_err(|e| e.to_string())?;
        tenants.here(credential.tenant()).await;
        Ok(credential)
    }

    pub fn link(
        &self,
        tenant: TenantId,
        session: Addr<AgentSession>,
        report: Arc<RwLock<Option<HostReport>>>,
    ) -> Arc<dyn AgentLink> {
        Arc::new(WsAgentLink {
            tenant,
            store: self.orchestrator.store().clone(),
            session,
            command_timeout: self.settings.command_timeout,
            report,
            limits: self.settings.host_limits(),
        })
    }

    /// Records the agent, makes its host a node of its cluster with the
    /// state it reported, and answers the welcome frame.
    pub async fn register(
        &self,
        credential: &Credential,
        hello: Hello,
        link: Arc<dyn AgentLink>,
    ) -> Result<(Arc<NodeEntry>, ServerFrame), String> {
        let store = self.orchestrator.store();
        let now = Utc::now();
        let (record, session) = match credential {
            Credential::Enrolment(token) => {
                let (secret, hash) = credentials::generate(SESSION_PREFIX)?;
                let record = AgentRecord {
                    tenant_id: token.tenant_id,
                    node_id: hello.node_id,
                    hostname: hello.hostname.clone(),
                    environment: token.environment,
                    labels: token.labels.clone(),
                    agent_version: hello.agent_version.clone(),
                    token_id: token.id,
                    session_hash: hash,
                    address: hello.address.clone(),
                    enrolled_at: now,
                    last_seen_at: now,
                };
                (record, Some(secret))
            }
            Credential::Session(known) => {
                let record = AgentRecord {
                    agent_version: hello.agent_version.clone(),
                    address: hello.address.clone(),
                    last_seen_at: now,
                    ..known.clone()
                };
                (record, None)
            }
        };
        if hello.hostname.trim().is_empty() || hello.hostname.len() > 253 {
            return Err("the hostname must be 1 to 253 characters".into());
        }
        if let Credential::Enrolment(token) = credential {
            self.may_enrol(token, &hello).await?;
        }
        let event = if session.is_some() { "AgentEnrolled" } else { "AgentConnected" };
        let audit = NewAuditEntry::new(record.tenant_id, AuditActor::system(), AuditCategory::Administration, event)
            .resource("Agent", record.node_id.to_string())
            .message(format!("{} ({}) connected to {}", record.hostname, record.node_id, record.environment));
        store.save_agent(&record, &audit).await.map_err(|e| format!("unavailable: {e}"))?;
        let entry = self
            .orchestrator
            .attach_agent(HostArrival {
                tenant: record.tenant_id,
                node_id: record.node_id,
                hostname: record.hostname.clone(),
                environment: record.environment,
                modules: hello.report.modules,
                link,
            })
            .await
            .map_err(|e| e.to_string())?;
        let trusted_keys = trusted_keys(store, record.tenant_id).await.map_err(|e| format!("unavailable: {e}"))?;
        let welcome = ServerFrame::Welcome {
            node_id: record.node_id,
            session,
            heartbeat_interval_ms: self.settings.heartbeat_interval.as_millis() as u64,
            trusted_keys,
            accept_bare_signatures: self.accept_bare_signatures,
        };
        Ok((entry, welcome))
    }

    /// Refuses an enrolment the tenant's clusters must not take: a host an
    /// Admin removed, back with the token it had joined with (a token enrols
    /// any number of hosts until it expires, and a removed host's agent falls
    /// back to it once its session credential is refused), or a hostname
    /// another node of the tenant has. Hostnames are unique in the whole
    /// tenant, not only in one environment: node actors are supervised, and
    /// named in the CLI and the API, by hostname per tenant. The reasons are
    /// what the agent prints.
    async fn may_enrol(&self, token: &EnrolmentToken, hello: &Hello) -> Result<(), String> {
        let store = self.orchestrator.store();
        let (tenant, node_id) = (token.tenant_id, hello.node_id);
        if store.was_removed(tenant, node_id, token.id).await.map_err(|e| format!("unavailable: {e}"))? {
            tracing::warn!(%node_id, hostname = %hello.hostname, token = %token.id, "a removed host tried to enrol again with its old token");
            return Err("an Admin removed this host; enrolling it again needs a new enrolment token (--token)".into());
        }
        let here = self.orchestrator.nodes_named(tenant, &hello.hostname);
        let mut taken = here.iter().find(|n| n.node_id != node_id).map(|n| n.environment);
        if taken.is_none() {
            // Hosts this instance has not made nodes of (yet): enrolled through another one.
            let agents = store.list_agents(tenant).await.map_err(|e| format!("unavailable: {e}"))?;
            taken = agents.iter().find(|a| a.hostname == hello.hostname && a.node_id != node_id).map(|a| a.environment);
        }
        match taken {
            Some(environment) => {
                tracing::warn!(%node_id, hostname = %hello.hostname, %environment, "enrolment refused: the hostname is taken");
                Err(format!(
                    "the hostname {} is taken by another node ({environment}); start the agent with another --hostname",
                    hello.hostname
                ))
            }
            None => self.fits_node_quota(token, hello).await,
        }
    }

    /// Refuses a new host once the environment's cluster holds the tenant's
    /// `nodesPerEnvironment` nodes (simulated ones and agents' hosts). A host
    /// that is a node of it already (enrolling again) takes no new place.
    /// Counted, not locked: two hosts enrolling at the same moment through
    /// two instances may both join.
    async fn fits_node_quota(&self, token: &EnrolmentToken, hello: &Hello) -> Result<(), String> {
        let store = self.orchestrator.store();
        let (tenant, environment) = (token.tenant_id, token.environment);
        let Some(record) = store.get_tenant(tenant).await.map_err(|e| format!("unavailable: {e}"))? else {
            return Ok(());
        };
        let limit = record.quota.max_nodes_per_environment;
        let mut nodes: HashSet<Uuid> = self.orchestrator.node_ids(tenant, environment).into_iter().collect();
        // Hosts enrolled through another instance, which this one may not have made nodes of yet.
        let agents = store.list_agents(tenant).await.map_err(|e| format!("unavailable: {e}"))?;
        nodes.extend(agents.iter().filter(|a| a.environment == environment).map(|a| a.node_id));
        if nodes.contains(&hello.node_id) || nodes.len() < limit as usize {
            return Ok(());
        }
        tracing::warn!(node_id = %hello.node_id, hostname = %hello.hostname, %environment, limit, "enrolment refused: nodesPerEnvironment quota");
        // A close frame's reason holds 123 bytes: this is what the agent prints.
        Err(format!(
            "nodesPerEnvironment quota exceeded: {environment} has {} nodes, the tier's most; remove a host or raise the tier",
            nodes.len()
        ))
    }

    pub fn session_started(
        &self,
        entry: &Arc<NodeEntry>,
        credential: &Credential,
        addr: Addr<AgentSession>,
        address: Option<String>,
        report: Option<HostReport>,
    ) {
        let live = LiveSession {
            tenant: credential.tenant(),
            token_id: credential.token_id(),
            connected_since: Utc::now(),
            address,
            entry: entry.clone(),
            addr,
        };
        // A host that reconnects before its old session timed out replaces it.
        if let Some(old) = self.sessions.write().insert(entry.node_id, live) {
            old.addr.do_send(EndSession("replaced by a newer session of the same host".into()));
        }
        if let Some(routing) = self.routing.get() {
            routing.local_now(entry.node_id);
        }
        self.heard_from(entry, report);
    }

    /// The session of `entry` ended; the node stays, unreachable.
    pub fn session_ended(&self, entry: &Arc<NodeEntry>, addr: Addr<AgentSession>) {
        let mut sessions = self.sessions.write();
        if sessions.get(&entry.node_id).is_some_and(|s| s.addr == addr) {
            sessions.remove(&entry.node_id);
            drop(sessions);
            self.orchestrator.detach_agent(entry.tenant_id, entry.environment, entry.node_id);
            if let Some(routing) = self.routing.get().cloned() {
                let node_id = entry.node_id;
                actix_web::rt::spawn(async move { routing.gone(node_id).await });
            }
        }
    }

    /// Brings a host that just connected to its desired state, or flags it
    /// as drifted (`[agent] drift`); what was done is audited by the core.
    pub async fn reconcile(&self, entry: &NodeEntry) {
        let outcome = self
            .orchestrator
            .reconcile_host(entry.tenant_id, entry.environment, entry.node_id, self.settings.drift)
            .await;
        match outcome {
            Ok(outcomes) if outcomes.is_empty() => {}
            Ok(outcomes) => tracing::info!(node = %entry.hostname, ?outcomes, "host compared with its desired state"),
            Err(e) => {
                tracing::warn!(node = %entry.hostname, error = %e, "could not compare the host with its desired state")
            }
        }
    }

    /// The session of `node_id` if another instance holds it (with Redis).
    pub fn remote_session(&self, node_id: Uuid) -> Option<RemoteSession> {
        self.routing.get()?.remote_session(node_id)
    }

    /// The tenant's open sessions by node id.
    pub fn live_sessions(&self, tenant: TenantId) -> HashMap<Uuid, LiveSession> {
        self.sessions.read().iter().filter(|(_, s)| s.tenant == tenant).map(|(k, v)| (*k, v.clone())).collect()
    }

    /// Creates an enrolment token; answers it and the secret (shown once).
    pub async fn create_token(
        &self,
        tenant: TenantId,
        actor: AuditActor,
        environment: Environment,
        labels: BTreeMap<String, String>,
        ttl: std::time::Duration,
    ) -> Result<(EnrolmentToken, String), hotswap_actors::store::StoreError> {
        let (secret, hash) =
            credentials::generate(ENROLMENT_PREFIX).map_err(hotswap_actors::store::StoreError::Other)?;
        let now = Utc::now();
        let token = EnrolmentToken {
            tenant_id: tenant,
            id: Uuid::new_v4(),
            environment,
            labels,
            token_hash: hash,
            created_at: now,
            expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1)),
            revoked_at: None,
            created_by: Some(actor.name.clone()),
        };
        let audit = NewAuditEntry::new(tenant, actor, AuditCategory::Security, "EnrolmentTokenCreated")
            .resource("EnrolmentToken", token.id.to_string())
            .message(format!("enrolment token for {environment}"));
        self.orchestrator.store().create_enrolment_token(&token, &audit).await?;
        Ok((token, secret))
    }

    /// Revokes a token and closes every session enrolled with it.
    pub async fn revoke_token(
        &self,
        tenant: TenantId,
        actor: AuditActor,
        id: Uuid,
    ) -> Result<Option<EnrolmentToken>, hotswap_actors::store::StoreError> {
        let audit = NewAuditEntry::new(tenant, actor, AuditCategory::Security, "EnrolmentTokenRevoked")
            .resource("EnrolmentToken", id.to_string())
            .message("enrolment token revoked; its agents' sessions end".to_string());
        let revoked = self.orchestrator.store().revoke_enrolment_token(tenant, id, Utc::now(), &audit).await?;
        if revoked.is_some() {
            self.end_sessions_of_token(tenant, id);
            // Sessions held by other instances end there.
            if let Some(routing) = self.routing.get().cloned() {
                routing.token_revoked(tenant, id).await;
            }
        }
        Ok(revoked)
    }

    /// Ends this instance's sessions of hosts enrolled with a revoked token.
    pub fn end_sessions_of_token(&self, tenant: TenantId, token_id: Uuid) {
        for session in self.sessions.read().values().filter(|s| s.tenant == tenant && s.token_id == token_id) {
            session.addr.do_send(EndSession("the enrolment token was revoked".into()));
        }
    }
}
