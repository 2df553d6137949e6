//! Group commit of node state. Every node actor records its new module slots
//! before it acknowledges a change; when a wave asks thousands of nodes at
//! once, writing each on its own costs a transaction per node. The writer
//! gathers the writes that queue up while the previous batch is being stored
//! and stores them together, so a wave costs a handful of transactions. Each
//! node still hears back only once its own write is durable.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::{mpsc, oneshot};

use crate::store::{within, SharedStore, SlotWrite, StoreError, StoreResult};

/// Writes waiting at most; a node beyond it waits for room (backpressure),
/// so a flood of writes cannot grow memory without bound.
const QUEUE: usize = 16_384;
/// Writes per batch at most: one transaction stays short.
const MAX_BATCH: usize = 2_000;

struct Pending {
    write: SlotWrite,
    done: oneshot::Sender<StoreResult<()>>,
}

/// Lanes at most: node actors on more threads than this share lanes.
const LANES: usize = 16;

/// Shared by the node actors of one process; cheap to clone. Writes go in
/// lanes, one per actor thread, each with its own queue and its own task
/// that stores the batches: with the nodes spread over several threads, a
/// single task would do every node's bookkeeping on one of them. A lane's
/// task starts with its first write, on that writer's runtime (the thread
/// of the nodes that use the lane).
#[derive(Clone)]
pub struct SlotWriter {
    store: SharedStore,
    deadline: Duration,
    lanes: Arc<[OnceLock<mpsc::Sender<Pending>>; LANES]>,
}

impl SlotWriter {
    /// `deadline` bounds each batch's store call, as it bounds a node's own.
    pub fn new(store: SharedStore, deadline: Duration) -> Self {
        SlotWriter { store, deadline, lanes: Arc::new(std::array::from_fn(|_| OnceLock::new())) }
    }

    pub fn store(&self) -> SharedStore {
        self.store.clone()
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Stores one node's slots together with whatever else is waiting in
    /// `lane` (the writer's actor thread); answers once they are durable.
    pub async fn write(&self, lane: usize, write: SlotWrite) -> StoreResult<()> {
        let queue = self.lanes[lane % LANES].get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(store_batches(self.store.clone(), self.deadline, rx));
            tx
        });
        let (done, answer) = oneshot::channel();
        queue
            .send(Pending { write, done })
            .await
            .map_err(|_| StoreError::Unavailable("the node state writer stopped".into()))?;
        answer.await.unwrap_or_else(|_| Err(StoreError::Unavailable("the node state writer stopped".into())))
    }
}

/// Takes what is queued, stores it as one batch, answers each writer; again.
async fn store_batches(store: SharedStore, deadline: Duration, mut queue: mpsc::Receiver<Pending>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let writes: Vec<SlotWrite> = batch.iter().map(|p| p.write.clone()).collect();
        let stored = within(deadline, store.set_module_slots_batch(&writes)).await;
        match stored {
            // A refusal (a node that is not stored) belongs to one write:
            // the others are stored one by one, so that each hears its own answer.
            Err(e) if batch.len() > 1 && !matches!(e, StoreError::Unavailable(_)) => {
                tracing::warn!(error = %e, writes = batch.len(), "batch of node writes refused; writing them one by one");
                let each = join_all(
                    writes
                        .iter()
                        .map(|w| within(deadline, store.set_module_slots(w.tenant, w.node_id, &w.module, &w.slots))),
                )
                .await;
                for (pending, result) in batch.into_iter().zip(each) {
                    let _ = pending.done.send(result);
                }
            }
            result => {
                for pending in batch {
                    // A writer that gave up waiting needs no answer.
                    let _ = pending.done.send(result.clone());
                }
            }
        }
    }
}
