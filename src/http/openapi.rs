//! The OpenAPI 3 document, generated from the handlers' annotations, and
//! Swagger UI (development).

use std::sync::LazyLock;

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    analytics, approvals, audit_logs, auth, clusters, deployments, health, modules, secrets, signing_keys, tenants,
    users,
};

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
        approvals::pending,
        approvals::get,
        approvals::approve,
        approvals::reject,
        audit_logs::search,
        audit_logs::by_category,
        audit_logs::by_trace,
        audit_logs::by_deployment,
        audit_logs::by_approval,
        audit_logs::by_username,
        tenants::create,
        tenants::list,
        tenants::get,
        tenants::update,
        tenants::delete,
        tenants::suspend,
        tenants::activate,
        tenants::subscription,
        tenants::usage,
        analytics::usage,
        modules::upload,
        modules::list,
        modules::versions,
        modules::get,
        modules::delete,
        modules::artifact,
        signing_keys::add,
        signing_keys::list,
        signing_keys::revoke,
        secrets::list,
        secrets::metadata,
        secrets::rotate,
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

/// Each documented path as segments (`None` for a `{parameter}`) with the
/// methods it answers, as an Allow header value.
static ROUTES: LazyLock<Vec<(Vec<Option<String>>, String)>> = LazyLock::new(|| {
    let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap_or_default();
    let Some(paths) = doc["paths"].as_object() else { return Vec::new() };
    paths
        .iter()
        .map(|(path, item)| {
            let segments =
                path.split('/').map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string())).collect();
            let methods: Vec<String> =
                item.as_object().map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect()).unwrap_or_default();
            (segments, methods.join(", "))
        })
        .collect()
});

/// The methods a documented path answers (for 405 and its Allow header), or
/// `None` when no route has that path.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    let wanted: Vec<&str> = path.split('/').collect();
    ROUTES.iter().find_map(|(segments, allow)| {
        let same = segments.len() == wanted.len()
            && segments.iter().zip(&wanted).all(|(s, w)| match s {
                Some(fixed) => fixed == w,
                None => !w.is_empty(),
            });
        same.then_some(allow.as_str())
    })
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
                "/swagger-ui",
                web::get().to(|| async {
                    HttpResponse::Found().insert_header(("Location", "/swagger-ui/index.html")).finish()
                }),
            );
            cfg.service(
                utoipa_swagger_ui::SwaggerUi::new("/swagger-ui/{_:.*}")
                    .config(utoipa_swagger_ui::Config::new([DOCUMENT_PATH])),
            );
        }
    }
}
