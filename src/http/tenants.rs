//! /api/tenants (no /v1, as in the original): tenant provisioning and
//! lifecycle for Admins of the system tenant. An Admin of another tenant sees
//! only their own tenant (list, get, usage) and changes nothing.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hotswap_actors::domain::{Quota, QuotaKind, TenantId, TenantRecord, TenantStatus, Tier, DEFAULT_TENANT};
use hotswap_actors::tenant::{NewTenant, TenantChanges, TenantCommand, TenantUsage};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::count_params::page_within;
use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::Audited;
use crate::auth::{AuthState, Caller, Principal, RequireRole};
use crate::web::query_params::Query;
use crate::web::AppState;
use crate::web::{ApiError, ErrorBody};

api_module! {
    create_tenant => Access::Role(RequireRole::ADMIN),
    list_tenants => Access::Role(RequireRole::ADMIN),
    get_tenant => Access::Role(RequireRole::ADMIN),
    update_tenant => Access::Role(RequireRole::ADMIN),
    delete_tenant => Access::Role(RequireRole::ADMIN),
    suspend_tenant => Access::Role(RequireRole::ADMIN),
    activate_tenant => Access::Role(RequireRole::ADMIN),
    change_tenant_subscription => Access::Role(RequireRole::ADMIN),
    get_tenant_usage => Access::Role(RequireRole::ADMIN),
}

/// Paths that more than one operation serves.
const PATH_TENANTS: &str = "/api/tenants";
const PATH_TENANTS_ID: &str = "/api/tenants/{id}";

/// The limits of a tenant; 4294967295 means unlimited.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaView {
    max_concurrent_runs: u32,
    max_runs_per_day: u32,
    max_nodes_per_environment: u32,
    max_modules: u32,
    max_artifact_storage_gb: u32,
    max_websocket_sessions: u32,
}

impl From<Quota> for QuotaView {
    fn from(q: Quota) -> Self {
        QuotaView {
            max_concurrent_runs: q.max_concurrent_runs,
            max_runs_per_day: q.max_runs_per_day,
            max_nodes_per_environment: q.max_nodes_per_environment,
            max_modules: q.max_modules,
            max_artifact_storage_gb: q.max_artifact_storage_gb,
            max_websocket_sessions: q.max_websocket_sessions,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    tenant_id: Uuid,
    name: String,
    subdomain: String,
    custom_domain: Option<String>,
    /// Provisioning, Active, Suspended, Deprovisioning or Deleted.
    status: &'static str,
    /// Free, Starter, Professional, Enterprise or Custom.
    tier: &'static str,
    resource_quota: QuotaView,
    contact_email: String,
    metadata: BTreeMap<String, String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    suspended_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<TenantRecord> for TenantView {
    fn from(t: TenantRecord) -> Self {
        TenantView {
            tenant_id: t.tenant_id,
            name: t.name,
            subdomain: t.subdomain,
            custom_domain: t.custom_domain,
            status: t.status.as_str(),
            tier: t.tier.as_str(),
            resource_quota: t.quota.into(),
            contact_email: t.contact_email,
            metadata: t.metadata,
            created_at: t.created_at,
            updated_at: t.updated_at,
            suspended_at: t.suspended_at,
            deleted_at: t.deleted_at,
        }
    }
}

/// A tier by name, or by the original's number (0 Free … 4 Custom).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TierName {
    Name(String),
    /// JSON has one number type: 2.0 is the tier 2 as much as 2 is.
    Number(f64),
}

// Written by hand so that the document names the tiers and the numbers the
// server takes, rather than any string or integer.
impl utoipa::PartialSchema for TierName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let names = Tier::ALL.map(Tier::as_str);
        OneOfBuilder::new()
            .description(Some("A tier by name, or by the original's number (0 Free … 4 Custom)"))
            .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names)))
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).maximum(Some(Tier::ALL.len() - 1)))
            .into()
    }
}

impl utoipa::ToSchema for TierName {}

