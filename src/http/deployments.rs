//! /api/v1/deployments: create runs, read them, steer them, roll them back.

use actix_web::{web, HttpResponse};
use hotswap_actors::coordinator::Verb;
use hotswap_actors::domain::{Environment, RunStatus};
use hotswap_actors::store::RunFilter;
use uuid::Uuid;

use super::deployment_dto::*;
use super::error::ApiError;
use super::format::iso8601;
use super::tenant::Tenant;
use super::AppState;

const MAX_PAGE_SIZE: u32 = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/deployments")
            .route("", web::post().to(create))
            .route("", web::get().to(list))
            .route("/{id}", web::get().to(get))
            .route("/{id}/events", web::get().to(events))
            .route("/{id}/pause", web::post().to(pause))
            .route("/{id}/resume", web::post().to(resume))
            .route("/{id}/promote", web::post().to(promote))
            .route("/{id}/abort", web::post().to(abort))
            .route("/{id}/rollback", web::post().to(rollback)),
    );
}

/// An id that does not parse cannot name a run: 404 like any unknown id.
fn execution_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("Deployment execution {raw} not found")))
}

async fn create(
    state: web::Data<AppState>,
    tenant: Tenant,
    body: web::Json<CreateDeploymentBody>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().into_request()?;
    let estimate = state.orchestrator.estimated_duration(&request);
    let run = state.orchestrator.create_deployment(tenant.0, request).await?;
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

async fn list(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let mut errors = Vec::new();
    let page = q.page.unwrap_or(1);
    let page_size = q.page_size.unwrap_or(50);
    if page == 0 {
        errors.push("page must be at least 1".to_string());
    }
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        errors.push(format!("pageSize must be between 1 and {MAX_PAGE_SIZE}"));
    }
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
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = RunFilter { status, module_name: q.module_name, environment, page, page_size };
    let found = state.orchestrator.list_runs(tenant.0, &filter).await?;
    let items: Vec<DeploymentSummaryView> = found.items.iter().map(DeploymentSummaryView::from).collect();
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Count", found.total.to_string()))
        .insert_header(("X-Page", page.to_string()))
        .insert_header(("X-Page-Size", page_size.to_string()))
        .json(items))
}

async fn get(state: web::Data<AppState>, tenant: Tenant, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let run = state.orchestrator.get_run(tenant.0, execution_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(DeploymentView::from(&run)))
}

async fn events(state: web::Data<AppState>, tenant: Tenant, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let events = state.orchestrator.run_events(tenant.0, execution_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(events))
}

async fn apply(state: web::Data<AppState>, tenant: Tenant, id: &str, verb: Verb) -> Result<HttpResponse, ApiError> {
    let id = execution_id(id)?;
    let reply = state.orchestrator.apply_verb(tenant.0, id, verb).await?;
    Ok(HttpResponse::Accepted().json(VerbResponse {
        execution_id: id,
        status: reply.status.as_str(),
        message: reply.message,
    }))
}

async fn pause(state: web::Data<AppState>, tenant: Tenant, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    apply(state, tenant, &id, Verb::Pause).await
}

async fn resume(state: web::Data<AppState>, tenant: Tenant, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    apply(state, tenant, &id, Verb::Resume).await
}

async fn promote(state: web::Data<AppState>, tenant: Tenant, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    apply(state, tenant, &id, Verb::Promote).await
}

async fn abort(state: web::Data<AppState>, tenant: Tenant, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    apply(state, tenant, &id, Verb::Abort).await
}

async fn rollback(state: web::Data<AppState>, tenant: Tenant, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let accepted = state.orchestrator.rollback(tenant.0, execution_id(&id)?).await?;
    Ok(HttpResponse::Accepted().json(RollbackAcceptedView {
        rollback_id: accepted.rollback_id,
        status: "InProgress",
        nodes_affected: accepted.nodes_affected,
    }))
}
