//! /api/v1/schemas: the schema registry. Viewers read and validate,
//! Deployers register versions, Admins approve, reject and deprecate (each
//! new version and each decision audited, the actor taken from the token).

use actix_web::{web, HttpResponse};
use chrono::Utc;
use hotswap_actors::domain::{AuditCategory, NewAuditEntry, Role};
use hotswap_actors::schemas::{Registrant, SchemaDecision, SchemaError};
use serde::Deserialize;
use serde_json::{json, Map};
use utoipa::IntoParams;

use super::count_params::page_within;
use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use super::schema_dto::{
    DeprecateQuery, SchemaBody, SchemaDecisionBody, SchemaSummaryView, SchemaVersionView, ValidationView,
};
use crate::auth::{Audited, Caller, RequireRole, Tenant};
use crate::messaging::MessageBus;
use crate::web::query_params::Query;
use crate::web::{ApiError, AppState, ErrorBody};

api_module! {
    register_schema => Access::Role(RequireRole::DEPLOYER),
    list_schemas => Access::Role(RequireRole::VIEWER),
    get_schema => Access::Role(RequireRole::VIEWER),
    list_schema_versions => Access::Role(RequireRole::VIEWER),
    get_schema_version => Access::Role(RequireRole::VIEWER),
    approve_schema_version => Access::Role(RequireRole::ADMIN),
    reject_schema_version => Access::Role(RequireRole::ADMIN),
    deprecate_schema => Access::Role(RequireRole::ADMIN),
    validate_payload => Access::Role(RequireRole::VIEWER),
}

const PATH_SCHEMAS: &str = "/api/v1/schemas";

impl From<SchemaError> for ApiError {
    fn from(e: SchemaError) -> Self {
        match e {
            SchemaError::NotFound(_) | SchemaError::VersionNotFound { .. } => ApiError::NotFound(e.to_string()),
            SchemaError::Invalid(m) => ApiError::validation(vec![m]),
            SchemaError::InvalidState { ref current, .. } => {
                let mut extra = Map::new();
                extra.insert("currentStatus".into(), json!(current));
                ApiError::Conflict { message: e.to_string(), extra }
            }
            SchemaError::Conflict(_) | SchemaError::Deprecated(_) => {
                ApiError::Conflict { message: e.to_string(), extra: Map::new() }
            }
            SchemaError::Unavailable(m) => ApiError::Unavailable(m),
            SchemaError::Backend(m) => ApiError::Internal(m),
        }
    }
}

/// Register a schema version: version 1 of a new subject is a Draft for an
/// Admin to approve; a later version compatible with the approved ones (by
/// the subject's `compatibility`) is approved at once, a breaking one is a
/// Draft that lists its `breakingChanges`. Only an Admin's registration sets
/// another `compatibility`; anyone else's naming another mode than the
/// subject's is a Draft (`CompatibilityChanged`) until an Admin approves it.
/// The same definition again answers the latest version with 200.
#[utoipa::path(
    post,
    path = PATH_SCHEMAS,
    tag = "schemas",
    request_body = SchemaBody,
    responses(
        Protected, JsonBody,
        (status = 201, description = "A new version", body = SchemaVersionView,
            headers(("Location" = String, description = "The version's URL"))),
        (status = 200, description = "The definition is the latest version's: that version", body = SchemaVersionView),
        (status = 409, description = "The subject is deprecated", body = ErrorBody),
    )
)]
pub async fn register_schema(
    state: web::Data<AppState>,
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    caller: Caller,
    by: Audited,
    body: web::Json<SchemaBody>,
) -> Result<HttpResponse, ApiError> {
    let spec = body.into_inner().into_new_schema().map_err(ApiError::validation)?;
    let registrant = Registrant { name: &by.0.name, may_set_compatibility: caller.0.has_role(Role::Admin) };
    let registered = bus.schemas.register(tenant.0, spec, registrant, Utc::now()).await?;
    let view = SchemaVersionView::new(registered.version, None);
    if !registered.created {
        return Ok(HttpResponse::Ok().json(view));
    }
    // A new version changes what publishes to the subject's topics must
    // look like (at once when it is approved on registration).
    let (id, n) = (&view.schema_id, view.version);
    let entry = NewAuditEntry::new(tenant.0, by.0, AuditCategory::Administration, "SchemaVersionRegistered")
        .resource("Schema", format!("{id}/{n}"))
        .message(format!("schema '{id}' version {n} registered ({})", view.status))
        .details(json!({
            "schemaId": id, "version": n, "status": view.status, "breakingChanges": view.breaking_changes.len(),
        }));
    state.orchestrator.store().append_audit(&[entry]).await?;
    let location = format!("/api/v1/schemas/{}/versions/{}", view.schema_id, view.version);
    Ok(HttpResponse::Created().insert_header(("Location", location)).json(view))
}

/// Subjects per page of the list when the request names no size, and the most it may name.
const DEFAULT_SCHEMA_PAGE: u32 = 100;
const MAX_SCHEMA_PAGE: u32 = 1000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaListQuery {
    /// 1-based; default 1.
    #[param(minimum = 1, maximum = 2147483647)]
    page: Option<u32>,
    /// Subjects per page: at most 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    page_size: Option<u32>,
}

