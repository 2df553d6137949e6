//! The role guard declared beside each route.

use std::future::{ready, Ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::Method;
use actix_web::{Error, HttpRequest};
use futures::future::{Either, LocalBoxFuture};
use hotswap_actors::domain::Role;

use super::principal::principal_of;
use crate::web::ApiError;

/// Why a suspended tenant's user is refused what would change something.
pub const SUSPENDED: &str = "the tenant is Suspended: its users may sign in and read, not change anything";

/// Route middleware: 401 without a valid token, 403 when its user lacks the
/// role. Declared beside each route: `web::get().to(handler).wrap(RequireRole::VIEWER)`.
/// [`RequireRole::on_path`] limits it to one path, for app-wide use.
#[derive(Debug, Clone, Copy)]
pub struct RequireRole {
    role: Role,
    only_path: Option<&'static str>,
    /// A GET that changes state (a consume leases messages and counts
    /// attempts): refused for a suspended tenant like a write.
    reads_change_state: bool,
}

impl RequireRole {
    pub const VIEWER: RequireRole = RequireRole::new(Role::Viewer);
    pub const DEPLOYER: RequireRole = RequireRole::new(Role::Deployer);
    pub const ADMIN: RequireRole = RequireRole::new(Role::Admin);

    pub const fn new(role: Role) -> RequireRole {
        RequireRole { role, only_path: None, reads_change_state: false }
    }

    /// Checks requests to `path` only and lets every other request through.
    pub const fn on_path(path: &'static str, role: Role) -> RequireRole {
        RequireRole { role, only_path: Some(path), reads_change_state: false }
    }

    /// The same guard for a GET that changes state: a suspended tenant's
    /// users may not make it, as they may not write.
    pub const fn changing_state(self) -> RequireRole {
        RequireRole { reads_change_state: true, ..self }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    fn check(&self, req: &HttpRequest) -> Result<(), ApiError> {
        if self.only_path.is_some_and(|p| p != req.path()) {
            return Ok(());
        }
        let principal = principal_of(req)?;
        if !principal.has_role(self.role) {
            return Err(ApiError::Forbidden(format!("this needs the {} role", self.role)));
        }
        // A suspended tenant's users keep what a Viewer may do (reads, and
        // the queries a Viewer may post); whatever needs more changes things.
        let reads = matches!(*req.method(), Method::GET | Method::HEAD) && !self.reads_change_state;
        if principal.tenant_suspended && self.role != Role::Viewer && !reads {
            return Err(ApiError::Forbidden(SUSPENDED.into()));
        }
        Ok(())
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireRole
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireRoleService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireRoleService { service, guard: *self }))
    }
}

pub struct RequireRoleService<S> {
    service: S,
    guard: RequireRole,
}

type GuardFuture<B> = LocalBoxFuture<'static, Result<ServiceResponse<EitherBody<B>>, Error>>;

impl<S, B> Service<ServiceRequest> for RequireRoleService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Either<GuardFuture<B>, Ready<Result<Self::Response, Error>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        match self.guard.check(req.request()) {
            Ok(()) => {
                let fut = self.service.call(req);
                Either::Left(Box::pin(async move { fut.await.map(ServiceResponse::map_into_left_body) }))
            }
            Err(e) => Either::Right(ready(Ok(req.error_response(e).map_into_right_body()))),
        }
    }
}

/// The guard for `metrics.path` (`/metrics` by default) on the API address:
/// a token with `metrics.role`.
/// When `metrics.bind` names an address of its own, `/metrics` belongs on that
/// listener, which is served without this guard (and without
/// [`super::authenticate`]); on the API address it stays behind a token either way.
/// Wrap it inside [`super::authenticate`] and outside whatever serves `/metrics`:
/// `App::new().wrap(prometheus).wrap(metrics_guard(&settings.metrics))...`.
pub fn metrics_guard(settings: &crate::metrics::MetricsSettings) -> RequireRole {
    RequireRole::on_path(static_path(&settings.path), settings.role.parse().unwrap_or(Role::Admin))
}

/// The guard is `Copy` (routes hold it by value), so its path is `'static`:
/// each distinct configured path is leaked once per process, however many
/// workers and servers build a guard for it.
fn static_path(path: &str) -> &'static str {
    static PATHS: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut paths = PATHS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = paths.iter().find(|p| **p == path) {
        return known;
    }
    let leaked: &'static str = Box::leak(path.to_string().into_boxed_str());
    paths.push(leaked);
    leaked
}
