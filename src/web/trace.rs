//! A trace id per request: answered in the `X-Trace-Id` header and in every
//! error body, so that a client's report can be matched with the logs and the
//! traces. It is the OpenTelemetry trace id of the request's span (which
//! continues an incoming `traceparent`); random only when spans are not traced.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use uuid::Uuid;

tokio::task_local! {
    static TRACE_ID: String;
}

pub const TRACE_HEADER: &str = "x-trace-id";

/// The trace id of the request being handled, or a fresh one outside a request.
pub fn current_trace_id() -> String {
    TRACE_ID.try_with(Clone::clone).unwrap_or_else(|_| new_trace_id())
}

/// 32 lower-case hex digits, the W3C trace-context form.
pub fn new_trace_id() -> String {
    Uuid::new_v4().simple().to_string()
}

pub async fn assign_trace_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let span = req.extensions().get::<tracing_actix_web::RootSpan>().map(|s| tracing::Span::from(s.clone()));
    let id = span.as_ref().and_then(crate::telemetry::trace_id_of).unwrap_or_else(new_trace_id);
    let mut response = TRACE_ID.scope(id.clone(), next.call(req)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HeaderName::from_static(TRACE_HEADER), value);
    }
    Ok(response)
}
