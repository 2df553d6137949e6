//! Asking many node actors at once, each request bounded by a timeout.
//!
//! With the actors spread over several threads, the requests to the nodes
//! of each thread are made from that thread: one relay task per thread
//! sends its nodes their messages, gathers their answers and hands them back
//! together. The coordinator's thread then handles one answer per thread
//! instead of one per node, and every thread shares the work of sending and
//! receiving, rather than the coordinator's doing it for all of them.
//!
//! Every request of one call has the same timeout, so each group of
//! requests waits on one timer ([`gather_until`]) rather than one per node.
//!
//! Each request has a span of its own (a child of the stage's), up to
//! [`NODE_SPANS_UP_TO`] nodes per call. Beyond that the call is traced as
//! one event on the stage's span that counts the nodes.

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
use crate::node::{gather_until, NodeEntry};
use crate::node::{NodeActor, NodeError, RestoreModule, Traced};
use crate::supervision::ActorThreads;

/// The most nodes one call traces with a span per node. At 100,000 nodes
/// the spans of a run's calls and of the nodes' store writes took a quarter
/// of the run's time through the server, and a trace of 100,000 calls is
/// not one anybody reads; each node's failure is still in the stage.
pub const NODE_SPANS_UP_TO: usize = 1_000;

/// The span of each node's request, or, for a call to more nodes than
/// [`NODE_SPANS_UP_TO`], none (and one event on `parent` counting them).
fn node_spans<M>(parent: &tracing::Span, nodes: &[Arc<NodeEntry>]) -> impl Fn(&NodeEntry) -> tracing::Span {
    let per_node = nodes.len() <= NODE_SPANS_UP_TO;
    if !per_node {
        let message = message_name::<M>();
        tracing::info!(parent: parent, nodes = nodes.len(), call = message, "node calls not traced one by one");
    }
    let parent = parent.clone();
    move |node| if per_node { node_span::<M>(&parent, node) } else { tracing::Span::none() }
}

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
    let span_of = node_spans::<M>(&parent, &nodes);
    let ask = move |node: Arc<NodeEntry>| {
        let msg = make(&node);
        let addr = node.addr();
        let span = span_of(&node);
        let msg = Traced { msg, span: span.clone() };
        let pending = node.track_request();
        async move {
            let _pending = pending;
            let Some(addr) = addr else { return Err(unreachable(&node.hostname)) };
            let answer = match addr.send(msg).await {
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
    fan_out(&threads, nodes, timeout, ask).await
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
    let span_of = node_spans::<M>(&parent, &nodes);
    let ask = move |node: Arc<NodeEntry>| {
        let msg = make(&node);
        let addr = node.addr();
        let span = span_of(&node);
        let msg = Traced { msg, span: span.clone() };
        let pending = node.track_request();
        async move {
            let _pending = pending;
            let Some(addr) = addr else { return Err(unreachable(&node.hostname)) };
            addr.send(msg).await.map_err(|e| mailbox(&node.hostname, e, timeout))
        }
        .instrument(span)
    };
    fan_out(&threads, nodes, timeout, ask).await
}

/// Asks every node with `ask` and answers in node order; a node that has not
/// answered within `timeout` answers with that. The requests to each
/// thread's nodes are made on that thread ([`per_thread`]).
async fn fan_out<R, G, Fut>(
    threads: &ActorThreads,
    nodes: Vec<Arc<NodeEntry>>,
    timeout: Duration,
    ask: G,
) -> Vec<Result<R, NodeError>>
where
    R: Send + 'static,
    G: Fn(Arc<NodeEntry>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, NodeError>> + 'static,
{
    let ask = Arc::new(ask);
    per_thread(threads, nodes, move |group| {
        let ask = ask.clone();
        async move { ask_here(group, &*ask, timeout).await }
    })
    .await
}

/// Does `work` for the nodes of each actor thread on that thread, all
/// threads at once, and answers with one item per node in node order.
/// `work` answers with one item per node of the group it is given, in its
/// order. Without threads of the pool's own, or for nodes on none of them,
/// or when a thread is gone, the work is done here.
pub(super) async fn per_thread<T, W, Fut>(threads: &ActorThreads, nodes: Vec<Arc<NodeEntry>>, work: W) -> Vec<T>
where
    T: Send + 'static,
    W: Fn(Vec<Arc<NodeEntry>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<T>> + 'static,
{
    let count = threads.len();
    if count <= 1 {
        return work(nodes).await;
    }
    // Each node's position in `nodes`, grouped by the thread it runs on.
    let mut groups: Vec<(Vec<usize>, Vec<Arc<NodeEntry>>)> = (0..=count).map(|_| Default::default()).collect();
    for (position, node) in nodes.into_iter().enumerate() {
        let group = node.thread().filter(|t| *t < count).unwrap_or(count);
        groups[group].0.push(position);
        groups[group].1.push(node);
    }
    let work = Arc::new(work);
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
        let relay_work = work.clone();
        // A relay needs its members back if its thread is gone before it starts.
        let kept = members.clone();
        let started = threads.run_on(thread, move || {
            actix::spawn(async move {
                let _ = answer.send(relay_work(members).await);
            });
        });
        if started {
            relayed.push((positions, kept, answered));
        } else {
            here.push((positions, kept));
        }
    }
    let local = join_all(here.into_iter().map(|(positions, members)| {
        let work = work.clone();
        async move { (positions, work(members).await) }
    }));
    let from_relays = join_all(relayed.into_iter().map(|(positions, members, answered)| {
        let work = work.clone();
        async move {
            match answered.await {
                Ok(answers) => (positions, answers),
                // The thread stopped before its relay answered: do it here.
                Err(_) => (positions, work(members).await),
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
    // Sized once: collecting a flattened iterator would grow (and copy) the
    // vector step by step, and the answers may be large.
    let mut answers = Vec::with_capacity(total);
    answers.extend(ordered.into_iter().flatten());
    answers
}

/// Asks `nodes` from the current thread, all in flight together, and answers
/// in their order; those that have not answered within `timeout` answer
/// that they did not.
async fn ask_here<R, G, Fut>(nodes: Vec<Arc<NodeEntry>>, ask: &G, timeout: Duration) -> Vec<Result<R, NodeError>>
where
    G: Fn(Arc<NodeEntry>) -> Fut,
    Fut: Future<Output = Result<R, NodeError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let answers = gather_until(nodes.iter().map(|node| ask(node.clone())), deadline).await;
    let late = answers.iter().filter(|a| a.is_none()).count();
    if late > 0 {
        tracing::warn!(nodes = late, ?timeout, "nodes did not answer in time");
    }
    nodes
        .iter()
        .zip(answers)
        .map(|(node, answer)| answer.unwrap_or_else(|| Err(mailbox(&node.hostname, MailboxError::Timeout, timeout))))
        .collect()
}

/// The span of one request to one node, a child of the stage's span.
fn node_span<M>(parent: &tracing::Span, node: &NodeEntry) -> tracing::Span {
    let message = message_name::<M>();
    tracing::info_span!(
        parent: parent,
        "node.call",
        otel.name = %format_args!("node {message}"),
        node.id = %node.node_id,
        node.hostname = %node.hostname,
        message,
    )
}

/// The message's type name without its path (`LoadVersion`).
fn message_name<M>() -> &'static str {
    std::any::type_name::<M>().rsplit("::").next().unwrap_or("message")
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
        let answers = per_thread(&threads, nodes.clone(), |group| async move {
            group.iter().map(|node| (node.hostname.clone(), std::thread::current().id())).collect::<Vec<_>>()
        })
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
        let answers = per_thread(&threads, nodes, |group| async move {
            group.iter().map(|_| std::thread::current().id()).collect::<Vec<_>>()
        })
        .await;
        assert_eq!(answers, vec![here; 4]);
    }

    #[actix::test]
    async fn a_node_that_does_not_answer_in_time_fails_alone_under_the_groups_one_deadline() {
        let nodes: Vec<Arc<NodeEntry>> = ["quick-1", "silent", "quick-2"]
            .into_iter()
            .map(|name| Arc::new(NodeEntry::new(DEFAULT_TENANT, Uuid::new_v4(), name.into(), Environment::Qa)))
            .collect();
        let ask = |node: Arc<NodeEntry>| async move {
            if node.hostname == "silent" {
                std::future::pending::<()>().await;
            }
            Ok::<_, NodeError>(node.hostname.clone())
        };
        let answers = ask_here(nodes, &ask, Duration::from_millis(50)).await;
        assert_eq!(answers[0].as_deref().ok(), Some("quick-1"));
        assert_eq!(answers[2].as_deref().ok(), Some("quick-2"));
        let silent = answers[1].as_ref().expect_err("the silent node fails").to_string();
        assert!(silent.contains("silent did not answer within 50ms"), "{silent}");
    }
}
