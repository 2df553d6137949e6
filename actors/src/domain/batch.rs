//! A deployment batch: several module versions deployed one run after
//! another in the order of the graph's release plan.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Environment, Strategy, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchStatus {
    Running,
    Succeeded,
    /// A step's run failed (or could not start); the steps after it never started.
    Failed,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Running => "Running",
            BatchStatus::Succeeded => "Succeeded",
            BatchStatus::Failed => "Failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchStepStatus {
    /// Waits for the steps it depends on.
    Pending,
    /// Its run is being created: a runner that finds a step here after a
    /// restart looks for that run before creating another.
    Starting,
    Running,
    Succeeded,
    Failed,
    /// Another run of the batch failed first: this one was aborted (and its
    /// nodes restored) or never started.
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchStep {
    pub module: String,
    pub version: String,
    /// Steps of one wave do not depend on each other and run side by side.
    pub wave: u32,
    /// Modules of the batch whose steps must succeed first.
    pub depends_on: Vec<String>,
    pub status: BatchStepStatus,
    pub execution_id: Option<Uuid>,
    pub message: String,
    /// A `DowngradeAllowed` entry was written for this step's version (at
    /// creation, or when it became a downgrade by the time it started), so
    /// that each downgrade is audited once.
    #[serde(default)]
    pub downgrade_audited: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecord {
    pub tenant_id: TenantId,
    pub batch_id: Uuid,
    pub target_environment: Environment,
    pub strategy: Option<Strategy>,
    pub requester_email: String,
    /// Metadata every run of the batch carries.
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// The request allowed versions below the highest the tenant's nodes run
    /// (`allowDowngrade`); without it such a step is refused, at creation or
    /// when it starts. Absent from batches stored before it existed: false.
    #[serde(default)]
    pub allow_downgrade: bool,
    /// Who asked for it: the runs are created on their behalf.
    pub created_by: super::AuditActor,
    pub status: BatchStatus,
    pub message: String,
    pub steps: Vec<BatchStep>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a page of a tenant's batches starts: the batches created before
/// this one (by creation time, then id), as the newest-first list orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BatchCursor {
    pub created_at: DateTime<Utc>,
    pub batch_id: Uuid,
}

impl BatchRecord {
    /// The cursor of the page that follows this batch in the newest-first list.
    pub fn cursor(&self) -> BatchCursor {
        BatchCursor { created_at: self.created_at, batch_id: self.batch_id }
    }

    /// The description each of the batch's runs carries, by which a restarted
    /// runner recognises a run it created before it could record it.
    pub fn run_description(&self, step: &BatchStep) -> String {
        format!("Deployment batch {} step {} {}", self.batch_id, step.module, step.version)
    }

    /// The deployment that `step` runs.
    pub fn run_request(&self, step: &BatchStep) -> super::DeploymentRequest {
        super::DeploymentRequest {
            module_name: step.module.clone(),
            version: step.version.clone(),
            target_environment: self.target_environment,
            requester_email: self.requester_email.clone(),
            description: Some(self.run_description(step)),
            require_approval: false,
            metadata: self.metadata.clone(),
            strategy: self.strategy,
            canary_steps: None,
        }
    }
}
