//! A bound on the runs the graph keeps: every active run, and the
//! `finished_runs` most recently created finished runs of each tenant
//! (`[graph] finished_runs`).
//!
//! Each run adds a Run entity and its DEPLOYED relationship. Kept for every
//! run, they grew the graph (and the index every instance loads at start-up)
//! by one entity per run for as long as the process ran, while the memory
//! store itself forgets finished runs past its window. A run that leaves the
//! window takes its relationships (DEPLOYED, TOUCHED) with it; its full
//! record stays in the store for as long as the store keeps it.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::index::TenantIndex;
use super::schema::types::RUN;
use crate::domain::{GraphChange, GraphEntity, RunStatus};

/// Finished runs held beyond the window before a write trims it: a
/// sixteenth of it. Trimming deletes Run entities, and deleting an entity
/// costs the memory store a pass over the tenant's relationships (it keeps
/// no adjacency); trimmed one run at a time, a busy tenant paid that pass at
/// every run's end. In bulk it is paid once per `slack` runs.
pub fn slack(finished_runs: usize) -> usize {
    finished_runs / 16
}

/// Finished runs a rebuild keeps when the graph holds `held`: as many as
/// the incremental writes would have left (the newest of them), within the
/// window and its slack.
pub fn kept_by_rebuild(finished_runs: usize, held: usize) -> usize {
    held.clamp(finished_runs, finished_runs + slack(finished_runs))
}

/// Runs that leave the window in one write at most. A graph that held more
/// than the window (written before it existed, or after the setting was
/// lowered) is brought down over the next writes instead of in one long
/// transaction.
pub const LEAVING_PER_WRITE: usize = 1_000;

/// `[graph]`: what the knowledge graph keeps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSettings {
    /// Finished runs kept per tenant, the most recently created first (and
    /// up to a sixteenth more between trims: `slack`).
    #[serde(default = "GraphSettings::default_finished_runs")]
    pub finished_runs: usize,
}

impl GraphSettings {
    fn default_finished_runs() -> usize {
        crate::store::DEFAULT_FINISHED_RUNS
    }
}

impl Default for GraphSettings {
    fn default() -> Self {
        GraphSettings { finished_runs: Self::default_finished_runs() }
    }
}

/// Where a finished run sorts: the oldest leave the window first.
pub type FinishedKey = (DateTime<Utc>, Uuid);

/// Whether `entity` is a Run entity whose status says it has finished.
pub fn is_finished_run(entity: &GraphEntity) -> bool {
    entity.entity_type == RUN
        && entity
            .properties
            .get("status")
            .and_then(|s| s.as_str())
            .and_then(RunStatus::parse)
            .is_some_and(|status| !status.is_active())
}

/// Makes `change` keep the window: once the finished runs (counting those
/// this change finishes) are more than `finished_runs` and its slack, the
/// oldest past `finished_runs` are deleted, or, if this change is the first
/// to write them, not written.
pub fn trim(index: &TenantIndex, change: &mut GraphChange, finished_runs: usize) {
    let mut finishing: Vec<FinishedKey> = Vec::new();
    let mut reopened: HashSet<Uuid> = HashSet::new();
    for e in &change.upsert_entities {
        if e.entity_type != RUN {
            continue;
        }
        let held = index.entities.get(&e.id).filter(|old| is_finished_run(old));
        match (held, is_finished_run(e)) {
            (None, true) => finishing.push((e.created_at, e.id)),
            (Some(_), false) => {
                reopened.insert(e.id);
            }
            _ => {}
        }
    }
    let finished = index.finished_runs.len() + finishing.len() - reopened.len();
    if finished <= finished_runs + slack(finished_runs) {
        return;
    }
    let leaving = (finished - finished_runs).min(LEAVING_PER_WRITE);
    // The oldest `leaving` of both: the index's are already in order.
    let mut oldest: BTreeSet<FinishedKey> =
        index.finished_runs.iter().filter(|(_, id)| !reopened.contains(id)).take(leaving).copied().collect();
    oldest.extend(finishing);
    let leaving: HashSet<Uuid> = oldest.into_iter().take(leaving).map(|(_, id)| id).collect();
    drop_runs(change, |id| leaving.contains(id));
    change.delete_entities.extend(leaving.into_iter().filter(|id| index.nodes.contains_key(id)));
}

/// Takes the runs `leaving` names out of `change`, with their relationships,
/// keeping the versions and nodes they name (those stand for themselves).
fn drop_runs(change: &mut GraphChange, leaving: impl Fn(&Uuid) -> bool) {
    change.upsert_entities.retain(|e| !leaving(&e.id));
    change.upsert_relationships.retain(|r| !leaving(&r.source_id) && !leaving(&r.target_id));
}

/// For a rebuild that lists runs newest first: keeps the first `kept`
/// finished runs (`kept_by_rebuild`), and every active one.
pub struct NewestFinishedFirst {
    room: usize,
}

impl NewestFinishedFirst {
    pub fn new(kept: usize) -> NewestFinishedFirst {
        NewestFinishedFirst { room: kept }
    }

    /// Takes the run out of `items` (a run's own, `system::run_items`) once
    /// the window is full of newer finished runs.
    pub fn keep(&mut self, items: &mut GraphChange) {
        let Some(run) = items.upsert_entities.iter().find(|e| is_finished_run(e)).map(|e| e.id) else { return };
        if self.room == 0 {
            drop_runs(items, |id| *id == run);
        } else {
            self.room -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::graph::system;

    fn finished_run(second: i64) -> GraphEntity {
        GraphEntity {
            created_at: Utc.timestamp_opt(1_760_000_000 + second, 0).single().unwrap_or_default(),
            ..system::entity(Uuid::nil(), Uuid::new_v4(), RUN, json!({ "status": "Succeeded" }))
        }
    }

    /// The window is trimmed in bulk: nothing leaves until the slack is
    /// used up, then the oldest leave, down to the window, the ones this
    /// change would write first among them.
    #[test]
    fn runs_leave_the_window_in_bulk_oldest_first() {
        let window = 32;
        assert_eq!(slack(window), 2);
        let mut index = TenantIndex::default();
        let held: Vec<GraphEntity> = (10..44).map(finished_run).collect();
        for e in &held {
            index.put_entity(e.clone());
        }
        // 34 held: the window and its slack, nothing to trim.
        let mut change = GraphChange::default();
        trim(&index, &mut change, window);
        assert_eq!(change, GraphChange::default());
        // Two more finish, one created before every held run.
        let older = finished_run(1);
        let newer = finished_run(50);
        let mut change = GraphChange { upsert_entities: vec![older.clone(), newer.clone()], ..GraphChange::default() };
        trim(&index, &mut change, window);
        assert_eq!(change.upsert_entities, vec![newer], "the oldest run is not written at all");
        let mut leaving = change.delete_entities.clone();
        leaving.sort();
        let mut oldest: Vec<Uuid> = held[..3].iter().map(|e| e.id).collect();
        oldest.sort();
        assert_eq!(leaving, oldest, "36 finished, 32 kept: the older one and the three oldest held");
        assert_eq!(kept_by_rebuild(window, 33), 33);
        assert_eq!(kept_by_rebuild(window, 40), 34);
        assert_eq!(kept_by_rebuild(window, 3), 32);
    }
}
