//! Who a request acts as, for the audit trail: the verified user (or
//! "anonymous"), the request's trace id, the client address as the trusted
//! proxies report it, and the user agent.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use hotswap_actors::domain::AuditActor;

use super::client::TrustedProxies;
use super::principal::principal_of;
use crate::web::trace::current_trace_id;
use crate::web::ApiError;

/// Long enough for any real browser; a bigger header is cut, not stored whole.
const MAX_USER_AGENT: usize = 256;

/// The audit actor of a request. Never fails: an anonymous caller (a login
/// attempt) is recorded as "anonymous".
pub struct Audited(pub AuditActor);

impl Audited {
    pub fn of(req: &HttpRequest) -> AuditActor {
        let mut actor = match principal_of(req) {
            Ok(p) => AuditActor::user(p.user_id, p.username.clone()),
            Err(_) => AuditActor { name: "anonymous".into(), ..AuditActor::default() },
        };
        actor.trace_id = Some(current_trace_id());
        actor.source_address = match req.app_data::<web::Data<TrustedProxies>>() {
            Some(proxies) => proxies.client_ip(req),
            None => req.peer_addr().map(|a| a.ip()),
        };
        actor.user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        actor
    }
}

impl FromRequest for Audited {
    type Error = ApiError;
    type Future = Ready<Result<Audited, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Ok(Audited(Audited::of(req))))
    }
}
