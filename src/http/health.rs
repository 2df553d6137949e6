//! Liveness and readiness.

use actix_web::{web, HttpRequest, HttpResponse};
use hotswap_actors::domain::Role;
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
    /// Ready, Degraded (serving, but Redis does not answer: live updates
    /// reach this instance's clients only; or some coordinators cannot save
    /// their checkpoints) or NotReady.
    pub status: String,
    pub store: StoreStatus,
    /// Present when `[redis] url` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisStatus>,
    /// Present while coordinators of this instance cannot save their
    /// checkpoint (they retry with backoff): the instance is then Degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coordinators: Option<CoordinatorsStatus>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct CoordinatorsStatus {
    /// How many coordinators cannot save.
    pub cannot_save: usize,
    /// Admins only: which runs, since when, how many attempts, the last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<Vec<serde_json::Value>>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RedisStatus {
    /// Up or Down.
    pub status: String,
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
        (status = 200, description = "Ready, or Degraded while Redis does not answer", body = ReadyBody),
        (status = 503, description = "The store does not answer", body = ReadyBody),
    )
)]
pub async fn health_ready(
    state: web::Data<AppState>,
    redis: Option<web::Data<crate::redis::Redis>>,
    req: HttpRequest,
) -> HttpResponse {
    let store = state.orchestrator.store();
    let outcome = store.ping().await.map_err(|e| e.to_string());
    // Anyone may ask; the store's error names hosts and users, so only an
    // Admin's token sees it.
    let admin = crate::auth::principal_of(&req).is_ok_and(|p| p.has_role(Role::Admin));
    let (up, mut body) = ready_body(store.backend(), outcome, admin);
    if let Some(redis) = redis {
        with_redis(&mut body, redis.health().is_up());
    }
    with_stuck_coordinators(&mut body, &state.orchestrator.coordinators_that_cannot_save(), admin);
    match (up, body) {
        (true, body) => HttpResponse::Ok().json(body),
        (false, body) => HttpResponse::ServiceUnavailable().insert_header(("Retry-After", "5")).json(body),
    }
}

/// Whether the store is up, and the body that says so.
fn ready_body(backend: &str, outcome: Result<(), String>, admin: bool) -> (bool, serde_json::Value) {
    match outcome {
        Ok(()) => (true, json!({ "status": "Ready", "store": { "backend": backend, "status": "Up" } })),
        Err(detail) => {
            let message = if admin { detail } else { "the store does not answer".to_string() };
            (
                false,
                json!({ "status": "NotReady", "store": { "backend": backend, "status": "Down", "message": message } }),
            )
        }
    }
}

/// Adds Redis's state; a ready instance without Redis is only degraded: it
/// serves and runs deployments, its live updates reach its own clients only.
fn with_redis(body: &mut serde_json::Value, redis_up: bool) {
    body["redis"] = json!({ "status": if redis_up { "Up" } else { "Down" } });
    if !redis_up && body["status"] == "Ready" {
        body["status"] = json!("Degraded");
    }
}

/// Names the coordinators that cannot save their checkpoint: the instance
/// serves, but those runs do not move until the store takes their saves.
/// Only an Admin sees which runs (they belong to tenants) and the errors.
fn with_stuck_coordinators(
    body: &mut serde_json::Value,
    stuck: &[hotswap_actors::coordinator::SaveTrouble],
    admin: bool,
) {
    if stuck.is_empty() {
        return;
    }
    let mut report = json!({ "cannotSave": stuck.len() });
    if admin {
        report["runs"] = json!(stuck);
    }
    body["coordinators"] = report;
    if body["status"] == "Ready" {
        body["status"] = json!("Degraded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_read_why_the_store_is_down() {
        let detail = || Err("connection to db.internal.example:5432 refused for user hotswap".to_string());
        let (up, public) = ready_body("postgres", detail(), false);
        assert!(!up);
        assert_eq!(public["store"]["message"], "the store does not answer");
        assert!(!public.to_string().contains("db.internal"));
        let (_, admin) = ready_body("postgres", detail(), true);
        assert!(admin["store"]["message"].as_str().unwrap().contains("db.internal.example"));
        assert_eq!(
            ready_body("memory", Ok(()), false),
            (true, json!({ "status": "Ready", "store": { "backend": "memory", "status": "Up" } }))
        );
    }

    #[test]
    fn coordinators_that_cannot_save_degrade_and_are_named_to_admins() {
        let trouble = hotswap_actors::coordinator::SaveTrouble {
            execution_id: uuid::Uuid::from_u128(7),
            tenant_id: uuid::Uuid::from_u128(1),
            since: chrono::Utc::now(),
            failed_attempts: 4,
            last_error: "the store did not answer within 5s".into(),
        };
        let (_, mut quiet) = ready_body("postgres", Ok(()), true);
        with_stuck_coordinators(&mut quiet, &[], true);
        assert_eq!(quiet["status"], "Ready");
        assert!(quiet.get("coordinators").is_none());
        let (_, mut public) = ready_body("postgres", Ok(()), false);
        with_stuck_coordinators(&mut public, std::slice::from_ref(&trouble), false);
        assert_eq!(public["status"], "Degraded");
        assert_eq!(public["coordinators"], json!({ "cannotSave": 1 }));
        let (_, mut admin) = ready_body("postgres", Ok(()), true);
        with_stuck_coordinators(&mut admin, std::slice::from_ref(&trouble), true);
        assert_eq!(admin["coordinators"]["runs"][0]["executionId"], trouble.execution_id.to_string());
        assert_eq!(admin["coordinators"]["runs"][0]["failedAttempts"], 4);
        // A store that is down stays NotReady.
        let (_, mut down) = ready_body("postgres", Err("down".into()), true);
        with_stuck_coordinators(&mut down, &[trouble], true);
        assert_eq!(down["status"], "NotReady");
    }

    #[test]
    fn redis_down_degrades_a_ready_instance() {
        let (_, mut body) = ready_body("memory", Ok(()), false);
        with_redis(&mut body, false);
        assert_eq!(body["status"], "Degraded");
        assert_eq!(body["redis"]["status"], "Down");
        let (_, mut up) = ready_body("memory", Ok(()), false);
        with_redis(&mut up, true);
        assert_eq!((up["status"].as_str(), up["redis"]["status"].as_str()), (Some("Ready"), Some("Up")));
    }
}
