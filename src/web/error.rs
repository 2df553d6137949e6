//! The one error type of the HTTP API and its mapping to status codes. Every
//! error body has the same shape: `{error, code, message, details?, traceId}`.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use chrono::{DateTime, TimeDelta, Utc};
use hotswap_actors::domain::{QuotaExceeded, QuotaKind};
use hotswap_actors::tenant::start_of_day;
use hotswap_actors::CoreError;
use serde_json::{json, Map, Value};

use super::trace::current_trace_id;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation { message: String, details: Vec<String> },
    #[error("{0}")]
    BadRequest(String),
    /// No valid token (or, at login, wrong credentials).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token whose user lacks the role.
    #[error("{0}")]
    Forbidden(String),
    /// A name the server keeps for itself (the `hotswap.deployments` topic).
    #[error("{0}")]
    Reserved(String),
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
    /// A tenant quota: 429 for rate-like quotas (runs at once, runs per
    /// day), 403 for capacity quotas; the body names quota, limit and use.
    #[error("{0}")]
    Quota(QuotaExceeded),
    /// Well-formed but refused by policy (a bad signature, a short key).
    #[error("{0}")]
    Unprocessable(String),
    #[error("Too many requests. Please retry after {retry_after} seconds.")]
    TooManyRequests { retry_after: u64, headers: Vec<(HeaderName, HeaderValue)> },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// Retry-After of a `concurrentRuns` refusal, in seconds.
const CONCURRENT_RUNS_RETRY_SECS: i64 = 30;

impl ApiError {
    pub fn validation(details: Vec<String>) -> Self {
        let message = match details.len() {
            1 => details[0].clone(),
            n => format!("{n} fields are invalid"),
        };
        ApiError::Validation { message, details }
    }

    /// A stable machine-readable code per kind of failure, documented in
    /// docs/ARCHITECTURE.md; clients branch on it, people read `error` and `message`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation_failed",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Reserved(_) => "reserved_topic",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict { extra, .. } if extra.contains_key("activeExecutionId") => "module_busy",
            ApiError::Conflict { extra, .. } if extra.contains_key("currentStatus") => "invalid_state",
            ApiError::Conflict { .. } => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Quota(_) => "quota_exceeded",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "Validation Failed",
            ApiError::BadRequest(_) => "Bad Request",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) | ApiError::Reserved(_) => "Forbidden",
            ApiError::NotFound(_) => "Not Found",
            ApiError::MethodNotAllowed(_) => "Method Not Allowed",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::PayloadTooLarge(_) => "Payload Too Large",
            ApiError::UnsupportedMediaType(_) => "Unsupported Media Type",
            ApiError::Quota(_) => "Quota exceeded",
            ApiError::Unprocessable(_) => "Unprocessable Entity",
            ApiError::TooManyRequests { .. } => "Rate limit exceeded",
            ApiError::Unavailable(_) => "Service Unavailable",
            ApiError::Internal(_) => "Internal Server Error",
        }
    }
}

