//! Real hosts: the enrolment tokens an Admin hands out, the agents that
//! enrolled with them, and the wire form of what the server asks an agent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Environment, ModuleHooks, ModuleSlots, NodeMetrics, SignatureAlgorithm, TenantId};

/// A secret that lets a host join one environment of one tenant. Only its
/// SHA-256 is kept; the token itself is shown once, when it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolmentToken {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub environment: Environment,
    pub labels: BTreeMap<String, String>,
    /// Lower-case hex SHA-256 of the token.
    #[serde(default, skip_serializing)]
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
}

impl EnrolmentToken {
    /// Whether a host may enrol (or keep its session) with this token now.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    /// When it stopped (or will stop) enrolling hosts: its revocation or
    /// its expiry, whichever comes first.
    pub fn unusable_from(&self) -> DateTime<Utc> {
        self.revoked_at.map_or(self.expires_at, |revoked| revoked.min(self.expires_at))
    }
}

/// A host that enrolled: the node it is in its tenant's cluster and the
/// session credential it reconnects with (kept as a SHA-256 only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRecord {
    pub tenant_id: TenantId,
    pub node_id: Uuid,
    pub hostname: String,
    pub environment: Environment,
    pub labels: BTreeMap<String, String>,
    pub agent_version: String,
    /// The enrolment token it joined with: revoking that token ends the session.
    pub token_id: Uuid,
    #[serde(default, skip_serializing)]
    pub session_hash: String,
    pub address: Option<String>,
    pub enrolled_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// The version a run (or a rollback) wants a node to run, per module: what
/// the node is brought back to when it reconnects with something else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredModule {
    pub tenant_id: TenantId,
    pub node_id: Uuid,
    pub module: String,
    pub slots: ModuleSlots,
    /// A restore was decided and the host has not confirmed it yet (it was
    /// unreachable, or the answer was lost): it is applied on reconnection
    /// whatever the drift policy says.
    #[serde(default)]
    pub restore_pending: bool,
    pub updated_at: DateTime<Utc>,
}

impl DesiredModule {
    /// Whether the host's `slots` differ from these in what serves or waits
    /// in standby (the version it replaced is history, not state to enforce).
    pub fn differs_from(&self, slots: &ModuleSlots) -> bool {
        let standby = |s: &ModuleSlots| s.standby.as_ref().map(|v| v.version.clone());
        self.slots.active_version() != slots.active_version() || standby(&self.slots) != standby(slots)
    }
}

/// What the server does when a host reconnects with modules other than the
/// desired ones (`[agent] drift`). A pending restore is applied either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftPolicy {
    /// Put the desired versions back.
    #[default]
    Reconcile,
    /// Leave the host as it is, mark the node drifted and audit it.
    Flag,
}

/// One thing the server asks an agent to do with one module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum AgentCommand {
    /// Download, verify and stage a version; make it serve unless `standby`.
    Load { module: String, version: String, digest: Option<String>, standby: bool },
    /// Make the standby version serve (the blue-green switch).
    SwitchToStandby { module: String, version: String },
    /// Put a module's slots back exactly as given.
    Restore { module: String, slots: ModuleSlots },
    /// Run the health check of the version that serves.
    Verify { module: String, version: String },
}

impl AgentCommand {
    pub fn module(&self) -> &str {
        match self {
            AgentCommand::Load { module, .. }
            | AgentCommand::SwitchToStandby { module, .. }
            | AgentCommand::Restore { module, .. }
            | AgentCommand::Verify { module, .. } => module,
        }
    }
}

/// What a host reports of itself: on connect, with every heartbeat and
/// after each command.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostReport {
    pub modules: BTreeMap<String, ModuleSlots>,
    pub metrics: NodeMetrics,
    /// Why the health hook says the host is unhealthy; empty when healthy.
    #[serde(default)]
    pub problems: Vec<String>,
    /// The agent installs modules without a signature (its
    /// `require_signatures` is off). Absent, as from older agents: it does not.
    #[serde(default)]
    pub accepts_unsigned: bool,
}

/// How an agent can check an artifact itself: its digest and the signature
/// the registry holds, checked against the agent's own trusted keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactInfo {
    pub sha256: String,
    /// Base64 detached signature; `None` for an unsigned module.
    pub signature: Option<String>,
    pub algorithm: SignatureAlgorithm,
}

/// What the server sends an agent over its session, one JSON text frame each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
// A frame lives only between the socket and its handler: boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum ServerFrame {
    /// The session is open. `session` is the credential to reconnect with
    /// (sent on enrolment only); `trusted_keys` are the tenant's signing
    /// keys (PEM) the agent keeps and checks signatures against.
    Welcome {
        node_id: Uuid,
        session: Option<String>,
        heartbeat_interval_ms: u64,
        trusted_keys: Vec<String>,
        accept_bare_signatures: bool,
    },
    /// The tenant's signing keys changed since the session last sent them (a
    /// key was added or revoked): the agent replaces its set. Sent before the
    /// next load that follows the change, so the agent never checks a
    /// signature against a stale set.
    TrustedKeys { trusted_keys: Vec<String> },
    Command {
        id: u64,
        command: AgentCommand,
        /// For a load: what the downloaded bytes must match.
        artifact: Option<ArtifactInfo>,
        /// For a load: the module descriptor's hooks.
        #[serde(default)]
        hooks: ModuleHooks,
    },
}

/// What an agent sends the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
// A frame lives only between the socket and its handler: boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum AgentFrame {
    /// First frame of every session: who the host is and what it has.
    Hello {
        node_id: Uuid,
        hostname: String,
        agent_version: String,
        report: HostReport,
    },
    Heartbeat {
        report: HostReport,
    },
    /// The answer to command `id`: the module's slots, or why it failed.
    Reply {
        id: u64,
        slots: Option<ModuleSlots>,
        error: Option<String>,
        report: HostReport,
    },
}
