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
        let payload = match encode(redis.origin(), &run, &events) {
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

/// One batch as it goes on the channel. The run travels without its records
/// per node: other instances' clients are shown its status and stages, and
/// a run of 10,000 nodes would otherwise send megabytes with every event.
fn encode(origin: Uuid, run: &RunRecord, events: &[RunEvent]) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Envelope { origin, run: &run.without_node_records(), events })
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

    /// A batch of a canary run on 10,000 nodes, mid-stage, weighs what a
    /// run of one node does: its changes, baselines and waves stay home.
    #[test]
    fn a_batch_does_not_grow_with_the_run_s_nodes() {
        use hotswap_actors::domain::{Checkpoint, DeployStep, Environment, NodeChange, NodeMetrics};
        let request = serde_json::from_value(serde_json::json!({
            "moduleName": "netx", "version": "2.0.0", "targetEnvironment": "Development",
            "requesterEmail": "ops@example.com",
        }))
        .unwrap();
        let mut run = RunRecord::admitted(Uuid::new_v4(), Uuid::new_v4(), request);
        let small = encode(Uuid::new_v4(), &run, &[]).unwrap().len();
        let nodes: Vec<Uuid> = (0..10_000).map(|_| Uuid::new_v4()).collect();
        run.changes = Arc::new(
            nodes
                .iter()
                .enumerate()
                .map(|(i, id)| NodeChange {
                    node_id: *id,
                    hostname: format!("development-{i:05}"),
                    environment: Environment::Development,
                    before: Default::default(),
                })
                .collect(),
        );
        run.checkpoint = Checkpoint::Deploy {
            environment: Environment::Development,
            step: DeployStep::Load { wave: 2 },
            baseline: nodes.iter().map(|id| (*id, NodeMetrics::default())).collect(),
            analysis_baseline: Vec::new(),
            waves: (1..=100).map(|w| w * 100).collect(),
        };
        run.nodes_left_on_new_version = vec!["development-00001".into(); 10];
        let payload = encode(Uuid::new_v4(), &run, &[]).unwrap();
        assert!(payload.len() < small + 200, "{} bytes against {small}", payload.len());
        let back: Envelope<RunRecord, Vec<RunEvent>> = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            (back.run.status, back.run.stages, back.run.execution_id),
            (run.status, run.stages, run.execution_id)
        );
        assert!(matches!(back.run.checkpoint, Checkpoint::Deploy { step: DeployStep::Load { wave: 2 }, .. }));
    }
}
