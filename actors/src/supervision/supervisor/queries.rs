//! What the admin API and the core ask a supervisor without copying all of
//! its children: one page of them, one child, counts by state, and a barrier.
//! With 100,000 node actors a full snapshot took tens of milliseconds.

use actix::prelude::*;
use serde::Serialize;

use super::{ChildKey, ChildSnapshot, ChildState, Supervisor, SupervisorSnapshot};
use crate::domain::TenantId;

/// Answered once every message sent to the supervisor before it has been
/// handled (a child started by then has started), without a snapshot of
/// every child, which with 100,000 nodes took tens of milliseconds.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Settled;

impl Handler<Settled> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Settled, _ctx: &mut Self::Context) {}
}

/// One page of the children a tenant sees (its own and the shared ones):
/// those that need an operator's eye first (not running, or restarted), then
/// by id. Only the page is copied out of the supervisor.
#[derive(Message)]
#[rtype(result = "SupervisorPage")]
pub struct GetTreePage {
    pub tenant: TenantId,
    pub offset: usize,
    pub limit: usize,
}

/// A supervisor with one page of its children.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupervisorPage {
    #[serde(flatten)]
    pub tree: SupervisorSnapshot,
    /// All the children the tenant sees, listed or not.
    pub child_count: usize,
    /// Those children by state.
    #[serde(skip)]
    pub by_state: StateCounts,
}

/// Children by state.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateCounts {
    pub running: usize,
    pub restarting: usize,
    pub stopping: usize,
    pub stopped: usize,
    pub failed: usize,
}

impl StateCounts {
    fn add(&mut self, state: ChildState) {
        let count = match state {
            ChildState::Running => &mut self.running,
            ChildState::Restarting => &mut self.restarting,
            ChildState::Stopping => &mut self.stopping,
            ChildState::Stopped => &mut self.stopped,
            ChildState::Failed => &mut self.failed,
        };
        *count += 1;
    }
}

impl Handler<GetTreePage> for Supervisor {
    type Result = MessageResult<GetTreePage>;

    fn handle(&mut self, msg: GetTreePage, _ctx: &mut Self::Context) -> Self::Result {
        let mut by_state = StateCounts::default();
        let mut keys: Vec<(&ChildKey, bool)> = self
            .children
            .iter()
            .filter(|(key, _)| key.0.is_none_or(|t| t == msg.tenant))
            .inspect(|(_, child)| by_state.add(child.state))
            .map(|(key, child)| (key, child.state == ChildState::Running && child.restarts == 0))
            .collect();
        let child_count = keys.len();
        let order = |a: &(&ChildKey, bool), b: &(&ChildKey, bool)| a.1.cmp(&b.1).then_with(|| a.0 .1.cmp(&b.0 .1));
        // Only the first offset + limit need their order: pick them, then sort those.
        let end = msg.offset.saturating_add(msg.limit).min(keys.len());
        if msg.limit == 0 {
            keys.clear();
        } else if end < keys.len() {
            keys.select_nth_unstable_by(end, order);
            keys.truncate(end);
        }
        keys.sort_unstable_by(order);
        let children = keys.iter().skip(msg.offset).filter_map(|(key, _)| self.snapshot_of(key)).collect();
        MessageResult(SupervisorPage {
            tree: SupervisorSnapshot {
                name: self.name.clone(),
                total_restarts: self.total_restarts,
                total_escalations: self.total_escalations,
                policies: self.policies.clone(),
                children,
            },
            child_count,
            by_state,
        })
    }
}

/// One child a tenant sees, by id: its own, else a shared one.
#[derive(Message)]
#[rtype(result = "Option<ChildSnapshot>")]
pub struct GetChild {
    pub tenant: TenantId,
    pub id: String,
}

impl Handler<GetChild> for Supervisor {
    type Result = Option<ChildSnapshot>;

    fn handle(&mut self, msg: GetChild, _ctx: &mut Self::Context) -> Option<ChildSnapshot> {
        let own = (Some(msg.tenant), msg.id);
        self.snapshot_of(&own).or_else(|| self.snapshot_of(&(None, own.1)))
    }
}
