//! /api/v1/deployments: create runs, read them, steer them, roll them back.

use super::responses::{JsonBody, Protected};
use super::route_table::{api_module, Access};
use crate::auth::Audited;
use crate::web::query_params::Query;
use actix_web::{web, HttpResponse};
use hotswap_actors::coordinator::Verb;
use hotswap_actors::domain::{refuse_nul, Environment, RunStatus};
use hotswap_actors::domain::{AuditActor, Role, DEFAULT_TENANT};
use hotswap_actors::orchestrator::downgrade;
use hotswap_actors::orchestrator::dry_run::{CheckOutcome, ScanCheck};
use hotswap_actors::store::RunFilter;
use uuid::Uuid;

use super::deployment_dto::*;
use super::deployment_plan::{CreateQuery, DeploymentPlanView};
use super::format::iso8601;
use crate::auth::{Caller, Principal, RequireRole, Tenant};
use crate::registry::Registry;
use crate::web::AppState;
use crate::web::{ApiError, ErrorBody};

const MAX_PAGE_SIZE: u32 = 100;

api_module! {
    create_deployment => Access::Role(RequireRole::DEPLOYER),
    list_deployments => Access::Role(RequireRole::VIEWER),
    get_deployment => Access::Role(RequireRole::VIEWER),
    list_deployment_events => Access::Role(RequireRole::VIEWER),
    steer_deployment => Access::Role(RequireRole::DEPLOYER),
    rollback_deployment => Access::Role(RequireRole::DEPLOYER),
}

/// Paths that more than one operation serves.
const PATH_DEPLOYMENTS: &str = "/api/v1/deployments";

/// An id that does not parse cannot name a run: 404 like any unknown id.
fn execution_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("Deployment execution {raw} not found")))
}

