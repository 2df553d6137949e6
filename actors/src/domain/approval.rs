//! An approval gate of one run: who asked, until when, and who decided.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Environment, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "Pending",
            ApprovalStatus::Approved => "Approved",
            ApprovalStatus::Rejected => "Rejected",
            ApprovalStatus::Expired => "Expired",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalStatus> {
        [ApprovalStatus::Pending, ApprovalStatus::Approved, ApprovalStatus::Rejected, ApprovalStatus::Expired]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// The audit and event name of reaching this status.
    pub fn event_type(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "ApprovalRequested",
            ApprovalStatus::Approved => "ApprovalGranted",
            ApprovalStatus::Rejected => "ApprovalRejected",
            ApprovalStatus::Expired => "ApprovalExpired",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    pub tenant_id: TenantId,
    pub approval_id: Uuid,
    pub execution_id: Uuid,
    pub module_name: String,
    pub version: String,
    pub target_environment: Environment,
    pub requester_id: Option<Uuid>,
    pub requester_email: String,
    pub status: ApprovalStatus,
    pub requested_at: DateTime<Utc>,
    pub timeout_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by_id: Option<Uuid>,
    pub decided_by_email: Option<String>,
    pub reason: Option<String>,
}

impl ApprovalRecord {
    /// Pending, but past its deadline: expiring it is all that is left to do.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.status == ApprovalStatus::Pending && now >= self.timeout_at
    }
}

/// A decision to record on a pending approval. `by_*` are `None` for the
/// system (an expiry).
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalDecision {
    pub status: ApprovalStatus,
    pub at: DateTime<Utc>,
    pub by_id: Option<Uuid>,
    pub by_email: Option<String>,
    pub reason: Option<String>,
}

/// What recording a decision came to.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionOutcome {
    /// This decision won; the approval as stored now.
    Decided(ApprovalRecord),
    /// Another decision (or the expiry) was first; the approval as it stands.
    AlreadyDecided(ApprovalRecord),
    NotFound,
}
