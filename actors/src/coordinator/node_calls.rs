//! Asking many node actors at once, each request bounded by a timeout.

use std::sync::Arc;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{Handler, MailboxError, Message};
use futures::future::join_all;
use tracing::Instrument;

use crate::cluster::NodeEntry;
use crate::node::{NodeActor, Traced};

/// Sends one message to each node and gathers the answers in node order. A
/// node that is down, times out or dies while handling the message (a panic)
/// answers with an error describing that.
pub async fn ask_all<M, R, F>(
    nodes: Vec<Arc<NodeEntry>>,
    timeout: Duration,
    parent: tracing::Span,
    make: F,
) -> Vec<Result<R, String>>
where
    M: Message<Result = Result<R, String>> + Send + 'static,
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
            let Some(addr) = addr else {
                return Err(format!("{hostname} is not reachable"));
            };
            let answer = match addr.send(msg).timeout(timeout).await {
                Ok(answer) => answer,
                Err(MailboxError::Timeout) => Err(format!("{hostname} did not answer within {timeout:?}")),
                Err(MailboxError::Closed) => Err(format!("{hostname} stopped while handling the request")),
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
) -> Vec<Result<R, String>>
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
            let Some(addr) = addr else {
                return Err(format!("{hostname} is not reachable"));
            };
            addr.send(msg).timeout(timeout).await.map_err(|e| match e {
                MailboxError::Timeout => format!("{hostname} did not answer within {timeout:?}"),
                MailboxError::Closed => format!("{hostname} stopped while handling the request"),
            })
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

/// Restores each node's module slots, retrying nodes that are down (for
/// example while their supervisor restarts them). Returns the hostnames of the
/// nodes that could not be restored, with the last error of each.
pub async fn restore_all(
    targets: Vec<(Arc<NodeEntry>, crate::domain::ModuleSlots)>,
    module: String,
    timeout: Duration,
    attempts: u32,
    retry_delay: Duration,
    parent: tracing::Span,
) -> Vec<(String, String)> {
    use crate::node::RestoreModule;
    let mut remaining = targets;
    let mut failures = Vec::new();
    for attempt in 0..attempts.max(1) {
        if attempt > 0 {
            actix::clock::sleep(retry_delay * attempt).await;
        }
        let nodes: Vec<_> = remaining.iter().map(|(n, _)| n.clone()).collect();
        let slots: std::collections::HashMap<uuid::Uuid, crate::domain::ModuleSlots> =
            remaining.iter().map(|(n, s)| (n.node_id, s.clone())).collect();
        let results = ask_all(nodes, timeout, parent.clone(), |n| RestoreModule {
            module: module.clone(),
            slots: slots[&n.node_id].clone(),
        })
        .await;
        failures.clear();
        let mut retry = Vec::new();
        for ((node, slots), result) in remaining.into_iter().zip(results) {
            if let Err(e) = result {
                failures.push((node.hostname.clone(), e));
                retry.push((node, slots));
            }
        }
        remaining = retry;
        if remaining.is_empty() {
            break;
        }
    }
    failures
}
