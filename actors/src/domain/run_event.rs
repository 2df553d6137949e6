use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TenantId;

/// Something that happened to a run, kept beside it in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    pub tenant_id: TenantId,
    pub execution_id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub message: String,
    pub data: serde_json::Value,
}
