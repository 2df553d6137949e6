//! Nodes that are real hosts. The node actor of such a host forwards each
//! request to the host's agent through an [`AgentLink`] (the adapters
//! implement it over a WebSocket session) and records only what the agent
//! confirmed. The link comes and goes with the agent's connection; the node
//! actor stays, so that a run sees an unreachable node, not a missing one.

use async_trait::async_trait;

use crate::domain::{AgentCommand, HostReport, ModuleSlots, NodeHealth};

/// Whether a node is simulated inside the server or a host running an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeKind {
    #[default]
    Simulated,
    Agent,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Simulated => "simulated",
            NodeKind::Agent => "agent",
        }
    }
}

/// The connection to one host's agent.
#[async_trait]
pub trait AgentLink: Send + Sync {
    /// Asks the agent to do `command` and waits for its answer: the module's
    /// slots as the host has them afterwards, or why it could not.
    async fn command(&self, command: AgentCommand) -> Result<ModuleSlots, String>;

    /// The host's latest report (heartbeat or answer), if any came yet.
    fn last_report(&self) -> Option<HostReport>;
}

/// The health of a host from its report: metrics against the usual limits,
/// plus whatever its health hook said was wrong.
pub fn host_health(report: Option<&HostReport>) -> NodeHealth {
    match report {
        Some(report) => {
            let mut health = NodeHealth::evaluate(report.metrics, false);
            health.reasons.extend(report.problems.iter().cloned());
            health.healthy = health.reasons.is_empty();
            health
        }
        None => NodeHealth {
            healthy: false,
            reasons: vec!["the agent has not reported yet".into()],
            metrics: Default::default(),
        },
    }
}
