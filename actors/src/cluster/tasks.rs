//! Cluster-wide periodic tasks (audit retention, the artifact sweep, secret
//! rotation, message retention, the batch runner): each runs on one instance
//! of the cluster at a time, the one holding its task lease in the store
//! ([`crate::store::LeaseStore::hold_task`]).
//!
//! Every instance registers the same task names. The orchestrator's lease
//! keeper renews them all every third of a lease: the holder keeps its tasks,
//! the others learn they are held elsewhere, and when the holder stops
//! renewing (killed, paused, cut off) another instance takes each task within
//! a lease and one renewal. A task's pass also asks for the lease just before
//! it runs, so a pass never runs on an instance that lost the lease since the
//! last renewal, nor waits for the keeper's first renewal after a start.
//!
//! Approval expiry is not one of these: an approval's timer lives beside its
//! run's coordinator, so it moves with the run's lease.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::store::SharedStore;

/// The task names this instance competes for, and whether it held each at
/// the last look.
pub struct TaskLeases {
    store: SharedStore,
    owner: Arc<str>,
    held: Mutex<BTreeMap<&'static str, bool>>,
}

/// One task's lease, as a task's pass sees it.
#[derive(Clone)]
pub struct TaskLease {
    name: &'static str,
    leases: Arc<TaskLeases>,
}

impl TaskLeases {
    pub fn new(store: SharedStore, owner: Arc<str>) -> Arc<TaskLeases> {
        Arc::new(TaskLeases { store, owner, held: Mutex::new(BTreeMap::new()) })
    }

    /// The lease of the task `name`; from now on the keeper renews it too.
    pub fn lease(self: &Arc<Self>, name: &'static str) -> TaskLease {
        self.held.lock().entry(name).or_insert(false);
        TaskLease { name, leases: self.clone() }
    }

    /// Renews (or tries to take) every registered task's lease.
    pub async fn renew(&self) {
        let names: Vec<_> = self.held.lock().keys().copied().collect();
        for name in names {
            self.hold(name).await;
        }
    }

    /// The tasks this instance held at the last look, for the admin view.
    pub fn held_here(&self) -> Vec<&'static str> {
        self.held.lock().iter().filter(|(_, held)| **held).map(|(name, _)| *name).collect()
    }

    async fn hold(&self, name: &'static str) -> bool {
        let now_held = match self.store.hold_task(name, &self.owner).await {
            Ok(held) => held,
            Err(e) => {
                // Not knowing counts as not holding: a skipped pass is
                // caught up by the next one, a doubled pass is not undone.
                tracing::debug!(task = name, error = %e, "cannot renew a cluster task lease");
                false
            }
        };
        let was_held = self.held.lock().insert(name, now_held).unwrap_or(false);
        if now_held != was_held {
            if now_held {
                tracing::info!(instance = %self.owner, "this instance runs the cluster task {name} now");
            } else {
                tracing::info!(instance = %self.owner, "the cluster task {name} is held by another instance");
            }
        }
        now_held
    }
}

impl TaskLease {
    /// Whether the task's pass may run here now: this instance holds (or
    /// has just taken) the task's lease.
    pub async fn held(&self) -> bool {
        let held = self.leases.hold(self.name).await;
        if held {
            tracing::debug!("cluster task {} runs a pass here", self.name);
        }
        held
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Runs `pass` only while `lease` (when there is one) is held here: a task
/// started without a lease runs on every instance, as on a single one.
pub async fn when_held<F: std::future::Future<Output = ()>>(lease: Option<&TaskLease>, pass: F) {
    match lease {
        Some(lease) if !lease.held().await => {}
        _ => pass.await,
    }
}

/// Runs `pass` every `every` for the life of the process, on the current
/// actix runtime, only while `lease` (when there is one) is held here. Each
/// pass is awaited before the next tick is taken, and ticks missed during a
/// slow pass are not made up: passes never overlap or bunch up.
pub fn run_every<F, Fut>(every: std::time::Duration, lease: Option<TaskLease>, mut pass: F)
where
    F: FnMut() -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    actix::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            when_held(lease.as_ref(), pass()).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[actix::test]
    async fn one_instance_holds_a_task_and_the_other_takes_it_once_the_lease_expires() {
        let store: SharedStore = Arc::new(MemoryStore::new().with_lease_ttl(std::time::Duration::from_millis(200)));
        let (a, b) = (TaskLeases::new(store.clone(), "a".into()), TaskLeases::new(store, "b".into()));
        let (on_a, on_b) = (a.lease("sweep"), b.lease("sweep"));
        assert!(on_a.held().await);
        assert!(!on_b.held().await, "a holds it");
        b.renew().await;
        assert_eq!((a.held_here(), b.held_here()), (vec!["sweep"], vec![]));
        // a stops renewing: once its lease has run out, b takes the task.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        b.renew().await;
        assert_eq!(b.held_here(), vec!["sweep"]);
        assert!(!on_a.held().await, "a lost it");
        let mut ran = 0;
        when_held(Some(&on_b), async { ran += 1 }).await;
        when_held(Some(&on_a), async { ran += 10 }).await;
        when_held(None, async { ran += 100 }).await;
        assert_eq!(ran, 101);
    }

    /// A pass slower than the interval: the next starts only after it ended.
    #[actix::test]
    async fn passes_slower_than_their_interval_never_overlap() {
        use std::cell::Cell;
        use std::rc::Rc;
        use std::time::Duration;
        let (running, most, passes) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (r, m, p) = (running.clone(), most.clone(), passes.clone());
        run_every(Duration::from_millis(5), None, move || {
            let (r, m, p) = (r.clone(), m.clone(), p.clone());
            async move {
                r.set(r.get() + 1);
                m.set(m.get().max(r.get()));
                // The pass's own work, four intervals long.
                tokio::time::sleep(Duration::from_millis(20)).await;
                r.set(r.get() - 1);
                p.set(p.get() + 1);
            }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while passes.get() < 4 {
            assert!(tokio::time::Instant::now() < deadline, "only {} passes", passes.get());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(most.get(), 1, "passes overlapped");
    }
}