impl ApiError {
    /// For a refusal by the runs-per-day quota, the seconds until it frees
    /// up: the day is counted in UTC (`start_of_day`). A refusal by
    /// concurrent runs frees up when a run ends, which no one can say.
    fn quota_retry_after(&self, now: DateTime<Utc>) -> Option<i64> {
        match self {
            ApiError::Quota(q) if q.quota == QuotaKind::RunsPerDay => {
                let next_day = start_of_day(now) + TimeDelta::days(1);
                Some((next_day - now).num_seconds().max(1))
            }
            // A place frees when one of the tenant's runs ends, which no one
            // can tell in advance: a polling interval, so that clients that
            // honour 429s back off rather than retry at once.
            ApiError::Quota(q) if q.quota == QuotaKind::ConcurrentRuns => Some(CONCURRENT_RUNS_RETRY_SECS),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Reserved(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Quota(q) if q.quota.is_rate() => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Quota(_) => StatusCode::FORBIDDEN,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
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
        body.insert("code".into(), json!(self.code()));
        body.insert("message".into(), json!(message));
        match self {
            ApiError::Validation { details, .. } => {
                body.insert("details".into(), json!(details));
            }
            ApiError::Conflict { extra, .. } => body.extend(extra.clone()),
            ApiError::TooManyRequests { retry_after, .. } => {
                body.insert("retryAfter".into(), json!(retry_after));
            }
            ApiError::Quota(q) => {
                body.insert("quota".into(), json!(q.quota.as_str()));
                body.insert("limit".into(), json!(q.limit));
                body.insert("current".into(), json!(q.current));
            }
            _ => {}
        }
        let quota_retry_after = self.quota_retry_after(Utc::now());
        if let Some(seconds) = quota_retry_after {
            body.insert("retryAfter".into(), json!(seconds));
        }
        body.insert("traceId".into(), json!(current_trace_id()));
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unavailable(_) => {
                response.insert_header(("Retry-After", "5"));
            }
            ApiError::Unauthorized(_) => {
                response.insert_header(("WWW-Authenticate", "Bearer"));
            }
            ApiError::TooManyRequests { retry_after, headers } => {
                response.insert_header(("Retry-After", retry_after.to_string()));
                for (name, value) in headers {
                    response.insert_header((name.clone(), value.clone()));
                }
            }
            _ => {}
        }
        if let Some(seconds) = quota_retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
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
            CoreError::ApprovalClosed { message, status } => {
                let mut extra = Map::new();
                extra.insert("currentStatus".into(), json!(status.as_str()));
                ApiError::Conflict { message, extra }
            }
            CoreError::Forbidden(m) => ApiError::Forbidden(m),
            CoreError::Refused(message) => ApiError::Conflict { message, extra: Map::new() },
            CoreError::Quota(q) => ApiError::Quota(q),
            CoreError::Unavailable(m) => ApiError::Unavailable(m),
            CoreError::Overloaded { retry_after_secs, .. } => {
                ApiError::TooManyRequests { retry_after: retry_after_secs, headers: Vec::new() }
            }
            CoreError::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// A store failure met outside the core: mapped as the core maps it.
impl From<hotswap_actors::store::StoreError> for ApiError {
    fn from(e: hotswap_actors::store::StoreError) -> Self {
        CoreError::from(e).into()
    }
}

/// The shape of every error body, for the OpenAPI document.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // Describes the JSON built in `error_response`.
pub struct ErrorBody {
    /// A short title such as "Not Found" or "Validation Failed".
    pub error: String,
    /// A stable machine code: validation_failed, bad_request, unauthorized,
    /// forbidden, not_found, method_not_allowed, module_busy, invalid_state,
    /// conflict, payload_too_large, unsupported_media_type, quota_exceeded,
    /// unprocessable, rate_limited, unavailable, internal_error.
    pub code: String,
    pub message: String,
    /// Every validation message, for 400 "Validation Failed".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<String>>,
    /// The id to quote when reporting a problem; also in the X-Trace-Id header.
    pub trace_id: String,
    /// 409 on creating a run: the run that holds the module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_execution_id: Option<uuid::Uuid>,
    /// 409 on a verb: the run's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_status: Option<String>,
    /// 429: seconds to wait, as in Retry-After.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// 429 or 403 "Quota exceeded": the quota (concurrentRuns, runsPerDay, modules, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
    /// With `quota`: its limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// With `quota`: the use when the request was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn quota(kind: QuotaKind) -> ApiError {
        ApiError::Quota(QuotaExceeded { quota: kind, limit: 10, current: 10 })
    }

    #[test]
    fn a_runs_per_day_refusal_says_when_the_utc_day_ends_and_concurrent_runs_give_a_polling_interval() {
        let evening = Utc.with_ymd_and_hms(2026, 12, 7, 23, 59, 0).unwrap();
        assert_eq!(quota(QuotaKind::RunsPerDay).quota_retry_after(evening), Some(60));
        assert_eq!(quota(QuotaKind::ConcurrentRuns).quota_retry_after(evening), Some(CONCURRENT_RUNS_RETRY_SECS));
        let response = quota(QuotaKind::RunsPerDay).error_response();
        let seconds: i64 = response.headers().get("Retry-After").unwrap().to_str().unwrap().parse().unwrap();
        assert!((1..=86_400).contains(&seconds));
        let response = quota(QuotaKind::ConcurrentRuns).error_response();
        assert_eq!(response.headers().get("Retry-After").unwrap(), "30");
        // Capacity quotas free up only when something is removed: no hint.
        assert!(quota(QuotaKind::Modules).error_response().headers().get("Retry-After").is_none());
    }
}
