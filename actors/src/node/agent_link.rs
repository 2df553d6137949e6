//! Nodes that are real hosts. The node actor of such a host forwards each
//! request to the host's agent through an [`AgentLink`] (the adapters
//! implement it over a WebSocket session) and records only what the agent
//! confirmed. The link comes and goes with the agent's connection; the node
//! actor stays, so that a run sees an unreachable node, not a missing one.

use async_trait::async_trait;
use chrono::Utc;

use super::NodeEntry;
use crate::domain::{AgentCommand, HealthLimits, HostReport, ModuleSlots, NodeHealth};

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

    /// The limits the host's report is judged by (`[agent] host_cpu_limit`,
    /// `host_memory_limit`).
    fn health_limits(&self) -> HealthLimits;
}

/// The health of a host: its latest report's metrics against the limits of
/// its link, plus whatever its health hook said was wrong; a host whose agent
/// is not connected is unhealthy for that, with its last heartbeat.
pub fn host_health(entry: &NodeEntry) -> NodeHealth {
    let unhealthy = |reason: String| NodeHealth { healthy: false, reasons: vec![reason], metrics: Default::default() };
    let Some(link) = entry.agent_link() else {
        return unhealthy(match entry.last_heartbeat() {
            Some(at) => {
                let format =
                    if at.date_naive() == Utc::now().date_naive() { "%H:%M:%S UTC" } else { "%Y-%m-%d %H:%M:%S UTC" };
                format!("its agent is not connected (last heartbeat {})", at.format(format))
            }
            None => "its agent has not connected since this server started".into(),
        });
    };
    match link.last_report() {
        Some(report) => {
            let mut health = NodeHealth::evaluate_within(report.metrics, false, &link.health_limits());
            health.reasons.extend(report.problems.iter().cloned());
            health.healthy = health.reasons.is_empty();
            health
        }
        None => unhealthy("its agent has not reported yet".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uuid::Uuid;

    use super::*;
    use crate::domain::{Environment, NodeMetrics, DEFAULT_TENANT};

    /// A connected host that reported `metrics`, judged by `limits`.
    struct Reported {
        metrics: NodeMetrics,
        limits: HealthLimits,
    }

    #[async_trait]
    impl AgentLink for Reported {
        async fn command(&self, _: AgentCommand) -> Result<ModuleSlots, String> {
            Err("not asked in these tests".into())
        }

        fn last_report(&self) -> Option<HostReport> {
            Some(HostReport { metrics: self.metrics, ..HostReport::default() })
        }

        fn health_limits(&self) -> HealthLimits {
            self.limits
        }
    }

    fn host() -> NodeEntry {
        NodeEntry::of_kind(DEFAULT_TENANT, Uuid::new_v4(), "web-01".into(), Environment::Production, NodeKind::Agent)
    }

    #[test]
    fn a_host_whose_agent_went_away_is_unhealthy_for_that_with_its_last_heartbeat() {
        let entry = host();
        assert_eq!(host_health(&entry).reasons, ["its agent has not connected since this server started"]);
        let at = Utc::now();
        entry.beat_at(at.timestamp_millis());
        let health = host_health(&entry);
        assert!(!health.healthy);
        let expected = format!("its agent is not connected (last heartbeat {})", at.format("%H:%M:%S UTC"));
        assert_eq!(health.reasons, [expected]);
    }

    #[test]
    fn a_host_is_judged_by_its_links_limits() {
        let busy = NodeMetrics { cpu_usage: 95.0, memory_usage: 20.0, ..NodeMetrics::default() };
        let entry = host();
        entry.set_agent_link(Some(Arc::new(Reported { metrics: busy, limits: HealthLimits::default() })));
        assert_eq!(host_health(&entry).reasons, ["CPU 95.0% above 90%"]);
        let lenient = HealthLimits { cpu_percent: 99.0, ..HealthLimits::default() };
        entry.set_agent_link(Some(Arc::new(Reported { metrics: busy, limits: lenient })));
        assert!(host_health(&entry).healthy, "{:?}", host_health(&entry).reasons);
    }
}
