//! Run ownership across instances. Every `cluster.lease_ttl / 3` this
//! instance renews the leases of the runs it drives, lets go of those another
//! instance has taken, and takes over a few runs whose lease expired,
//! resuming each at its checkpoint. A coordinator whose run was taken finds
//! out itself when its next save is fenced; one that makes no save (a long
//! wait) is stopped here when its run is still missing from the renewal one
//! pass later. Taking a few per pass spreads the runs of a lost
//! instance over the instances that remain. The same pass renews the
//! cluster-wide task leases (`cluster::TaskLeases`).

use std::collections::HashSet;
use std::time::Instant;

use actix::prelude::*;

use super::Orchestrator;
use crate::coordinator::{GetRun, StopCoordinator};

/// Expired runs taken over in one pass.
const CLAIM_BATCH: u32 = 8;

pub(super) struct LeaseKeeper {
    orchestrator: Orchestrator,
    /// A pass is under way; a tick meanwhile is skipped.
    running: bool,
    /// Runs driven here that the last renewal did not hold.
    lost: HashSet<uuid::Uuid>,
    /// When the leases were last renewed: past a whole lease without a
    /// renewal, every run here may have been taken, so all are let go.
    renewed_at: Instant,
}

impl LeaseKeeper {
    pub(super) fn new(orchestrator: Orchestrator) -> Self {
        LeaseKeeper { orchestrator, running: false, lost: HashSet::new(), renewed_at: Instant::now() }
    }
}

impl Actor for LeaseKeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = self.orchestrator.inner.settings.cluster.renew_interval();
        ctx.run_interval(every, |act, ctx| {
            if act.running {
                return;
            }
            act.running = true;
            let orchestrator = act.orchestrator.clone();
            let renewed_at = act.renewed_at;
            let lost_before = std::mem::take(&mut act.lost);
            ctx.spawn(pass(orchestrator, renewed_at, lost_before).into_actor(act).map(|outcome, act, _ctx| {
                act.running = false;
                if let Some(lost) = outcome {
                    act.renewed_at = Instant::now();
                    act.lost = lost;
                }
            }));
        });
    }
}

/// One pass; the runs found lost when the renewal went through.
async fn pass(
    orchestrator: Orchestrator,
    renewed_at: Instant,
    lost_before: HashSet<uuid::Uuid>,
) -> Option<HashSet<uuid::Uuid>> {
    let inner = &orchestrator.inner;
    let me = &*inner.instance_id;
    // Read before the renewal: a run created after it is not in the answer,
    // and must not be taken for lost.
    let driven = inner.runs.ids();
    let renewed = match inner.store.renew_runs(me).await {
        Ok(held) => {
            let held: HashSet<_> = held.into_iter().collect();
            Some(let_go_of_lost_runs(&orchestrator, driven, &held, &lost_before).await)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot renew run leases");
            if renewed_at.elapsed() > inner.settings.cluster.lease_ttl {
                tracing::error!("run leases not renewed for a whole lease; letting every run here go");
                for id in inner.runs.ids() {
                    if let Some(addr) = inner.runs.get(id) {
                        addr.do_send(StopCoordinator);
                    }
                }
            }
            None
        }
    };
    inner.task_leases.renew().await;
    match inner.store.claim_runs(me, CLAIM_BATCH).await {
        Ok(claimed) if claimed.is_empty() => {}
        Ok(claimed) => {
            tracing::warn!(runs = claimed.len(), "taking over runs whose owner stopped renewing its lease");
            if let Err(e) = orchestrator.resume_claimed(claimed).await {
                tracing::warn!(error = %e, "could not resume every run taken over; the next pass retries");
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot look for expired run leases"),
    }
    renewed
}

/// The active runs driven here whose lease this instance no longer holds
/// (another instance took them while this one was paused or cut off); those
/// already found lost on the last pass have their coordinators stopped.
async fn let_go_of_lost_runs(
    orchestrator: &Orchestrator,
    driven: Vec<uuid::Uuid>,
    held: &HashSet<uuid::Uuid>,
    lost_before: &HashSet<uuid::Uuid>,
) -> HashSet<uuid::Uuid> {
    let inner = &orchestrator.inner;
    let mut lost = HashSet::new();
    for id in driven {
        if held.contains(&id) {
            continue;
        }
        let Some(addr) = inner.runs.get(id) else { continue };
        let Ok(run) = addr.send(GetRun).await else { continue };
        // A run that finished no longer holds a lease; it is not lost.
        if !run.holds_module() {
            continue;
        }
        if lost_before.contains(&id) {
            tracing::warn!(run = %id, "another instance holds this run's lease now; letting it go");
            addr.do_send(StopCoordinator);
        } else {
            lost.insert(id);
        }
    }
    lost
}
