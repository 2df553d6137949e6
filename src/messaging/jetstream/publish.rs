//! Publishing: the ExactlyOnce check, routing (HotSwap's, not the
//! server's), the message record, then one copy per routed subscription.

use async_nats::jetstream::publish::PublishAck;
use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{
    route, DeliveryGuarantee, Message, MessageStatus, MessagingError, NewMessage, Published, RouteCandidate,
    RoutingStrategy,
};

use super::error::nats_error;
use super::names::{id_key, keys};
use super::records::{self, IdempotencyRecord, MessageRecord};
use super::setup::JetStreamMessageStore;

impl JetStreamMessageStore {
    pub(super) async fn publish_impl(
        &self,
        tenant: TenantId,
        new: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Published, MessagingError> {
        new.validate()?;
        if self.ownership.lost() {
            return Err(MessagingError::Unavailable("another HotSwap instance took over this JetStream prefix".into()));
        }
        let topic = self.meta.lock().topic(tenant, &new.topic_name)?.topic.clone();
        let message_id = new.message_id.clone().unwrap_or_else(|| Uuid::new_v4().to_string());
        let exactly_once = topic.spec.delivery_guarantee == DeliveryGuarantee::ExactlyOnce;
        let dedup_key = new.idempotency_key.clone().or_else(|| new.message_id.clone()).filter(|_| exactly_once);
        if let Some(k) = &dedup_key {
            if let Some(first) = self.claim_idempotency_key(tenant, &topic.spec.name, k, &message_id, now).await? {
                return Ok(first);
            }
        }
        let message = Message {
            tenant_id: tenant,
            message_id: message_id.clone(),
            topic_name: new.topic_name.clone(),
            payload: new.payload,
            headers: new.headers,
            priority: new.priority,
            partition_key: new.partition_key,
            schema_version: new.schema_version,
            correlation_id: new.correlation_id,
            published_at: now,
            expires_at: new.expires_at,
        };
        let routed_to = self.route_message(tenant, &message)?;
        let record = MessageRecord {
            message: message.clone(),
            routed_to: routed_to.clone(),
            seq: self.next_seq(),
            status: MessageStatus::Pending,
            acknowledged_at: None,
        };
        // The record and the copies go out together (one round trip, not
        // two in sequence), and the publisher is answered only once the
        // server acknowledged every write. The record's "create only"
        // refuses a message id already used; the copies that went out
        // beside such a refused record are deleted again (a retried
        // publish of a message whose id the publisher named finds its
        // copies de-duplicated by their Nats-Msg-Id, and those are left
        // alone).
        let key = keys::message(tenant, &message_id);
        let sending = if new.message_id.is_some() { CopyId::Given } else { CopyId::Generated };
        let (created, copies) = tokio::join!(
            records::create(&self.kv, &key, &record),
            self.send_copies(tenant, &message, &routed_to, sending)
        );
        let created = match created {
            Ok(created) => created,
            Err(e) => {
                if let Ok(acks) = &copies {
                    self.withdraw_copies(tenant, &message.topic_name, acks).await;
                }
                return Err(e);
            }
        };
        if !created {
            if let Ok(acks) = &copies {
                self.withdraw_copies(tenant, &message.topic_name, acks).await;
            }
            return Err(MessagingError::Conflict(format!("message '{message_id}' already exists")));
        }
        if let Err(e) = copies {
            // The record says Pending with copies that may be missing: a
            // publish that failed is not acknowledged, and removing the
            // record lets the publisher retry with the same id.
            let _ = records::delete(&self.kv, &key).await;
            return Err(e);
        }
        self.meta.lock().count(tenant, &topic.spec.name, |c| {
            c.published += 1;
            if routed_to.is_empty() {
                c.unrouted += 1;
            }
        });
        self.notify.notify_waiters();
        Ok(Published { message: Arc::new(message), duplicate: false, routed_to })
    }

    /// Records the key for this message unless a live record of it names
    /// an earlier one, which is then the answer (`Some`); a record older
    /// than the window is replaced.
    async fn claim_idempotency_key(
        &self,
        tenant: TenantId,
        topic: &str,
        key: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Published>, MessagingError> {
        let kv_key = keys::idempotency(tenant, topic, key);
        let claim = IdempotencyRecord { message_id: message_id.to_owned(), seen: now };
        if records::create(&self.kv, &kv_key, &claim).await? {
            return Ok(None);
        }
        if let Some((seen, _)) = records::get::<IdempotencyRecord>(&self.kv, &kv_key).await? {
            let live = hotswap_actors::messaging::later_by(seen.seen, self.idempotency_window) > now;
            if live {
                if let Some((first, _)) =
                    records::get::<MessageRecord>(&self.kv, &keys::message(tenant, &seen.message_id)).await?
                {
                    return Ok(Some(Published {
                        message: Arc::new(first.message),
                        duplicate: true,
                        routed_to: first.routed_to,
                    }));
                }
            }
        }
        records::put(&self.kv, &kv_key, &claim).await?;
        Ok(None)
    }

    /// The core's routing over the cached subscriptions; a load-balanced
    /// choice takes the topic's next rotation position.
    fn route_message(&self, tenant: TenantId, message: &Message) -> Result<Vec<Uuid>, MessagingError> {
        let mut meta = self.meta.lock();
        let strategy = meta.topic(tenant, &message.topic_name)?.topic.effective_strategy();
        let subs = meta.subs_of(tenant, &message.topic_name);
        let candidates: Vec<RouteCandidate<'_>> = subs
            .iter()
            .map(|s| RouteCandidate {
                id: s.record.subscription.subscription_id,
                paused: s.record.subscription.paused,
                filter: s.record.subscription.spec.filter.as_ref(),
                last_assigned: s.last_assigned,
            })
            .collect();
        let chosen = route(strategy, &candidates, message);
        if strategy == RoutingStrategy::LoadBalanced {
            if let Some(id) = chosen.first() {
                let t = meta.topic_mut(tenant, &message.topic_name)?;
                t.rr_counter += 1;
                let position = t.rr_counter;
                if let Some(s) = meta.subs.get_mut(&(tenant, *id)) {
                    s.last_assigned = position;
                }
            }
        }
        Ok(chosen)
    }

    /// One copy per subscription, all sent before any acknowledgement is
    /// awaited; answers once the server has stored every one. `id` says
    /// whether the server should recognise a copy sent twice (see [`CopyId`]).
    pub(super) async fn send_copies(
        &self,
        tenant: TenantId,
        message: &Message,
        subs: &[Uuid],
        id: CopyId,
    ) -> Result<Vec<PublishAck>, MessagingError> {
        let body: bytes::Bytes =
            serde_json::to_vec(message).map_err(|e| MessagingError::Backend(e.to_string()))?.into();
        let mut pending = Vec::with_capacity(subs.len());
        for sub in subs {
            let subject =
                self.names.delivery_subject(tenant, &message.topic_name, *sub, message.priority, &message.message_id);
            let copy_id = match id {
                CopyId::Generated => None,
                CopyId::Given => Some(format!("{}.{}", id_key(&message.message_id), sub.simple())),
                CopyId::Replay(n) => Some(format!("{}.{}.r{n}", id_key(&message.message_id), sub.simple())),
            };
            let sent = match copy_id {
                Some(copy_id) => {
                    let mut headers = HeaderMap::new();
                    headers.insert("Nats-Msg-Id", copy_id.as_str());
                    self.js.publish_with_headers(subject, headers, body.clone()).await
                }
                None => self.js.publish(subject, body.clone()).await,
            };
            let ack = sent.map_err(publish_error)?;
            pending.push(ack);
        }
        let mut acks = Vec::with_capacity(pending.len());
        for ack in futures::future::join_all(pending.into_iter().map(std::future::IntoFuture::into_future)).await {
            acks.push(ack.map_err(publish_error)?);
        }
        Ok(acks)
    }

    /// Deletes the copies a refused publish stored (not those the server
    /// recognised as duplicates of an earlier publish: they are that
    /// publish's). Best effort: a copy left behind is a stray delivery of
    /// a message the publisher was told failed, logged here.
    async fn withdraw_copies(&self, tenant: TenantId, topic: &str, acks: &[PublishAck]) {
        let fresh: Vec<u64> = acks.iter().filter(|a| !a.duplicate).map(|a| a.sequence).collect();
        if fresh.is_empty() {
            return;
        }
        let stream = match self.stream(tenant, topic).await {
            Ok(s) => s,
            Err(e) => return tracing::warn!(error = %e, "could not withdraw the copies of a refused publish"),
        };
        for seq in fresh {
            if let Err(e) = stream.delete_message(seq).await {
                tracing::warn!(error = %e, seq, "could not withdraw a copy of a refused publish");
            }
        }
    }
}

/// What the server is told to de-duplicate a message's copies by
/// (`Nats-Msg-Id`, within the stream's duplicate window).
#[derive(Debug, Clone, Copy)]
pub(super) enum CopyId {
    /// The id was made here for this publish and no other call can send it
    /// again: there is nothing to de-duplicate, and the server is spared
    /// keeping an id per copy.
    Generated,
    /// The publisher named the id: a retried publish of it finds its
    /// copies already stored.
    Given,
    /// A dead letter sent again: a new id for each replay.
    Replay(u64),
}

fn publish_error(e: impl std::fmt::Display) -> MessagingError {
    let text = e.to_string();
    if text.to_ascii_lowercase().contains("payload") && text.to_ascii_lowercase().contains("max") {
        MessagingError::PayloadTooLarge(0)
    } else {
        nats_error(text)
    }
}
