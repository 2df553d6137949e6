//! The knowledge graph's commits told to the other instances over the Redis
//! backplane (`{prefix}:ch:graph`), and theirs applied to this instance's
//! index (`GraphService::apply_from_peer`). Without Redis each instance's
//! index shows its own writes only, until it loads the tenant again.

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
    let mut heard = redis.listen(CHANNEL, BACKLOG);
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
    graph.tell_peers(Arc::new(RedisGraphPeers { outgoing }));
}
