//! The HTTP API: routes, request limits and the JSON error shape.

mod admin;
mod analytics;
mod approvals;
mod audit_logs;
mod auth;
mod clusters;
mod deployment_dto;
pub mod deployments;
mod error_mapping;
mod format;
mod health;
mod modules;
pub mod openapi;
mod secrets;
mod signing_keys;
pub mod tenants;
mod users;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::web::ApiError;

/// `[api_docs]`: the OpenAPI document and Swagger UI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiDocsSettings {
    /// Serve the OpenAPI document at /api-docs/openapi.json, without a token.
    pub enabled: bool,
    /// Serve Swagger UI at /swagger-ui/ (needs `enabled`).
    pub swagger_ui: bool,
}

/// What `configure` needs from the settings.
#[derive(Debug, Clone, Copy)]
pub struct RouteOptions {
    pub json_limit: usize,
    pub api_docs: bool,
    pub swagger_ui: bool,
}

/// Registers every route and the extractor settings on an `App`. Each route
/// declares the role it needs beside it (`RequireRole`); the authentication
/// middleware keeps every path but the public ones behind a token.
pub fn configure(options: RouteOptions) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::JsonConfig::default().limit(options.json_limit).error_handler(json_error))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .configure(health::routes)
            .configure(auth::routes)
            .configure(users::routes)
            .configure(deployments::routes)
            .configure(clusters::routes)
            .configure(admin::routes)
            .configure(approvals::routes)
            .configure(audit_logs::routes)
            .configure(tenants::routes)
            .configure(analytics::routes)
            .configure(modules::routes)
            .configure(signing_keys::routes)
            .configure(secrets::routes);
        if options.api_docs {
            cfg.configure(openapi::routes(options.swagger_ui));
        }
        cfg.default_service(web::to(unmatched));
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

/// Unknown paths get 404 and known paths with another method 405 with
/// Allow, both in the JSON error shape.
async fn unmatched(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    let Some(allow) = openapi::allowed_methods(req.path()) else {
        return ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())).error_response();
    };
    let mut res = ApiError::MethodNotAllowed(format!("{} {} is not supported; use {allow}", req.method(), req.path()))
        .error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allow) {
        res.headers_mut().insert(actix_web::http::header::ALLOW, value);
    }
    res
}

#[cfg(test)]
mod tests {
    #[test]
    fn allowed_methods_come_from_the_document() {
        use super::openapi::allowed_methods;
        assert_eq!(allowed_methods("/health"), Some("GET"));
        assert_eq!(allowed_methods("/api/v1/users"), Some("GET, POST"));
        assert_eq!(allowed_methods("/api/v1/deployments/abc/pause"), Some("POST"));
        assert_eq!(allowed_methods("/api/v1/deployments//pause"), None);
        assert_eq!(allowed_methods("/api/v1/nowhere"), None);
    }
}
