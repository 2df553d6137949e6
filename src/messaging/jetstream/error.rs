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
