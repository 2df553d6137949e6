use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Checkpoint;
use super::{AuditActor, DeploymentRequest, Environment, ModuleSlots, Strategy, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunStatus {
    Running,
    PendingApproval,
    Paused,
    Succeeded,
    Failed,
    RolledBack,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Running,
        RunStatus::PendingApproval,
        RunStatus::Paused,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::RolledBack,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "Running",
            RunStatus::PendingApproval => "PendingApproval",
            RunStatus::Paused => "Paused",
            RunStatus::Succeeded => "Succeeded",
            RunStatus::Failed => "Failed",
            RunStatus::RolledBack => "RolledBack",
            RunStatus::Cancelled => "Cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        Self::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// A run in one of these states still owns its module's deployment slot.
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::PendingApproval | RunStatus::Paused)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
    WaitingForApproval,
    RolledBack,
}

impl StageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Pending => "Pending",
            StageStatus::Running => "Running",
            StageStatus::Succeeded => "Succeeded",
            StageStatus::Failed => "Failed",
            StageStatus::Skipped => "Skipped",
            StageStatus::WaitingForApproval => "WaitingForApproval",
            StageStatus::RolledBack => "RolledBack",
        }
    }
}

pub const SECURITY_SCAN_STAGE: &str = "Security Scan";
pub const VALIDATION_STAGE: &str = "Validation";
pub const APPROVAL_STAGE: &str = "Approval";

pub fn deploy_stage_name(env: Environment) -> String {
    format!("Deploy to {env}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub name: String,
    pub status: StageStatus,
    pub environment: Option<Environment>,
    pub strategy: Option<Strategy>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub nodes_deployed: Option<u32>,
    pub nodes_failed: Option<u32>,
    pub message: String,
}

impl Stage {
    pub fn pending(name: impl Into<String>) -> Stage {
        Stage {
            name: name.into(),
            status: StageStatus::Pending,
            environment: None,
            strategy: None,
            start_time: None,
            end_time: None,
            nodes_deployed: None,
            nodes_failed: None,
            message: String::new(),
        }
    }
}

/// A node this run changed, with its module state from before the change, so
/// that an automatic or manual rollback puts back exactly what was there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeChange {
    pub node_id: Uuid,
    pub hostname: String,
    pub environment: Environment,
    pub before: ModuleSlots,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackState {
    pub rollback_id: Uuid,
    pub status: String,
    pub nodes_affected: u32,
    pub requested_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub message: String,
}

impl RollbackState {
    pub const IN_PROGRESS: &'static str = "InProgress";
    pub const COMPLETED: &'static str = "Completed";
    pub const FAILED: &'static str = "Failed";

    pub fn in_progress(&self) -> bool {
        self.status == Self::IN_PROGRESS
    }
}

/// Everything known about one run; the coordinator checkpoints it after every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub tenant_id: TenantId,
    pub execution_id: Uuid,
    pub request: DeploymentRequest,
    pub status: RunStatus,
    pub stages: Vec<Stage>,
    pub checkpoint: Checkpoint,
    /// Shared so that checkpoints do not copy thousands of entries each time.
    pub changes: Arc<Vec<NodeChange>>,
    pub trace_id: String,
    /// W3C `traceparent` of the span the run was created in; every
    /// coordinator incarnation's span continues it. Empty when untraced.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_parent: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub message: String,
    pub rollback: Option<RollbackState>,
    /// The SHA-256 the Security Scan verified; nodes refuse an artifact
    /// with any other. `None` for a module the registry does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_digest: Option<String>,
    /// Incremented on every save; lets a store reject a stale writer.
    pub revision: u64,
    /// Whether the run waits for approval before its first deployment stage;
    /// decided once, when the run is created.
    #[serde(default)]
    pub approval_required: bool,
    /// The user whose token created the run (the request's `requesterEmail`
    /// is only what they typed).
    #[serde(default)]
    pub requested_by: Option<Uuid>,
    /// Operator verbs accepted but not yet carried out. Saved with the verb's
    /// event before the verb is acknowledged, so that a coordinator started
    /// after a crash or restart still honours them.
    #[serde(default, skip_serializing_if = "RunIntent::is_empty")]
    pub intent: RunIntent,
    /// Nodes whose restore kept failing (quarantined): they may still run
    /// this run's version, which the run's end says instead of a clean release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes_left_on_new_version: Vec<String>,
    /// The instance that drives the run and the epoch of its lease; every
    /// save is refused unless the stored lease still has that epoch (the
    /// fence that stops a former owner). `None` for runs stored before
    /// leases existed: the first instance to claim them sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<RunOwner>,
}

