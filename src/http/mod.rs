//! The HTTP API: routes, request limits and the JSON error shape.

mod admin;
mod agent_tokens;
mod agents;
mod analytics;
mod approvals;
mod audit_logs;
mod authentication;
mod clusters;
mod count_params;
mod deployment_batches;
mod deployment_dto;
mod deployment_plan;
pub mod deployments;
mod error_mapping;
mod format;
mod graph;
mod graph_dto;
mod graph_queries;
mod health;
mod messaging;
mod messaging_errors;
mod messaging_legacy;
mod modules;
pub mod openapi;
mod publish_json;
mod responses;
pub mod route_table;
mod schema_dto;
mod schema_limits;
mod schemas;
mod secrets;
mod signing_keys;
mod subscriptions;
pub mod tenants;
mod topics;
mod users;

use actix_web::error::{JsonPayloadError, PathError};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use actix_web::http::Method;

use crate::auth::RouteAccess;
use crate::web::path_template::PathTemplate;
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
            .app_data(publish_json::EnvelopeLimit(options.json_limit))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .configure(|cfg| openapi::TABLE.register(cfg));
        if options.api_docs {
            cfg.configure(openapi::routes(options.swagger_ui));
        }
        cfg.default_service(web::to(unmatched));
    }
}

/// Every module of the API, in the order of the document's tags.
fn modules() -> Vec<route_table::ApiModule> {
    vec![
        health::api(),
        authentication::api(),
        users::api(),
        deployment_batches::api(),
        deployments::api(),
        clusters::api(),
        approvals::api(),
        audit_logs::api(),
        tenants::api(),
        analytics::api(),
        modules::api(),
        signing_keys::api(),
        secrets::api(),
        admin::api(),
        graph::api(),
        graph_queries::api(),
        agent_tokens::api(),
        agents::api(),
        topics::api(),
        subscriptions::api(),
        messaging::api(),
        messaging_legacy::api(),
        schemas::api(),
    ]
}

/// The requests served without a token (the public operations, the
/// document and Swagger UI) and the paths that take a token in the query.
/// The document's paths are public even where they are not served, so that
/// they answer 404 rather than 401.
pub fn route_access(token_in_query: Vec<PathTemplate>) -> RouteAccess {
    let mut public = openapi::TABLE.public_routes();
    public.push((Method::GET, PathTemplate::new(openapi::DOCUMENT_PATH)));
    RouteAccess::new(public, token_in_query).with_public_prefix(Method::GET, openapi::SWAGGER_UI_PATH)
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType("Content-Type must be application/json".into()),
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(format!("the JSON body is larger than {limit} bytes"))
        }
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!(
            "the JSON body is malformed or has the wrong shape: {}",
            without_values(&e.to_string())
        )),
        other => ApiError::BadRequest(format!("the JSON body could not be read: {other}")),
    };
    api.into()
}

/// A serde message with the offending value left out: "invalid type:
/// integer `918273645`, expected a string" becomes "invalid type: integer,
/// expected a string". The message reaches the log, and the value may be a
/// password or a secret sent in the wrong type. Field names stay.
fn without_values(message: &str) -> String {
    for marker in ["invalid type: ", "invalid value: "] {
        let Some(start) = message.find(marker) else { continue };
        let kind_start = start + marker.len();
        let Some(expected) = message[kind_start..].rfind(", expected ") else { continue };
        let unexpected = &message[kind_start..kind_start + expected];
        // "integer `5`", "string \"abc\"", "floating point `1.5`": the kind is what precedes the value.
        let kind = unexpected.split(['`', '"']).next().unwrap_or(unexpected).trim_end();
        return format!("{}{kind}{}", &message[..kind_start], &message[kind_start + expected..]);
    }
    message.to_string()
}

/// A path segment that does not parse names no resource (404), unless the
/// path belongs to another documented route that does not take this method:
/// `POST /deployments/{id}/events` reaches the verbs' route (`{verb}` is not
/// `events`) but is the events route's path, so it gets 405 with Allow.
fn path_error(err: PathError, req: &HttpRequest) -> actix_web::Error {
    match openapi::allowed_methods(req.path()) {
        Some(allow) if !allow.split(", ").any(|m| m == req.method().as_str()) => {
            let response = method_not_allowed(req, allow);
            actix_web::error::InternalError::from_response(err, response).into()
        }
        _ => ApiError::NotFound(format!("no such resource: {err}")).into(),
    }
}

