//! The memory store's runs: the records, the index of which run holds each
//! module, the window of finished runs kept, the counters admission reads,
//! and the run leases (trivially this process's when one instance uses the
//! store, but kept by the same rules as PostgreSQL's).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::compact::CompactChanges;
use super::roster::Rosters;
use crate::domain::{RunRecord, RunSummary, TenantId};
use crate::store::{RunCounts, StoreError, StoreResult};

/// What admission needs of one tenant, kept up to date as runs are stored,
/// so that counting never walks the tenant's history.
#[derive(Default)]
pub(super) struct TenantCounters {
    /// Runs that hold their module now.
    active: u64,
    /// Every module the tenant has run (finished runs leaving the window included).
    modules: HashSet<String>,
    /// Runs created on each UTC day.
    created_by_day: BTreeMap<NaiveDate, u64>,
}

/// Newest first: by creation time, then by execution id, both descending.
type ListOrder = Reverse<(DateTime<Utc>, Uuid)>;

fn list_order(run: &RunRecord) -> ListOrder {
    Reverse((run.created_at, run.execution_id))
}

/// Takes a run that is no longer stored out of its tenant's list order.
fn forget_order(newest_first: &mut HashMap<TenantId, BTreeSet<ListOrder>>, run: &RunRecord) {
    if let Some(order) = newest_first.get_mut(&run.tenant_id) {
        order.remove(&list_order(run));
        if order.is_empty() {
            newest_first.remove(&run.tenant_id);
        }
    }
}

#[derive(Default)]
pub(super) struct Runs {
    /// Finished runs are kept here without their changes, which are in `packed`.
    pub(super) by_id: HashMap<(TenantId, Uuid), RunRecord>,
    /// Each tenant's runs in the order lists show them (see [`ListOrder`]),
    /// so that a page is read without sorting the tenant's history.
    newest_first: HashMap<TenantId, BTreeSet<ListOrder>>,
    /// The changes of finished runs, kept compactly (see [`CompactChanges`]).
    packed: HashMap<(TenantId, Uuid), CompactChanges>,
    holders: HashMap<(TenantId, String), Uuid>,
    /// Each tenant's finished runs, oldest first: the window that is kept.
    finished: HashMap<TenantId, VecDeque<Uuid>>,
    /// The runs in `finished`, so that a run finishing twice (after a manual
    /// rollback) is counted once.
    in_window: HashSet<Uuid>,
    counters: HashMap<TenantId, TenantCounters>,
    /// When the lease of each owned active run expires.
    pub(super) lease_expiry: HashMap<(TenantId, Uuid), Instant>,
    /// The nodes of the last runs packed, for the next ones to share.
    rosters: Rosters,
}

impl Runs {
    /// The run as it was saved, with its changes.
    pub(super) fn get(&self, key: &(TenantId, Uuid)) -> Option<RunRecord> {
        let mut run = self.by_id.get(key)?.clone();
        if let Some(packed) = self.packed.get(key) {
            run.changes = packed.unpack();
        }
        Some(run)
    }

    /// How many nodes the run changed.
    pub(super) fn change_count(&self, run: &RunRecord) -> usize {
        match self.packed.get(&(run.tenant_id, run.execution_id)) {
            Some(packed) => packed.len(),
            None => run.changes.len(),
        }
    }

    /// The run other than `except` that holds the module of `run`, if any.
    pub(super) fn holder(&self, run: &RunRecord) -> Option<Uuid> {
        self.holders
            .get(&(run.tenant_id, run.request.module_name.clone()))
            .copied()
            .filter(|id| *id != run.execution_id)
    }

    /// The runs that hold their module, found through the holders' index.
    pub(super) fn active(&self) -> impl Iterator<Item = &RunRecord> {
        self.holders.iter().filter_map(|((tenant, _), id)| self.by_id.get(&(*tenant, *id)))
    }

    /// Refuses a save made under a lease epoch that is no longer the stored one.
    pub(super) fn check_fence(&self, run: &RunRecord) -> StoreResult<()> {
        let Some(owner) = &run.owner else { return Ok(()) };
        let stored = self.by_id.get(&(run.tenant_id, run.execution_id)).and_then(|r| r.owner.as_ref());
        match stored {
            Some(current) if current.epoch != owner.epoch => Err(StoreError::Fenced(format!(
                "deployment {} is now driven by {} (lease epoch {}), not by {} (epoch {})",
                run.execution_id, current.instance, current.epoch, owner.instance, owner.epoch
            ))),
            _ => Ok(()),
        }
    }

    /// Counts a new run against its tenant's day and modules.
    pub(super) fn note_created(&mut self, run: &RunRecord) {
        let counters = self.counters.entry(run.tenant_id).or_default();
        *counters.created_by_day.entry(run.created_at.date_naive()).or_default() += 1;
        if !counters.modules.contains(&run.request.module_name) {
            counters.modules.insert(run.request.module_name.clone());
        }
    }

