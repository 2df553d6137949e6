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
    /// The back-end cannot be reached right now (a database or NATS server
    /// down or overloaded): worth retrying; 503 to a client.
    #[error("the message store is unavailable: {0}")]
    Unavailable(String),
    /// The back-end failed in a way retrying will not fix; 500 to a client.
    #[error("the message store failed: {0}")]
    Backend(String),
}

impl MessagingError {
    /// A dead letter whose subscription was deleted has nowhere to be
    /// replayed to; every back-end refuses it alike and keeps the letter,
    /// its only copy.
    pub fn replay_target_gone(message_id: &str, subscription: uuid::Uuid) -> Self {
        MessagingError::Conflict(format!(
            "dead letter '{message_id}' died on subscription '{subscription}', which was deleted: it cannot be \
             replayed and stays in the dead-letter queue; purge it, or publish its payload again"
        ))
    }
}
