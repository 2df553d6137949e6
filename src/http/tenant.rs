//! The tenant a request acts in. Until identity arrives every request acts in
//! the default tenant; handlers already take it from here so that every
//! query is scoped from the start.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, FromRequest, HttpRequest};
use hotswap_actors::domain::{TenantId, DEFAULT_TENANT};

use super::error::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct Tenant(pub TenantId);

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = Ready<Result<Tenant, ApiError>>;

    fn from_request(_req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Ok(Tenant(DEFAULT_TENANT)))
    }
}
