use uuid::Uuid;

use crate::domain::{ApprovalStatus, QuotaExceeded, RunStatus};
use crate::store::StoreError;

/// What the orchestration core can refuse or fail with. The HTTP adapter maps
/// each variant to a status code in one place.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("validation failed")]
    Validation(Vec<String>),
    #[error("module '{module}' already has an active deployment {execution_id}")]
    ModuleBusy { module: String, execution_id: Uuid },
    /// The request does not apply to the run in its current state.
    #[error("{message}")]
    WrongState { message: String, status: RunStatus },
    /// An approval was already decided, or has expired.
    #[error("{message}")]
    ApprovalClosed { message: String, status: ApprovalStatus },
    /// The request conflicts with the state of something other than a run.
    #[error("{0}")]
    Refused(String),
    /// A policy forbids the caller this action, whatever their role: the
    /// tenant is suspended or deleted, or self-approval is off.
    #[error("{0}")]
    Forbidden(String),
    /// A run would go over one of its tenant's quotas.
    #[error("{0}")]
    Quota(QuotaExceeded),
    #[error("{0}")]
    Unavailable(String),
    /// The process runs as many runs as it may; try again after `retry_after_secs`.
    #[error("{message}")]
    Overloaded { message: String, retry_after_secs: u64 },
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ModuleBusy { module, execution_id } => CoreError::ModuleBusy { module, execution_id },
            StoreError::Unavailable(m) => CoreError::Unavailable(m),
            StoreError::NotFound(m) => CoreError::NotFound(m),
            other => CoreError::Internal(other.to_string()),
        }
    }
}