/// Start a run that promotes a module version up to the target environment;
/// with `dryRun=true`, answer the run's plan instead and start nothing.
#[utoipa::path(
    post,
    path = PATH_DEPLOYMENTS,
    tag = "deployments",
    params(CreateQuery),
    request_body = CreateDeploymentBody,
    responses(
        Protected, JsonBody,
        (status = 200, description = "dryRun=true: what the run would do; nothing was created (the plan is audited as DeploymentPlanned)", body = DeploymentPlanView),
        (status = 202, description = "The run is accepted and running", body = DeploymentAccepted,
            headers(("Location" = String, description = "The run's URL"))),
        (status = 400, description = "Invalid fields, all reported together, or a malformed body", body = ErrorBody),
        (status = 403, description = "Needs the Deployer role; the tenant is suspended; or a capacity quota (modules: quota, limit, current)", body = ErrorBody),
        (status = 409, description = "Another run of the module is active (activeExecutionId)", body = ErrorBody),
        (status = 422, description = "A version below the highest the tenant's nodes run, without allowDowngrade", body = ErrorBody),
        (status = 429, description = "Rate limit exceeded, or a rate-like tenant quota (concurrentRuns, runsPerDay: quota, limit, current)", body = ErrorBody),
    )
)]
pub async fn create_deployment(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: Query<CreateQuery>,
    body: web::Json<CreateDeploymentBody>,
    audited: Audited,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ApiError> {
    let mut body = body.into_inner();
    let allow_downgrade = body.allow_downgrade.take().unwrap_or(false);
    let request = body.into_request()?;
    let downgrade = downgrade_of(&registry, tenant.0, &request).await?;
    if query.dry_run.unwrap_or(false) {
        // The plan says what the real request would meet first: its refusal.
        let admission = downgrade.map(|what| downgrade_check(what, allow_downgrade)).into_iter().collect();
        let plan = state.orchestrator.plan_deployment(tenant.0, &request, admission, &audited.0).await?;
        return Ok(HttpResponse::Ok().json(DeploymentPlanView::from(&plan)));
    }
    if let Some(what) = downgrade {
        allow_or_refuse_downgrade(&registry, tenant.0, &request, what, allow_downgrade, &audited.0).await?;
    }
    let estimate = state.orchestrator.estimated_duration(&request);
    let run = state.orchestrator.create_deployment(tenant.0, request, &audited.0).await?;
    let location = format!("/api/v1/deployments/{}", run.execution_id);
    Ok(HttpResponse::Accepted().insert_header(("Location", location.clone())).json(DeploymentAccepted {
        execution_id: run.execution_id,
        status: run.status.as_str(),
        start_time: run.created_at,
        estimated_duration: iso8601(estimate),
        trace_id: run.trace_id.clone(),
        links: Links { self_link: location, trace: state.trace_url(&run.trace_id) },
    }))
}

/// Whether `request` is a downgrade (the core's rule, which a batch applies
/// to each of its items too), said in a sentence.
async fn downgrade_of(
    registry: &Registry,
    tenant: hotswap_actors::domain::TenantId,
    request: &hotswap_actors::domain::DeploymentRequest,
) -> Result<Option<String>, ApiError> {
    Ok(downgrade::downgrade_of(registry.store.as_ref(), tenant, request).await?)
}

/// A dry run's first check when the request is a downgrade.
fn downgrade_check(what: String, allowed: bool) -> ScanCheck {
    if allowed {
        ScanCheck {
            name: "Downgrade",
            outcome: CheckOutcome::Warning,
            message: format!("{what}; allowed, and audited"),
        }
    } else {
        ScanCheck {
            name: "Downgrade",
            outcome: CheckOutcome::Failed,
            message: format!("{what}; the run would be refused without allowDowngrade"),
        }
    }
}

/// Refuses a downgrade the request does not allow (422); audits one it does.
async fn allow_or_refuse_downgrade(
    registry: &Registry,
    tenant: hotswap_actors::domain::TenantId,
    request: &hotswap_actors::domain::DeploymentRequest,
    what: String,
    allowed: bool,
    actor: &AuditActor,
) -> Result<(), ApiError> {
    if !allowed {
        return Err(ApiError::Unprocessable(format!("{what}; send allowDowngrade: true to deploy it anyway")));
    }
    let entry = downgrade::downgrade_allowed_entry(tenant, actor, request, &what, "allowDowngrade");
    registry.store.append_audit(&[entry]).await?;
    Ok(())
}

/// Runs of the caller's tenant, newest first.
#[utoipa::path(
    get,
    path = PATH_DEPLOYMENTS,
    tag = "deployments",
    params(ListQuery),
    responses(
        Protected,
        (status = 200, description = "A page of runs", body = Vec<DeploymentSummaryView>, headers(
            ("X-Total-Count" = u64, description = "Runs matching the filters"),
            ("X-Page" = u32, description = "The page"),
            ("X-Page-Size" = u32, description = "The page size"),
        )),
        (status = 400, description = "Invalid filters or paging", body = ErrorBody),
    )
)]
pub async fn list_deployments(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let mut errors = Vec::new();
    let asked = super::count_params::check_page(q.page, q.page_size, 50, MAX_PAGE_SIZE, &mut errors);
    let status = match q.status.as_deref() {
        Some(s) => RunStatus::parse(s).or_else(|| {
            errors.push(format!("status '{s}' is not a deployment status"));
            None
        }),
        None => None,
    };
    let environment = match q.environment.as_deref() {
        Some(e) => e.parse::<Environment>().map_err(|e| errors.push(e.to_string())).ok(),
        None => None,
    };
    // PostgreSQL cannot compare text holding NUL.
    if let Some(Err(refused)) = q.module_name.as_deref().map(|m| refuse_nul("moduleName", m)) {
        errors.push(refused);
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = RunFilter { status, module_name: q.module_name, environment, page: asked.page, page_size: asked.size };
    let found = state.orchestrator.list_runs(tenant.0, &filter).await?;
    let items: Vec<DeploymentSummaryView> = found.items.iter().map(DeploymentSummaryView::from).collect();
    Ok(asked.answer(found.total as usize).json(items))
}

/// A run with its stages.
#[utoipa::path(
    get,
    path = "/api/v1/deployments/{id}",
    tag = "deployments",
    params(("id" = String, Path, description = "The run's executionId")),
    responses(
        Protected,
        (status = 200, description = "The run", body = DeploymentView),
        (status = 404, description = "No such run in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn get_deployment(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run_view(&state, tenant.0, &id).await
}

/// The body of `get` without its extractors: the auth benchmark serves it
/// bare to measure what authentication, tenancy and rate limits cost.
pub async fn run_view(
    state: &AppState,
    tenant: hotswap_actors::domain::TenantId,
    raw_id: &str,
) -> Result<HttpResponse, ApiError> {
    let run = state.orchestrator.get_run(tenant, execution_id(raw_id)?).await?;
    Ok(HttpResponse::Ok().json(DeploymentView::from(&run)))
}

/// Events one answer holds at most: a long rolling run has thousands, and
/// the run's page asks again on every live update.
const MAX_EVENTS_PAGE: u32 = 1000;

/// Which of a run's events to answer.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventPageQuery {
    /// How many events to skip, counted in `order`; default 0.
    #[param(minimum = 0, maximum = 2147483647)]
    offset: Option<u32>,
    /// Events in the answer: 1 to 1000; default 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    #[param(inline)]
    order: Option<EventOrder>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventOrder {
    #[default]
    Asc,
    Desc,
}

/// What happened to a run, in order, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/deployments/{id}/events",
    tag = "deployments",
    params(("id" = String, Path, description = "The run's executionId"), EventPageQuery),
    responses(
        Protected,
        (status = 200, description = "A page of the run's events", body = Vec<RunEventView>, headers(
            ("X-Total-Count" = u64, description = "The run's events in all"),
        )),
        (status = 400, description = "Invalid paging", body = ErrorBody),
        (status = 404, description = "No such run in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn list_deployment_events(
    state: web::Data<AppState>,
    tenant: Tenant,
    caller: Caller,
    id: web::Path<String>,
    query: Query<EventPageQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = super::count_params::count_within("limit", q.limit, MAX_EVENTS_PAGE, MAX_EVENTS_PAGE)?;
    let offset = q.offset.unwrap_or(0);
    if offset > MAX_PAGE {
        return Err(ApiError::validation(vec![format!("offset must be at most {MAX_PAGE}, not {offset}")]));
    }
    let offset = offset as usize;
    let all = state.orchestrator.run_events(tenant.0, execution_id(&id)?).await?;
    let total = all.len();
    let mut events: Vec<_> = match q.order.unwrap_or_default() {
        EventOrder::Asc => all.into_iter().skip(offset).take(limit).collect(),
        EventOrder::Desc => all.into_iter().rev().skip(offset).take(limit).collect(),
    };
    // Who did what, from where, is the audit trail's, which is Admin-only.
    if !caller.0.has_role(Role::Admin) {
        for event in &mut events {
            crate::web::redact::actor_name_only(&mut event.data);
        }
    }
    Ok(HttpResponse::Ok().insert_header(("X-Total-Count", total.to_string())).json(events))
}

async fn apply(
    state: web::Data<AppState>,
    tenant: Tenant,
    caller: &Principal,
    id: &str,
    verb: Verb,
    actor: AuditActor,
) -> Result<HttpResponse, ApiError> {
    let id = execution_id(id)?;
    // An Admin of the system tenant acting for another (X-Tenant-Id, audited)
    // may abort its runs while it is suspended, to offboard it.
    let for_platform = caller.tenant_id == DEFAULT_TENANT && caller.has_role(Role::Admin) && tenant.0 != DEFAULT_TENANT;
    let reply = if verb == Verb::Abort && for_platform {
        state.orchestrator.abort_for_platform(tenant.0, id, &actor).await?
    } else {
        state.orchestrator.apply_verb(tenant.0, id, verb, &actor).await?
    };
    Ok(HttpResponse::Accepted().json(VerbResponse {
        execution_id: id,
        status: reply.status.as_str(),
        message: reply.message,
    }))
}

/// The verbs that steer a run in progress.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerbName {
    /// Pause a running run at its next step.
    Pause,
    /// Resume a paused run.
    Resume,
    /// Skip the current wait (bake time, health-check delay) and go on.
    Promote,
    /// Stop a run and put back every node it changed.
    Abort,
}

impl From<VerbName> for Verb {
    fn from(name: VerbName) -> Verb {
        match name {
            VerbName::Pause => Verb::Pause,
            VerbName::Resume => Verb::Resume,
            VerbName::Promote => Verb::Promote,
            VerbName::Abort => Verb::Abort,
        }
    }
}

/// Steer a run: `pause` it at its next step, `resume` it, `promote` it past
/// the current wait (bake time, health-check delay), or `abort` it and put
/// back every node it changed. Abort wins over pause, pause over promote.
/// A suspended tenant's runs are steered by nobody but an Admin of the system
/// tenant acting for it (`X-Tenant-Id`), who may abort them.
#[utoipa::path(
    post,
    path = "/api/v1/deployments/{id}/{verb}",
    tag = "deployments",
    params(
        ("id" = String, Path, description = "The run's executionId"),
        ("verb" = inline(VerbName), Path, description = "pause, resume, promote or abort"),
    ),
    responses(
        Protected,
        (status = 202, description = "Applied (repeating it is harmless)", body = VerbResponse),
        (status = 404, description = "No such run in the caller's tenant, or no such verb", body = ErrorBody),
        (status = 409, description = "Does not apply to the run now (currentStatus)", body = ErrorBody),
    )
)]
pub async fn steer_deployment(
    state: web::Data<AppState>,
    tenant: Tenant,
    caller: Caller,
    path: web::Path<(String, VerbName)>,
    audited: Audited,
) -> Result<HttpResponse, ApiError> {
    let (id, verb) = path.into_inner();
    apply(state, tenant, &caller.0, &id, verb.into(), audited.0).await
}

/// Roll a finished run back: restore every node it changed that still runs its version.
#[utoipa::path(
    post,
    path = "/api/v1/deployments/{id}/rollback",
    tag = "deployments",
    params(("id" = String, Path, description = "The run's executionId")),
    responses(
        Protected,
        (status = 202, description = "The rollback is running", body = RollbackAcceptedView),
        (status = 404, description = "No such run in the caller's tenant", body = ErrorBody),
        (status = 409, description = "The run is still active, or another run holds the module", body = ErrorBody),
    )
)]
pub async fn rollback_deployment(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: web::Path<String>,
    audited: Audited,
) -> Result<HttpResponse, ApiError> {
    let accepted = state.orchestrator.rollback(tenant.0, execution_id(&id)?, &audited.0).await?;
    Ok(HttpResponse::Accepted().json(RollbackAcceptedView {
        rollback_id: accepted.rollback_id,
        status: "InProgress",
        nodes_affected: accepted.nodes_affected,
    }))
}