/// Who owns a run now: an instance and the epoch of its lease, which goes
/// up by one each time another instance takes the run over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOwner {
    pub instance: String,
    pub epoch: u64,
}

/// What operators asked of a run that its coordinator has yet to do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunIntent {
    /// Stop and restore every node the run changed, ending Cancelled.
    #[serde(default)]
    pub abort: bool,
    /// Skip the next bake or health-check wait.
    #[serde(default)]
    pub promote: bool,
    /// Who asked for the abort, for the entries that carrying it out writes
    /// (closing a pending approval); `None` for an abort saved before it was
    /// kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_by: Option<AuditActor>,
}

impl RunIntent {
    pub fn is_empty(&self) -> bool {
        !self.abort && !self.promote
    }
}

impl RunRecord {
    /// A run of `request` as it is admitted: Running, at its first step,
    /// untraced, unowned, no stage planned yet, revision 1.
    pub fn admitted(tenant_id: TenantId, execution_id: Uuid, request: DeploymentRequest) -> RunRecord {
        RunRecord {
            tenant_id,
            execution_id,
            request,
            status: RunStatus::Running,
            stages: Vec::new(),
            checkpoint: Checkpoint::SecurityScan,
            changes: Arc::default(),
            trace_id: String::new(),
            trace_parent: String::new(),
            // To the microsecond, as PostgreSQL keeps it: the admitted record is
            // the one the first coordinator starts from, and it must read back the same.
            created_at: Utc::now().trunc_subsecs(6),
            finished_at: None,
            message: String::new(),
            rollback: None,
            artifact_digest: None,
            revision: 1,
            approval_required: false,
            requested_by: None,
            intent: RunIntent::default(),
            nodes_left_on_new_version: Vec::new(),
            owner: None,
        }
    }

    /// True while the run, or a manual rollback of it, may still change nodes.
    pub fn holds_module(&self) -> bool {
        self.status.is_active() || self.rollback.as_ref().is_some_and(RollbackState::in_progress)
    }

    pub fn summary(&self) -> RunSummary {
        RunSummary {
            execution_id: self.execution_id,
            module_name: self.request.module_name.clone(),
            version: self.request.version.clone(),
            target_environment: self.request.target_environment,
            status: self.status,
            created_at: self.created_at,
            finished_at: self.finished_at,
            owner_instance: self.owner.as_ref().map(|o| o.instance.clone()),
        }
    }

    /// The run as live clients of other instances need it beside its events:
    /// what it says of itself (request, status, stages, times, trace), without
    /// the records kept per node (changes, canary baselines, the wave plan,
    /// the nodes left on the new version). Those grow with the cluster, no
    /// live update shows them, and they would travel with every event.
    pub fn without_node_records(&self) -> RunRecord {
        RunRecord {
            changes: Arc::default(),
            checkpoint: self.checkpoint.without_node_records(),
            nodes_left_on_new_version: Vec::new(),
            ..self.clone()
        }
    }

    pub fn stage_mut(&mut self, name: &str) -> Option<&mut Stage> {
        self.stages.iter_mut().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub execution_id: Uuid,
    pub module_name: String,
    pub version: String,
    pub target_environment: Environment,
    pub status: RunStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The instance that drives the run (its lease's owner), as the run's own
    /// view shows it; `None` before any has claimed it. The deployment
    /// outbox does not read it (no event message carries it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_instance: Option<String>,
}
