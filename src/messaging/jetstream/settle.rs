//! Settling a lease: ack, nack, and the failure path both nacks and expired
//! leases take (retry after backoff, drop, or dead-letter).

use async_nats::jetstream::AckKind;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{DeadLetter, DeliveryGuarantee, MessageStatus, MessagingError, NackOptions};

use super::error::nats_error;
use super::meta::SubView;
use super::names::keys;
use super::records::{self, MessageRecord};
use super::runtime::Fetched;
use super::setup::JetStreamMessageStore;
use super::streams;

impl JetStreamMessageStore {
    pub(super) async fn ack_impl(
        &self,
        tenant: TenantId,
        sub: Uuid,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        // The hot path: a look-up that the subscription is the tenant's
        // (no copy of it), and one visit to the runtime for both the
        // expired leases and this one; the subscription's view is built
        // only when something expired or there is no lease to ack.
        self.meta.lock().sub(tenant, sub)?;
        let (expired, lease) = {
            let mut runtime = self.runtime.lock();
            match runtime.get_mut(&sub) {
                Some(rt) => (rt.take_expired(now), rt.in_flight.remove(message_id)),
                None => (Vec::new(), None),
            }
        };
        if !expired.is_empty() {
            let view = self.meta.lock().view(tenant, sub)?;
            for lease in expired {
                let deadline = lease.deadline;
                self.fail(tenant, &view, lease.fetched, "ack deadline passed".into(), None, deadline, false).await?;
            }
        }
        match lease {
            Some(lease) => {
                // Double ack: answered only once the server recorded it.
                lease.fetched.acker.double_ack().await.map_err(nats_error)?;
                self.meta.lock().count(tenant, &lease.fetched.message.topic_name, |c| c.acknowledged += 1);
                Ok(())
            }
            None => {
                let view = self.meta.lock().view(tenant, sub)?;
                self.ack_without_lease(tenant, &view, message_id).await
            }
        }
    }

    /// Acking again what was acknowledged succeeds; a copy still pending
    /// without a live lease here is refused.
    async fn ack_without_lease(
        &self,
        tenant: TenantId,
        view: &SubView,
        message_id: &str,
    ) -> Result<(), MessagingError> {
        let sub = view.subscription.subscription_id;
        let Some((record, _)) = records::get::<MessageRecord>(&self.kv, &keys::message(tenant, message_id)).await?
        else {
            return Err(MessagingError::MessageNotFound(message_id.to_owned()));
        };
        if !record.routed_to.contains(&sub) {
            return Err(MessagingError::MessageNotFound(message_id.to_owned()));
        }
        let stream = self.stream(tenant, &view.topic.spec.name).await?;
        let subject =
            self.names.delivery_subject(tenant, &view.topic.spec.name, sub, record.message.priority, message_id);
        match streams::last_on(&stream, &subject).await? {
            Some(_) => Err(MessagingError::LeaseNotHeld(message_id.to_owned())),
            None => Ok(()),
        }
    }

    pub(super) async fn nack_impl(
        &self,
        tenant: TenantId,
        sub: Uuid,
        message_id: &str,
        options: NackOptions,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        let view = self.meta.lock().view(tenant, sub)?;
        self.expire_leases(tenant, &view, now).await?;
        let lease = self.runtime.lock().get_mut(&sub).and_then(|rt| rt.in_flight.remove(message_id));
        let Some(lease) = lease else {
            return Err(MessagingError::LeaseNotHeld(message_id.to_owned()));
        };
        let reason = options.reason.unwrap_or_else(|| "rejected by consumer".into());
        self.fail(tenant, &view, lease.fetched, reason, options.requeue, now, true).await?;
        self.notify.notify_waiters();
        Ok(())
    }

    /// One failed attempt. AtMostOnce drops the copy; within the retries it
    /// is offered again after `backoff(attempts)` (a nack says so with its
    /// delay; an expired lease leaves it to the consumer's BackOff);
    /// otherwise, or on `requeue = false`, it is dead-lettered.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fail(
        &self,
        tenant: TenantId,
        view: &SubView,
        fetched: Fetched,
        reason: String,
        requeue: Option<bool>,
        at: DateTime<Utc>,
        nacked: bool,
    ) -> Result<(), MessagingError> {
        let topic = view.topic.spec.name.clone();
        self.meta.lock().count(tenant, &topic, |c| c.failed += 1);
        if view.topic.spec.delivery_guarantee == DeliveryGuarantee::AtMostOnce {
            return fetched.acker.ack_with(AckKind::Term).await.map_err(nats_error);
        }
        let attempts = fetched.attempts;
        if requeue != Some(false) && attempts <= view.subscription.spec.max_retries {
            if view.topic.spec.ordered {
                if let Some(k) = &fetched.message.partition_key {
                    let sub = view.subscription.subscription_id;
                    self.runtime.lock().entry(sub).or_default().retrying.insert(k.clone(), fetched.stream_seq);
                }
            }
            if nacked {
                let delay = self.retry.backoff(attempts);
                fetched.acker.ack_with(AckKind::Nak(Some(delay))).await.map_err(nats_error)?;
            }
            return Ok(());
        }
        self.dead_letter(tenant, view, &fetched, reason, at).await?;
        fetched.acker.ack_with(AckKind::Term).await.map_err(nats_error)
    }

    /// Stores the dead letter (the DLQ stream acknowledges it) before the
    /// copy is terminated, so a crash in between leaves a duplicate at
    /// worst, never a loss.
    async fn dead_letter(
        &self,
        tenant: TenantId,
        view: &SubView,
        fetched: &Fetched,
        reason: String,
        at: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        let topic = view.topic.spec.name.clone();
        let sub = view.subscription.subscription_id;
        let mut message = (*fetched.message).clone();
        message.headers.insert("X-Original-Topic".into(), topic.clone());
        message.headers.insert("X-DLQ-Reason".into(), reason.clone());
        message.headers.insert("X-DLQ-Timestamp".into(), at.to_rfc3339());
        message.headers.insert("X-Delivery-Attempts".into(), fetched.attempts.to_string());
        let letter = DeadLetter {
            message,
            subscription_id: sub,
            reason,
            delivery_attempts: fetched.attempts,
            dead_lettered_at: at,
        };
        let body = serde_json::to_vec(&letter).map_err(|e| MessagingError::Backend(e.to_string()))?;
        let subject = self.names.dlq_subject(tenant, &topic, &fetched.message.message_id, sub);
        self.js.publish(subject, body.into()).await.map_err(nats_error)?.await.map_err(nats_error)?;
        self.set_status(tenant, &fetched.message.message_id, MessageStatus::DeadLettered).await?;
        self.meta.lock().count(tenant, &topic, |c| c.dead_lettered += 1);
        Ok(())
    }

    /// Rewrites a message record's status (absent records are left alone:
    /// the message was deleted meanwhile).
    pub(super) async fn set_status(
        &self,
        tenant: TenantId,
        message_id: &str,
        status: MessageStatus,
    ) -> Result<Option<MessageRecord>, MessagingError> {
        let key = keys::message(tenant, message_id);
        let Some((mut record, _)) = records::get::<MessageRecord>(&self.kv, &key).await? else { return Ok(None) };
        record.status = status;
        records::put(&self.kv, &key, &record).await?;
        Ok(Some(record))
    }
}
