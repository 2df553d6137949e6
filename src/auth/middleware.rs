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

use super::bearer::request_token;
use super::principal::{unauthorized, Authn};
use super::route_access::RouteAccess;
use super::AuthState;
use crate::web::ApiError;

/// The request's token (see [`super::bearer`]): on the live endpoints also
/// from the token subprotocol or the `access_token` query parameter.
fn bearer(req: &ServiceRequest, access: &RouteAccess) -> Option<String> {
    request_token(req.headers(), req.query_string(), access.takes_token_in_query(req.path()))
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
