//! The simulated nodes' heartbeats: one timer for every cluster.
//!
//! A timer per node actor woke each of them every `heartbeat_interval`: with
//! 10,000 nodes at the test profile's 200 ms that is 50,000 wake-ups a second
//! before any work is done, and a node that queued behind them missed its
//! beat and failed validation. A simulated node beats while its actor is up,
//! so one pass over the directory per interval says the same thing: every node
//! whose actor lives beats, and a stopped or crashed one does not.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;

use super::{ClusterDirectory, NodeKind};

pub struct HeartbeatTicker {
    directory: Arc<ClusterDirectory>,
    interval: Duration,
}

impl HeartbeatTicker {
    pub fn new(directory: Arc<ClusterDirectory>, interval: Duration) -> Self {
        HeartbeatTicker { directory, interval }
    }

    /// Beats every simulated node whose actor is up (hosts beat through
    /// their agents); answers how many beat.
    fn beat_all(&self) -> usize {
        let now = Utc::now().timestamp_millis();
        let mut beats = 0;
        for cluster in self.directory.all() {
            for node in cluster.iter().filter(|n| n.kind == NodeKind::Simulated && n.is_up()) {
                node.beat_at(now);
                beats += 1;
            }
        }
        beats
    }
}

impl Actor for HeartbeatTicker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A pass is synchronous and short, so ticks cannot overlap.
        ctx.run_interval(self.interval, |act, _| {
            act.beat_all();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Environment, DEFAULT_TENANT};
    use crate::node::NodeEntry;

    #[test]
    fn only_nodes_without_a_live_actor_miss_their_beat() {
        let directory = Arc::new(ClusterDirectory::default());
        let node =
            Arc::new(NodeEntry::new(DEFAULT_TENANT, uuid::Uuid::new_v4(), "dev-1".into(), Environment::Development));
        directory.insert(DEFAULT_TENANT, Environment::Development, vec![node.clone()]);
        let ticker = HeartbeatTicker::new(directory, Duration::from_secs(1));
        assert_eq!(ticker.beat_all(), 0, "no actor was ever started for the node");
        assert!(node.last_heartbeat().is_none());
    }
}
