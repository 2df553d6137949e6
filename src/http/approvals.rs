//! /api/v1/approvals: the pending approvals of the caller's tenant, and the
//! decisions on them. The decider is the token's user, never a body field.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hotswap_actors::domain::{ApprovalRecord, ApprovalStatus};
use hotswap_actors::orchestrator::{Decider, Verdict};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::Audited;
use crate::auth::{Caller, RequireRole, Tenant};
use crate::web::optional_json::OptionalJson;
use crate::web::AppState;
use crate::web::{ApiError, ErrorBody};

/// Longest reason kept with a decision.
const MAX_REASON: usize = 2000;

api_module! {
    list_pending_approvals => Access::Role(RequireRole::VIEWER),
    get_approval => Access::Role(RequireRole::VIEWER),
    approve_deployment => Access::Role(RequireRole::ADMIN),
    reject_deployment => Access::Role(RequireRole::ADMIN),
}

/// A pending approval, as the original's list showed it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingApproval {
    pub approval_id: Uuid,
    pub deployment_execution_id: Uuid,
    pub module_name: String,
    pub version: String,
    pub target_environment: String,
    pub requester_email: String,
    pub requested_at: DateTime<Utc>,
    pub timeout_at: DateTime<Utc>,
    /// "Expired", "{d}d {h}h", "{h}h {m}m" or "{m}m", the original's formats
    /// (so the last minute reads "0m"; `secondsRemaining` is exact).
    pub time_remaining: String,
    /// Whole seconds left before the approval expires; 0 once it has.
    pub seconds_remaining: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalResponse {
    pub approval_id: Uuid,
    pub deployment_execution_id: Uuid,
    pub module_name: String,
    pub version: String,
    pub target_environment: String,
    pub requester_email: String,
    /// Pending, Approved, Rejected or Expired.
    pub status: &'static str,
    pub requested_at: DateTime<Utc>,
    pub responded_at: Option<DateTime<Utc>>,
    pub responded_by: Option<String>,
    pub response_reason: Option<String>,
    pub timeout_at: DateTime<Utc>,
}

impl From<ApprovalRecord> for ApprovalResponse {
    fn from(a: ApprovalRecord) -> Self {
        ApprovalResponse {
            approval_id: a.approval_id,
            deployment_execution_id: a.execution_id,
            module_name: a.module_name,
            version: a.version,
            target_environment: a.target_environment.as_str().to_string(),
            requester_email: a.requester_email,
            status: a.status.as_str(),
            requested_at: a.requested_at,
            responded_at: a.decided_at,
            responded_by: a.decided_by_email,
            response_reason: a.reason,
            timeout_at: a.timeout_at,
        }
    }
}

/// The body of approve and reject; every field is optional.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct DecisionBody {
    /// If given, it must be the caller's own email address.
    pub approver_email: Option<String>,
    pub reason: Option<String>,
}

/// The original's format of the time left before an approval expires.
pub fn time_remaining(timeout_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = timeout_at - now;
    if left <= chrono::Duration::zero() {
        return "Expired".into();
    }
    let (days, hours, minutes) = (left.num_days(), left.num_hours() % 24, left.num_minutes() % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{minutes}m")
    }
}

fn execution_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("Approval request not found for deployment {raw}")))
}

