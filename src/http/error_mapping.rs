//! How the errors of the adapters below the HTTP layer become `ApiError`s.

use serde_json::Map;

use crate::auth::users::{UserError, INVALID_CREDENTIALS};
use crate::web::ApiError;

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Validation(details) => ApiError::validation(details),
            UserError::InvalidCredentials => ApiError::Unauthorized(INVALID_CREDENTIALS.into()),
            UserError::NotFound(m) => ApiError::NotFound(m),
            UserError::Conflict(message) => ApiError::Conflict { message, extra: Map::new() },
            UserError::Forbidden(m) => ApiError::Forbidden(m),
            UserError::Unavailable(m) => ApiError::Unavailable(m),
            UserError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<crate::registry::RegistryError> for ApiError {
    fn from(e: crate::registry::RegistryError) -> Self {
        use crate::registry::RegistryError as R;
        match e {
            R::Invalid(details) => ApiError::validation(details),
            R::TooLarge(m) => ApiError::PayloadTooLarge(m),
            R::NotFound(m) => ApiError::NotFound(m),
            R::Conflict(message) => ApiError::Conflict { message, extra: Map::new() },
            R::Refused(m) => ApiError::Unprocessable(m),
            R::Quota(q) => ApiError::Quota(q),
            R::Unavailable(m) => ApiError::Unavailable(m),
            R::Internal(m) => ApiError::Internal(m),
        }
    }
}
