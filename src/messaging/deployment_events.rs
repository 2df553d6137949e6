//! The system topic `hotswap.deployments`: the run pipeline's own events
//! published on the message bus, per tenant, so that users follow
//! deployments with ordinary subscriptions (pull, push or the WebSocket).
//!
//! The event bus hands every batch of run events this instance saved to a
//! relay here, which must not block the bus's thread. On the memory store the
//! relay queues the batch and one task turns the events into messages and
//! publishes them in order; an event still queued when the process ends is
//! lost with the rest of the memory store. On PostgreSQL the stored events
//! are the source: the relay only wakes the outbox publisher
//! (`deployment_outbox.rs`), which publishes what the store's outbox holds,
//! so a restart publishes what the previous process did not.
//! Each run's messages carry its execution id as partition key.
//! The topic is created in a tenant the first time it has something to say
//! (FanOut, no schema), whatever `auto_create_topics` says.
//!
//! Which events: a run started (`RunStarted`), a stage started or completed
//! (`StageChanged`), and a run's end (`RunFinished`, with its status).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::Addr;
use actix_web::web;
use chrono::Utc;
use hotswap_actors::domain::{RunEvent, RunRecord, RunSummary, TenantId};
use hotswap_actors::events::{AddRelay, EventBus, Relay};
use hotswap_actors::messaging::{MessagingError, NewMessage, NewTopic, SharedMessageStore};
use serde_json::json;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::Notify;

use super::deployment_outbox::{self, DeploymentOutbox};
use super::MessageBus;

/// The topic's name in every tenant.
pub const DEPLOYMENTS_TOPIC: &str = "hotswap.deployments";
/// Batches waiting to be published; past that, batches are dropped (and
/// counted in the log) rather than slowing the runs down.
const QUEUE: usize = 4096;

type Batch = (Arc<RunRecord>, Vec<RunEvent>);

struct TopicRelay {
    outbox: mpsc::Sender<Batch>,
    dropped: AtomicU64,
}

impl Relay for TopicRelay {
    fn relay(&self, run: &Arc<RunRecord>, events: &[RunEvent]) {
        if !events.iter().any(|e| kind_of(&e.kind).is_some()) {
            return;
        }
        match self.outbox.try_send((run.clone(), events.to_vec())) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(dropped, topic = DEPLOYMENTS_TOPIC, "the system topic falls behind; a batch is dropped");
            }
        }
    }
}

/// Wakes the outbox publisher when this instance stored events it carries.
struct OutboxWake {
    wake: Arc<Notify>,
}

impl Relay for OutboxWake {
    fn relay(&self, _run: &Arc<RunRecord>, events: &[RunEvent]) {
        if events.iter().any(|e| kind_of(&e.kind).is_some()) {
            // A permit is kept when the publisher is busy: the wake-up is never lost.
            self.wake.notify_one();
        }
    }
}

/// Joins the event bus to the system topic: through the store's outbox when
/// there is one (PostgreSQL), else straight from the relayed events. Must run
/// inside the actix System.
pub fn start(bus: web::Data<MessageBus>, events: &Addr<EventBus>, outbox: Option<Arc<dyn DeploymentOutbox>>) {
    match outbox {
        Some(outbox) => {
            let wake = Arc::new(Notify::new());
            events.do_send(AddRelay(Arc::new(OutboxWake { wake: wake.clone() })));
            deployment_outbox::spawn(bus.store.clone(), outbox, wake);
        }
        None => {
            let (outbox, batches) = mpsc::channel(QUEUE);
            events.do_send(AddRelay(Arc::new(TopicRelay { outbox, dropped: AtomicU64::new(0) })));
            actix_web::rt::spawn(publish_all(bus, batches));
        }
    }
}

/// The system topic's name for a run event, if it is one it carries. The
/// outbox's trigger (migration `deployment_event_outbox`) lists the same kinds.
fn kind_of(event: &str) -> Option<&'static str> {
    match event {
        "DeploymentCreated" => Some("RunStarted"),
        "StageStarted" | "StageCompleted" => Some("StageChanged"),
        "DeploymentCompleted" | "DeploymentFailed" | "DeploymentCancelled" => Some("RunFinished"),
        // Only the rollback of a finished run ends it; an automatic restore
        // of one environment is followed by the run's failure.
        "DeploymentRolledBack" => Some("RunFinished"),
        _ => None,
    }
}

