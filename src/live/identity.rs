//! Who a live connection (WebSocket or SignalR) acts for.
//!
//! The authentication middleware has already verified the bearer token (from
//! the `Authorization` header or, on the live endpoints, the `access_token`
//! query parameter) and refused a bad or expired one with 401 before any
//! upgrade. `authenticate_upgrade` takes tenant, user and expiry from the
//! verified principal; the session closes when the token expires.

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};
use hotswap_actors::domain::TenantId;

use crate::auth::OverrideUse;
use crate::web::ApiError;

#[derive(Debug, Clone)]
pub struct SessionIdentity {
    /// The tenant whose runs and messages the session carries: the user's own,
    /// or the one an Admin of the system tenant names with `X-Tenant-Id`.
    pub tenant_id: TenantId,
    /// The user's own tenant, whose `websocketSessions` quota the session
    /// counts against (an operator watching a tenant takes none of its places).
    pub home_tenant_id: TenantId,
    pub user: String,
    /// The session closes when this passes.
    pub expires_at: Option<DateTime<Utc>>,
    /// The session's place in its tenant's websocketSessions quota, given
    /// back when the session (which owns its identity) ends.
    pub slot: Option<std::sync::Arc<super::quota::SessionSlot>>,
    /// Checks the session's token, user and tenant again while it lasts.
    pub revalidation: Option<super::revalidation::Revalidation>,
}

/// The bearer token of an upgrade request: the `Authorization` header, the
/// token subprotocol the dashboard offers, or the `access_token` query
/// parameter SignalR clients use (browsers cannot set headers on a WebSocket).
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    crate::auth::bearer::request_token(req.headers(), req.query_string(), true)
}

/// The identity of a live connection, from the request's verified principal
/// and the tenant it acts for (`X-Tenant-Id`, system Admins only, as on every
/// REST route; `how` says whether this request starts the session and is audited).
pub async fn authenticate_upgrade(req: &HttpRequest, how: OverrideUse) -> Result<SessionIdentity, ApiError> {
    let principal = crate::auth::principal_of(req)?;
    let acting = crate::auth::acting_tenant(req, how).await?;
    let revalidation = super::revalidation::Revalidation::of(req);
    // A session opens only where it would be let stay: the check that closes
    // a suspended tenant's sessions refuses new ones too (else a client that
    // reconnects kept hearing the tenant's events until the next poll).
    if let Some(check) = &revalidation {
        check.check(false).await.map_err(ApiError::Forbidden)?;
    }
    Ok(SessionIdentity {
        tenant_id: acting.0,
        home_tenant_id: principal.tenant_id,
        user: principal.username.clone(),
        expires_at: Some(principal.expires_at),
        slot: None,
        revalidation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_token_comes_from_the_header_or_the_query() {
        let req = TestRequest::default().insert_header(("Authorization", "Bearer abc")).to_http_request();
        assert_eq!(bearer_token(&req).as_deref(), Some("abc"));
        let req = TestRequest::with_uri("/api/v1/ws?x=1&access_token=a%2Eb").to_http_request();
        assert_eq!(bearer_token(&req).as_deref(), Some("a.b"));
        let req = TestRequest::with_uri("/api/v1/ws").to_http_request();
        assert_eq!(bearer_token(&req), None);
    }
}
