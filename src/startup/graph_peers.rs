//! The knowledge graph's commits told to the other instances over the Redis
//! backplane (`{prefix}:ch:graph`), and theirs applied to this instance's
//! index (`GraphService::apply_from_peer`). Without Redis each instance's
//! index shows its own writes only, until it loads the tenant again.
//!
//! Pub/sub keeps nothing for a listener that is away: the notices published
//! while this instance's subscription was down, or dropped because this
//! listener fell behind, are lost. After either, every index loaded here is
//! marked stale and loaded again from the store when next used. (Not after
//! every change of Redis's health generation: another channel's listener
//! falling behind, or a command timing out, loses no graph notice, and a
//! reload of a large graph is not free.)

use std::sync::Arc;

use hotswap_actors::graph::peers::{GraphCommitted, GraphPeers};
use hotswap_actors::graph::GraphService;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::redis::Redis;

const CHANNEL: &str = "graph";
/// Commits waiting to be published, and notices waiting to be applied. A
/// burst beyond this is dropped with a warning (the others stay stale for
/// those records until they load the tenant again).
const BACKLOG: usize = 4096;
/// How often the subscription and this listener are looked at for gaps.
const GAP_CHECK: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Serialize, Deserialize)]
struct Notice {
    origin: Uuid,
    #[serde(flatten)]
    committed: GraphCommitted,
}

struct RedisGraphPeers {
    outgoing: mpsc::Sender<GraphCommitted>,
}

impl GraphPeers for RedisGraphPeers {
    fn committed(&self, notice: GraphCommitted) {
        if self.outgoing.try_send(notice).is_err() {
            tracing::warn!("too many graph commits waiting for redis; another instance's graph misses one");
        }
    }
}

/// Publishes `graph`'s commits and applies the other instances'. Must run
/// inside a Tokio runtime.
pub fn connect(graph: Arc<GraphService>, redis: Arc<Redis>) {
    let origin = redis.origin();
    let (outgoing, mut commits) = mpsc::channel::<GraphCommitted>(BACKLOG);
    let publisher = redis.clone();
    // One task publishes, in commit order.
    tokio::spawn(async move {
        while let Some(committed) = commits.recv().await {
            let Ok(bytes) = serde_json::to_vec(&Notice { origin, committed }) else { continue };
            if let Err(e) = publisher.publish(CHANNEL, bytes).await {
                tracing::warn!(error = %e, "cannot tell the other instances of a graph commit");
            }
        }
    });
    let (mut heard, dropped) = redis.listen_counting_drops(CHANNEL, BACKLOG);
    // One task applies, in the order Redis delivers.
    let applier = graph.clone();
    tokio::spawn(async move {
        while let Some(bytes) = heard.recv().await {
            let Ok(notice) = serde_json::from_slice::<Notice>(&bytes) else { continue };
            if notice.origin == origin {
                continue;
            }
            if let Err(e) = applier.apply_from_peer(notice.committed).await {
                tracing::warn!(error = %e, "cannot apply another instance's graph commit");
            }
        }
    });
    reload_after_gaps(Arc::downgrade(&graph), redis.health().clone(), dropped);
    graph.tell_peers(Arc::new(RedisGraphPeers { outgoing }));
}

/// Marks every loaded index stale whenever the subscription was lost or made
/// again, or this listener dropped a notice. Marked at the loss too (not only
/// at the return), so that an index loaded during the outage, which hears
/// nothing, is loaded again afterwards.
fn reload_after_gaps(
    graph: std::sync::Weak<GraphService>,
    health: Arc<crate::redis::RedisHealth>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
) {
    let gaps = move || (health.subscription_changes(), dropped.load(std::sync::atomic::Ordering::Acquire));
    tokio::spawn(async move {
        let mut seen = gaps();
        let mut tick = tokio::time::interval(GAP_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = gaps();
            if now == seen {
                continue;
            }
            seen = now;
            let Some(graph) = graph.upgrade() else { return };
            tracing::info!("graph notices from other instances may have been missed; reloading the graph on next use");
            graph.forget_all();
        }
    });
}