    /// The tenant's counts, from the counters (and, for a `since` that is not
    /// a UTC midnight, from the runs of that one day).
    pub(super) fn counts(&self, tenant: TenantId, since: DateTime<Utc>, module: &str) -> RunCounts {
        let Some(counters) = self.counters.get(&tenant) else { return RunCounts::default() };
        let day = since.date_naive();
        let whole_days_from = if since == day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or(since) {
            Some(day)
        } else {
            day.succ_opt()
        };
        let mut created_since: u64 =
            whole_days_from.map(|from| counters.created_by_day.range(from..).map(|(_, n)| n).sum()).unwrap_or(0);
        if whole_days_from != Some(day) {
            // Part of a day: only that day's runs are walked.
            created_since += self
                .by_id
                .values()
                .filter(|r| r.tenant_id == tenant && r.created_at >= since && r.created_at.date_naive() == day)
                .count() as u64;
        }
        RunCounts {
            active: counters.active,
            created_since,
            modules: counters.modules.len() as u64,
            module_known: counters.modules.contains(module),
        }
    }

    /// Stores `run`; answers the finished runs that fell out of the window.
    pub(super) fn put(&mut self, run: &RunRecord, window: usize) -> Vec<(TenantId, Uuid)> {
        let key = (run.tenant_id, run.request.module_name.clone());
        let was_holder = self.holders.get(&key) == Some(&run.execution_id);
        let active = &mut self.counters.entry(run.tenant_id).or_default().active;
        if run.holds_module() {
            if !was_holder {
                *active += 1;
            }
            self.holders.insert(key, run.execution_id);
        } else if was_holder {
            *active = active.saturating_sub(1);
            self.holders.remove(&key);
            self.lease_expiry.remove(&(run.tenant_id, run.execution_id));
        }
        self.keep(run);
        if run.holds_module() || !self.in_window.insert(run.execution_id) {
            return Vec::new();
        }
        let finished = self.finished.entry(run.tenant_id).or_default();
        finished.push_back(run.execution_id);
        let mut evicted = Vec::new();
        while finished.len() > window {
            let Some(oldest) = finished.pop_front() else { break };
            self.in_window.remove(&oldest);
            let key = (run.tenant_id, oldest);
            // One rolled back on request since is busy again: it stays.
            if self.by_id.get(&key).is_some_and(RunRecord::holds_module) {
                continue;
            }
            if let Some(gone) = self.by_id.remove(&key) {
                forget_order(&mut self.newest_first, &gone);
            }
            self.packed.remove(&key);
            evicted.push(key);
        }
        evicted
    }

    /// Stores the record; a finished run's changes are packed, an active
    /// run's kept as they are (its coordinator shares them and adds to them).
    fn keep(&mut self, run: &RunRecord) {
        let key = (run.tenant_id, run.execution_id);
        let packed = match run.holds_module() || run.changes.is_empty() {
            true => None,
            false => CompactChanges::pack(&run.changes, &mut self.rosters),
        };
        let mut stored = run.clone();
        match packed {
            Some(packed) => {
                stored.changes = Default::default();
                self.packed.insert(key, packed);
            }
            None => {
                self.packed.remove(&key);
            }
        }
        let order = list_order(&stored);
        match self.by_id.insert(key, stored) {
            Some(old) if list_order(&old) == order => return,
            Some(old) => forget_order(&mut self.newest_first, &old),
            None => {}
        }
        self.newest_first.entry(run.tenant_id).or_default().insert(order);
    }

    /// A page of the tenant's runs, newest first: the summaries of the
    /// matching runs from `skip` on (`take` at most), and how many match.
    /// Without a filter (`matches` is `None`) only the page is read; with
    /// one, every run of the tenant is tested, but only the page's runs are
    /// copied, and nothing is sorted.
    pub(super) fn page(
        &self,
        tenant: TenantId,
        matches: Option<&dyn Fn(&RunRecord) -> bool>,
        skip: usize,
        take: usize,
    ) -> (u64, Vec<RunSummary>) {
        let Some(order) = self.newest_first.get(&tenant) else { return (0, Vec::new()) };
        let runs = order.iter().filter_map(|Reverse((_, id))| self.by_id.get(&(tenant, *id)));
        let Some(matches) = matches else {
            let items = runs.skip(skip).take(take).map(RunRecord::summary).collect();
            return (order.len() as u64, items);
        };
        let mut total = 0u64;
        let mut items = Vec::new();
        for run in runs.filter(|r| matches(r)) {
            if total as usize >= skip && items.len() < take {
                items.push(run.summary());
            }
            total += 1;
        }
        (total, items)
    }
}
