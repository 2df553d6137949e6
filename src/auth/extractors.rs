//! The extractors handlers take their caller and tenant from.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use hotswap_actors::domain::TenantId;

use super::principal::{principal_of, Principal};
use crate::web::ApiError;

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
            Some(raw) => Box::pin(super::tenant_override::resolve(
                req.clone(),
                principal,
                raw.clone(),
                super::tenant_override::OverrideUse::Audited,
            )),
        }
    }
}

/// The header with which an Admin of the system tenant acts for another
/// tenant; every use is audited in that tenant, and refused for anyone else.
pub const TENANT_OVERRIDE: &str = "X-Tenant-Id";
