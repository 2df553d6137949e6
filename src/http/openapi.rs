//! The OpenAPI 3 document, generated from the handlers' annotations, and
//! Swagger UI (development).

use std::sync::LazyLock;

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::route_table::RouteTable;
use crate::web::path_template::PathTemplate;

pub const DOCUMENT_PATH: &str = "/api-docs/openapi.json";
pub const SWAGGER_UI_PATH: &str = "/swagger-ui";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "HotSwap API",
        description = "Rolls hot-swappable kernel modules out across clusters of nodes. \
            Every endpoint needs `Authorization: Bearer <token>` from POST /api/v1/authentication/login, \
            except the health checks, login and demo-credentials. Viewer reads; Deployer also creates, \
            steers and rolls back runs; Admin also manages users. Every request acts in its token's tenant: \
            another tenant's resources answer 404. Responses carry X-Trace-Id and, where rate limits \
            apply, X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset."
    ),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "authentication", description = "Tokens"),
        (name = "users", description = "User management (Admin)"),
        (name = "deployments", description = "Runs: create, read, steer, roll back"),
        (name = "clusters", description = "Clusters, nodes and metrics"),
        (name = "approvals", description = "Approval gates of runs: list, decide (Admin)"),
        (name = "audit", description = "The audit trail, read-only (Admin)"),
        (name = "tenants", description = "Tenant provisioning, lifecycle, tiers and quotas (Admin of the system tenant)"),
        (name = "analytics", description = "Usage reports"),
        (name = "modules", description = "Module registry and trusted signing keys"),
        (name = "secrets", description = "Secrets' metadata and rotation (Admins of the default tenant)"),
        (name = "admin", description = "The supervision tree, seen and steered (Admin)"),
        (name = "agents", description = "Real hosts running `hotswap agent`: enrolment tokens, agents, their sessions"),
        (name = "graph", description = "Knowledge graph of the fleet: entities, relationships, queries, impact, release order"),
        (name = "messaging", description = "The message bus: topics, subscriptions, publish, consume, dead letters; the original /api/messages API"),
        (name = "schemas", description = "The schema registry: subjects, versions, compatibility, approval, validation"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Every module joined into one document with its handlers, built once.
pub static TABLE: LazyLock<RouteTable> = LazyLock::new(|| {
    let mut table = RouteTable::join(ApiDoc::openapi(), super::modules());
    path_parameters_are_never_empty(&mut table.document);
    table
});

/// Every string path parameter gets `minLength: 1`. An empty one names
/// another route once slashes are merged (`/users//disable` is answered as
/// `/users/disable`), so a client may not send one and a fuzzer may not
/// treat one as valid.
fn path_parameters_are_never_empty(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    use utoipa::openapi::RefOr;
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                if !matches!(parameter.parameter_in, ParameterIn::Path) {
                    continue;
                }
                if let Some(RefOr::T(Schema::Object(object))) = &mut parameter.schema {
                    if object.schema_type == SchemaType::Type(Type::String) {
                        object.min_length.get_or_insert(1);
                    }
                }
            }
        }
    }
}

/// The document, rendered once.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| TABLE.document.to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));

/// Each documented path with the methods it answers, as an Allow header value.
static ROUTES: LazyLock<Vec<(PathTemplate, String)>> = LazyLock::new(|| {
    let mut allow: Vec<(PathTemplate, Vec<String>)> = Vec::new();
    for (path, method, _) in super::route_table::operations(&TABLE.document) {
        let template = PathTemplate::new(path);
        match allow.iter_mut().find(|(t, _)| *t == template) {
            Some((_, methods)) => methods.push(method.to_string()),
            None => allow.push((template, vec![method.to_string()])),
        }
    }
    allow.into_iter().map(|(t, methods)| (t, methods.join(", "))).collect()
});

/// The methods a documented path answers (for 405 and its Allow header), or
/// `None` when no route has that path. Where several templates match, the
/// one with the most fixed segments names the route.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    ROUTES.iter().filter(|(t, _)| t.matches(path)).max_by_key(|(t, _)| t.specificity()).map(|(_, allow)| allow.as_str())
}

async fn document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT.as_str())
}

/// Serves the document, and Swagger UI at /swagger-ui/ when `swagger_ui`.
pub fn routes(swagger_ui: bool) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.route(DOCUMENT_PATH, web::get().to(document));
        if swagger_ui {
            // /swagger-ui/ arrives here as /swagger-ui (trailing slashes are trimmed).
            cfg.route(
                SWAGGER_UI_PATH,
                web::get().to(|| async {
                    HttpResponse::Found().insert_header(("Location", format!("{SWAGGER_UI_PATH}/index.html"))).finish()
                }),
            );
            cfg.service(
                utoipa_swagger_ui::SwaggerUi::new(format!("{SWAGGER_UI_PATH}/{{_:.*}}"))
                    .config(utoipa_swagger_ui::Config::new([DOCUMENT_PATH])),
            );
        }
    }
}
