//! Small helpers over streams: the subjects holding messages, and whether
//! one subject still holds a message.

use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use futures::TryStreamExt;

use hotswap_actors::messaging::MessagingError;

use super::error::nats_error;

/// The subjects under `filter` that hold at least one message.
pub async fn subjects(stream: &Stream, filter: &str) -> Result<Vec<String>, MessagingError> {
    let mut found = Vec::new();
    let mut listed = stream.info_with_subjects(filter).await.map_err(nats_error)?;
    while let Some((subject, count)) = listed.try_next().await.map_err(nats_error)? {
        if count > 0 {
            found.push(subject);
        }
    }
    Ok(found)
}

/// The newest message on a subject, if any.
pub async fn last_on(
    stream: &Stream,
    subject: &str,
) -> Result<Option<async_nats::jetstream::message::StreamMessage>, MessagingError> {
    match stream.direct_get_last_for_subject(subject).await {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
        Err(e) => Err(nats_error(e)),
    }
}

/// The oldest message on the subjects under `filter`, if any.
pub async fn first_on(
    stream: &Stream,
    filter: &str,
) -> Result<Option<async_nats::jetstream::message::StreamMessage>, MessagingError> {
    match stream.direct_get_next_for_subject(filter, None).await {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
        Err(e) => Err(nats_error(e)),
    }
}
