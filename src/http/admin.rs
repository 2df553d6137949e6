//! /api/v1/admin: the supervision tree, seen and steered.

use std::sync::atomic::Ordering::Relaxed;

use actix_web::{web, HttpResponse};
use hotswap_actors::supervision::{ChildAction, ChildSnapshot, ChildState, SupervisorSnapshot};
use serde_json::json;

use crate::auth::Audited;
use crate::auth::{RequireRole, Tenant};
use crate::web::ApiError;
use crate::web::AppState;
use hotswap_actors::domain::{AuditCategory, NewAuditEntry};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/admin")
            .route("/actors", web::get().to(tree).wrap(RequireRole::ADMIN))
            .route("/actors/{id}", web::get().to(actor).wrap(RequireRole::ADMIN))
            .route("/actors/{id}/restart", web::post().to(restart).wrap(RequireRole::ADMIN))
            .route("/actors/{id}/stop", web::post().to(stop).wrap(RequireRole::ADMIN))
            .route("/actors/{id}/crash", web::post().to(crash).wrap(RequireRole::ADMIN))
            .route("/supervision", web::get().to(supervision).wrap(RequireRole::ADMIN)),
    );
}

/// The supervisors with the tenant's children only.
async fn tenant_tree(state: &AppState, tenant: Tenant) -> Vec<SupervisorSnapshot> {
    let mut trees = state.orchestrator.supervision().await;
    for tree in &mut trees {
        tree.children.retain(|c| c.tenant_id.is_none_or(|t| t == tenant.0));
    }
    trees
}

// Every admin route requires the Admin role (declared beside each route above).
async fn tree(state: web::Data<AppState>, tenant: Tenant) -> Result<HttpResponse, ApiError> {
    let trees = tenant_tree(&state, tenant).await;
    let stats = state.orchestrator.bus_stats();
    Ok(HttpResponse::Ok().json(json!({
        "supervisors": trees,
        "eventBus": {
            "kind": "EventBus",
            "subscribers": stats.subscribers.load(Relaxed),
            "mailboxBacklog": stats.backlog(),
            "published": stats.published.load(Relaxed),
            "delivered": stats.delivered.load(Relaxed),
            "overflows": stats.overflows.load(Relaxed),
        },
    })))
}

async fn find(state: &AppState, tenant: Tenant, id: &str) -> Result<ChildSnapshot, ApiError> {
    state.orchestrator.supervised(tenant.0, id).await.ok_or_else(|| {
        ApiError::NotFound(format!("no supervised actor {id}; ids look like node:qa-node-01 or run:<executionId>"))
    })
}

// AUTH: Admin
async fn actor(state: web::Data<AppState>, tenant: Tenant, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(find(&state, tenant, &id).await?))
}

/// Records an operator's action before it is taken: if the entry cannot be
/// written, the action does not happen.
async fn audit_action(state: &AppState, tenant: Tenant, by: Audited, event: &str, id: &str) -> Result<(), ApiError> {
    let entry = NewAuditEntry::new(tenant.0, by.0, AuditCategory::Administration, event)
        .resource("Actor", id)
        .message(format!("{event} of supervised actor {id} requested"));
    Ok(state.orchestrator.store().append_audit(&[entry]).await?)
}

/// Restarts or stops a supervised actor of the caller's tenant, audited first.
async fn control(
    state: &AppState,
    tenant: Tenant,
    by: Audited,
    id: &str,
    action: ChildAction,
) -> Result<HttpResponse, ApiError> {
    find(state, tenant, id).await?;
    let event = match action {
        ChildAction::Restart => "ActorRestart",
        ChildAction::Stop => "ActorStop",
    };
    audit_action(state, tenant, by, event, id).await?;
    let child = state.orchestrator.control(tenant.0, id, action).await?;
    Ok(HttpResponse::Accepted().json(child))
}

// AUTH: Admin
async fn restart(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: web::Path<String>,
    by: Audited,
) -> Result<HttpResponse, ApiError> {
    control(&state, tenant, by, &id, ChildAction::Restart).await
}

// AUTH: Admin
async fn stop(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: web::Path<String>,
    by: Audited,
) -> Result<HttpResponse, ApiError> {
    control(&state, tenant, by, &id, ChildAction::Stop).await
}

// AUTH: Admin
async fn crash(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: web::Path<String>,
    by: Audited,
) -> Result<HttpResponse, ApiError> {
    if !state.orchestrator.settings().simulation.enabled {
        return Err(ApiError::Conflict {
            message: "crashing actors on request needs [simulation] enabled".into(),
            extra: Default::default(),
        });
    }
    let child = find(&state, tenant, &id).await?;
    if child.state == ChildState::Running {
        audit_action(&state, tenant, by, "ActorCrash", &id).await?;
    }
    if child.state != ChildState::Running || !state.orchestrator.crash(tenant.0, &id) {
        return Err(ApiError::Conflict {
            message: format!("{id} is not running right now ({:?})", child.state),
            extra: Default::default(),
        });
    }
    Ok(HttpResponse::Accepted().json(json!({ "id": child.id, "crashed": true, "incarnation": child.incarnation })))
}

// AUTH: Admin
async fn supervision(state: web::Data<AppState>, tenant: Tenant) -> Result<HttpResponse, ApiError> {
    let trees = tenant_tree(&state, tenant).await;
    let supervisors: Vec<_> = trees
        .iter()
        .map(|t| {
            let count = |s: ChildState| t.children.iter().filter(|c| c.state == s).count();
            json!({
                "name": t.name,
                "policies": t.policies,
                "totalRestarts": t.total_restarts,
                "totalEscalations": t.total_escalations,
                "children": t.children.len(),
                "byState": {
                    "Running": count(ChildState::Running),
                    "Restarting": count(ChildState::Restarting),
                    "Stopping": count(ChildState::Stopping),
                    "Stopped": count(ChildState::Stopped),
                    "Failed": count(ChildState::Failed),
                },
            })
        })
        .collect();
    let sup = &state.orchestrator.settings().supervision;
    Ok(HttpResponse::Ok().json(json!({
        "policies": { "Node": sup.node, "Coordinator": sup.coordinator, "Tenant": sup.tenant },
        "totalRestarts": trees.iter().map(|t| t.total_restarts).sum::<u64>(),
        "totalEscalations": trees.iter().map(|t| t.total_escalations).sum::<u64>(),
        "supervisors": supervisors,
    })))
}
