//! The one error type of the HTTP API and its mapping to status codes. Every
//! error body has the same shape: `{error, message, details?, traceId}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use hotswap_actors::CoreError;
use serde_json::{json, Map, Value};

use super::trace::current_trace_id;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation { message: String, details: Vec<String> },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{message}")]
    Conflict { message: String, extra: Map<String, Value> },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(details: Vec<String>) -> Self {
        let message = match details.len() {
            1 => details[0].clone(),
            n => format!("{n} fields are invalid"),
        };
        ApiError::Validation { message, details }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "Validation Failed",
            ApiError::BadRequest(_) => "Bad Request",
            ApiError::NotFound(_) => "Not Found",
            ApiError::MethodNotAllowed(_) => "Method Not Allowed",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::PayloadTooLarge(_) => "Payload Too Large",
            ApiError::UnsupportedMediaType(_) => "Unsupported Media Type",
            ApiError::Unavailable(_) => "Service Unavailable",
            ApiError::Internal(_) => "Internal Server Error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            // Internal details stay in the log, keyed by the trace id.
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "An unexpected error occurred".to_string()
            }
            other => other.to_string(),
        };
        let mut body = Map::new();
        body.insert("error".into(), json!(self.title()));
        body.insert("message".into(), json!(message));
        match self {
            ApiError::Validation { details, .. } => {
                body.insert("details".into(), json!(details));
            }
            ApiError::Conflict { extra, .. } => body.extend(extra.clone()),
            _ => {}
        }
        body.insert("traceId".into(), json!(current_trace_id()));
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unavailable(_)) {
            response.insert_header(("Retry-After", "5"));
        }
        response.json(Value::Object(body))
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound(m) => ApiError::NotFound(m),
            CoreError::Validation(details) => ApiError::validation(details),
            CoreError::ModuleBusy { module, execution_id } => {
                let mut extra = Map::new();
                extra.insert("activeExecutionId".into(), json!(execution_id));
                ApiError::Conflict {
                    message: format!("Module '{module}' already has an active deployment {execution_id}"),
                    extra,
                }
            }
            CoreError::WrongState { message, status } => {
                let mut extra = Map::new();
                extra.insert("currentStatus".into(), json!(status.as_str()));
                ApiError::Conflict { message, extra }
            }
            CoreError::Refused(message) => ApiError::Conflict { message, extra: Map::new() },
            CoreError::Unavailable(m) => ApiError::Unavailable(m),
            CoreError::Internal(m) => ApiError::Internal(m),
        }
    }
}
