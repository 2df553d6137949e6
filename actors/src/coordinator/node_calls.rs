//! Asking many node actors at once, each request bounded by a timeout.
//!
//! With the actors spread over several threads, the requests to the nodes
//! of each thread are made from that thread: one relay task per thread
//! sends its nodes their messages, gathers their answers and hands them back
//! together. The coordinator's thread then handles one answer per thread
//! instead of one per node, and every thread shares the work of sending and
//! receiving, rather than the coordinator's doing it for all of them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{Handler, MailboxError, Message};
use futures::channel::oneshot;
use futures::future::join_all;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::ModuleSlots;
use crate::node::NodeEntry;
use crate::node::{NodeActor, NodeError, RestoreModule, Traced};
use crate::supervision::ActorThreads;

/// Sends one message to each node and gathers the answers in node order. A
/// node that is down, times out or dies while handling the message (a panic)
/// answers with an error describing that.
pub async fn ask_all<M, R, F>(
    threads: ActorThreads,
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
    F: Fn(&NodeEntry) -> M + Send + Sync + 'static,
{
    let ask = move |node: Arc<NodeEntry>| {
        let msg = make(&node);
        let addr = node.addr();
        let span = node_span::<M>(&parent, &node);
        let msg = Traced { msg, span: span.clone() };
        let pending = node.track_request();
        async move {
            let _pending = pending;
            let Some(addr) = addr else { return Err(unreachable(&node.hostname)) };
            let answer = match addr.send(msg).timeout(timeout).await {
                Ok(answer) => answer,
                Err(e) => Err(mailbox(&node.hostname, e, timeout)),
            };
            if let Err(e) = &answer {
                tracing::warn!(error = %e, "node call failed");
            }
            answer
        }
        .instrument(span)
    };
    fan_out(&threads, nodes, ask).await
}

/// Like [`ask_all`] for messages that cannot fail on the node side.
pub async fn ask_all_infallible<M, R, F>(
    threads: ActorThreads,
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
    F: Fn(&NodeEntry) -> M + Send + Sync + 'static,
{
    let ask = move |node: Arc<NodeEntry>| {
        let msg = make(&node);
        let addr = node.addr();
        let span = node_span::<M>(&parent, &node);
        let msg = Traced { msg, span: span.clone() };
        let pending = node.track_request();
        async move {
            let _pending = pending;
            let Some(addr) = addr else { return Err(unreachable(&node.hostname)) };
            addr.send(msg).timeout(timeout).await.map_err(|e| mailbox(&node.hostname, e, timeout))
        }
        .instrument(span)
    };
    fan_out(&threads, nodes, ask).await
}

/// Asks every node with `ask` and answers in node order. Without threads of
/// the pool's own, or for nodes on none of them, the requests are made
/// here; the others are made by one relay task on each node's thread.
async fn fan_out<T, G, Fut>(threads: &ActorThreads, nodes: Vec<Arc<NodeEntry>>, ask: G) -> Vec<T>
where
    T: Send + 'static,
    G: Fn(Arc<NodeEntry>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
{
    let count = threads.len();
    if count <= 1 {
        return ask_here(nodes, &ask).await;
    }
    // Each node's position in `nodes`, grouped by the thread it runs on.
    let mut groups: Vec<(Vec<usize>, Vec<Arc<NodeEntry>>)> = (0..=count).map(|_| Default::default()).collect();
    for (position, node) in nodes.into_iter().enumerate() {
        let group = node.thread().filter(|t| *t < count).unwrap_or(count);
        groups[group].0.push(position);
        groups[group].1.push(node);
    }
    let ask = Arc::new(ask);
    let total: usize = groups.iter().map(|(positions, _)| positions.len()).sum();
    let mut here: Vec<(Vec<usize>, Vec<Arc<NodeEntry>>)> = Vec::new();
    let mut relayed = Vec::new();
    for (thread, (positions, members)) in groups.into_iter().enumerate() {
        if members.is_empty() {
            continue;
        }
        if thread == count {
            here.push((positions, members));
            continue;
        }
        let (answer, answered) = oneshot::channel();
        let relay_ask = ask.clone();
        // A relay needs its members back if its thread is gone before it starts.
        let kept = members.clone();
        let started = threads.run_on(thread, move || {
            actix::spawn(async move {
                let answers = ask_here(members, &*relay_ask).await;
                let _ = answer.send(answers);
            });
        });
        if started {
            relayed.push((positions, kept, answered));
        } else {
            here.push((positions, kept));
        }
    }
    let local = join_all(here.into_iter().map(|(positions, members)| {
        let ask = ask.clone();
        async move { (positions, ask_here(members, &*ask).await) }
    }));
    let from_relays = join_all(relayed.into_iter().map(|(positions, members, answered)| {
        let ask = ask.clone();
        async move {
            match answered.await {
                Ok(answers) => (positions, answers),
                // The thread stopped before its relay answered: ask from here.
                Err(_) => (positions, ask_here(members, &*ask).await),
            }
        }
    }));
    let (local, from_relays) = futures::join!(local, from_relays);
    let mut ordered: Vec<Option<T>> = (0..total).map(|_| None).collect();
    for (positions, answers) in local.into_iter().chain(from_relays) {
        for (position, answer) in positions.into_iter().zip(answers) {
            ordered[position] = Some(answer);
        }
    }
    ordered.into_iter().flatten().collect()
}

/// Asks `nodes` from the current thread, all in flight together.
async fn ask_here<T, G, Fut>(nodes: Vec<Arc<NodeEntry>>, ask: &G) -> Vec<T>
where
    G: Fn(Arc<NodeEntry>) -> Fut,
    Fut: Future<Output = T>,
{
    // Unconstrained: with tokio's per-task budget spent, each of thousands of
    // pending answers would wake its task again and be polled for nothing,
    // turning a fan-out quadratic.
    tokio::task::unconstrained(join_all(nodes.into_iter().map(ask))).await
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
#[allow(clippy::too_many_arguments)] // Each is one setting of the restore; a struct would only rename them.
pub async fn restore_all(
    threads: ActorThreads,
    targets: Vec<(Arc<NodeEntry>, ModuleSlots)>,
    module: String,
    fence: Option<crate::store::RunFence>,
    timeout: Duration,
    attempts: u32,
    retry_delay: Duration,
    parent: tracing::Span,
) -> Vec<(String, String)> {
    let slots: Arc<HashMap<Uuid, ModuleSlots>> =
        Arc::new(targets.iter().map(|(n, s)| (n.node_id, s.clone())).collect());
    let mut remaining: Vec<Arc<NodeEntry>> = targets.into_iter().map(|(n, _)| n).collect();
    let mut node_attempts = 0;
    let mut store_delay = retry_delay.max(Duration::from_millis(50));
    loop {
        let (module, slots) = (module.clone(), slots.clone());
        let results = ask_all(threads.clone(), remaining.clone(), timeout, parent.clone(), move |n| RestoreModule {
            module: module.clone(),
            slots: slots.get(&n.node_id).cloned().unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use std::thread::ThreadId;

    use super::*;
    use crate::domain::{Environment, DEFAULT_TENANT};

    /// The id of each thread of the pool.
    async fn thread_ids(threads: &ActorThreads) -> Vec<ThreadId> {
        let mut ids = Vec::new();
        for t in 0..threads.len() {
            let (tx, rx) = oneshot::channel();
            assert!(threads.run_on(t, move || {
                let _ = tx.send(std::thread::current().id());
            }));
            ids.push(rx.await.expect("the thread answers"));
        }
        ids
    }

    #[actix::test]
    async fn each_node_is_asked_from_its_own_thread_and_answers_keep_the_node_order() {
        let threads = ActorThreads::new(2);
        let pool = thread_ids(&threads).await;
        let here = std::thread::current().id();
        assert!(!pool.contains(&here) && pool[0] != pool[1]);
        let nodes: Vec<Arc<NodeEntry>> = (0..12)
            .map(|i| {
                let node = NodeEntry::new(DEFAULT_TENANT, Uuid::new_v4(), format!("n{i}"), Environment::Development);
                // Thread 0, thread 1, and (every third) none of the pool's.
                node.place_for_test([Some(0), Some(1), None][i % 3]);
                Arc::new(node)
            })
            .collect();
        let answers =
            fan_out(
                &threads,
                nodes.clone(),
                |node| async move { (node.hostname.clone(), std::thread::current().id()) },
            )
            .await;
        assert_eq!(answers.len(), nodes.len());
        for (node, (hostname, asked_from)) in nodes.iter().zip(answers) {
            assert_eq!(node.hostname, hostname, "answers out of node order");
            let expected = node.thread().map_or(here, |t| pool[t]);
            assert_eq!(asked_from, expected, "{hostname} was asked from the wrong thread");
        }
    }

    #[actix::test]
    async fn with_one_thread_every_node_is_asked_from_the_callers_thread() {
        let threads = ActorThreads::new(1);
        let here = std::thread::current().id();
        let nodes: Vec<Arc<NodeEntry>> = (0..4)
            .map(|i| Arc::new(NodeEntry::new(DEFAULT_TENANT, Uuid::new_v4(), format!("n{i}"), Environment::Qa)))
            .collect();
        let answers = fan_out(&threads, nodes, |_| async move { std::thread::current().id() }).await;
        assert_eq!(answers, vec![here; 4]);
    }
}