impl TierName {
    fn parse(&self) -> Result<Tier, String> {
        let parsed = match self {
            TierName::Name(s) => Tier::parse(s),
            TierName::Number(n) if n.fract() == 0.0 && *n >= 0.0 => Tier::ALL.get(*n as usize).copied(),
            TierName::Number(_) => None,
        };
        parsed.ok_or_else(|| "tier must be one of Free, Starter, Professional, Enterprise, Custom (or 0-4)".into())
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTenantBody {
    #[schema(example = "Acme Corp", max_length = 200)]
    name: String,
    /// Stored lowercased; 1-63 of letters, digits and '-', no hyphen at either end, not reserved (www, api, admin, ...).
    #[schema(example = "acme", pattern = "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")]
    subdomain: String,
    /// Defaults to Free.
    tier: Option<TierName>,
    /// An email address: 1-64 of letters, digits and .!#$%&'*+/=?^_`{|}~- then
    /// '@' and a host name of two or more labels; 254 characters at most.
    #[schema(
        example = "ops@acme.example",
        max_length = 254,
        pattern = "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
    )]
    contact_email: String,
    /// A host name with at least one dot ("" or absent: none), kept lowercase;
    /// one no other tenant (not deleted) has.
    #[schema(
        max_length = 253,
        pattern = "^$|^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
    )]
    custom_domain: Option<String>,
    #[schema(schema_with = metadata_schema)]
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTenantBody {
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[schema(
        max_length = 254,
        pattern = "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
    )]
    contact_email: Option<String>,
    /// A host name with at least one dot, kept lowercase, that no other
    /// tenant (not deleted) has; "" clears it.
    #[schema(
        max_length = 253,
        pattern = "^$|^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
    )]
    custom_domain: Option<String>,
    /// Merged key by key into the tenant's metadata.
    #[schema(schema_with = metadata_schema)]
    metadata: Option<BTreeMap<String, String>>,
}

/// What the tenant service takes (`check_metadata`).
fn metadata_schema() -> utoipa::openapi::schema::Object {
    super::schema_limits::string_map(
        50,
        100,
        1000,
        "At most 50 entries; keys 1-100 characters, not only white space; values at most 1000 characters",
        true,
    )
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuspendBody {
    /// Kept in metadata as suspension_reason; defaults to "Suspended by administrator".
    reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = TenantSubscriptionBody)]
pub struct SubscriptionBody {
    tier: TierName,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Only tenants with this status.
    #[param(pattern = "^(Provisioning|Active|Suspended|Deprovisioning|Deleted)$")]
    status: Option<String>,
    /// Only the tenant of this subdomain (any case).
    subdomain: Option<String>,
    /// 1-based; default 1.
    #[param(minimum = 1, maximum = 2147483647)]
    page: Option<u32>,
    /// Tenants per page: at most 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    page_size: Option<u32>,
}

/// Tenants per page of the list when the request names no size, and the most it may name.
const DEFAULT_TENANT_PAGE: u32 = 100;
const MAX_TENANT_PAGE: u32 = 1000;

/// An id that does not parse cannot name a tenant: 404 like any unknown id.
fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("Tenant {raw} not found")))
}

fn is_operator(p: &Principal) -> bool {
    p.tenant_id == DEFAULT_TENANT
}

/// Reads: the system tenant's Admins see every tenant, other Admins only
/// their own; anything else answers 404, as if it did not exist.
fn may_read(p: &Principal, tenant: TenantId) -> Result<(), ApiError> {
    if is_operator(p) || p.tenant_id == tenant {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("Tenant {tenant} not found")))
    }
}

fn may_manage(p: &Principal, tenant: Option<TenantId>) -> Result<(), ApiError> {
    if let Some(t) = tenant {
        may_read(p, t)?;
    }
    if is_operator(p) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only administrators of the system tenant manage tenants".into()))
    }
}

/// Provision a tenant: its record, then its simulated clusters (sized by tier).
#[utoipa::path(
    post,
    path = PATH_TENANTS,
    tag = "tenants",
    request_body = CreateTenantBody,
    responses(
        Protected,
        (status = 201, description = "Provisioned and Active", body = TenantView,
            headers(("Location" = String, description = "The tenant's URL"))),
        (status = 400, description = "Invalid fields, all reported together, or a malformed body", body = ErrorBody),
        (status = 403, description = "Not an Admin of the system tenant", body = ErrorBody),
        (status = 409, description = "Subdomain already taken (by a deleted tenant too), or the custom domain another tenant's", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn create_tenant(
    state: web::Data<AppState>,
    caller: Caller,
    audited: Audited,
    body: web::Json<CreateTenantBody>,
) -> Result<HttpResponse, ApiError> {
    may_manage(&caller.0, None)?;
    let b = body.into_inner();
    let tier = match &b.tier {
        Some(t) => t.parse().map_err(|e| ApiError::validation(vec![e]))?,
        None => Tier::Free,
    };
    let new = NewTenant {
        name: b.name,
        subdomain: b.subdomain,
        tier,
        contact_email: b.contact_email,
        custom_domain: b.custom_domain,
        metadata: b.metadata.unwrap_or_default(),
    };
    let tenant = state.orchestrator.tenants().create(new, audited.0).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/tenants/{}", tenant.tenant_id)))
        .json(TenantView::from(tenant)))
}

/// Tenants, oldest first, one page at a time.
#[utoipa::path(
    get,
    path = PATH_TENANTS,
    tag = "tenants",
    params(ListQuery),
    responses(
        Protected,
        (status = 200, description = "The tenants (the caller's own only, outside the system tenant)", body = Vec<TenantView>, headers(
            ("X-Total-Count" = u64, description = "Tenants that pass the filters"),
            ("X-Page" = u32, description = "The page"),
            ("X-Page-Size" = u32, description = "The page size"),
        )),
        (status = 400, description = "Unknown status, or invalid paging", body = ErrorBody),
    )
)]
pub async fn list_tenants(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let asked = page_within(query.page, query.page_size, DEFAULT_TENANT_PAGE, MAX_TENANT_PAGE)?;
    let status = match query.status.as_deref() {
        Some(s) => Some(TenantStatus::parse(s).ok_or_else(|| {
            ApiError::validation(vec![format!(
                "status '{s}' is not one of Provisioning, Active, Suspended, Deprovisioning, Deleted"
            )])
        })?),
        None => None,
    };
    let mut tenants = state.orchestrator.tenants().list(status).await?;
    if !is_operator(&caller.0) {
        tenants.retain(|t| t.tenant_id == caller.0.tenant_id);
    }
    if let Some(subdomain) = query.subdomain.as_deref() {
        tenants.retain(|t| t.subdomain.eq_ignore_ascii_case(subdomain));
    }
    let total = tenants.len();
    let page: Vec<TenantView> = asked.cut(tenants).map(TenantView::from).collect();
    Ok(asked.answer(total).json(page))
}

