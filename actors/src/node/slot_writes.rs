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
    /// A store whose writes are not worth grouping gets each on its own.
    pub async fn write(&self, lane: usize, write: SlotWrite) -> StoreResult<()> {
        if !self.store.groups_node_writes() {
            return within(self.deadline, write_one(&self.store, &write)).await;
        }
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
        let (writes, answers): (Vec<SlotWrite>, Vec<_>) = batch.into_iter().map(|p| (p.write, p.done)).unzip();
        let stored = within(deadline, store.set_module_slots_batch(&writes)).await;
        match stored {
            // A refusal (a node that is not stored, a run whose lease moved
            // on) belongs to one write: the others are stored one by one, so
            // that each hears its own answer.
            Err(e) if writes.len() > 1 && !matches!(e, StoreError::Unavailable(_)) => {
                tracing::warn!(error = %e, writes = writes.len(), "batch of node writes refused; writing them one by one");
                let each = join_all(writes.iter().map(|w| within(deadline, write_one(&store, w)))).await;
                for (done, result) in answers.into_iter().zip(each) {
                    let _ = done.send(result);
                }
            }
            result => {
                for done in answers {
                    // A writer that gave up waiting needs no answer.
                    let _ = done.send(result.clone());
                }
            }
        }
    }
}

/// One write on its own, fenced when it belongs to a run's step.
async fn write_one(store: &SharedStore, w: &SlotWrite) -> StoreResult<()> {
    match &w.fence {
        Some(fence) => store.set_module_slots_fenced(w.node_id, &w.module, &w.slots, fence).await,
        None => store.set_module_slots(w.tenant, w.node_id, &w.module, &w.slots).await,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{DeploymentRequest, Environment, ModuleSlots, NodeRecord, RunRecord, VersionSlot};
    use crate::store::{MemoryStore, RunFence};

    fn slots(version: &str) -> ModuleSlots {
        ModuleSlots { active: Some(VersionSlot::plain(version)), ..ModuleSlots::default() }
    }

    /// Writes of one lane queued together make one batch (the memory store
    /// asked to group them as PostgreSQL does); the one whose
    /// run has another lease epoch is refused on its own (`Fenced`), and the
    /// others, fenced by a current epoch or not fenced, are stored.
    #[actix::test]
    async fn a_stale_fence_in_a_batch_refuses_only_its_own_write() {
        let store: SharedStore = Arc::new(MemoryStore::new().with_grouped_node_writes());
        let tenant = Uuid::new_v4();
        let mut nodes = Vec::new();
        for i in 0..3 {
            let node = NodeRecord {
                tenant_id: tenant,
                node_id: Uuid::new_v4(),
                hostname: format!("writer-node-{i}"),
                environment: Environment::Development,
                modules: BTreeMap::new(),
                updated_at: Utc::now(),
            };
            store.register_node(&node).await.unwrap();
            nodes.push(node.node_id);
        }
        let request = DeploymentRequest {
            module_name: "kmod-writer".into(),
            version: "1.0.0".into(),
            target_environment: Environment::Development,
            requester_email: "writer@example.com".into(),
            description: None,
            require_approval: false,
            metadata: BTreeMap::new(),
            strategy: None,
            canary_steps: None,
        };
        let run = RunRecord::admitted(tenant, Uuid::new_v4(), request);
        store.create_run(&run, &[]).await.unwrap();
        let epoch = store.claim_runs("owner", 10).await.unwrap()[0].epoch;
        let fence = |epoch| Some(RunFence { tenant_id: tenant, execution_id: run.execution_id, epoch });
        let write = |node: Uuid, fence| SlotWrite {
            tenant,
            node_id: node,
            module: "kmod-writer".into(),
            slots: slots("1.0.0"),
            fence,
        };

        let writer = SlotWriter::new(store.clone(), Duration::from_secs(5));
        let (current, stale, unfenced) = futures::join!(
            writer.write(0, write(nodes[0], fence(epoch))),
            writer.write(0, write(nodes[1], fence(epoch + 1))),
            writer.write(0, write(nodes[2], None)),
        );
        assert!(current.is_ok(), "{current:?}");
        assert!(matches!(stale, Err(StoreError::Fenced(_))), "{stale:?}");
        assert!(unfenced.is_ok(), "{unfenced:?}");
        let stored = store.module_slots(tenant, &nodes, "kmod-writer").await.unwrap();
        assert_eq!(stored, vec![slots("1.0.0"), ModuleSlots::default(), slots("1.0.0")]);
    }
}
