//! Refusals written by middleware that is not ours (CORS: "Origin is not
//! allowed to make this request", as plain text) rewritten in the API's JSON
//! error shape, so that every 4xx a client sees has `{error, code, message,
//! traceId}`.

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use super::ApiError;

/// The longest message kept from a plain-text refusal.
const MESSAGE_CHARS: usize = 300;

pub async fn as_json(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let response = next.call(req).await?.map_into_boxed_body();
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
    let status = response.status();
    if json || !matches!(status, StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN) {
        return Ok(response);
    }
    let (request, plain) = response.into_parts();
    let text = to_bytes(plain.into_body()).await.unwrap_or_default();
    let message: String = String::from_utf8_lossy(&text).trim().chars().take(MESSAGE_CHARS).collect();
    let message = if message.is_empty() { status.canonical_reason().unwrap_or("refused").to_string() } else { message };
    let error = match status {
        StatusCode::FORBIDDEN => ApiError::Forbidden(message),
        _ => ApiError::BadRequest(message),
    };
    Ok(ServiceResponse::new(request, error.error_response()))
}
