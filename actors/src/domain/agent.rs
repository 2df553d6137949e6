//! Real hosts: the enrolment tokens an Admin hands out, the agents that
//! enrolled with them, and the wire form of what the server asks an agent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Environment, ModuleSlots, NodeMetrics, TenantId};

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
    pub updated_at: DateTime<Utc>,
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
}
