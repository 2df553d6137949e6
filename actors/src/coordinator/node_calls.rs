//! Asking many node actors at once, each request bounded by a timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{Handler, MailboxError, Message};
use futures::future::join_all;
use uuid::Uuid;

use crate::cluster::NodeEntry;
use crate::domain::ModuleSlots;
use crate::node::{NodeActor, NodeError, RestoreModule};

fn unreachable(node: &NodeEntry) -> NodeError {
    NodeError::Failed(format!("{} is not reachable", node.hostname))
}

fn mailbox(node: &NodeEntry, e: MailboxError, timeout: Duration) -> NodeError {
    NodeError::Failed(match e {
        MailboxError::Timeout => format!("{} did not answer within {timeout:?}", node.hostname),
        MailboxError::Closed => format!("{} stopped while handling the request", node.hostname),
    })
}

/// Sends one message to each node and gathers the answers in node order. A
/// node that is down, times out or dies while handling the message (a panic)
/// answers with a failure describing that.
pub async fn ask_all<M, R, F>(nodes: Vec<Arc<NodeEntry>>, timeout: Duration, make: F) -> Vec<Result<R, NodeError>>
where
    M: Message<Result = Result<R, NodeError>> + Send + 'static,
    R: Send + 'static,
    NodeActor: Handler<M>,
    <NodeActor as actix::Actor>::Context: ToEnvelope<NodeActor, M>,
    F: Fn(&NodeEntry) -> M,
{
    // Unconstrained: with tokio's per-task budget spent, each of thousands of
    // pending answers would wake its task again and be polled for nothing,
    // turning a fan-out quadratic.
    tokio::task::unconstrained(join_all(nodes.iter().map(|node| {
        let msg = make(node);
        let addr = node.addr();
        async move {
            let Some(addr) = addr else { return Err(unreachable(node)) };
            match addr.send(msg).timeout(timeout).await {
                Ok(answer) => answer,
                Err(e) => Err(mailbox(node, e, timeout)),
            }
        }
    })))
    .await
}

/// Like [`ask_all`] for messages that cannot fail on the node side.
pub async fn ask_all_infallible<M, R, F>(
    nodes: Vec<Arc<NodeEntry>>,
    timeout: Duration,
    make: F,
) -> Vec<Result<R, NodeError>>
where
    M: Message<Result = R> + Send + 'static,
    R: Send + 'static,
    NodeActor: Handler<M>,
    <NodeActor as actix::Actor>::Context: ToEnvelope<NodeActor, M>,
    F: Fn(&NodeEntry) -> M,
{
    tokio::task::unconstrained(join_all(nodes.iter().map(|node| {
        let msg = make(node);
        let addr = node.addr();
        async move {
            let Some(addr) = addr else { return Err(unreachable(node)) };
            addr.send(msg).timeout(timeout).await.map_err(|e| mailbox(node, e, timeout))
        }
    })))
    .await
}

/// Sorts answers into the failed nodes' messages and the store outages.
pub fn failures<R>(results: Vec<Result<R, NodeError>>) -> (Vec<String>, Vec<String>) {
    let mut failed = Vec::new();
    let mut store_down = Vec::new();
    for r in results {
        match r {
            Ok(_) => {}
            Err(NodeError::Failed(e)) => failed.push(e),
            Err(NodeError::StoreUnavailable(e)) => store_down.push(e),
        }
    }
    (failed, store_down)
}

/// Restores each node's module slots. Nodes that are down (for example while
/// their supervisor restarts them) are retried up to `attempts` times; nodes
/// that cannot record the change because the store is down are retried until
/// it is back, since giving up would leave them on the wrong version. Returns
/// the hostnames of the nodes that could not be restored, with their errors.
pub async fn restore_all(
    targets: Vec<(Arc<NodeEntry>, ModuleSlots)>,
    module: String,
    timeout: Duration,
    attempts: u32,
    retry_delay: Duration,
) -> Vec<(String, String)> {
    let slots: HashMap<Uuid, ModuleSlots> = targets.iter().map(|(n, s)| (n.node_id, s.clone())).collect();
    let mut remaining: Vec<Arc<NodeEntry>> = targets.into_iter().map(|(n, _)| n).collect();
    let mut node_attempts = 0;
    let mut store_delay = retry_delay.max(Duration::from_millis(50));
    loop {
        let results = ask_all(remaining.clone(), timeout, |n| RestoreModule {
            module: module.clone(),
            slots: slots[&n.node_id].clone(),
        })
        .await;
        let mut failed = Vec::new();
        let mut retry = Vec::new();
        let mut store_down = false;
        for (node, result) in remaining.into_iter().zip(results) {
            match result {
                Ok(()) => {}
                Err(NodeError::StoreUnavailable(_)) => {
                    store_down = true;
                    retry.push(node);
                }
                Err(NodeError::Failed(e)) => {
                    failed.push((node.hostname.clone(), e));
                    retry.push(node);
                }
            }
        }
        if retry.is_empty() {
            return Vec::new();
        }
        if !store_down {
            node_attempts += 1;
            if node_attempts >= attempts.max(1) {
                return failed;
            }
            actix::clock::sleep(retry_delay * node_attempts).await;
        } else {
            tracing::warn!(nodes = retry.len(), ?store_delay, "store unavailable while restoring nodes; retrying");
            actix::clock::sleep(store_delay).await;
            store_delay = (store_delay * 2).min(Duration::from_secs(5));
        }
        remaining = retry;
    }
}
