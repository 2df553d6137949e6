//! `X-Tenant-Id`: an Admin of the system tenant acting for another tenant.
//! Nobody else may send it (403); every use is written to the audit trail of
//! the tenant acted for before the request goes on, and a request whose use
//! cannot be audited is refused. A live session is audited once, when it
//! starts; the requests that carry it afterwards are only checked.

use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use actix_web::{web, HttpRequest};
use hotswap_actors::domain::{AuditCategory, NewAuditEntry, Role, DEFAULT_TENANT};
use hotswap_actors::CoreError;
use serde_json::json;
use uuid::Uuid;

use super::audited::Audited;
use super::extractors::{Tenant, TENANT_OVERRIDE};
use super::principal::Principal;
use crate::web::ApiError;
use crate::web::AppState;

/// How a use of the header is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideUse {
    /// Written to the acted-for tenant's audit trail (every REST request, each live session's start).
    Audited,
    /// Checked only: a request inside a live session whose start was audited.
    WithinAuditedSession,
}

pub(super) async fn resolve(
    req: HttpRequest,
    principal: Arc<Principal>,
    raw: HeaderValue,
    how: OverrideUse,
) -> Result<Tenant, ApiError> {
    if principal.tenant_id != DEFAULT_TENANT || !principal.has_role(Role::Admin) {
        return Err(ApiError::Forbidden(format!("{TENANT_OVERRIDE} is only for administrators of the system tenant")));
    }
    let target = raw
        .to_str()
        .ok()
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("{TENANT_OVERRIDE} must be a tenant id (a UUID)")))?;
    if target == principal.tenant_id {
        return Ok(Tenant(target));
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("the application state is not configured".into()))?;
    let tenants = state.orchestrator.tenants();
    tenants.get(target).await.map_err(|e| match e {
        CoreError::NotFound(_) => ApiError::NotFound(format!("Tenant {target} not found ({TENANT_OVERRIDE})")),
        other => other.into(),
    })?;
    if how == OverrideUse::WithinAuditedSession {
        return Ok(Tenant(target));
    }
    let entry = NewAuditEntry::new(target, Audited::of(&req), AuditCategory::TenantManagement, "TenantOverrideUsed")
        .resource("Tenant", target)
        .message(format!("{} acted for this tenant: {} {}", principal.username, req.method(), req.path()))
        .details(json!({
            "homeTenant": principal.tenant_id,
            "method": req.method().as_str(),
            "path": req.path(),
        }));
    state
        .orchestrator
        .store()
        .append_audit(&[entry])
        .await
        .map_err(|e| ApiError::Unavailable(format!("the use of {TENANT_OVERRIDE} could not be audited: {e}")))?;
    tracing::info!(user = %principal.user_id, tenant = %target, path = %req.path(), "acting for another tenant");
    Ok(Tenant(target))
}

/// The tenant a live endpoint's request acts for: the caller's own, or the
/// one `X-Tenant-Id` names for an Admin of the system tenant.
pub async fn acting_tenant(req: &HttpRequest, how: OverrideUse) -> Result<Tenant, ApiError> {
    let principal = super::principal_of(req)?;
    match req.headers().get(TENANT_OVERRIDE) {
        None => Ok(Tenant(principal.tenant_id)),
        Some(raw) => resolve(req.clone(), principal, raw.clone(), how).await,
    }
}