/// The tenant's subjects, by id, one page at a time.
#[utoipa::path(
    get,
    path = PATH_SCHEMAS,
    tag = "schemas",
    params(SchemaListQuery),
    responses(
        Protected,
        (status = 200, description = "Subjects, by id", body = Vec<SchemaSummaryView>, headers(
            ("X-Total-Count" = u64, description = "Subjects in all"),
            ("X-Page" = u32, description = "The page"),
            ("X-Page-Size" = u32, description = "The page size"),
        )),
        (status = 400, description = "Invalid paging", body = ErrorBody),
    )
)]
pub async fn list_schemas(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    query: Query<SchemaListQuery>,
) -> Result<HttpResponse, ApiError> {
    let asked = page_within(query.page, query.page_size, DEFAULT_SCHEMA_PAGE, MAX_SCHEMA_PAGE)?;
    let subjects: Vec<SchemaSummaryView> =
        bus.schemas.list(tenant.0).await?.iter().filter_map(SchemaSummaryView::new).collect();
    let total = subjects.len();
    let page: Vec<SchemaSummaryView> = asked.cut(subjects).collect();
    Ok(asked.answer(total).json(page))
}

/// The subject's latest version.
#[utoipa::path(
    get,
    path = "/api/v1/schemas/{id}",
    tag = "schemas",
    params(("id" = String, Path, description = "The schemaId")),
    responses(
        Protected,
        (status = 200, description = "The latest version", body = SchemaVersionView),
        (status = 404, description = "No such schema", body = ErrorBody),
    )
)]
pub async fn get_schema(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let latest = SchemaVersionView::all(bus.schemas.get(tenant.0, &id).await?).pop();
    let latest = latest.ok_or_else(|| ApiError::NotFound(SchemaError::NotFound(id.into_inner()).to_string()))?;
    Ok(HttpResponse::Ok().json(latest))
}

/// Every version of the subject, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/schemas/{id}/versions",
    tag = "schemas",
    params(("id" = String, Path, description = "The schemaId")),
    responses(
        Protected,
        (status = 200, description = "Versions, oldest first", body = Vec<SchemaVersionView>),
        (status = 404, description = "No such schema", body = ErrorBody),
    )
)]
pub async fn list_schema_versions(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(SchemaVersionView::all(bus.schemas.get(tenant.0, &id).await?)))
}

/// One version.
#[utoipa::path(
    get,
    path = "/api/v1/schemas/{id}/versions/{version}",
    tag = "schemas",
    params(
        ("id" = String, Path, description = "The schemaId"),
        ("version" = u32, Path, description = "The version number"),
    ),
    responses(
        Protected,
        (status = 200, description = "The version", body = SchemaVersionView),
        (status = 404, description = "No such schema or version", body = ErrorBody),
    )
)]
pub async fn get_schema_version(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    path: web::Path<(String, u32)>,
) -> Result<HttpResponse, ApiError> {
    let (id, n) = path.into_inner();
    let subject = bus.schemas.get(tenant.0, &id).await?;
    let version = subject.version(n)?.clone();
    Ok(HttpResponse::Ok().json(SchemaVersionView::new(version, subject.deprecated.as_ref())))
}

/// Approve a Draft version: publishes may name it, and it becomes the
/// default when it is the newest approved.
#[utoipa::path(
    post,
    path = "/api/v1/schemas/{id}/versions/{version}/approve",
    tag = "schemas",
    params(
        ("id" = String, Path, description = "The schemaId"),
        ("version" = u32, Path, description = "The version number"),
    ),
    request_body(content = Option<SchemaDecisionBody>, description = "An optional reason"),
    responses(
        Protected, JsonBody,
        (status = 200, description = "Approved", body = SchemaVersionView),
        (status = 404, description = "No such schema or version", body = ErrorBody),
        (status = 409, description = "The version is not a Draft (currentStatus)", body = ErrorBody),
    )
)]
pub async fn approve_schema_version(
    state: web::Data<AppState>,
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    by: Audited,
    path: web::Path<(String, u32)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    decide(&state, &bus, tenant, by, path.into_inner(), body, true).await
}

/// Reject a Draft version: it never validates publishes.
#[utoipa::path(
    post,
    path = "/api/v1/schemas/{id}/versions/{version}/reject",
    tag = "schemas",
    params(
        ("id" = String, Path, description = "The schemaId"),
        ("version" = u32, Path, description = "The version number"),
    ),
    request_body(content = Option<SchemaDecisionBody>, description = "An optional reason"),
    responses(
        Protected, JsonBody,
        (status = 200, description = "Rejected", body = SchemaVersionView),
        (status = 404, description = "No such schema or version", body = ErrorBody),
        (status = 409, description = "The version is not a Draft (currentStatus)", body = ErrorBody),
    )
)]
pub async fn reject_schema_version(
    state: web::Data<AppState>,
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    by: Audited,
    path: web::Path<(String, u32)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    decide(&state, &bus, tenant, by, path.into_inner(), body, false).await
}

