//! Liveness and readiness.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(live)).route("/health/ready", web::get().to(ready));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("Healthy")
}

/// Ready when the store answers; 503 while it does not.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let store = state.orchestrator.store();
    match store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "Ready", "store": { "backend": store.backend(), "status": "Up" } })),
        Err(e) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({ "status": "NotReady", "store": { "backend": store.backend(), "status": "Down", "message": e.to_string() } })),
    }
}
