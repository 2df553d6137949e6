//! Dead letters: one stream for all topics, one subject per message and
//! subscription it died on.

use chrono::{DateTime, Utc};

use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{DeadLetter, DeadLetterPage, LetterRange, MessageStatus, MessagingError};

use super::error::nats_error;
use super::names::keys;
use super::publish::CopyId;
use super::records::{self, MessageRecord};
use super::setup::JetStreamMessageStore;
use super::streams;

impl JetStreamMessageStore {
    /// Every letter is read to order them (one subject per letter, each
    /// letter its subject's last message), and only the page is answered.
    pub(super) async fn dead_letters_impl(
        &self,
        tenant: TenantId,
        topic: &str,
        range: LetterRange,
    ) -> Result<DeadLetterPage, MessagingError> {
        self.meta.lock().topic(tenant, topic)?;
        let dlq = self.dlq().await?;
        let mut letters = Vec::new();
        for subject in streams::subjects(&dlq, &self.names.dlq_topic_filter(tenant, topic)).await? {
            if let Some(m) = streams::last_on(&dlq, &subject).await? {
                let letter: DeadLetter =
                    serde_json::from_slice(&m.payload).map_err(|e| MessagingError::Backend(e.to_string()))?;
                letters.push(letter);
            }
        }
        letters.sort_by_key(|l| l.dead_lettered_at);
        Ok(DeadLetterPage::of(&letters, range))
    }

    /// Sends the message again to the subscription it died on, as a new
    /// copy (attempts start over), then removes the dead letter.
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
        let replay_id = now.timestamp_nanos_opt().unwrap_or(0).unsigned_abs() ^ self.next_seq();
        for subject in subjects {
            let Some(m) = streams::last_on(&dlq, &subject).await? else { continue };
            let letter: DeadLetter =
                serde_json::from_slice(&m.payload).map_err(|e| MessagingError::Backend(e.to_string()))?;
            self.send_copies(tenant, &record.message, &[letter.subscription_id], CopyId::Replay(replay_id)).await?;
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
