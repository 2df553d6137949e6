//! Live updates across instances. Every batch of run events this instance's
//! event bus publishes is also published once on Redis; every instance hears
//! the channel and hands what other instances published to its own bus,
//! which fans it out to its WebSocket and SignalR clients. The publishing
//! instance's own clients are served by its bus directly, so they see each
//! event once, at once, and still do when Redis is down.
//!
//! Order per run: one bus publishes a run's events in order; one task here
//! sends them to Redis in that order over one connection, and Redis delivers
//! a channel's messages in order to each subscriber, where one task hands
//! them to the bus's mailbox in turn.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::Addr;
use hotswap_actors::domain::{RunEvent, RunRecord};
use hotswap_actors::events::{EventBus, Publish, Relay, Relayed, SetRelay};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{self, error::TrySendError};
use uuid::Uuid;

use crate::redis::Redis;

const CHANNEL: &str = "run-events";
/// Batches waiting to go to Redis, and batches heard waiting for the bus.
/// Past that (Redis much slower than the runs), batches are dropped for the
/// other instances and counted; this instance's clients lose nothing.
const QUEUE: usize = 4096;

/// One published batch as it travels: who published it, the run as saved
/// with the events, and the events in order.
#[derive(Serialize, Deserialize)]
struct Envelope<R, E> {
    origin: Uuid,
    run: R,
    events: E,
}

/// Hands the bus's batches to the publishing task without waiting.
struct RedisRelay {
    outbox: mpsc::Sender<(Arc<RunRecord>, Vec<RunEvent>)>,
    dropped: AtomicU64,
}

impl Relay for RedisRelay {
    fn relay(&self, run: &Arc<RunRecord>, events: &[RunEvent]) {
        match self.outbox.try_send((run.clone(), events.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(dropped, "the redis backplane falls behind; other instances miss a batch of events");
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

/// Joins this instance's bus to the backplane. Must run inside the actix System.
pub fn start(redis: Arc<Redis>, bus: Addr<EventBus>) {
    let (outbox, batches) = mpsc::channel(QUEUE);
    bus.do_send(SetRelay(Arc::new(RedisRelay { outbox, dropped: AtomicU64::new(0) })));
    let heard = redis.listen(CHANNEL, QUEUE);
    actix_web::rt::spawn(publish(redis.clone(), batches));
    actix_web::rt::spawn(deliver(redis.origin(), heard, bus));
}

/// Sends the bus's batches to Redis, one after another.
async fn publish(redis: Arc<Redis>, mut batches: mpsc::Receiver<(Arc<RunRecord>, Vec<RunEvent>)>) {
    let mut failing = false;
    while let Some((run, events)) = batches.recv().await {
        let envelope = Envelope { origin: redis.origin(), run: &*run, events: &events };
        let payload = match serde_json::to_vec(&envelope) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode run events for the backplane");
                continue;
            }
        };
        match redis.publish(CHANNEL, payload).await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                // Said once per outage: every event would say it again.
                failing = true;
                tracing::warn!(error = %e, "cannot publish run events to redis; only this instance's clients see them");
            }
            Err(_) => {}
        }
    }
}

/// Hands the batches other instances published to this instance's bus.
async fn deliver(origin: Uuid, mut heard: mpsc::Receiver<Vec<u8>>, bus: Addr<EventBus>) {
    while let Some(payload) = heard.recv().await {
        let envelope: Envelope<RunRecord, Vec<RunEvent>> = match serde_json::from_slice(&payload) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::warn!(error = %e, "ignored a run-events message that does not parse");
                continue;
            }
        };
        // This instance's own clients had these from its bus already.
        if envelope.origin == origin {
            continue;
        }
        bus.do_send(Relayed(Publish { run: Arc::new(envelope.run), events: envelope.events }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_reads_back_as_written() {
        let origin = Uuid::new_v4();
        let json = serde_json::to_vec(&Envelope { origin, run: 7u32, events: vec!["a", "b"] }).unwrap();
        let back: Envelope<u32, Vec<String>> = serde_json::from_slice(&json).unwrap();
        assert_eq!((back.origin, back.run, back.events), (origin, 7, vec!["a".to_string(), "b".to_string()]));
    }
}
