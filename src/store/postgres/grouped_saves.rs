//! Group commit for run saves. Every coordinator saves its run after each
//! step, and one save on its own is a transaction of four or five round
//! trips (the fenced update, the new events, audit entries and node
//! changes, the commit). With hundreds of runs in flight those round trips
//! and commits were most of what the database did per run. Here saves queue
//! up while a group is being written, and the next write takes all of them
//! in one transaction: one statement updates every run of the group, one
//! insert per table appends what they add. A save that finds nothing
//! queued is written on its own at once, exactly as before; a crowd of
//! saves waits for one transaction instead of each for its own. Every save
//! is answered only after the transaction that wrote it committed.
//!
//! A save the group could not write (an older revision, a lost lease, a run
//! not stored) is tried again on its own after the group, which names the
//! refusal exactly; so is every save of a group whose transaction failed
//! for any reason but an unreachable database.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap_actors::domain::{NewAuditEntry, RunRecord};
use hotswap_actors::store::{RunEvent, StoreError, StoreResult};
use parking_lot::Mutex;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::audit::insert_audit;
use super::cached_sql::CachedSql;
use super::codec::{self, split_time};
use super::errors::Failure;
use super::run_changes;
use super::runs::{insert_events, EventRow};
use super::PgStore;

/// Saves written together at most, so that one transaction stays short.
const MAX_GROUP: usize = 128;

/// The runs of a group, updated in one statement: each only to a newer
/// revision, and only under the lease epoch it was saved under (the same
/// conditions as a single save's update). The rows it returns are the saves
/// it wrote. The rows are locked first in key order, the order in which
/// grouped node writes lock them to check their fences (`nodes.rs`) and
/// lease renewals lock them (`leases.rs`), so two writers of the same runs
/// wait for each other instead of deadlocking.
const UPDATE_RUNS: &str = "\
    WITH v AS ( \
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
                             $7::timestamptz[], $8::int2[], $9::timestamptz[], $10::int2[], $11::int8[], \
                             $12::bool[], $13::jsonb[], $14::int8[]) \
            AS v(tenant_id, execution_id, module_name, version, target_environment, status, \
                 created_at, created_at_nanos, finished_at, finished_at_nanos, revision, \
                 holds_module, record, owner_epoch)), \
    locked AS ( \
        SELECT r.tenant_id, r.execution_id FROM runs r \
        JOIN v ON r.tenant_id = v.tenant_id AND r.execution_id = v.execution_id \
        ORDER BY r.tenant_id, r.execution_id \
        FOR NO KEY UPDATE OF r) \
    UPDATE runs AS r SET module_name = v.module_name, version = v.version, \
        target_environment = v.target_environment, status = v.status, \
        created_at = v.created_at, created_at_nanos = v.created_at_nanos, \
        finished_at = v.finished_at, finished_at_nanos = v.finished_at_nanos, \
        revision = v.revision, holds_module = v.holds_module, record = v.record, saved_at = now() \
    FROM v, locked \
    WHERE r.tenant_id = v.tenant_id AND r.execution_id = v.execution_id \
      AND locked.tenant_id = r.tenant_id AND locked.execution_id = r.execution_id \
      AND r.revision < v.revision \
      AND (v.owner_epoch IS NULL OR r.owner_epoch = v.owner_epoch) \
    RETURNING r.tenant_id, r.execution_id";

/// A run save with everything it writes, owned, so that it can wait in the
/// queue after its caller has given up (a deadline) without borrowing from it.
pub(super) struct PreparedSave {
    pub(super) run: RunRecord,
    /// The record column, encoded by the caller on its own thread.
    pub(super) record: serde_json::Value,
    pub(super) events: Vec<RunEvent>,
    pub(super) audit: Vec<NewAuditEntry>,
}

impl PreparedSave {
    pub(super) fn new(run: &RunRecord, events: &[RunEvent]) -> StoreResult<Self> {
        Ok(PreparedSave {
            record: run_changes::record_without_changes(run)?,
            audit: hotswap_actors::audit::run_entries(run, events),
            events: events.to_vec(),
            run: run.clone(),
        })
    }

    fn key(&self) -> (Uuid, Uuid) {
        (self.run.tenant_id, self.run.execution_id)
    }
}

/// A save waiting for its group, and who waits for the outcome.
struct QueuedSave {
    save: PreparedSave,
    answer: oneshot::Sender<StoreResult<()>>,
}

/// The saves waiting for the writer, and counts of what it wrote.
#[derive(Default)]
pub(super) struct SaveQueue {
    /// `Some` while a writer task runs: the saves it has not taken yet.
    waiting: Mutex<Option<VecDeque<QueuedSave>>>,
    transactions: AtomicU64,
    saves: AtomicU64,
}

/// What the writer has done since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupedSaves {
    /// Transactions that wrote saves (one per group, or per save written alone).
    pub transactions: u64,
    /// Saves written.
    pub saves: u64,
}

