//! Group commit for the actors' graph writes. Every saved run, node and
//! version is written to its tenant's graph after the store has it, and one
//! tenant's graph has one writer at a time. Written one by one, a busy
//! tenant's changes queued behind that writer (each a read and a transaction
//! of round trips), and whoever waited for its own graph write — a create's
//! admission among them — waited for all of them. Here a tenant's changes
//! queue up while one write is under way and the next write takes all of
//! them in one transaction: the same changes in the same order, far fewer
//! transactions when many arrive at once, and no extra wait when few do.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::service::GraphService;
use crate::domain::{GraphChange, TenantId};

/// Changes written together at most: one transaction stays short.
const MAX_GROUP: usize = 256;

pub(super) struct GraphWriteQueue {
    graph: Arc<GraphService>,
    /// The tenants with a writer task running, and what waits for it.
    tenants: Mutex<HashMap<TenantId, VecDeque<Queued>>>,
}

/// A change waiting for its write, and who waits for the outcome.
struct Queued {
    change: GraphChange,
    written: oneshot::Sender<bool>,
}

impl GraphWriteQueue {
    pub(super) fn new(graph: Arc<GraphService>) -> Arc<Self> {
        Arc::new(GraphWriteQueue { graph, tenants: Mutex::default() })
    }

    /// Writes `change` to the tenant's graph, together with whatever else
    /// waits for it; answers whether the write succeeded.
    pub(super) async fn write(self: &Arc<Self>, tenant: TenantId, change: GraphChange) -> bool {
        let (written, outcome) = oneshot::channel();
        let start_writer = {
            let mut tenants = self.tenants.lock();
            let start = !tenants.contains_key(&tenant);
            tenants.entry(tenant).or_default().push_back(Queued { change, written });
            start
        };
        if start_writer {
            let queue = self.clone();
            // A task of its own, so that no caller waits for more than its own group.
            tokio::spawn(async move { queue.drain(tenant).await });
        }
        // A writer that stopped without answering dropped the sender: not written.
        outcome.await.unwrap_or(false)
    }

    /// Writes the tenant's queued changes, group by group, until none is left.
    async fn drain(&self, tenant: TenantId) {
        // If this task ends early (a panic, its runtime stopping), the guard
        // forgets the tenant's queue: its waiters hear "not written", and the
        // next write starts a new writer.
        let mut guard = ForgetOnDrop { queue: self, tenant, done: false };
        loop {
            let group = {
                let mut tenants = self.tenants.lock();
                let Some(waiting) = tenants.get_mut(&tenant) else { break };
                let group = next_group(waiting);
                if group.is_empty() {
                    tenants.remove(&tenant);
                    break;
                }
                group
            };
            let mut change = GraphChange::default();
            let mut answers = Vec::with_capacity(group.len());
            for queued in group {
                change.extend(queued.change);
                answers.push(queued.written);
            }
            let ok = match self.graph.apply_system(tenant, change).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(%tenant, error = %e, "the knowledge graph missed a change; `hotswap graph rebuild` repairs it");
                    false
                }
            };
            for answer in answers {
                // A caller that stopped waiting does not need the answer.
                let _ = answer.send(ok);
            }
        }
        guard.done = true;
    }
}

/// The changes the next write takes. A change applies its upserts before
/// its deletions, so a change that deletes is written alone: merged with
/// others, a deletion could land after an upsert that came later.
fn next_group(waiting: &mut VecDeque<Queued>) -> Vec<Queued> {
    let deletes = |q: &Queued| !q.change.delete_entities.is_empty() || !q.change.delete_relationships.is_empty();
    let mut group = Vec::new();
    while let Some(first) = waiting.front() {
        if group.len() == MAX_GROUP || (!group.is_empty() && deletes(first)) {
            break;
        }
        let alone = deletes(first);
        group.extend(waiting.pop_front());
        if alone {
            break;
        }
    }
    group
}

struct ForgetOnDrop<'a> {
    queue: &'a GraphWriteQueue,
    tenant: TenantId,
    done: bool,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.queue.tenants.lock().remove(&self.tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn queued(deletes: bool) -> Queued {
        let mut change = GraphChange::default();
        if deletes {
            change.delete_entities.push(Uuid::new_v4());
        }
        Queued { change, written: oneshot::channel().0 }
    }

    #[test]
    fn a_change_that_deletes_is_written_alone() {
        let mut waiting: VecDeque<Queued> = [false, false, true, false, true, true].into_iter().map(queued).collect();
        let sizes: Vec<usize> =
            std::iter::from_fn(|| Some(next_group(&mut waiting).len()).filter(|&n| n > 0)).collect();
        assert_eq!(sizes, vec![2, 1, 1, 1, 1]);
    }

    #[test]
    fn a_group_is_bounded() {
        let mut waiting: VecDeque<Queued> = (0..MAX_GROUP + 3).map(|_| queued(false)).collect();
        assert_eq!(next_group(&mut waiting).len(), MAX_GROUP);
        assert_eq!(next_group(&mut waiting).len(), 3);
        assert!(next_group(&mut waiting).is_empty());
    }
}
