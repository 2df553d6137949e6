//! /api/v1/auditlogs (Admin): the tenant's audit trail, read-only. There is
//! deliberately no route that changes or deletes an entry.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hotswap_actors::domain::audit_entries::RUN_RESOURCE;
use hotswap_actors::domain::{AuditCategory, AuditEntry, AuditQuery};
use hotswap_actors::store::Page;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::responses::Protected;
use super::route_table::{api_module, Access};
use crate::auth::{RequireRole, Tenant};
use crate::web::query_params::Query;
use crate::web::AppState;
use crate::web::{ApiError, ErrorBody};

const MAX_PAGE_SIZE: u32 = 100;
const DEFAULT_PAGE_SIZE: u32 = 50;
/// Entries returned by the unpaged lookups (by trace, run or approval).
const LOOKUP_LIMIT: u32 = 1000;
/// The resource type approval decisions were recorded under (with the
/// approval's id) before they were recorded on their run.
const LEGACY_APPROVAL_RESOURCE: &str = "Approval";

api_module! {
    search_audit_logs => Access::Role(RequireRole::ADMIN),
    audit_logs_by_category => Access::Role(RequireRole::ADMIN),
    audit_logs_by_trace => Access::Role(RequireRole::ADMIN),
    audit_logs_by_deployment => Access::Role(RequireRole::ADMIN),
    audit_logs_by_approval => Access::Role(RequireRole::ADMIN),
    audit_logs_by_username => Access::Role(RequireRole::ADMIN),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Paging {
    page_number: Option<i64>,
    page_size: Option<i64>,
}

impl Paging {
    /// (offset, limit), or 400 for a page number below 1 or a size outside 1..=100.
    fn window(&self) -> Result<(u64, u32), ApiError> {
        let number = self.page_number.unwrap_or(1);
        let size = self.page_size.unwrap_or(i64::from(DEFAULT_PAGE_SIZE));
        let mut errors = Vec::new();
        if number < 1 {
            errors.push("pageNumber must be at least 1".to_string());
        }
        if !(1..=i64::from(MAX_PAGE_SIZE)).contains(&size) {
            errors.push(format!("pageSize must be between 1 and {MAX_PAGE_SIZE}"));
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let offset = (number as u64 - 1).saturating_mul(size as u64);
        Ok((offset, size as u32))
    }
}

fn paged_response(page: Page<AuditEntry>, paging: (u64, u32)) -> HttpResponse {
    let (offset, size) = paging;
    HttpResponse::Ok()
        .insert_header(("X-Total-Count", page.total.to_string()))
        .insert_header(("X-Page", (offset / u64::from(size) + 1).to_string()))
        .insert_header(("X-Page-Size", size.to_string()))
        .json(page.items)
}

fn oldest_first(mut page: Page<AuditEntry>) -> HttpResponse {
    page.items.reverse();
    HttpResponse::Ok().insert_header(("X-Total-Count", page.total.to_string())).json(page.items)
}

fn guid(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    match Uuid::parse_str(raw) {
        Ok(id) if !id.is_nil() => Ok(id),
        _ => Err(ApiError::validation(vec![format!("{what} must be a non-empty GUID")])),
    }
}

// AUTH: Admin (every route above).
#[utoipa::path(
    get,
    path = "/api/v1/auditlogs/category/{category}",
    tag = "audit",
    params(
        ("category" = String, Path, pattern = "^(Deployment|Approval|Authentication|UserManagement|TenantManagement|ModuleRegistry|Security|Administration)$", description = "Deployment, Approval, Authentication, UserManagement, TenantManagement, ModuleRegistry, Security or Administration"),
        ("pageNumber" = Option<i64>, Query, minimum = 1, description = "1-based, default 1"),
        ("pageSize" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 50"),
    ),
    responses(
        Protected,
        (status = 200, description = "Entries newest first; X-Total-Count, X-Page, X-Page-Size", body = Vec<serde_json::Value>),
        (status = 400, description = "Unknown category or bad paging", body = ErrorBody),
    )
)]
pub async fn audit_logs_by_category(
    state: web::Data<AppState>,
    tenant: Tenant,
    category: web::Path<String>,
    paging: Query<Paging>,
) -> Result<HttpResponse, ApiError> {
    let Some(category) = AuditCategory::parse(&category) else {
        let known: Vec<_> = AuditCategory::ALL.iter().map(|c| c.as_str()).collect();
        return Err(ApiError::validation(vec![format!(
            "unknown category '{category}'; known categories: {}",
            known.join(", ")
        )]));
    };
    let window = paging.window()?;
    let query = AuditQuery { category: Some(category), offset: window.0, limit: window.1, ..AuditQuery::default() };
    let page = state.orchestrator.store().list_audit(tenant.0, &query).await?;
    Ok(paged_response(page, window))
}

#[utoipa::path(
    get,
    path = "/api/v1/auditlogs/trace/{traceId}",
    tag = "audit",
    params(("traceId" = String, Path, description = "A trace id from X-Trace-Id or a run's traceId")),
    responses(
        Protected,
        (status = 200, description = "Entries of that trace, oldest first", body = Vec<serde_json::Value>),
        (status = 400, description = "Blank trace id", body = ErrorBody),
    )
)]
pub async fn audit_logs_by_trace(
    state: web::Data<AppState>,
    tenant: Tenant,
    trace: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let trace = trace.trim();
    if trace.is_empty() {
        return Err(ApiError::validation(vec!["traceId must not be blank".into()]));
    }
    let query = AuditQuery { trace_id: Some(trace.to_string()), limit: LOOKUP_LIMIT, ..AuditQuery::default() };
    let page = state.orchestrator.store().list_audit(tenant.0, &query).await?;
    Ok(oldest_first(page))
}

