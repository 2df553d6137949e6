//! The HTTP API: routes, request limits and the JSON error shape.

mod admin;
mod clusters;
mod deployment_dto;
mod deployments;
pub mod error;
mod format;
mod health;
pub mod tenant;
pub mod trace;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest, HttpResponse};
use hotswap_actors::Orchestrator;

use error::ApiError;

/// What every handler can reach.
pub struct AppState {
    pub orchestrator: Orchestrator,
    pub trace_url: String,
}

impl AppState {
    pub fn trace_url(&self, trace_id: &str) -> String {
        self.trace_url.replace("{traceId}", trace_id)
    }
}

/// Registers every route and the extractor settings on an `App`.
pub fn configure(json_limit: usize) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::JsonConfig::default().limit(json_limit).error_handler(json_error))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .configure(health::routes)
            .configure(deployments::routes)
            .configure(clusters::routes)
            .configure(admin::routes)
            .configure(crate::live::routes)
            .default_service(web::to(unmatched));
    }
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType("Content-Type must be application/json".into()),
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(format!("the JSON body is larger than {limit} bytes"))
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::BadRequest(format!("the JSON body is malformed or has the wrong shape: {e}"))
        }
        other => ApiError::BadRequest(format!("the JSON body could not be read: {other}")),
    };
    api.into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {err}")).into()
}

fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound(format!("no such resource: {err}")).into()
}

/// Unknown paths and methods get the JSON error shape too.
async fn unmatched(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())))
}