#[utoipa::path(
    get,
    path = PATH_TENANTS_ID,
    tag = "tenants",
    params(("id" = String, Path, description = "The tenantId")),
    responses(
        Protected,
        (status = 200, description = "The tenant", body = TenantView),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub async fn get_tenant(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_id(&id)?;
    may_read(&caller.0, id)?;
    Ok(HttpResponse::Ok().json(TenantView::from(state.orchestrator.tenants().get(id).await?)))
}

async fn command(
    state: &AppState,
    caller: &Caller,
    audited: Audited,
    raw_id: &str,
    command: TenantCommand,
) -> Result<TenantRecord, ApiError> {
    let id = tenant_id(raw_id)?;
    may_manage(&caller.0, Some(id))?;
    Ok(state.orchestrator.tenants().apply(id, command, audited.0).await?)
}

/// Partial update: name, contact email, custom domain; metadata is merged.
#[utoipa::path(
    put,
    path = PATH_TENANTS_ID,
    tag = "tenants",
    params(("id" = String, Path, description = "The tenantId")),
    request_body = UpdateTenantBody,
    responses(
        Protected,
        (status = 200, description = "Updated", body = TenantView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 403, description = "Not an Admin of the system tenant", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "Deleted or being deleted, or the custom domain another tenant's", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn update_tenant(
    state: web::Data<AppState>,
    caller: Caller,
    audited: Audited,
    id: web::Path<String>,
    body: web::Json<UpdateTenantBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let changes = TenantChanges {
        name: b.name,
        contact_email: b.contact_email,
        custom_domain: b.custom_domain,
        metadata: b.metadata,
    };
    let tenant = command(&state, &caller, audited, &id, TenantCommand::Update(changes)).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}

/// Suspend: its users can still sign in and read; runs cannot start and verbs
/// are refused; runs in progress continue or pause as `[tenants] on_suspend` says.
#[utoipa::path(
    post,
    path = "/api/tenants/{id}/suspend",
    tag = "tenants",
    params(("id" = String, Path, description = "The tenantId")),
    request_body(content = Option<SuspendBody>, description = "Optional reason"),
    responses(
        Protected, JsonBody,
        (status = 200, description = "Suspended", body = TenantView),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 403, description = "Not an Admin of the system tenant", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "Not Active, or the system tenant", body = ErrorBody),
    )
)]
pub async fn suspend_tenant(
    state: web::Data<AppState>,
    auth: web::Data<AuthState>,
    caller: Caller,
    audited: Audited,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // The body is optional; when sent it must be well-formed.
    let b: SuspendBody = if body.iter().all(u8::is_ascii_whitespace) {
        SuspendBody::default()
    } else {
        // `null`, which the document's optional body allows, means no reason.
        serde_json::from_slice::<Option<SuspendBody>>(&body)
            .map_err(|e| ApiError::BadRequest(format!("the JSON body is malformed or has the wrong shape: {e}")))?
            .unwrap_or_default()
    };
    let reason = b.reason.map(|r| r.trim().chars().take(500).collect::<String>()).filter(|r| !r.is_empty());
    let tenant = command(&state, &caller, audited, &id, TenantCommand::Suspend { reason }).await?;
    // Its open live sessions close now, not at their next poll.
    auth.tenant_changed(tenant.tenant_id).await;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}

