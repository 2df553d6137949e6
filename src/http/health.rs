//! Liveness and readiness.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::responses::Public;
use super::route_table::{api_module, Access};
use crate::web::AppState;

api_module! {
    health_live => Access::Public,
    health_ready => Access::Public,
}

/// Readiness answer body.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // Describes the JSON built below.
pub struct ReadyBody {
    /// Ready or NotReady.
    pub status: String,
    pub store: StoreStatus,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StoreStatus {
    /// memory or postgres.
    pub backend: String,
    /// Up or Down.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Liveness: answers while the process serves.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain", example = "Healthy"))
)]
pub async fn health_live() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("Healthy")
}

/// Readiness: ready when the store answers; 503 while it does not.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    responses(
        Public,
        (status = 200, description = "Ready", body = ReadyBody),
        (status = 503, description = "The store does not answer", body = ReadyBody),
    )
)]
pub async fn health_ready(state: web::Data<AppState>) -> HttpResponse {
    let store = state.orchestrator.store();
    match store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "Ready", "store": { "backend": store.backend(), "status": "Up" } })),
        Err(e) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({ "status": "NotReady", "store": { "backend": store.backend(), "status": "Down", "message": e.to_string() } })),
    }
}
