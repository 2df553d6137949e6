//! Each route is declared once. A handler's `#[utoipa::path]` holds its method
//! and path; `api_module!` lists a module's handlers with the access each one
//! needs. From that list come the module's part of the OpenAPI document, its
//! actix routes, and the paths served without a token: they cannot disagree.

use actix_web::http::Method;
use actix_web::web;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::OpenApi;

use crate::auth::RequireRole;
use crate::web::path_template::PathTemplate;

/// Who may call an operation.
#[derive(Clone, Copy)]
pub enum Access {
    /// No token needed (health checks, login).
    Public,
    /// A token whose user has at least this role.
    Role(RequireRole),
}

/// One handler of a module, found in the document by its operation id (the
/// handler's name).
pub struct Endpoint {
    pub operation_id: &'static str,
    pub access: Access,
    pub route: fn() -> actix_web::Route,
}

/// A module's document and handlers, as `api_module!` declares them.
pub struct ApiModule {
    pub document: OpenApi,
    pub endpoints: Vec<Endpoint>,
}

/// Lists a module's handlers with their access; defines `api()`, the module's
/// `ApiModule`.
macro_rules! api_module {
    ($($handler:ident => $access:expr),+ $(,)?) => {
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler),+))]
        struct ModuleDocument;

        pub fn api() -> $crate::http::route_table::ApiModule {
            $crate::http::route_table::ApiModule {
                document: <ModuleDocument as utoipa::OpenApi>::openapi(),
                endpoints: vec![$($crate::http::route_table::Endpoint {
                    operation_id: stringify!($handler),
                    access: $access,
                    route: || actix_web::web::to($handler),
                }),+],
            }
        }
    };
}
pub(crate) use api_module;

/// Every operation of the joined document: path, method, operation.
pub fn operations(document: &OpenApi) -> impl Iterator<Item = (&String, Method, &Operation)> {
    document.paths.paths.iter().flat_map(|(path, item)| {
        let pairs = [
            (Method::GET, &item.get),
            (Method::POST, &item.post),
            (Method::PUT, &item.put),
            (Method::DELETE, &item.delete),
            (Method::PATCH, &item.patch),
            (Method::HEAD, &item.head),
        ];
        pairs.into_iter().filter_map(move |(method, op)| op.as_ref().map(|op| (path, method, op)))
    })
}

/// The joined modules: one document, every endpoint.
pub struct RouteTable {
    pub document: OpenApi,
    pub endpoints: Vec<Endpoint>,
}

impl RouteTable {
    /// Joins the modules into `root` (the document's info, tags and security)
    /// and marks each public operation as needing no token.
    pub fn join(mut root: OpenApi, modules: Vec<ApiModule>) -> RouteTable {
        let mut endpoints = Vec::new();
        for module in modules {
            root.merge(module.document);
            endpoints.extend(module.endpoints);
        }
        let public: Vec<&str> =
            endpoints.iter().filter(|e| matches!(e.access, Access::Public)).map(|e| e.operation_id).collect();
        for item in root.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch, &mut item.head]
                .into_iter()
                .flatten()
            {
                if op.operation_id.as_deref().is_some_and(|id| public.contains(&id)) {
                    op.security = Some(vec![SecurityRequirement::default()]);
                }
            }
        }
        RouteTable { document: root, endpoints }
    }

    fn endpoint(&self, operation_id: Option<&str>) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| Some(e.operation_id) == operation_id)
    }

    /// Registers every operation of the document with its handler and role.
    /// Literal segments sort before `{parameters}`, so `/{id}/rollback` is
    /// registered before `/{id}/{verb}`.
    pub fn register(&self, cfg: &mut web::ServiceConfig) {
        for (path, method, op) in operations(&self.document) {
            let Some(endpoint) = self.endpoint(op.operation_id.as_deref()) else {
                tracing::error!(%path, %method, "an operation of the document has no handler");
                continue;
            };
            let route = (endpoint.route)().method(method);
            match endpoint.access {
                Access::Public => cfg.route(path, route),
                Access::Role(role) => cfg.route(path, route.wrap(role)),
            };
        }
    }

    /// The (method, path) pairs served without a token.
    pub fn public_routes(&self) -> Vec<(Method, PathTemplate)> {
        operations(&self.document)
            .filter(|(_, _, op)| {
                self.endpoint(op.operation_id.as_deref()).is_some_and(|e| matches!(e.access, Access::Public))
            })
            .map(|(path, method, _)| (method, PathTemplate::new(path)))
            .collect()
    }

    /// Operation ids that are missing a handler, handlers missing from the
    /// document, and ids used twice: all empty when the table is sound.
    pub fn inconsistencies(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (path, method, op) in operations(&self.document) {
            let id = op.operation_id.clone().unwrap_or_default();
            if self.endpoint(Some(&id)).is_none() {
                problems.push(format!("{method} {path} ({id}) has no handler"));
            }
            if !seen.insert(id.clone()) {
                problems.push(format!("operationId {id} is used twice"));
            }
        }
        for endpoint in &self.endpoints {
            if !seen.contains(endpoint.operation_id) {
                problems.push(format!("handler {} is not in the document", endpoint.operation_id));
            }
        }
        problems
    }
}

/// `HttpMethod` of the document for an actix `Method` (for tests and 405s).
pub fn http_method(method: &Method) -> Option<HttpMethod> {
    Some(match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::PATCH => HttpMethod::Patch,
        Method::HEAD => HttpMethod::Head,
        _ => return None,
    })
}
