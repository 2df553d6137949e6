//! Security headers on every response, errors included.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error};

use super::client::TrustedProxies;
use super::settings::SecurityHeaderSettings;

/// Swagger UI runs scripts and styles of its own; only its pages get this.
const DOCS_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                           script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The header values, parsed once at start-up.
pub struct SecurityHeaders {
    csp: HeaderValue,
    docs_csp: HeaderValue,
    referrer: HeaderValue,
    permissions: HeaderValue,
    hsts: Option<HeaderValue>,
    tls: bool,
    proxies: TrustedProxies,
}

impl SecurityHeaders {
    pub fn new(
        settings: &SecurityHeaderSettings,
        tls: bool,
        proxies: TrustedProxies,
    ) -> Result<SecurityHeaders, String> {
        let value = |key: &str, v: &str| {
            HeaderValue::from_str(v).map_err(|_| format!("security_headers.{key} is not a valid header value"))
        };
        Ok(SecurityHeaders {
            csp: value("content_security_policy", &settings.content_security_policy)?,
            docs_csp: HeaderValue::from_static(DOCS_POLICY),
            referrer: value("referrer_policy", &settings.referrer_policy)?,
            permissions: value("permissions_policy", &settings.permissions_policy)?,
            hsts: match settings.strict_transport_security.trim() {
                "" => None,
                v => Some(value("strict_transport_security", v)?),
            },
            tls,
            proxies,
        })
    }
}

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(config) = req.app_data::<web::Data<SecurityHeaders>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let https = config.proxies.is_https(&req, config.tls);
    let docs = req.path() == "/swagger-ui" || req.path().starts_with("/swagger-ui/");
    // The layers inside answer errors as responses (routing would panic if
    // this held a copy of the request to build one from).
    let mut res = next.call(req).await?.map_into_boxed_body();
    let headers = res.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, config.referrer.clone());
    headers.insert(HeaderName::from_static("permissions-policy"), config.permissions.clone());
    // A page that states its own policy (the dashboard's) keeps it.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, if docs { &config.docs_csp } else { &config.csp }.clone());
    }
    headers.insert(HeaderName::from_static("x-permitted-cross-domain-policies"), HeaderValue::from_static("none"));
    if let (true, Some(hsts)) = (https, &config.hsts) {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    headers.remove(header::SERVER);
    headers.remove(HeaderName::from_static("x-powered-by"));
    Ok(res)
}
