//! Asking many node actors at once, each request bounded by a timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{Handler, MailboxError, Message};
use futures::future::join_all;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::ModuleSlots;
use crate::node::NodeEntry;
use crate::node::{NodeActor, NodeError, RestoreModule, Traced};

/// Sends one message to each node and gathers the answers in node order. A
/// node that is down, times out or dies while handling the message (a panic)
/// answers with an error describing that.
pub async fn ask_all<M, R, F>(
    nodes: Vec<Arc<NodeEntry>>,
    timeout: Duration,
    parent: tracing::Span,
    make: F,
) -> Vec<Result<R, NodeError>>
where
    M: Message<Result = Result<R, NodeError>> + Send + 'static,
    R: Send + 'static,
    NodeActor: Handler<Traced<M>>,
    <NodeActor as actix::Actor>::Context: ToEnvelope<NodeActor, Traced<M>>,
    F: Fn(&NodeEntry) -> M,
{
    // Unconstrained: with tokio's per-task budget spent, each of thousands of
    // pending answers would wake its task again and be polled for nothing,
    // turning a fan-out quadratic.
    tokio::task::unconstrained(join_all(nodes.iter().map(|node| {
        let msg = make(node);
        let addr = node.addr();
        let hostname = node.hostname.clone();
        let span = node_span::<M>(&parent, node);
        let msg = Traced { msg, span: span.clone() };
        let pending = node.track_request();
        async move {
            let _pending = pending;
            let Some(addr) = addr else { return Err(unreachable(&hostname)) };
            let answer = match addr.send(msg).timeout(timeout).await {
                Ok(answer) => answer,
                Err(e) => Err(mailbox(&hostname, e, timeout)),
            };
            if let Err(e) = &answer {
                tracing::warn!(error = %e, "node call failed");
            }
            answer
        }
        .instrument(span)
    })))
    .await
}

/// Like [`ask_all`] for messages that cannot fail on the node side.
pub async fn ask_all_infallible<M, R, F>(
    nodes: Vec<Arc<NodeEntry>>,
    timeout: Duration,
    parent: tracing::Span,
    make: F,
) -> Vec<Result<R, NodeError>>
where
    M: Message<Result = R> + Send + 'static,
    R: Send + 'static,
    NodeActor: Handler<Traced<M>>,
    <NodeActor as actix::Actor>::Context: ToEnvelope<NodeActor, Traced<M>>,
    F: Fn(&NodeEntry) -> M,
{
    // Unconstrained: with tokio's per-task budget spent, each of thousands of
    // pending answers would wake its task again and be polled for nothing,
    // turning a fan-out quadratic.
    tokio::task::unconstrained(join_all(nodes.iter().map(|node| {
        let msg = make(node);
        let addr = node.addr();
        let hostname = node.hostname.clone();
        let span = node_span::<M>(&parent, node);
        let msg = Traced { msg, span: span.clone() };
        let pending = node.track_request();
        async move {
            let _pending = pending;
            let Some(addr) = addr else { return Err(unreachable(&hostname)) };
            addr.send(msg).timeout(timeout).await.map_err(|e| mailbox(&hostname, e, timeout))
        }
        .instrument(span)
    })))
    .await
}

/// The span of one request to one node, a child of the stage's span.
fn node_span<M>(parent: &tracing::Span, node: &NodeEntry) -> tracing::Span {
    let message = std::any::type_name::<M>().rsplit("::").next().unwrap_or("message");
    tracing::info_span!(
        parent: parent,
        "node.call",
        otel.name = %format_args!("node {message}"),
        node.id = %node.node_id,
        node.hostname = %node.hostname,
        message,
    )
}

fn unreachable(hostname: &str) -> NodeError {
    NodeError::Failed(format!("{hostname} is not reachable"))
}

fn mailbox(hostname: &str, e: MailboxError, timeout: Duration) -> NodeError {
    NodeError::Failed(match e {
        MailboxError::Timeout => format!("{hostname} did not answer within {timeout:?}"),
        MailboxError::Closed => format!("{hostname} stopped while handling the request"),
    })
}

/// Each node's failure message (None for success), or, when the store was
/// down for any node, the messages of those nodes: then the step is repeated.
pub fn outcomes<R>(results: Vec<Result<R, NodeError>>) -> Result<Vec<Option<String>>, Vec<String>> {
    let store_down: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            Err(NodeError::StoreUnavailable(e)) => Some(e.clone()),
            _ => None,
        })
        .collect();
    if !store_down.is_empty() {
        return Err(store_down);
    }
    Ok(results.into_iter().map(|r| r.err().map(|e| e.to_string())).collect())
}

/// Restores each node's module slots. Nodes that are down (for example while
/// their supervisor restarts them) are retried up to `attempts` times; nodes
/// that cannot record the change because the store is down are retried until
/// it is back, since giving up would leave them on the wrong version. Returns
/// the hostnames of the nodes that could not be restored, with their errors.
pub async fn restore_all(
    targets: Vec<(Arc<NodeEntry>, ModuleSlots)>,
    module: String,
    fence: Option<crate::store::RunFence>,
    timeout: Duration,
    attempts: u32,
    retry_delay: Duration,
    parent: tracing::Span,
) -> Vec<(String, String)> {
    let slots: HashMap<Uuid, ModuleSlots> = targets.iter().map(|(n, s)| (n.node_id, s.clone())).collect();
    let mut remaining: Vec<Arc<NodeEntry>> = targets.into_iter().map(|(n, _)| n).collect();
    let mut node_attempts = 0;
    let mut store_delay = retry_delay.max(Duration::from_millis(50));
    loop {
        let results = ask_all(remaining.clone(), timeout, parent.clone(), |n| RestoreModule {
            module: module.clone(),
            slots: slots[&n.node_id].clone(),
            fence,
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
        if store_down {
            tracing::warn!(nodes = retry.len(), ?store_delay, "store unavailable while restoring nodes; retrying");
            actix::clock::sleep(store_delay).await;
            store_delay = (store_delay * 2).min(Duration::from_secs(5));
        } else {
            node_attempts += 1;
            if node_attempts >= attempts.max(1) {
                return failed;
            }
            actix::clock::sleep(retry_delay * node_attempts).await;
        }
        remaining = retry;
    }
}
