//! /api/v1/admin: the supervision tree, seen and steered.

use std::sync::atomic::Ordering::Relaxed;

use actix_web::{web, HttpResponse};
use hotswap_actors::supervision::{ChildAction, ChildSnapshot, ChildState};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use super::responses::Protected;
use super::route_table::{api_module, Access};
use crate::auth::Audited;
use crate::auth::{RequireRole, Tenant};
use crate::web::query_params::Query;
use crate::web::AppState;
use crate::web::{ApiError, ErrorBody};
use hotswap_actors::domain::{AuditCategory, NewAuditEntry, DEFAULT_TENANT};

api_module! {
    get_actor_tree => Access::Role(RequireRole::ADMIN),
    get_actor => Access::Role(RequireRole::ADMIN),
    restart_actor => Access::Role(RequireRole::ADMIN),
    stop_actor => Access::Role(RequireRole::ADMIN),
    crash_actor => Access::Role(RequireRole::ADMIN),
    get_supervision => Access::Role(RequireRole::ADMIN),
}

/// Children listed per supervisor when the request does not say.
const DEFAULT_CHILDREN: u32 = 500;
/// The most children one answer lists per supervisor.
const MAX_CHILDREN: u32 = 5_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActorTreeQuery {
    /// Children listed per supervisor: at most 5000; default 500.
    #[param(minimum = 1, maximum = 5000)]
    limit: Option<u32>,
    /// Children of each supervisor to skip first; default 0.
    #[param(minimum = 0, maximum = 2147483647)]
    offset: Option<u32>,
}

/// The supervision tree of the instance that answers (`instance`): every
/// supervisor with a page of the tenant's children (`childCount` counts them
/// all; unpaged, a cluster of 100,000 nodes made a 29 MB answer), and, for
/// the system tenant's Admins, the event bus.
#[utoipa::path(
    get,
    path = "/api/v1/admin/actors",
    tag = "admin",
    params(ActorTreeQuery),
    responses(
        Protected,
        (status = 200, description = "Supervisors and a page of their children", body = serde_json::Value),
        (status = 400, description = "Invalid paging", body = ErrorBody),
    )
)]
pub async fn get_actor_tree(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: Query<ActorTreeQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_CHILDREN);
    let offset = query.offset.unwrap_or(0);
    let mut errors = Vec::new();
    if limit == 0 || limit > MAX_CHILDREN {
        errors.push(format!("limit must be between 1 and {MAX_CHILDREN}"));
    }
    // The document's bound, which clients and generated tests go by.
    if offset > i32::MAX as u32 {
        errors.push(format!("offset must be between 0 and {}", i32::MAX));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    // Each supervisor copies out only the page; children that need an
    // operator's eye (not running, or restarted) come first, then by id.
    let supervisors = state.orchestrator.supervision_page(tenant.0, offset as usize, limit as usize).await;
    let mut tree = json!({
        // The instance that answers; each run names the one that drives it.
        "instance": state.orchestrator.instance_id(),
        "supervisors": supervisors,
    });
    // The event bus carries every tenant's events: its counters would let
    // one tenant watch another's activity, so only the platform's Admins
    // (the system tenant's) see them.
    if tenant.0 == DEFAULT_TENANT {
        let stats = state.orchestrator.bus_stats();
        tree["eventBus"] = json!({
            "kind": "EventBus",
            "subscribers": stats.subscribers.load(Relaxed),
            "mailboxBacklog": stats.backlog(),
            "published": stats.published.load(Relaxed),
            "delivered": stats.delivered.load(Relaxed),
            "overflows": stats.overflows.load(Relaxed),
        });
    }
    Ok(HttpResponse::Ok().json(tree))
}

async fn find(state: &AppState, tenant: Tenant, id: &str) -> Result<ChildSnapshot, ApiError> {
    state.orchestrator.supervised(tenant.0, id).await.ok_or_else(|| {
        ApiError::NotFound(format!("no supervised actor {id}; ids look like node:qa-node-01 or run:<executionId>"))
    })
}