#[utoipa::path(
    get,
    path = "/api/v1/auditlogs/deployments/{id}",
    tag = "audit",
    params(("id" = Uuid, Path, description = "The run's execution id")),
    responses(
        Protected,
        (status = 200, description = "The run's entries, oldest first", body = Vec<serde_json::Value>),
        (status = 400, description = "Not a non-empty GUID", body = ErrorBody),
        (status = 404, description = "No such run in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn audit_logs_by_deployment(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = known_run(&state, tenant, &id).await?;
    let query = about(None, RUN_RESOURCE, id);
    let page = state.orchestrator.store().list_audit(tenant.0, &query).await?;
    Ok(oldest_first(page))
}

/// The approval events of one run: its request and what became of it
/// (granted, rejected, expired, closed by an abort), all recorded on the run.
/// Entries written before decisions were recorded on the run name the
/// approval as their resource: those are read too.
#[utoipa::path(
    get,
    path = "/api/v1/auditlogs/approvals/{id}",
    tag = "audit",
    params(("id" = Uuid, Path, description = "The run's execution id")),
    responses(
        Protected,
        (status = 200, description = "The run's approval entries, oldest first", body = Vec<serde_json::Value>),
        (status = 400, description = "Not a non-empty GUID", body = ErrorBody),
        (status = 404, description = "No such run in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn audit_logs_by_approval(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = known_run(&state, tenant, &id).await?;
    let store = state.orchestrator.store();
    let approvals = Some(AuditCategory::Approval);
    let mut items = store.list_audit(tenant.0, &about(approvals, RUN_RESOURCE, id)).await?.items;
    if let Some(approval) = store.approval_for_run(tenant.0, id).await? {
        let earlier = about(approvals, LEGACY_APPROVAL_RESOURCE, approval.approval_id);
        items.extend(store.list_audit(tenant.0, &earlier).await?.items);
    }
    items.sort_by_key(|e| e.id);
    Ok(HttpResponse::Ok().json(items))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateRange {
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    page_number: Option<i64>,
    page_size: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/auditlogs/authentication/{username}",
    tag = "audit",
    params(
        ("username" = String, Path, description = "The user whose logins, failures and logouts to list"),
        ("startDate" = Option<DateTime<Utc>>, Query, description = "From (inclusive)"),
        ("endDate" = Option<DateTime<Utc>>, Query, description = "To (inclusive), not before startDate"),
        ("pageNumber" = Option<i64>, Query, minimum = 1, description = "1-based, default 1"),
        ("pageSize" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 50"),
    ),
    responses(
        Protected,
        (status = 200, description = "Authentication entries newest first", body = Vec<serde_json::Value>),
        (status = 400, description = "Bad dates or paging", body = ErrorBody),
        (status = 404, description = "No such user in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn audit_logs_by_username(
    state: web::Data<AppState>,
    tenant: Tenant,
    username: web::Path<String>,
    range: Query<DateRange>,
) -> Result<HttpResponse, ApiError> {
    if let (Some(start), Some(end)) = (range.start_date, range.end_date) {
        if start > end {
            return Err(ApiError::validation(vec!["startDate must not be after endDate".into()]));
        }
    }
    let window = Paging { page_number: range.page_number, page_size: range.page_size }.window()?;
    let username = username.trim();
    let user = state.orchestrator.store().find_user_by_username(username).await?;
    if user.is_none_or(|u| u.tenant_id != tenant.0) {
        return Err(ApiError::NotFound(format!("User '{username}' not found")));
    }
    let query = AuditQuery {
        category: Some(AuditCategory::Authentication),
        actor: Some(username.to_string()),
        from: range.start_date,
        to: range.end_date,
        offset: window.0,
        limit: window.1,
        ..AuditQuery::default()
    };
    let page = state.orchestrator.store().list_audit(tenant.0, &query).await?;
    Ok(paged_response(page, window))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Search {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    actor: Option<String>,
    category: Option<String>,
    event_type: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    trace_id: Option<String>,
    /// The `nextCursor` of the previous page.
    cursor: Option<i64>,
    limit: Option<i64>,
}

/// Filtered search with cursor paging, newest first: `{items, nextCursor}`;
/// pass `nextCursor` back as `cursor` for the next page (null at the end).
#[utoipa::path(
    get,
    path = "/api/v1/auditlogs",
    tag = "audit",
    params(
        ("from" = Option<DateTime<Utc>>, Query, description = "From (inclusive)"),
        ("to" = Option<DateTime<Utc>>, Query, description = "To (inclusive)"),
        ("actor" = Option<String>, Query, description = "A user id, or a name (any case)"),
        ("category" = Option<String>, Query, pattern = "^(Deployment|Approval|Authentication|UserManagement|TenantManagement|ModuleRegistry|Security|Administration)$", description = "An audit category"),
        ("eventType" = Option<String>, Query, description = "E.g. LoginFailed, DeploymentCreated"),
        ("resourceType" = Option<String>, Query, description = "E.g. Deployment (a run, and its approval), User"),
        ("resourceId" = Option<String>, Query, description = "The resource's id"),
        ("traceId" = Option<String>, Query, description = "A trace id"),
        ("cursor" = Option<i64>, Query, minimum = 1, description = "nextCursor of the previous page"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 50"),
    ),
    responses(
        Protected,
        (status = 200, description = "{items, nextCursor, total}, newest first", body = serde_json::Value),
        (status = 400, description = "A bad filter, cursor or limit", body = ErrorBody),
    )
)]
pub async fn search_audit_logs(
    state: web::Data<AppState>,
    tenant: Tenant,
    q: Query<Search>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let mut errors = Vec::new();
    let limit = q.limit.unwrap_or(i64::from(DEFAULT_PAGE_SIZE));
    if !(1..=i64::from(MAX_PAGE_SIZE)).contains(&limit) {
        errors.push(format!("limit must be between 1 and {MAX_PAGE_SIZE}"));
    }
    if q.cursor.is_some_and(|c| c < 1) {
        errors.push("cursor must be a nextCursor from an earlier page".into());
    }
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from > to {
            errors.push("from must not be after to".into());
        }
    }
    let category = match q.category.as_deref().map(AuditCategory::parse) {
        Some(None) => {
            errors.push(format!("unknown category '{}'", q.category.as_deref().unwrap_or_default()));
            None
        }
        Some(c) => c,
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let query = AuditQuery {
        from: q.from,
        to: q.to,
        category,
        event_type: q.event_type,
        actor: q.actor,
        resource_type: q.resource_type,
        resource_id: q.resource_id,
        trace_id: q.trace_id,
        before_id: q.cursor,
        offset: 0,
        limit: limit as u32,
    };
    let page = state.orchestrator.store().list_audit(tenant.0, &query).await?;
    let next = (page.items.len() as u32 == query.limit).then(|| page.items.last().map(|e| e.id)).flatten();
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Count", page.total.to_string()))
        .json(json!({ "items": page.items, "nextCursor": next, "total": page.total })))
}

/// The run an `{id}` path names: 400 for a malformed or nil id, 404 for a
/// run the tenant does not have, as everywhere else in the API.
async fn known_run(state: &AppState, tenant: Tenant, raw: &str) -> Result<Uuid, ApiError> {
    let id = guid(raw, "executionId")?;
    match state.orchestrator.store().get_run(tenant.0, id).await? {
        Some(_) => Ok(id),
        None => Err(ApiError::NotFound(format!("Deployment execution {id} not found"))),
    }
}

/// The entries about one resource (of one category, if given).
fn about(category: Option<AuditCategory>, resource_type: &str, id: Uuid) -> AuditQuery {
    AuditQuery {
        category,
        resource_type: Some(resource_type.into()),
        resource_id: Some(id.to_string()),
        limit: LOOKUP_LIMIT,
        ..AuditQuery::default()
    }
}
