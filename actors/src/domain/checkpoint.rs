use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Environment, NodeMetrics, RunStatus};

/// Where a run stands; saved with the run after every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "camelCase")]
pub enum Checkpoint {
    SecurityScan,
    /// Open the run's approval gate.
    RequestApproval,
    /// Wait for the decision on `approval_id`, or its expiry at `timeout_at`.
    AwaitingApproval {
        approval_id: Uuid,
        timeout_at: DateTime<Utc>,
    },
    Deploy {
        environment: Environment,
        step: DeployStep,
        /// Canary only: each node's metrics before the first step.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        baseline: Vec<(Uuid, NodeMetrics)>,
        /// Canary only: each node's readings from the analysis provider
        /// before the first step, by metric name. Checkpoints written before
        /// providers existed hold only `baseline`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        analysis_baseline: Vec<(Uuid, BTreeMap<String, f64>)>,
        /// Where each wave ends in the hostname-sorted nodes (exclusive),
        /// fixed when the stage starts: a coordinator resumed under other
        /// settings (batch size, canary steps) carries on with the same waves.
        /// Empty in checkpoints written before plans were pinned.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        waves: Vec<usize>,
    },
    Validation,
    /// A stage failed: restore the nodes it changed, then end the run Failed.
    Restoring {
        environment: Environment,
        message: String,
    },
    /// Restore every node the run changed, then end with `status`. Used by
    /// abort (Cancelled) and by escalation after repeated crashes (Failed).
    Unwinding {
        status: RunStatus,
        message: String,
    },
    /// A finished run's rollback on request: restore, then RolledBack.
    ManualRollback,
    Done,
}

impl Checkpoint {
    /// The same step without what it holds per node (canary baselines, the
    /// wave plan): enough to tell where the run is, not to resume it.
    pub fn without_node_records(&self) -> Checkpoint {
        match self {
            Checkpoint::Deploy { environment, step, .. } => Checkpoint::Deploy {
                environment: *environment,
                step: step.clone(),
                baseline: Vec::new(),
                analysis_baseline: Vec::new(),
                waves: Vec::new(),
            },
            other => other.clone(),
        }
    }

    /// The phase's name, without its data.
    pub fn phase(&self) -> &'static str {
        match self {
            Checkpoint::SecurityScan => "securityScan",
            Checkpoint::RequestApproval => "requestApproval",
            Checkpoint::AwaitingApproval { .. } => "awaitingApproval",
            Checkpoint::Deploy { .. } => "deploy",
            Checkpoint::Validation => "validation",
            Checkpoint::Restoring { .. } => "restoring",
            Checkpoint::Unwinding { .. } => "unwinding",
            Checkpoint::ManualRollback => "manualRollback",
            Checkpoint::Done => "done",
        }
    }

    /// Whether the run is already putting nodes back, so that another
    /// restoring request has nothing to add.
    pub fn is_restoring(&self) -> bool {
        matches!(self, Checkpoint::Restoring { .. } | Checkpoint::Unwinding { .. } | Checkpoint::ManualRollback)
    }
}

/// The step inside one environment's strategy. `wave` indexes the strategy's
/// waves: all nodes (Direct), a batch (Rolling) or a canary step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum DeployStep {
    CaptureBaseline,
    Load { wave: usize },
    Wait { wave: usize, until: DateTime<Utc> },
    Check { wave: usize },
    LoadStandby,
    SmokeTest { deadline: DateTime<Utc> },
    Switch,
}
