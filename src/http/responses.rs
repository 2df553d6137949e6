//! Error answers that many operations share, documented once. An operation
//! lists a set first and then its own answers, which replace the set's where
//! both name a status (utoipa keeps the last one).

use utoipa::IntoResponses;

use crate::web::ErrorBody;

/// What any operation behind a token may answer besides its own results.
#[derive(IntoResponses)]
#[allow(dead_code)] // Documentation only: the bodies are built by `ApiError`.
pub enum Protected {
    #[response(status = 401, description = "No valid token")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "The token's role does not allow this, or the tenant is suspended")]
    Forbidden(ErrorBody),
    #[response(status = 429, description = "Rate limit exceeded (Retry-After)")]
    TooManyRequests(ErrorBody),
    #[response(status = 503, description = "The store is unavailable (Retry-After)")]
    Unavailable(ErrorBody),
}

/// What a public operation may answer besides its own results.
#[derive(IntoResponses)]
#[allow(dead_code)] // Documentation only: the bodies are built by `ApiError`.
pub enum Public {
    #[response(status = 429, description = "Rate limit exceeded (Retry-After)")]
    TooManyRequests(ErrorBody),
    #[response(status = 503, description = "The store is unavailable (Retry-After)")]
    Unavailable(ErrorBody),
}

/// What an operation that reads a JSON body may answer about the body itself.
#[derive(IntoResponses)]
#[allow(dead_code)] // Documentation only: the bodies are built by `ApiError`.
pub enum JsonBody {
    #[response(status = 400, description = "Invalid fields, all reported together, or a malformed body")]
    BadRequest(ErrorBody),
    #[response(status = 413, description = "Body too large")]
    PayloadTooLarge(ErrorBody),
    #[response(status = 415, description = "Not JSON")]
    UnsupportedMediaType(ErrorBody),
}