#[utoipa::path(
    get,
    path = "/api/v1/approvals/pending",
    tag = "approvals",
    responses(
        Protected,
        (status = 200, description = "Pending approvals of the caller's tenant, oldest first", body = Vec<PendingApproval>),
    )
)]
pub async fn list_pending_approvals(state: web::Data<AppState>, tenant: Tenant) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let list: Vec<PendingApproval> = state
        .orchestrator
        .pending_approvals(tenant.0)
        .await?
        .into_iter()
        .map(|a| PendingApproval {
            approval_id: a.approval_id,
            deployment_execution_id: a.execution_id,
            module_name: a.module_name,
            version: a.version,
            target_environment: a.target_environment.as_str().to_string(),
            requester_email: a.requester_email,
            requested_at: a.requested_at,
            time_remaining: time_remaining(a.timeout_at, now),
            seconds_remaining: (a.timeout_at - now).num_seconds().max(0),
            timeout_at: a.timeout_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(
    get,
    path = "/api/v1/approvals/deployments/{id}",
    tag = "approvals",
    params(("id" = Uuid, Path, description = "The run's execution id")),
    responses(
        Protected,
        (status = 200, description = "The run's newest approval", body = ApprovalResponse),
        (status = 404, description = "No approval for that run in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn get_approval(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = state.orchestrator.approval_of_run(tenant.0, execution_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(ApprovalResponse::from(record)))
}

async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    tenant: Tenant,
    audited: Audited,
    id: &str,
    body: OptionalJson<DecisionBody>,
    verdict: Verdict,
) -> Result<HttpResponse, ApiError> {
    let id = execution_id(id)?;
    let body = body.into_inner().unwrap_or_default();
    let principal = &caller.0;
    if let Some(email) = body.approver_email.as_deref() {
        if !email.trim().eq_ignore_ascii_case(&principal.email) {
            return Err(ApiError::validation(vec![format!(
                "approverEmail '{email}' is not the signed-in user's email; leave it out, the decider is taken from the token"
            )]));
        }
    }
    let reason = body.reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON) {
        return Err(ApiError::validation(vec![format!("reason must be at most {MAX_REASON} characters")]));
    }
    let decider = Decider { user_id: principal.user_id, email: principal.email.clone(), actor: audited.0 };
    let record = state.orchestrator.decide_approval(tenant.0, id, verdict, reason, &decider).await?;
    debug_assert_ne!(record.status, ApprovalStatus::Pending);
    Ok(HttpResponse::Ok().json(ApprovalResponse::from(record)))
}

#[utoipa::path(
    post,
    path = "/api/v1/approvals/deployments/{id}/approve",
    tag = "approvals",
    params(("id" = Uuid, Path, description = "The run's execution id")),
    request_body(content = Option<DecisionBody>, description = "Optional reason; approverEmail, if sent, must be the caller's"),
    responses(
        Protected, JsonBody,
        (status = 200, description = "Approved; the run moves on", body = ApprovalResponse),
        (status = 400, description = "The body does not parse (an absent or empty body is no reason), approverEmail is not the caller's, or the reason is too long", body = ErrorBody),
        (status = 403, description = "Not an Admin, or self-approval is not allowed", body = ErrorBody),
        (status = 404, description = "No approval for that run in the caller's tenant", body = ErrorBody),
        (status = 409, description = "Already decided or expired (currentStatus)", body = ErrorBody),
    )
)]
pub async fn approve_deployment(
    state: web::Data<AppState>,
    caller: Caller,
    tenant: Tenant,
    audited: Audited,
    id: web::Path<String>,
    body: OptionalJson<DecisionBody>,
) -> Result<HttpResponse, ApiError> {
    decide(state, caller, tenant, audited, &id, body, Verdict::Approve).await
}

#[utoipa::path(
    post,
    path = "/api/v1/approvals/deployments/{id}/reject",
    tag = "approvals",
    params(("id" = Uuid, Path, description = "The run's execution id")),
    request_body(content = Option<DecisionBody>, description = "Optional reason; approverEmail, if sent, must be the caller's"),
    responses(
        Protected, JsonBody,
        (status = 200, description = "Rejected; the run ends Failed", body = ApprovalResponse),
        (status = 400, description = "The body does not parse (an absent or empty body is no reason), approverEmail is not the caller's, or the reason is too long", body = ErrorBody),
        (status = 403, description = "Not an Admin, or self-approval is not allowed", body = ErrorBody),
        (status = 404, description = "No approval for that run in the caller's tenant", body = ErrorBody),
        (status = 409, description = "Already decided or expired (currentStatus)", body = ErrorBody),
    )
)]
pub async fn reject_deployment(
    state: web::Data<AppState>,
    caller: Caller,
    tenant: Tenant,
    audited: Audited,
    id: web::Path<String>,
    body: OptionalJson<DecisionBody>,
) -> Result<HttpResponse, ApiError> {
    decide(state, caller, tenant, audited, &id, body, Verdict::Reject).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_remaining_matches_the_original_formats() {
        let now = Utc::now();
        let at = |secs: i64| now + chrono::Duration::seconds(secs);
        assert_eq!(time_remaining(at(-1), now), "Expired");
        assert_eq!(time_remaining(at(0), now), "Expired");
        assert_eq!(time_remaining(at(59), now), "0m");
        assert_eq!(time_remaining(at(5 * 60 + 10), now), "5m");
        assert_eq!(time_remaining(at(3 * 3600 + 20 * 60), now), "3h 20m");
        assert_eq!(time_remaining(at(2 * 86400 + 5 * 3600 + 7), now), "2d 5h");
    }
}