impl SaveQueue {
    /// Queues `queued`; answers whether no writer is running, so that the
    /// caller must start one.
    fn push(&self, queued: QueuedSave) -> bool {
        let mut waiting = self.waiting.lock();
        let start = waiting.is_none();
        waiting.get_or_insert_with(VecDeque::new).push_back(queued);
        start
    }

    /// The next group to write, or `None` (and the writer's end) when
    /// nothing waits.
    fn next_group(&self) -> Option<Vec<QueuedSave>> {
        let mut waiting = self.waiting.lock();
        let group = next_group(waiting.as_mut()?, |q| q.save.key(), |q| q.answer.is_closed());
        if group.is_empty() {
            *waiting = None;
            return None;
        }
        Some(group)
    }

    fn wrote(&self, saves: usize) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.saves.fetch_add(saves as u64, Ordering::Relaxed);
    }
}

/// Takes the saves of the next group from the front of `waiting`: at most
/// [`MAX_GROUP`], no run twice (one statement cannot apply two revisions of
/// a row in order, so a run's next save waits for the next group), and none
/// whose caller stopped waiting (it was told the store did not answer in
/// time, and saves again itself).
fn next_group<T, K: Eq + std::hash::Hash>(
    waiting: &mut VecDeque<T>,
    run: impl Fn(&T) -> K,
    abandoned: impl Fn(&T) -> bool,
) -> Vec<T> {
    let mut group = Vec::new();
    let mut runs = HashSet::new();
    while let Some(first) = waiting.front() {
        if abandoned(first) {
            waiting.pop_front();
            continue;
        }
        if group.len() == MAX_GROUP || !runs.insert(run(first)) {
            break;
        }
        group.extend(waiting.pop_front());
    }
    group
}

/// If the writer task ends early (a panic, its runtime stopping), the guard
/// forgets the queue: its waiters hear that the writer stopped, and the next
/// save starts a new writer.
struct ForgetOnDrop<'a> {
    queue: &'a SaveQueue,
    done: bool,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        if !self.done {
            *self.queue.waiting.lock() = None;
        }
    }
}

#[derive(QueryableByName)]
struct SavedKey {
    #[diesel(sql_type = SqlUuid)]
    tenant_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    execution_id: Uuid,
}

impl PgStore {
    /// Saves `save` with whatever else waits, and answers once it is
    /// committed (or refused).
    pub(super) async fn save_in_group(&self, save: PreparedSave) -> StoreResult<()> {
        let (answer, outcome) = oneshot::channel();
        if self.saves.push(QueuedSave { save, answer }) {
            let store = self.clone();
            // A task of its own: no caller waits for more than its own group.
            tokio::spawn(async move { store.write_queued_saves().await });
        }
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable("the run's save was interrupted before the database answered".into()))
        })
    }

    /// What the writer has done since the store was opened.
    pub fn grouped_saves(&self) -> GroupedSaves {
        // Called as functions: diesel's `RunQueryDsl::load`, in scope here,
        // would otherwise be picked for the atomics.
        GroupedSaves {
            transactions: AtomicU64::load(&self.saves.transactions, Ordering::Relaxed),
            saves: AtomicU64::load(&self.saves.saves, Ordering::Relaxed),
        }
    }

    /// Writes the queued saves, group by group, until none is left.
    async fn write_queued_saves(&self) {
        let mut guard = ForgetOnDrop { queue: &self.saves, done: false };
        while let Some(group) = self.saves.next_group() {
            self.write_group(group).await;
        }
        guard.done = true;
    }

    /// Writes one queued save in a transaction of its own, and answers it.
    async fn write_alone(&self, queued: QueuedSave) {
        let saved = self.save_one(queued.save).await;
        if saved.is_ok() {
            self.saves.wrote(1);
        }
        // A caller that stopped waiting does not need the answer.
        let _ = queued.answer.send(saved);
    }

    async fn write_group(&self, mut group: Vec<QueuedSave>) {
        if group.len() == 1 {
            self.write_alone(group.remove(0)).await;
            return;
        }
        let saves: Vec<&PreparedSave> = group.iter().map(|q| &q.save).collect();
        let written = match self.save_together(&saves).await {
            Ok(written) => written,
            Err(StoreError::Unavailable(e)) => {
                // Saved one by one, each would wait for the database in turn.
                for queued in group {
                    let _ = queued.answer.send(Err(StoreError::Unavailable(e.clone())));
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, saves = group.len(), "group of saves refused; saving one by one");
                HashSet::new()
            }
        };
        if !written.is_empty() {
            self.saves.wrote(written.len());
        }
        let mut left = Vec::new();
        for queued in group {
            if written.contains(&queued.save.key()) {
                let _ = queued.answer.send(Ok(()));
            } else {
                left.push(queued);
            }
        }
        for queued in left {
            if !queued.answer.is_closed() {
                self.write_alone(queued).await;
            }
        }
    }

    /// Writes `saves` in one transaction; answers which runs it wrote.
    async fn save_together(&self, saves: &[&PreparedSave]) -> StoreResult<HashSet<(Uuid, Uuid)>> {
        let update = update_statement(saves)?;
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, Failure, _>(async |conn| {
            let keys: Vec<SavedKey> = update.load(conn).await?;
            let written: HashSet<(Uuid, Uuid)> = keys.into_iter().map(|k| (k.tenant_id, k.execution_id)).collect();
            let kept: Vec<&PreparedSave> = saves.iter().copied().filter(|s| written.contains(&s.key())).collect();
            // The update holds the written runs' row locks: no other save of
            // them appends changes until this transaction ends.
            let changed: Vec<&RunRecord> = kept.iter().map(|s| &s.run).filter(|r| !r.changes.is_empty()).collect();
            let saved = run_changes::saved_counts(conn, &changed).await?;
            let appends: Vec<(&RunRecord, usize)> = changed.into_iter().zip(saved).collect();
            let events: Vec<EventRow> = kept.iter().flat_map(|s| s.events.iter().map(EventRow::new)).collect();
            // They do not depend on one another: sent together (pipelined).
            let conn: &AsyncPgConnection = conn;
            futures::try_join!(
                run_changes::append_many(conn, &appends),
                async { insert_events(conn, &events).await.map_err(Failure::from) },
                async { insert_audit(conn, kept.iter().flat_map(|s| &s.audit)).await.map_err(Failure::from) },
            )?;
            Ok(written)
        })
        .await
        .map_err(|f| self.failure(conn, f))
    }
}

