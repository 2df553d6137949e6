//! Who a live connection (WebSocket or SignalR) acts for.
//!
//! AUTH: `authenticate_upgrade` is the one place where live connections are
//! authenticated. JWT verification is being built separately; once it lands,
//! this function verifies the bearer token (refusing a bad or expired one
//! with 401 before the upgrade) and takes tenant, user and expiry from the
//! verified claims. Until then it accepts every request in the tenant the
//! `Tenant` extractor gives, and reads only what shortens a session: the
//! `exp` of a token that looks like a JWT, unverified.

use actix_web::{FromRequest, HttpRequest};
use base64::Engine;
use chrono::{DateTime, Utc};
use hotswap_actors::domain::TenantId;

use crate::http::error::ApiError;
use crate::http::tenant::Tenant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdentity {
    pub tenant_id: TenantId,
    pub user: String,
    /// The session closes when this passes.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The bearer token of an upgrade request: the `Authorization` header, or the
/// `access_token` query parameter that browsers (and SignalR clients) use
/// because they cannot set headers on a WebSocket.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string());
    header
        .filter(|t| !t.is_empty())
        .or_else(|| web_query_param(req.query_string(), "access_token").filter(|t| !t.is_empty()))
}

/// AUTH: authenticates a live connection before its upgrade. See the module docs.
pub fn authenticate_upgrade(req: &HttpRequest) -> Result<SessionIdentity, ApiError> {
    let Tenant(tenant_id) = Tenant::extract(req).into_inner()?;
    let token = bearer_token(req);
    let claims = token.as_deref().and_then(unverified_claims);
    let expires_at = claims.as_ref().and_then(|c| c["exp"].as_i64()).and_then(|exp| DateTime::from_timestamp(exp, 0));
    let user =
        claims.as_ref().and_then(|c| c["sub"].as_str().map(str::to_string)).unwrap_or_else(|| "anonymous".to_string());
    Ok(SessionIdentity { tenant_id, user, expires_at })
}

/// The claims of a JWT-shaped token, not verified: used only to end a
/// session no later than its token does.
fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok().filter(|v| v.is_object())
}

/// One query parameter, percent-decoded.
pub fn web_query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn jwt(claims: serde_json::Value) -> String {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.sig", enc.encode(br#"{"alg":"none"}"#), enc.encode(claims.to_string()))
    }

    #[test]
    fn the_token_comes_from_the_header_or_the_query() {
        let req = TestRequest::default().insert_header(("Authorization", "Bearer abc")).to_http_request();
        assert_eq!(bearer_token(&req).as_deref(), Some("abc"));
        let req = TestRequest::with_uri("/api/v1/ws?x=1&access_token=a%2Eb").to_http_request();
        assert_eq!(bearer_token(&req).as_deref(), Some("a.b"));
        let req = TestRequest::with_uri("/api/v1/ws").to_http_request();
        assert_eq!(bearer_token(&req), None);
    }

    #[test]
    fn a_jwt_shaped_token_carries_its_expiry_and_subject() {
        let token = jwt(serde_json::json!({ "sub": "ana", "exp": 2_000_000_000 }));
        let req = TestRequest::with_uri(&format!("/api/v1/ws?access_token={token}")).to_http_request();
        let id = authenticate_upgrade(&req).unwrap();
        assert_eq!(id.user, "ana");
        assert_eq!(id.expires_at.unwrap().timestamp(), 2_000_000_000);
        let req = TestRequest::default().insert_header(("Authorization", "Bearer opaque")).to_http_request();
        let id = authenticate_upgrade(&req).unwrap();
        assert_eq!((id.user.as_str(), id.expires_at), ("anonymous", None));
    }

    #[test]
    fn percent_decoding_keeps_odd_input() {
        assert_eq!(percent_decode("a%20b%"), "a b%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%41"), "A");
    }
}
