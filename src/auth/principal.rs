//! Who is calling: the [`Principal`] the authentication middleware
//! (`middleware`) puts in a request's extensions, and how the extractors
//! (`extractors`) and the role guard (`require_role`) read it back.

use std::sync::Arc;

use actix_web::{HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};
use hotswap_actors::domain::{Role, TenantId};
use uuid::Uuid;

use super::jwt::TokenError;
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
    /// Its tenant is suspended: it may sign in and read, not change anything.
    pub tenant_suspended: bool,
}

impl Principal {
    pub fn has_role(&self, needed: Role) -> bool {
        self.roles.iter().any(|r| r.grants(needed))
    }
}

/// What the middleware concluded, kept in the request's extensions.
#[derive(Clone)]
pub(super) enum Authn {
    Authenticated(Arc<Principal>),
    /// A token was sent but refused (only kept on public paths).
    Refused(TokenError),
}

pub(super) fn unauthorized(reason: Option<TokenError>) -> ApiError {
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
