//! /api/v1/analytics: what a tenant's runs did over a period.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::responses::Protected;
use super::route_table::{api_module, Access};
use crate::auth::{RequireRole, Tenant};
use crate::web::query_params::Query;
use crate::web::AppState;
use crate::web::{ApiError, ErrorBody};

/// The period when `from` is not given.
const DEFAULT_DAYS: i64 = 30;
/// Longest period one report may cover.
const MAX_DAYS: i64 = 366;

api_module! {
    get_usage_analytics => Access::Role(RequireRole::VIEWER),
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct UsageQuery {
    /// RFC 3339; defaults to 30 days before `to`.
    #[param(value_type = Option<DateTime<Utc>>)]
    from: Option<String>,
    /// RFC 3339; defaults to now.
    #[param(value_type = Option<DateTime<Utc>>)]
    to: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReportView {
    tenant_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// Runs created in the period.
    total_runs: u64,
    runs_by_status: BTreeMap<String, u64>,
    /// Nodes those runs changed.
    node_updates: u64,
    /// Approval events (requested, granted, rejected, expired) in the period.
    approval_events: u64,
    /// null: artifact storage is measured by the module registry, not in this build.
    artifact_storage_bytes: Option<u64>,
    generated_at: DateTime<Utc>,
}

fn instant(name: &str, raw: &str, errors: &mut Vec<String>) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => Some(t.to_utc()),
        Err(_) => {
            errors.push(format!("{name} must be an RFC 3339 time such as 2026-12-01T00:00:00Z"));
            None
        }
    }
}

/// The caller's tenant's usage in a period (another tenant's with X-Tenant-Id, for system Admins).
#[utoipa::path(
    get,
    path = "/api/v1/analytics/usage",
    tag = "analytics",
    params(UsageQuery),
    responses(
        Protected,
        (status = 200, description = "The report", body = UsageReportView),
        (status = 400, description = "Bad times, from after to, or a period over 366 days", body = ErrorBody),
    )
)]
pub async fn get_usage_analytics(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let to = query.to.as_deref().map_or(Some(Utc::now()), |t| instant("to", t, &mut errors));
    let from = match (query.from.as_deref(), to) {
        (Some(f), _) => instant("from", f, &mut errors),
        // `to` may be the first representable instant: subtract with a check.
        (None, Some(to)) => to.checked_sub_signed(Duration::days(DEFAULT_DAYS)).or_else(|| {
            errors.push(format!("to lies too far in the past to default from to {DEFAULT_DAYS} days before it"));
            None
        }),
        (None, None) => None,
    };
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            errors.push("from must not be after to".into());
        } else if to - from > Duration::days(MAX_DAYS) {
            errors.push(format!("the period may cover at most {MAX_DAYS} days"));
        }
    }
    let (Some(from), Some(to), true) = (from, to, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let r = state.orchestrator.tenants().report(tenant.0, from, to).await?;
    Ok(HttpResponse::Ok().json(UsageReportView {
        tenant_id: r.tenant_id,
        from: r.from,
        to: r.to,
        total_runs: r.total_runs,
        runs_by_status: r.runs_by_status,
        node_updates: r.node_updates,
        approval_events: r.approval_events,
        artifact_storage_bytes: r.artifact_storage_bytes,
        generated_at: r.generated_at,
    }))
}