/// One supervised actor: state, incarnation, restarts, last failure.
#[utoipa::path(
    get,
    path = "/api/v1/admin/actors/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "A supervised actor's id, such as node:qa-node-01 or run:<executionId>")),
    responses(
        Protected,
        (status = 200, description = "The actor", body = serde_json::Value),
        (status = 404, description = "No such actor in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn get_actor(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
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

/// Restart a supervised actor with its state reloaded from the store (audited first).
#[utoipa::path(
    post,
    path = "/api/v1/admin/actors/{id}/restart",
    tag = "admin",
    params(("id" = String, Path, description = "A supervised actor's id, such as node:qa-node-01 or run:<executionId>")),
    responses(
        Protected,
        (status = 202, description = "Restarting", body = serde_json::Value),
        (status = 404, description = "No such actor in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn restart_actor(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: web::Path<String>,
    by: Audited,
) -> Result<HttpResponse, ApiError> {
    control(&state, tenant, by, &id, ChildAction::Restart).await
}

/// Stop a supervised actor (audited first).
#[utoipa::path(
    post,
    path = "/api/v1/admin/actors/{id}/stop",
    tag = "admin",
    params(("id" = String, Path, description = "A supervised actor's id, such as node:qa-node-01 or run:<executionId>")),
    responses(
        Protected,
        (status = 202, description = "Stopping", body = serde_json::Value),
        (status = 404, description = "No such actor in the caller's tenant", body = ErrorBody),
    )
)]
pub async fn stop_actor(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: web::Path<String>,
    by: Audited,
) -> Result<HttpResponse, ApiError> {
    control(&state, tenant, by, &id, ChildAction::Stop).await
}

/// Make a running actor panic, to watch supervision work (needs `[simulation] enabled`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/actors/{id}/crash",
    tag = "admin",
    params(("id" = String, Path, description = "A supervised actor's id, such as node:qa-node-01 or run:<executionId>")),
    responses(
        Protected,
        (status = 202, description = "The actor panicked", body = serde_json::Value),
        (status = 404, description = "No such actor in the caller's tenant", body = ErrorBody),
        (status = 409, description = "Simulation is off, or the actor is not running", body = ErrorBody),
    )
)]
pub async fn crash_actor(
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

/// Restart policies and counts per supervisor.
#[utoipa::path(
    get,
    path = "/api/v1/admin/supervision",
    tag = "admin",
    responses(
        Protected,
        (status = 200, description = "Policies, restarts and escalations", body = serde_json::Value),
    )
)]
pub async fn get_supervision(state: web::Data<AppState>, tenant: Tenant) -> Result<HttpResponse, ApiError> {
    // Counts only: no child is copied out.
    let pages = state.orchestrator.supervision_page(tenant.0, 0, 0).await;
    let supervisors: Vec<_> = pages
        .iter()
        .map(|p| {
            let (t, by) = (&p.tree, p.by_state);
            json!({
                "name": t.name,
                "policies": t.policies,
                "totalRestarts": t.total_restarts,
                "totalEscalations": t.total_escalations,
                "children": p.child_count,
                "byState": {
                    "Running": by.running,
                    "Restarting": by.restarting,
                    "Stopping": by.stopping,
                    "Stopped": by.stopped,
                    "Failed": by.failed,
                },
            })
        })
        .collect();
    let sup = &state.orchestrator.settings().supervision;
    Ok(HttpResponse::Ok().json(json!({
        "policies": { "Node": sup.node, "Coordinator": sup.coordinator, "Tenant": sup.tenant },
        "totalRestarts": pages.iter().map(|p| p.tree.total_restarts).sum::<u64>(),
        "totalEscalations": pages.iter().map(|p| p.tree.total_escalations).sum::<u64>(),
        "supervisors": supervisors,
    })))
}
