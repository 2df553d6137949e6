//! Leasing: fetching from a subscription's consumer (its priority lanes,
//! highest first, on Priority topics), dropping expired messages, and on
//! ordered topics holding back a message while an earlier one of its
//! partition key is in flight or waiting for a retry.

use std::collections::HashSet;
use std::sync::Arc;

use async_nats::jetstream::AckKind;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use uuid::Uuid;

use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{Delivery, Message, MessagingError};

use super::error::{consumer_error, nats_error};
use super::meta::SubView;
use super::names::LANES;
use super::runtime::{Fetched, InFlight};
use super::setup::JetStreamMessageStore;

/// How often a long-poll looks again when nothing says when to: copies may
/// come from another process, or be offered again by the server's clock.
const POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// How long the server keeps a fetch open, and how long a lease waits for
/// the server's answer to one.
const FETCH_EXPIRES: std::time::Duration = std::time::Duration::from_millis(500);
const FETCH_BOUND: std::time::Duration = std::time::Duration::from_secs(1);

fn add(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    hotswap_actors::messaging::later_by(now, d)
}

impl JetStreamMessageStore {
    pub(super) async fn lease_impl(
        &self,
        tenant: TenantId,
        sub: Uuid,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, MessagingError> {
        let view = self.meta.lock().view(tenant, sub)?;
        self.expire_leases(tenant, &view, now).await?;
        if view.subscription.paused || max == 0 {
            return Ok(Vec::new());
        }
        let held = self.runtime.lock().get(&sub).map_or(0, |r| r.held.len());
        let fetched = self.fetch(tenant, &view, max.saturating_sub(held).max(1)).await?;
        let (deliveries, dropped) = self.choose(&view, fetched, max, now);
        for f in dropped {
            // Expired: never delivered, and gone from the stream.
            f.acker.ack_with(AckKind::Term).await.map_err(nats_error)?;
        }
        let topic = &view.topic.spec.name;
        self.meta.lock().count(tenant, topic, |c| c.delivered += deliveries.len() as u64);
        Ok(deliveries)
    }

    /// Up to `max` messages the server has ready, without waiting.
    async fn fetch(&self, tenant: TenantId, view: &SubView, max: usize) -> Result<Vec<Fetched>, MessagingError> {
        let topic = &view.topic.spec.name;
        let sub = view.subscription.subscription_id;
        let lanes: Vec<Option<u8>> = if view.lanes { (0..LANES).rev().map(Some).collect() } else { vec![None] };
        let mut out = Vec::new();
        for lane in lanes {
            if out.len() >= max {
                break;
            }
            let consumer = self.consumer(tenant, topic, sub, lane).await?;
            let mut batch = consumer
                .fetch()
                .max_messages(max - out.len())
                .expires(FETCH_EXPIRES)
                .messages()
                .await
                .map_err(|e| consumer_error(e, sub))?;
            // The server answers a no-wait fetch at once; the bound is for
            // the odd one it leaves unanswered (2.9 after a terminated last
            // delivery), which would otherwise hang the lease.
            while let Ok(next) = tokio::time::timeout(FETCH_BOUND, batch.try_next()).await {
                let Some(m) = next.map_err(|e| consumer_error(e, sub))? else { break };
                let (stream_seq, attempts) = {
                    let info = m.info().map_err(nats_error)?;
                    (info.stream_sequence, u32::try_from(info.delivered).unwrap_or(u32::MAX))
                };
                let (raw, acker) = m.split();
                match serde_json::from_slice::<Message>(&raw.payload) {
                    Ok(message) => out.push(Fetched { message: Arc::new(message), acker, stream_seq, attempts }),
                    // Not ours (someone published on our subjects): drop it.
                    Err(_) => acker.ack_with(AckKind::Term).await.map_err(nats_error)?,
                }
            }
        }
        Ok(out)
    }

    /// Decides, under the runtime lock, which of the held and fetched
    /// messages to hand out; answers the deliveries and the expired ones.
    fn choose(
        &self,
        view: &SubView,
        fetched: Vec<Fetched>,
        max: usize,
        now: DateTime<Utc>,
    ) -> (Vec<Delivery>, Vec<Fetched>) {
        let sub = view.subscription.subscription_id;
        let ordered = view.topic.spec.ordered;
        let deadline = add(now, view.subscription.spec.ack_timeout);
        let mut runtime = self.runtime.lock();
        let rt = runtime.entry(sub).or_default();
        let mut candidates = std::mem::take(&mut rt.held);
        for f in fetched {
            // The server offered a copy again (its AckWait passed before
            // ours was noticed): the newer delivery replaces the old.
            rt.in_flight.remove(&f.message.message_id);
            candidates.retain(|h| h.stream_seq != f.stream_seq);
            if let Some(k) = &f.message.partition_key {
                if rt.retrying.get(k) == Some(&f.stream_seq) {
                    rt.retrying.remove(k);
                }
            }
            candidates.push(f);
        }
        if !view.lanes {
            candidates.sort_by_key(|f| f.stream_seq);
        }
        let mut blocked: HashSet<String> = HashSet::new();
        if ordered {
            blocked.extend(rt.in_flight.values().filter_map(|l| l.fetched.message.partition_key.clone()));
            blocked.extend(rt.retrying.keys().cloned());
        }
        let mut deliveries = Vec::new();
        let mut dropped = Vec::new();
        for f in candidates {
            if f.message.expires_at.is_some_and(|x| x <= now) {
                dropped.push(f);
                continue;
            }
            let key = f.message.partition_key.clone().filter(|_| ordered);
            let free = key.as_ref().is_none_or(|k| !blocked.contains(k));
            if let Some(k) = key {
                blocked.insert(k);
            }
            if !free || deliveries.len() >= max {
                rt.held.push(f);
                continue;
            }
            deliveries.push(Delivery {
                message: f.message.clone(),
                subscription_id: sub,
                delivery_attempts: f.attempts,
                ack_deadline: deadline,
            });
            rt.in_flight.insert(f.message.message_id.clone(), InFlight { fetched: f, deadline });
        }
        (deliveries, dropped)
    }

    /// Leases past their deadline count as failed attempts at that moment:
    /// the server offers the copy again after its BackOff, or, when the
    /// retries are spent, it is dead-lettered here.
    pub(super) async fn expire_leases(
        &self,
        tenant: TenantId,
        view: &SubView,
        now: DateTime<Utc>,
    ) -> Result<(), MessagingError> {
        let sub = view.subscription.subscription_id;
        let expired = self.runtime.lock().get_mut(&sub).map(|rt| rt.take_expired(now)).unwrap_or_default();
        for lease in expired {
            let deadline = lease.deadline;
            self.fail(tenant, view, lease.fetched, "ack deadline passed".into(), None, deadline, false).await?;
        }
        Ok(())
    }

    pub(super) async fn next_due_impl(
        &self,
        tenant: TenantId,
        sub: Uuid,
    ) -> Result<Option<DateTime<Utc>>, MessagingError> {
        let view = self.meta.lock().view(tenant, sub)?;
        if view.subscription.paused {
            return Ok(None);
        }
        let poll = add(Utc::now(), POLL);
        let deadline = self.runtime.lock().get(&sub).and_then(|rt| rt.in_flight.values().map(|l| l.deadline).min());
        Ok(Some(deadline.map_or(poll, |d| d.min(poll))))
    }
}