/// Decides, then audits the decision. The decision is atomic in the store;
/// an audit entry that cannot be written is reported as the failure it is.
async fn decide(
    state: &AppState,
    bus: &MessageBus,
    tenant: Tenant,
    by: Audited,
    (id, n): (String, u32),
    body: web::Bytes,
    approve: bool,
) -> Result<HttpResponse, ApiError> {
    let reason = optional_reason(&body)?;
    let decision = SchemaDecision { approve, by: by.0.name.clone(), at: Utc::now(), reason: reason.clone() };
    let decided = bus.schemas.decide(tenant.0, &id, n, decision).await?;
    let event = if approve { "SchemaVersionApproved" } else { "SchemaVersionRejected" };
    let entry = NewAuditEntry::new(tenant.0, by.0, AuditCategory::Approval, event)
        .resource("Schema", format!("{id}/{n}"))
        .message(format!("schema '{id}' version {n} {}", if approve { "approved" } else { "rejected" }))
        .details(json!({ "schemaId": id, "version": n, "reason": reason }));
    state.orchestrator.store().append_audit(&[entry]).await?;
    let deprecated = bus.schemas.get(tenant.0, &id).await?.deprecated;
    Ok(HttpResponse::Ok().json(SchemaVersionView::new(decided, deprecated.as_ref())))
}

/// The reason of an optional `{reason}` body (empty or `null`: none); when
/// sent it must have the documented shape, not be dropped for having another.
fn optional_reason(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(serde_json::from_slice::<Option<SchemaDecisionBody>>(body)
        .map_err(|e| ApiError::BadRequest(format!("the JSON body is malformed or has the wrong shape: {e}")))?
        .unwrap_or_default()
        .reason)
}

/// Deprecate a subject: no new versions, and no new topics may bind to it;
/// topics bound already keep validating. The reason comes in the body or,
/// as the original's clients send it, in `?reason=`; a subject deprecated
/// already keeps its first deprecation.
#[utoipa::path(
    post,
    path = "/api/v1/schemas/{id}/deprecate",
    tag = "schemas",
    params(("id" = String, Path, description = "The schemaId"), DeprecateQuery),
    request_body(content = Option<SchemaDecisionBody>, description = "An optional reason"),
    responses(
        Protected, JsonBody,
        (status = 200, description = "Deprecated (the latest version)", body = SchemaVersionView),
        (status = 404, description = "No such schema", body = ErrorBody),
    )
)]
pub async fn deprecate_schema(
    state: web::Data<AppState>,
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    by: Audited,
    id: web::Path<String>,
    query: web::Query<DeprecateQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // A blank reason is none; the same reason in both places is one.
    let given = |reason: Option<String>| reason.filter(|r| !r.trim().is_empty());
    let reason = match (given(optional_reason(&body)?), given(query.into_inner().reason)) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::BadRequest("reason: give it in the body or in the query, not both".into()))
        }
        (from_body, from_query) => from_body.or(from_query),
    };
    let subject = bus.schemas.deprecate(tenant.0, &id, &by.0.name, reason, Utc::now()).await?;
    let kept = subject.deprecated.as_ref().and_then(|d| d.reason.clone());
    let entry = NewAuditEntry::new(tenant.0, by.0, AuditCategory::Approval, "SchemaDeprecated")
        .resource("Schema", id.as_str())
        .message(format!("schema '{id}' deprecated"))
        .details(json!({ "schemaId": id.as_str(), "reason": kept }));
    state.orchestrator.store().append_audit(&[entry]).await?;
    let latest = SchemaVersionView::all(subject).pop();
    Ok(HttpResponse::Ok().json(latest))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValidateQuery {
    /// The version to check against (any status): the latest approved one
    /// by default, as a publish is checked (400 while none is approved).
    version: Option<u32>,
}

/// Check a JSON payload (the request body) against the subject.
///
/// Without `version`, against the latest approved version, as a publish is
/// checked: 400 while the subject has none approved.
#[utoipa::path(
    post,
    path = "/api/v1/schemas/{id}/validate",
    tag = "schemas",
    params(("id" = String, Path, description = "The schemaId"), ValidateQuery),
    request_body(content = serde_json::Value, description = "The payload to check: any JSON value"),
    responses(
        Protected, JsonBody,
        (status = 200, description = "Whether it is valid, and why not", body = ValidationView),
        (status = 404, description = "No such schema or version", body = ErrorBody),
    )
)]
pub async fn validate_payload(
    bus: web::Data<MessageBus>,
    tenant: Tenant,
    id: web::Path<String>,
    query: Query<ValidateQuery>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let payload = body.into_inner().to_string();
    let (version, errors) = bus.schemas.validate(tenant.0, &id, query.version, payload, false).await?;
    Ok(HttpResponse::Ok().json(ValidationView {
        is_valid: errors.is_empty(),
        errors: errors.into_iter().map(Into::into).collect(),
        schema_id: version.schema_id,
        version: version.version,
    }))
}
