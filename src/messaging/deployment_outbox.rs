//! Publishing run events to `hotswap.deployments` from the store's outbox,
//! so that an event stored but not yet published when the process died is
//! published by the next one.
//!
//! The store adds an outbox entry in the transaction that stores an event;
//! this publisher reads the entries in the order they were stored, publishes
//! each event's message and then deletes the entries it published. A crash
//! between the publish and the delete publishes those events again after the
//! restart: the message ids are stable (`event_id`), so the bus refuses the
//! repeat as a known id and the subscribers see each event once. Events of
//! one run are stored one save after another, so their entries are in the
//! run's order, and so are the messages.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hotswap_actors::domain::{RunEvent, RunSummary, TenantId};
use hotswap_actors::messaging::SharedMessageStore;
use hotswap_actors::store::StoreResult;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::deployment_events::{message_for, publish_until_done};

/// A stored event the bus has not carried yet, with its run as stored now.
pub struct PendingEvent {
    /// The outbox entry, to delete once the event is published.
    pub entry: i64,
    pub run: RunSummary,
    pub event: RunEvent,
}

/// The store's outbox of run events for the system topic.
#[async_trait]
pub trait DeploymentOutbox: Send + Sync {
    /// Up to `max` of the oldest entries, in the order their events were stored.
    async fn pending(&self, max: usize) -> StoreResult<Vec<PendingEvent>>;
    /// Forgets entries whose events the bus has taken.
    async fn published(&self, entries: &[i64]) -> StoreResult<()>;
}

/// Entries read and deleted per round trip.
const BATCH: usize = 256;
/// How often the outbox is read without a wake-up: entries another instance
/// stored and left behind, or a read that failed.
const POLL: Duration = Duration::from_secs(2);
/// The shortest time between two passes. Every saved event wakes the task;
/// under a burst of runs that is hundreds of wake-ups a second, and each
/// pass costs a read and a deleting commit on the database. Waiting out this
/// gap lets one pass carry the events of every save in it, at the price of
/// publishing up to this much later.
const MIN_GAP: Duration = Duration::from_millis(25);

/// Publishes the outbox now (what a previous process left) and then at each
/// wake-up and poll, until the task is aborted.
pub fn spawn(store: SharedMessageStore, outbox: Arc<dyn DeploymentOutbox>, wake: Arc<Notify>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut topic_ready = HashSet::new();
        loop {
            let started = tokio::time::Instant::now();
            drain(&store, outbox.as_ref(), &mut topic_ready).await;
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
            tokio::time::sleep_until(started + MIN_GAP).await;
        }
    })
}

/// Publishes every entry the outbox holds, oldest first; returns how many it
/// published. A failed publish is retried (in order) until the bus takes it;
/// a failed read or delete ends the pass, for the next one to try again.
pub async fn drain(
    store: &SharedMessageStore,
    outbox: &dyn DeploymentOutbox,
    topic_ready: &mut HashSet<TenantId>,
) -> usize {
    let mut published = 0;
    loop {
        let batch = match outbox.pending(BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox of run events; trying again later");
                return published;
            }
        };
        if batch.is_empty() {
            return published;
        }
        let mut done = Vec::with_capacity(batch.len());
        for pending in &batch {
            // Events the topic does not carry (a rollback without its status) are simply done.
            if let Some(message) = message_for(&pending.run, &pending.event) {
                publish_until_done(store, pending.event.tenant_id, message, topic_ready).await;
                published += 1;
            }
            done.push(pending.entry);
        }
        if let Err(e) = outbox.published(&done).await {
            // They are published again on the next pass; their ids make that harmless.
            tracing::warn!(error = %e, "cannot clear the outbox of run events; trying again later");
            return published;
        }
        // A short batch was all there was: no read just to find it empty.
        // An event stored since woke the task again, so the next pass takes it.
        if batch.len() < BATCH {
            return published;
        }
    }
}
