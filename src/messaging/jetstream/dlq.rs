//! Dead letters: one stream for all topics, one subject per message and
//! subscription it died on.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;

use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{DeadLetter, DeadLetterPage, LetterRange, MessageStatus, MessagingError};

use super::error::nats_error;
use super::names::keys;
use super::publish::CopyId;
use super::records::{self, MessageRecord};
use super::setup::JetStreamMessageStore;
use super::streams;

/// Letters fetched per request while reading up to a page's end.
const LETTER_BATCH: usize = 500;

/// Skips `range.offset` letters of `reader` and answers the next `range.limit`.
async fn read_page(reader: &mut PullConsumer, range: LetterRange) -> Result<DeadLetterPage, MessagingError> {
    let total = reader.cached_info().num_pending as usize;
    let end = range.offset.saturating_add(range.limit).min(total);
    let mut letters = Vec::with_capacity(end.saturating_sub(range.offset));
    let mut seen = 0;
    while seen < end {
        let mut batch =
            reader.fetch().max_messages((end - seen).min(LETTER_BATCH)).messages().await.map_err(nats_error)?;
        let before = seen;
        while let Some(m) = batch.try_next().await.map_err(nats_error)? {
            if seen >= range.offset && seen < end {
                letters.push(serde_json::from_slice(&m.payload).map_err(|e| MessagingError::Backend(e.to_string()))?);
            }
            seen += 1;
        }
        // Letters purged while reading: the page ends with what there is.
        if seen == before {
            break;
        }
    }
    Ok(DeadLetterPage { letters, total })
}

impl JetStreamMessageStore {
    /// The page `range` of the topic's letters, oldest first. An ephemeral
    /// consumer over the topic's letter subjects delivers the last message of
    /// each subject (one subject per letter) in the order they arrived; its
    /// pending count is how many letters there are. Only the letters up to
    /// the page's end are read, in batches, instead of a request per letter.
    pub(super) async fn dead_letters_impl(
        &self,
        tenant: TenantId,
        topic: &str,
        range: LetterRange,
    ) -> Result<DeadLetterPage, MessagingError> {
        self.meta.lock().topic(tenant, topic)?;
        let dlq = self.dlq().await?;
        let mut reader = dlq
            .create_consumer(pull::Config {
                filter_subject: self.names.dlq_topic_filter(tenant, topic),
                deliver_policy: DeliverPolicy::LastPerSubject,
                ack_policy: AckPolicy::None,
                // Removed by the server if this read is cut off before it deletes it.
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(nats_error)?;
        let read = read_page(&mut reader, range).await;
        let name = reader.cached_info().name.clone();
        if let Err(e) = dlq.delete_consumer(&name).await {
            tracing::debug!(error = %e, "the dead-letter reader is left to expire");
        }
        read
    }

    /// Sends the message again to the subscription it died on, as a new
    /// copy (attempts start over), then removes the dead letter. Refused,
    /// the letter kept, when that subscription was deleted.
    pub(super) async fn replay_dead_letter_impl(
        &self,
        tenant: TenantId,
        topic: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        self.meta.lock().topic(tenant, topic)?;
        let dlq = self.dlq().await?;
        let subjects = streams::subjects(&dlq, &self.names.dlq_message_filter(tenant, topic, message_id)).await?;
        if subjects.is_empty() {
            return Err(MessagingError::MessageNotFound(message_id.to_owned()));
        }
        let Some((record, _)) = records::get::<MessageRecord>(&self.kv, &keys::message(tenant, message_id)).await?
        else {
            return Err(MessagingError::MessageNotFound(message_id.to_owned()));
        };
        let mut letters = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let Some(m) = streams::last_on(&dlq, &subject).await? else { continue };
            let letter: DeadLetter =
                serde_json::from_slice(&m.payload).map_err(|e| MessagingError::Backend(e.to_string()))?;
            letters.push((subject, letter.subscription_id));
        }
        // Every letter is checked before any is sent: a refusal leaves them all.
        if let Some((_, gone)) = letters.iter().find(|(_, sub)| self.meta.lock().sub(tenant, *sub).is_err()) {
            return Err(MessagingError::replay_target_gone(message_id, *gone));
        }
        let replay_id = now.timestamp_nanos_opt().unwrap_or(0).unsigned_abs() ^ self.next_seq();
        for (subject, subscription) in letters {
            self.send_copies(tenant, &record.message, &[subscription], CopyId::Replay(replay_id)).await?;
            dlq.purge().filter(subject).await.map_err(nats_error)?;
        }
        self.set_status(tenant, message_id, MessageStatus::Pending).await?;
        self.notify.notify_waiters();
        Ok(())
    }

    pub(super) async fn purge_dead_letter_impl(
        &self,
        tenant: TenantId,
        topic: &str,
        message_id: &str,
    ) -> Result<(), MessagingError> {
        self.meta.lock().topic(tenant, topic)?;
        let dlq = self.dlq().await?;
        let purged =
            dlq.purge().filter(self.names.dlq_message_filter(tenant, topic, message_id)).await.map_err(nats_error)?;
        if purged.purged == 0 {
            return Err(MessagingError::MessageNotFound(message_id.to_owned()));
        }
        Ok(())
    }
}
