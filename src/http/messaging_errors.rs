//! How the message bus's refusals become API errors.

use hotswap_actors::messaging::MessagingError;
use serde_json::Map;

use crate::messaging::BusError;
use crate::web::ApiError;

impl From<MessagingError> for ApiError {
    fn from(e: MessagingError) -> Self {
        match e {
            MessagingError::TopicNotFound(_)
            | MessagingError::SubscriptionNotFound(_)
            | MessagingError::MessageNotFound(_) => ApiError::NotFound(e.to_string()),
            MessagingError::TopicExists(_) | MessagingError::Conflict(_) | MessagingError::LeaseNotHeld(_) => {
                ApiError::Conflict { message: e.to_string(), extra: Map::new() }
            }
            MessagingError::Invalid(m) => ApiError::validation(vec![m]),
            MessagingError::PayloadTooLarge(n) => {
                ApiError::PayloadTooLarge(format!("the payload of {n} bytes exceeds the limit"))
            }
            MessagingError::Unavailable(m) => ApiError::Unavailable(m),
            MessagingError::Backend(m) => ApiError::Internal(m),
        }
    }
}

impl From<BusError> for ApiError {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Messaging(m) => m.into(),
            BusError::Schema(e) => e.into(),
            BusError::AtLimit(message) => ApiError::Conflict { message, extra: Map::new() },
            e @ BusError::PayloadTooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
            BusError::Reserved(message) => ApiError::Reserved(message),
            BusError::SchemaMismatch { schema_id, version, errors } => {
                let details: Vec<String> =
                    errors.into_iter().map(|e| format!("payload{}: {} ({})", e.path, e.message, e.kind)).collect();
                ApiError::Validation {
                    message: format!("the payload does not match schema '{schema_id}' version {version}"),
                    details,
                }
            }
        }
    }
}
