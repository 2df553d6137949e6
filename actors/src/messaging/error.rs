use thiserror::Error;

/// What the bus refuses. Adapters map each kind to one status code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MessagingError {
    #[error("topic '{0}' not found")]
    TopicNotFound(String),
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("subscription '{0}' not found")]
    SubscriptionNotFound(String),
    #[error("message '{0}' not found")]
    MessageNotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("payload of {0} bytes exceeds the limit")]
    PayloadTooLarge(usize),
    #[error("message '{0}' has no live lease for this subscription")]
    LeaseNotHeld(String),
}
