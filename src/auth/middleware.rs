//! The authentication middleware: a bearer token becomes a [`Principal`] in
//! the request's extensions.
//!
//! Every path needs a valid token except those [`RouteAccess`] names public. The
//! middleware refuses the others without one (401), so a route that forgot
//! its role guard still cannot be reached anonymously; [`super::RequireRole`],
//! declared beside each route, then answers 403 for a token without the role.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};

use super::principal::{unauthorized, Authn};
use super::route_access::RouteAccess;
use super::AuthState;
use crate::web::ApiError;

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
