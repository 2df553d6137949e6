//! Where a request's bearer token is read from.
//!
//! Every request may send `Authorization: Bearer <token>`. Browsers cannot
//! set headers on a WebSocket upgrade, so the live endpoints also take it
//! from one of two places a browser can fill:
//!
//! - a WebSocket subprotocol `hotswap.bearer.<token>`, offered beside
//!   [`LIVE_PROTOCOL`] (which the server selects). The dashboard uses this:
//!   the token then stays out of the URL, which browsers print in their
//!   console when a connection fails and proxies write to their access logs.
//! - the `access_token` query parameter, which SignalR clients send.

use actix_web::http::header::{HeaderMap, AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};

use crate::web::query::web_query_param;

/// The subprotocol the live WebSocket selects when a client offers it.
pub const LIVE_PROTOCOL: &str = "hotswap.v1";

/// The prefix of the subprotocol that carries a token. A JWT's characters
/// (letters, digits, `-`, `_`, `.`) are all allowed in a subprotocol name.
pub const TOKEN_PROTOCOL_PREFIX: &str = "hotswap.bearer.";

/// The token of a request: the `Authorization` header, and on a live
/// endpoint (`live`) also the token subprotocol or the `access_token` query
/// parameter, in that order. An empty value counts as none.
pub fn request_token(headers: &HeaderMap, query: &str, live: bool) -> Option<String> {
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string())
        .filter(|t| !t.is_empty());
    if header.is_some() || !live {
        return header;
    }
    subprotocol_token(headers).or_else(|| web_query_param(query, "access_token").filter(|t| !t.is_empty()))
}

fn subprotocol_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|offered| offered.trim().strip_prefix(TOKEN_PROTOCOL_PREFIX).map(str::to_string))
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(pairs: &[(actix_web::http::header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_header_is_read_everywhere_and_wins() {
        let h = headers(&[(AUTHORIZATION, "Bearer abc"), (SEC_WEBSOCKET_PROTOCOL, "hotswap.v1, hotswap.bearer.x")]);
        assert_eq!(request_token(&h, "access_token=q", true).as_deref(), Some("abc"));
        assert_eq!(request_token(&h, "", false).as_deref(), Some("abc"));
        let h = headers(&[(AUTHORIZATION, "bearer  xyz ")]);
        assert_eq!(request_token(&h, "", false).as_deref(), Some("xyz"));
        let h = headers(&[(AUTHORIZATION, "Basic abc")]);
        assert_eq!(request_token(&h, "", false), None);
    }

    #[test]
    fn live_endpoints_also_take_the_subprotocol_then_the_query() {
        let h = headers(&[(SEC_WEBSOCKET_PROTOCOL, "hotswap.v1, hotswap.bearer.a.b-c_d")]);
        assert_eq!(request_token(&h, "access_token=q", true).as_deref(), Some("a.b-c_d"));
        assert_eq!(request_token(&h, "access_token=q", false), None, "only on live endpoints");
        let h = headers(&[(SEC_WEBSOCKET_PROTOCOL, "hotswap.v1"), (SEC_WEBSOCKET_PROTOCOL, "hotswap.bearer.t")]);
        assert_eq!(request_token(&h, "", true).as_deref(), Some("t"), "offers split over several headers");
        let h = headers(&[(SEC_WEBSOCKET_PROTOCOL, "hotswap.bearer.")]);
        assert_eq!(request_token(&h, "x=1&access_token=a%2Eb", true).as_deref(), Some("a.b"));
        assert_eq!(request_token(&HeaderMap::new(), "access_token=", true), None);
    }
}