/// The message for one event of `run`. The status is the run's as the caller
/// read it (when it saved the event, or later from the store).
pub fn message_for(run: &RunSummary, event: &RunEvent) -> Option<NewMessage> {
    let kind = kind_of(&event.kind)?;
    if event.kind == "DeploymentRolledBack" && event.data.get("status").is_none() {
        return None;
    }
    let payload = json!({
        "event": kind,
        "sourceEvent": event.kind,
        "executionId": run.execution_id,
        "moduleName": run.module_name,
        "version": run.version,
        "environment": run.target_environment,
        "status": run.status.as_str(),
        "stage": event.data.get("stage").or_else(|| event.data.get("name")).cloned(),
        "message": event.message,
        "at": event.at,
    });
    let mut message = NewMessage::new(DEPLOYMENTS_TOPIC, &payload.to_string());
    message.message_id = Some(event_id(event));
    message.headers.insert("hotswap-event".into(), kind.into());
    message.headers.insert("execution-id".into(), run.execution_id.to_string());
    message.partition_key = Some(run.execution_id.to_string());
    Some(message)
}

/// The event's message id, the same at every attempt: a retried publish
/// that had in fact gone through is refused as a repeated id, which counts
/// as done, so each event is on the bus once. Letters, digits and dashes
/// only, so that the id can stand in a URL path as it is.
pub fn event_id(event: &RunEvent) -> String {
    let stage = event.data.get("stage").or_else(|| event.data.get("name")).and_then(|v| v.as_str()).unwrap_or("");
    let at = event.at.timestamp_nanos_opt().unwrap_or_else(|| event.at.timestamp_micros());
    let id = format!("run-{}-{}-{at}-{stage}", event.execution_id.simple(), event.kind);
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect()
}

/// The first wait after a failed publish of a run event, doubled up to the cap.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const RETRY_CAP: std::time::Duration = std::time::Duration::from_secs(5);

async fn publish_all(bus: web::Data<MessageBus>, mut batches: mpsc::Receiver<Batch>) {
    let mut ready: HashSet<TenantId> = HashSet::new();
    while let Some((run, events)) = batches.recv().await {
        let run = run.summary();
        for event in &events {
            let Some(message) = message_for(&run, event) else { continue };
            publish_until_done(&bus.store, event.tenant_id, message, &mut ready).await;
        }
    }
}

/// Publishes one event, retrying with backoff until the bus takes it (or
/// already has it): at least once, in order, never dropped for a failure.
/// Later events wait behind it in the queue.
pub(super) async fn publish_until_done(
    store: &SharedMessageStore,
    tenant: TenantId,
    message: NewMessage,
    ready: &mut HashSet<TenantId>,
) {
    let mut wait = RETRY_FIRST;
    let mut warned = false;
    loop {
        let outcome = match ensure_topic(store, tenant, ready).await {
            Ok(()) => store.publish(tenant, message.clone(), Utc::now()).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match outcome {
            // A conflict on the event's own id: an earlier attempt got through.
            Ok(()) | Err(MessagingError::Conflict(_)) => {
                if warned {
                    tracing::info!(topic = DEPLOYMENTS_TOPIC, "run events are published again");
                }
                return;
            }
            Err(e) => {
                // A deleted topic is created again on the next attempt.
                ready.remove(&tenant);
                if !warned {
                    warned = true;
                    tracing::warn!(error = %e, topic = DEPLOYMENTS_TOPIC, "cannot publish a run event; retrying");
                }
                actix_web::rt::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_CAP);
            }
        }
    }
}

async fn ensure_topic(
    store: &SharedMessageStore,
    tenant: TenantId,
    ready: &mut HashSet<TenantId>,
) -> Result<(), MessagingError> {
    if ready.contains(&tenant) {
        return Ok(());
    }
    match store.create_topic(tenant, NewTopic::fan_out(DEPLOYMENTS_TOPIC), Utc::now()).await {
        Ok(_) | Err(MessagingError::TopicExists(_)) => {
            ready.insert(tenant);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[path = "deployment_events_tests.rs"]
mod tests;
