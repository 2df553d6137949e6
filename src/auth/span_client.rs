//! The client address the request span records (`http.client_ip`, in every
//! log line and trace of the request) is the one [`TrustedProxies`] finds,
//! not what a client wrote in `Forwarded` or `X-Forwarded-For`.
//!
//! The span builder reads actix's `realip_remote_addr`, which believes those
//! headers from anyone. Outside the tracing logger, [`present_client_address`]
//! puts the address we trust in their place; inside it,
//! [`restore_forwarding_headers`] gives everything after the span the headers
//! as they came (the rate limiter and the audit trail read them themselves).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, FORWARDED, X_FORWARDED_FOR};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use super::client::TrustedProxies;

/// The forwarding headers as they arrived, while the span's view is in place.
struct ArrivedHeaders(Vec<(HeaderName, HeaderValue)>);

/// Outside the tracing logger: the span sees only the trusted client address.
pub async fn present_client_address(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let forwarded = [FORWARDED, X_FORWARDED_FOR].iter().any(|name| req.headers().contains_key(name));
    if forwarded {
        let client = match req.app_data::<web::Data<TrustedProxies>>() {
            Some(proxies) => proxies.client_ip(req.request()),
            None => req.peer_addr().map(|a| a.ip()),
        };
        let mut arrived = Vec::new();
        for name in [FORWARDED, X_FORWARDED_FOR] {
            arrived.extend(req.headers().get_all(&name).map(|v| (name.clone(), v.clone())));
            req.headers_mut().remove(&name);
        }
        if let Some(value) = client.and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok()) {
            req.headers_mut().insert(X_FORWARDED_FOR, value);
        }
        req.extensions_mut().insert(ArrivedHeaders(arrived));
    }
    next.call(req).await
}

/// Inside the tracing logger: everything after it sees the headers as they came.
pub async fn restore_forwarding_headers(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let arrived = req.extensions_mut().remove::<ArrivedHeaders>();
    if let Some(ArrivedHeaders(headers)) = arrived {
        req.headers_mut().remove(FORWARDED);
        req.headers_mut().remove(X_FORWARDED_FOR);
        for (name, value) in headers {
            req.headers_mut().append(name, value);
        }
    }
    next.call(req).await
}
