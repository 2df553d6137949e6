//! NATS failures as the bus's errors: a server that cannot be reached (or
//! answers too late) is `Unavailable`, worth retrying; anything else is a
//! `Backend` failure.

use hotswap_actors::messaging::MessagingError;

pub fn nats_error(e: impl std::fmt::Display) -> MessagingError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let transient = ["timed out", "timeout", "no responders", "disconnected", "connection", "broken pipe"];
    if transient.iter().any(|t| lower.contains(t)) {
        MessagingError::Unavailable(format!("NATS: {text}"))
    } else {
        MessagingError::Backend(format!("NATS: {text}"))
    }
}

/// A failure reading a subscription's consumer: the consumer deleted under
/// the read (the subscription was deleted meanwhile) is the subscription not
/// found, as the other back-ends say it; anything else as [`nats_error`].
pub fn consumer_error(e: impl std::fmt::Display, subscription: uuid::Uuid) -> MessagingError {
    let text = e.to_string().to_ascii_lowercase();
    if text.contains("consumer deleted") || text.contains("consumer not found") {
        MessagingError::SubscriptionNotFound(subscription.to_string())
    } else {
        nats_error(e)
    }
}
