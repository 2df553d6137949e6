//! The OpenAPI 3 document, generated from the handlers' annotations, and
//! Swagger UI (development).

use std::sync::LazyLock;

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{auth, clusters, deployments, health, users};

pub const DOCUMENT_PATH: &str = "/api-docs/openapi.json";

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
    paths(
        health::live,
        health::ready,
        auth::login,
        auth::me,
        auth::logout,
        auth::demo_credentials,
        users::create,
        users::list,
        users::get,
        users::disable,
        users::enable,
        users::set_roles,
        users::reset_password,
        deployments::create,
        deployments::list,
        deployments::get,
        deployments::events,
        deployments::pause,
        deployments::resume,
        deployments::promote,
        deployments::abort,
        deployments::rollback,
        clusters::list,
        clusters::detail,
        clusters::metrics,
    ),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "authentication", description = "Tokens"),
        (name = "users", description = "User management (Admin)"),
        (name = "deployments", description = "Runs: create, read, steer, roll back"),
        (name = "clusters", description = "Clusters, nodes and metrics"),
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

/// The document, rendered once.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));

async fn document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT.as_str())
}

/// Serves the document, and Swagger UI at /swagger-ui/ when `swagger_ui`.
pub fn routes(swagger_ui: bool) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.route(DOCUMENT_PATH, web::get().to(document));
        if swagger_ui {
            cfg.service(
                utoipa_swagger_ui::SwaggerUi::new("/swagger-ui/{_:.*}")
                    .config(utoipa_swagger_ui::Config::new([DOCUMENT_PATH])),
            );
        }
    }
}