/// The group's update with its columns bound as arrays, one element per save.
fn update_statement<'a>(saves: &[&'a PreparedSave]) -> StoreResult<CachedSql<'a>> {
    let runs = || saves.iter().map(|s| &s.run);
    let created: Vec<_> = runs().map(|r| split_time(r.created_at)).collect();
    let finished: Vec<_> = runs().map(|r| r.finished_at.map(split_time)).collect();
    let revisions = runs().map(|r| codec::revision(r.revision)).collect::<StoreResult<Vec<i64>>>()?;
    let epochs = runs()
        .map(|r| r.owner.as_ref().map(|o| codec::revision(o.epoch)).transpose())
        .collect::<StoreResult<Vec<Option<i64>>>>()?;
    let text = |column: fn(&'a RunRecord) -> &'a str| saves.iter().map(|s| column(&s.run)).collect::<Vec<&'a str>>();
    Ok(CachedSql::new(UPDATE_RUNS)
        .bind::<Array<SqlUuid>, _>(runs().map(|r| r.tenant_id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(runs().map(|r| r.execution_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(text(|r| &r.request.module_name))
        .bind::<Array<Text>, _>(text(|r| &r.request.version))
        .bind::<Array<Text>, _>(text(|r| r.request.target_environment.as_str()))
        .bind::<Array<Text>, _>(text(|r| r.status.as_str()))
        .bind::<Array<Timestamptz>, _>(created.iter().map(|c| c.0).collect::<Vec<_>>())
        .bind::<Array<SmallInt>, _>(created.iter().map(|c| c.1).collect::<Vec<_>>())
        .bind::<Array<Nullable<Timestamptz>>, _>(finished.iter().map(|f| f.map(|f| f.0)).collect::<Vec<_>>())
        .bind::<Array<Nullable<SmallInt>>, _>(finished.iter().map(|f| f.map(|f| f.1)).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(revisions)
        .bind::<Array<Bool>, _>(runs().map(|r| r.holds_module()).collect::<Vec<_>>())
        .bind::<Array<Jsonb>, _>(saves.iter().map(|s| &s.record).collect::<Vec<&'a serde_json::Value>>())
        .bind::<Array<Nullable<BigInt>>, _>(epochs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queued save in the tests: its run's key, and whether its caller still waits.
    fn waiting(items: &[(u32, bool)]) -> VecDeque<(u32, bool)> {
        items.iter().copied().collect()
    }

    fn take(queue: &mut VecDeque<(u32, bool)>) -> Vec<u32> {
        next_group(queue, |q| q.0, |q| !q.1).into_iter().map(|q| q.0).collect()
    }

    #[test]
    fn a_run_saved_twice_waits_for_the_next_group() {
        let mut queue = waiting(&[(1, true), (2, true), (1, true), (3, true)]);
        assert_eq!(take(&mut queue), vec![1, 2]);
        assert_eq!(take(&mut queue), vec![1, 3]);
        assert!(take(&mut queue).is_empty());
    }

    #[test]
    fn saves_whose_callers_stopped_waiting_are_dropped() {
        let mut queue = waiting(&[(1, false), (2, true), (3, false), (4, true)]);
        assert_eq!(take(&mut queue), vec![2, 4]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_group_is_bounded() {
        let mut queue: VecDeque<(u32, bool)> = (0..MAX_GROUP as u32 + 3).map(|k| (k, true)).collect();
        assert_eq!(take(&mut queue).len(), MAX_GROUP);
        assert_eq!(take(&mut queue), vec![MAX_GROUP as u32, MAX_GROUP as u32 + 1, MAX_GROUP as u32 + 2]);
    }
}