/// Unknown paths get 404 and known paths with another method 405 with
/// Allow, both in the JSON error shape.
async fn unmatched(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    let Some(allow) = openapi::allowed_methods(req.path()) else {
        return ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())).error_response();
    };
    method_not_allowed(&req, allow)
}

fn method_not_allowed(req: &HttpRequest, allow: &str) -> HttpResponse {
    use actix_web::ResponseError;
    let mut res = ApiError::MethodNotAllowed(format!("{} {} is not supported; use {allow}", req.method(), req.path()))
        .error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allow) {
        res.headers_mut().insert(actix_web::http::header::ALLOW, value);
    }
    res
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;

    use super::without_values;

    #[test]
    fn serde_messages_keep_the_kind_and_lose_the_value() {
        assert_eq!(
            without_values("invalid type: integer `918273645`, expected a string at line 1 column 40"),
            "invalid type: integer, expected a string at line 1 column 40"
        );
        assert_eq!(
            without_values("invalid type: string \"p, expected q\", expected u32 at line 1 column 9"),
            "invalid type: string, expected u32 at line 1 column 9"
        );
        assert_eq!(
            without_values("invalid value: floating point `1.5`, expected u8 at line 1 column 3"),
            "invalid value: floating point, expected u8 at line 1 column 3"
        );
        assert_eq!(without_values("invalid type: map, expected a string"), "invalid type: map, expected a string");
        let unknown = "unknown field `surprise`, expected `username` or `password` at line 1 column 12";
        assert_eq!(without_values(unknown), unknown);
    }

    #[test]
    fn the_route_table_and_the_document_agree() {
        let table = &super::openapi::TABLE;
        assert_eq!(table.inconsistencies(), Vec::<String>::new());
        let ids: Vec<&str> = super::route_table::operations(&table.document)
            .filter_map(|(_, _, op)| op.operation_id.as_deref())
            .collect();
        assert!(ids.contains(&"steer_deployment") && ids.contains(&"create_deployment"));
    }

    #[test]
    fn the_public_requests_are_the_public_operations() {
        let access = super::route_access(Vec::new());
        let public = |m: Method, p: &str| access.is_public(&m, p);
        assert!(public(Method::GET, "/health"));
        assert!(public(Method::GET, "/health/ready"));
        assert!(public(Method::POST, "/api/v1/authentication/login"));
        assert!(public(Method::GET, "/api/v1/authentication/demo-credentials"));
        assert!(public(Method::GET, "/api-docs/openapi.json"));
        assert!(public(Method::GET, "/swagger-ui/index.html"));
        assert!(!public(Method::GET, "/api/v1/authentication/login"));
        assert!(!public(Method::GET, "/api/v1/deployments"));
        assert!(!public(Method::POST, "/health"));
        // Every operation the document marks as needing no token is public, and no other.
        for (path, method, op) in super::route_table::operations(&super::openapi::TABLE.document) {
            let open = op.security.as_ref().is_some_and(|s| s.iter().all(|r| r == &Default::default()));
            let concrete = path.replace('{', "x").replace('}', "");
            assert_eq!(access.is_public(&method, &concrete), open, "{method} {path}");
        }
    }

    /// Every `$ref` in the document names a schema it defines: a client
    /// generator stops at one that does not, and a fuzzer skips what it guards.
    #[test]
    fn every_reference_in_the_document_resolves() {
        fn refs<'a>(value: &'a serde_json::Value, found: &mut Vec<&'a str>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                        found.push(target);
                    }
                    map.values().for_each(|v| refs(v, found));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
                _ => {}
            }
        }
        let document = serde_json::to_value(&super::openapi::TABLE.document).unwrap();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(found.len() > 50, "the document refers to its schemas");
        let unresolved: std::collections::BTreeSet<&str> = found
            .into_iter()
            .filter(|target| {
                let name = target.strip_prefix("#/components/schemas/").unwrap_or(target);
                document["components"]["schemas"].get(name).is_none()
            })
            .collect();
        assert!(unresolved.is_empty(), "references to schemas the document does not define: {unresolved:?}");
    }

    #[test]
    fn allowed_methods_come_from_the_document() {
        use super::openapi::allowed_methods;
        assert_eq!(allowed_methods("/health"), Some("GET"));
        assert_eq!(allowed_methods("/api/v1/users"), Some("GET, POST"));
        assert_eq!(allowed_methods("/api/v1/deployments/abc/pause"), Some("POST"));
        assert_eq!(allowed_methods("/api/v1/deployments/abc/events"), Some("GET"));
        assert_eq!(allowed_methods("/api/v1/deployments//pause"), None);
        assert_eq!(allowed_methods("/api/v1/nowhere"), None);
    }
}
