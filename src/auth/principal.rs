//! Who is calling: the authentication middleware turns a bearer token into a
//! [`Principal`] in the request's extensions; extractors and the role guard
//! read it from there.
//!
//! Every path needs a valid token except those [`RouteAccess`] names public. The
//! middleware refuses the others without one (401), so a route that forgot
//! its role guard still cannot be reached anonymously; [`RequireRole`],
//! declared beside each route, then answers 403 for a token without the role.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::middleware::Next;
use actix_web::{web, Error, FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};
use futures::future::{Either, LocalBoxFuture};
use hotswap_actors::domain::{Role, TenantId};
use uuid::Uuid;

use super::jwt::TokenError;
use super::route_access::RouteAccess;
use super::AuthState;
use crate::web::ApiError;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub tenant_id: TenantId,
    pub username: String,
    pub email: String,
    /// The user's roles as stored now, so that a change applies at once.
    pub roles: Vec<Role>,
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

impl Principal {
    pub fn has_role(&self, needed: Role) -> bool {
        self.roles.iter().any(|r| r.grants(needed))
    }
}

/// What the middleware concluded, kept in the request's extensions.
#[derive(Clone)]
enum Authn {
    Authenticated(Arc<Principal>),
    /// A token was sent but refused (only kept on public paths).
    Refused(TokenError),
}

/// The token of an `Authorization: Bearer <token>` header; on the live
/// endpoints also the `access_token` query parameter, since browsers cannot
/// set headers on a WebSocket upgrade.
fn bearer(req: &ServiceRequest, access: &RouteAccess) -> Option<String> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string())
        .filter(|t| !t.is_empty());
    let live = access.takes_token_in_query(req.path());
    header.or_else(|| {
        live.then(|| crate::web::query::web_query_param(req.query_string(), "access_token"))
            .flatten()
            .filter(|t| !t.is_empty())
    })
}

/// The authentication middleware (see the module documentation).
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let (Some(state), Some(access)) =
        (req.app_data::<web::Data<AuthState>>().cloned(), req.app_data::<web::Data<RouteAccess>>().cloned())
    else {
        let err = ApiError::Internal("authentication is not configured".into());
        return Ok(req.error_response(err).map_into_right_body());
    };
    let public = access.is_public(req.method(), req.path());
    let outcome = match bearer(&req, &access) {
        Some(token) => Some(state.authenticate(&token).await),
        None => None,
    };
    match outcome {
        Some(Ok(principal)) => {
            req.extensions_mut().insert(Authn::Authenticated(Arc::new(principal)));
        }
        Some(Err(e)) if public => {
            req.extensions_mut().insert(Authn::Refused(e));
        }
        Some(Err(e)) => return Ok(req.error_response(unauthorized(Some(e))).map_into_right_body()),
        None if public => {}
        None => return Ok(req.error_response(unauthorized(None)).map_into_right_body()),
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

fn unauthorized(reason: Option<TokenError>) -> ApiError {
    match reason {
        Some(TokenError::Unavailable) => ApiError::Unavailable("the store is unavailable; try again shortly".into()),
        Some(e) => ApiError::Unauthorized(format!("Invalid authentication token: {e}")),
        None => ApiError::Unauthorized("Authentication required: send Authorization: Bearer <token>".into()),
    }
}

/// The principal of a request, if it has one.
pub fn principal_of(req: &HttpRequest) -> Result<Arc<Principal>, ApiError> {
    match req.extensions().get::<Authn>() {
        Some(Authn::Authenticated(p)) => Ok(p.clone()),
        Some(Authn::Refused(e)) => Err(unauthorized(Some(*e))),
        None => Err(unauthorized(None)),
    }
}

/// The caller; 401 without a valid token.
pub struct Caller(pub Arc<Principal>);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(principal_of(req).map(Caller))
    }
}

/// The tenant a request acts in: its token's, or (see [`TENANT_OVERRIDE`])
/// the one an Admin of the system tenant names. 401 without a valid token.
#[derive(Debug, Clone, Copy)]
pub struct Tenant(pub TenantId);

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Tenant, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let principal = match principal_of(req) {
            Ok(p) => p,
            Err(e) => return Box::pin(ready(Err(e))),
        };
        match req.headers().get(TENANT_OVERRIDE) {
            None => Box::pin(ready(Ok(Tenant(principal.tenant_id)))),
            Some(raw) => Box::pin(super::tenant_override::resolve(req.clone(), principal, raw.clone())),
        }
    }
}

/// The header with which an Admin of the system tenant acts for another
/// tenant; every use is audited in that tenant, and refused for anyone else.
pub const TENANT_OVERRIDE: &str = "X-Tenant-Id";

/// Route middleware: 401 without a valid token, 403 when its user lacks the
/// role. Declared beside each route: `web::get().to(handler).wrap(RequireRole::VIEWER)`.
/// [`RequireRole::on_path`] limits it to one path, for app-wide use.
#[derive(Debug, Clone, Copy)]
pub struct RequireRole {
    role: Role,
    only_path: Option<&'static str>,
}

impl RequireRole {
    pub const VIEWER: RequireRole = RequireRole::new(Role::Viewer);
    pub const DEPLOYER: RequireRole = RequireRole::new(Role::Deployer);
    pub const ADMIN: RequireRole = RequireRole::new(Role::Admin);

    pub const fn new(role: Role) -> RequireRole {
        RequireRole { role, only_path: None }
    }

    /// Checks requests to `path` only and lets every other request through.
    pub const fn on_path(path: &'static str, role: Role) -> RequireRole {
        RequireRole { role, only_path: Some(path) }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    fn check(&self, req: &HttpRequest) -> Result<(), ApiError> {
        if self.only_path.is_some_and(|p| p != req.path()) {
            return Ok(());
        }
        let principal = principal_of(req)?;
        if principal.has_role(self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("this needs the {} role", self.role)))
        }
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

/// The guard for `/metrics` on the API address: a token with `metrics.role`.
/// When `metrics.bind` names an address of its own, `/metrics` belongs on that
/// listener, which is served without this guard (and without
/// [`authenticate`]); on the API address it stays behind a token either way.
/// Wrap it inside [`authenticate`] and outside whatever serves `/metrics`:
/// `App::new().wrap(prometheus).wrap(metrics_guard(&settings.metrics))...`.
pub fn metrics_guard(settings: &crate::metrics::MetricsSettings) -> RequireRole {
    RequireRole::on_path("/metrics", settings.role.parse().unwrap_or(Role::Admin))
}