#[utoipa::path(
    post,
    path = "/api/tenants/{id}/activate",
    tag = "tenants",
    params(("id" = String, Path, description = "The tenantId")),
    responses(
        Protected,
        (status = 200, description = "Active again", body = TenantView),
        (status = 403, description = "Not an Admin of the system tenant", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "Not Suspended (a Deleted tenant stays deleted)", body = ErrorBody),
    )
)]
pub async fn activate_tenant(
    state: web::Data<AppState>,
    auth: web::Data<AuthState>,
    caller: Caller,
    audited: Audited,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = command(&state, &caller, audited, &id, TenantCommand::Activate).await?;
    // Instances that cached it suspended let its users change things again.
    auth.tenant_changed(tenant.tenant_id).await;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}

/// Change the tier; the quota goes back to the tier's defaults.
#[utoipa::path(
    put,
    path = "/api/tenants/{id}/subscription",
    tag = "tenants",
    params(("id" = String, Path, description = "The tenantId")),
    request_body = SubscriptionBody,
    responses(
        Protected,
        (status = 200, description = "New tier and quota", body = TenantView),
        (status = 400, description = "Unknown tier", body = ErrorBody),
        (status = 403, description = "Not an Admin of the system tenant", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "Deleted or being deleted, or the system tenant (it keeps the Custom tier)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn change_tenant_subscription(
    state: web::Data<AppState>,
    caller: Caller,
    audited: Audited,
    id: web::Path<String>,
    body: web::Json<SubscriptionBody>,
) -> Result<HttpResponse, ApiError> {
    let tier = body.tier.parse().map_err(|e| ApiError::validation(vec![e]))?;
    let tenant = command(&state, &caller, audited, &id, TenantCommand::ChangeTier(tier)).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}

/// Soft delete: refused while the tenant has active runs.
#[utoipa::path(
    delete,
    path = PATH_TENANTS_ID,
    tag = "tenants",
    params(("id" = String, Path, description = "The tenantId")),
    responses(
        Protected,
        (status = 200, description = "Deleted (the record stays, status Deleted)"),
        (status = 403, description = "Not an Admin of the system tenant", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "Active runs, already deleted, or the system tenant", body = ErrorBody),
    )
)]
pub async fn delete_tenant(
    state: web::Data<AppState>,
    auth: web::Data<AuthState>,
    caller: Caller,
    audited: Audited,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = command(&state, &caller, audited, &id, TenantCommand::Delete).await?;
    auth.tenant_changed(tenant.tenant_id).await;
    Ok(HttpResponse::Ok().json(json!({
        "message": "Tenant deleted successfully",
        "tenantId": tenant.tenant_id,
        "status": tenant.status.as_str(),
    })))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaUseView {
    /// concurrentRuns, runsPerDay, nodesPerEnvironment, modules, artifactStorageGb, websocketSessions.
    quota: &'static str,
    limit: u32,
    /// null where this build does not measure it. artifactStorageGb: the GB
    /// rounded to the nearest (a few KB are 0); usedBytes is exact.
    used: Option<u64>,
    /// artifactStorageGb only: the bytes the tenant's artifacts take, each
    /// stored artifact counted once.
    #[serde(skip_serializing_if = "Option::is_none")]
    used_bytes: Option<u64>,
    /// artifactStorageGb only: the limit in bytes (limit × 10^9, as the quota counts a GB).
    #[serde(skip_serializing_if = "Option::is_none")]
    limit_bytes: Option<u64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageView {
    tenant_id: Uuid,
    tier: &'static str,
    status: &'static str,
    quotas: Vec<QuotaUseView>,
    measured_at: DateTime<Utc>,
}

impl From<TenantUsage> for UsageView {
    fn from(u: TenantUsage) -> Self {
        UsageView {
            tenant_id: u.tenant_id,
            tier: u.tier.as_str(),
            status: u.status.as_str(),
            quotas: u
                .quotas
                .into_iter()
                .map(|q| QuotaUseView {
                    quota: q.quota,
                    limit: q.limit,
                    used: q.used,
                    used_bytes: q.used_bytes,
                    limit_bytes: q.limit_bytes,
                })
                .collect(),
            measured_at: u.measured_at,
        }
    }
}

/// Current use against each quota.
#[utoipa::path(
    get,
    path = "/api/tenants/{id}/usage",
    tag = "tenants",
    params(("id" = String, Path, description = "The tenantId")),
    responses(
        Protected,
        (status = 200, description = "Use and limits", body = UsageView),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub async fn get_tenant_usage(
    state: web::Data<AppState>,
    live: web::Data<crate::live::LiveState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_id(&id)?;
    may_read(&caller.0, id)?;
    let mut usage = UsageView::from(state.orchestrator.tenants().usage(id).await?);
    // Live sessions are counted here, in the adapter that holds them.
    for q in usage.quotas.iter_mut().filter(|q| q.quota == QuotaKind::WebsocketSessions.as_str()) {
        q.used = Some(live.open_sessions(id));
    }
    Ok(HttpResponse::Ok().json(usage))
}
