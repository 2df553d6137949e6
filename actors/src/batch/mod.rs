//! The deployment batch runner: drives every running batch one step at a
//! time. Each batch is a stored record (`BatchStore`), so the runner keeps no
//! state of its own and a restarted process carries on where the last one
//! stopped. A step starts once the steps it depends on have succeeded; the
//! first failure stops the batch, aborting (and so restoring) its other runs.

mod drive;

use std::time::Duration;

use actix::prelude::*;

use crate::Orchestrator;

pub use drive::drive_batch;

/// Looks at every running batch each `interval`; a look never overlaps the
/// previous one.
/// Runs on one instance of a cluster at a time (the task lease `batch-runner`).
pub struct BatchRunner {
    pub orchestrator: Orchestrator,
    pub interval: Duration,
    busy: bool,
    lease: crate::cluster::TaskLease,
}

/// The name of the batch runner's cluster-wide task lease.
pub const BATCH_RUNNER_TASK: &str = "batch-runner";

impl BatchRunner {
    pub fn start(orchestrator: Orchestrator, interval: Duration) -> Addr<BatchRunner> {
        let lease = orchestrator.task_lease(BATCH_RUNNER_TASK);
        BatchRunner { orchestrator, interval, busy: false, lease }.start()
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let orchestrator = self.orchestrator.clone();
        let lease = self.lease.clone();
        let work = async move {
            if !lease.held().await {
                return;
            }
            let batches = match orchestrator.store().batches_in_flight().await {
                Ok(batches) => batches,
                Err(e) => return tracing::warn!(error = %e, "batch runner: cannot read the running batches"),
            };
            for batch in batches {
                let id = batch.batch_id;
                if let Err(e) = drive_batch(&orchestrator, batch).await {
                    tracing::warn!(batch = %id, error = %e, "batch runner: the batch is retried on the next tick");
                }
            }
        };
        ctx.spawn(work.into_actor(self).map(|_, act, _| act.busy = false));
    }
}

impl Actor for BatchRunner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.tick(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.tick(ctx));
    }
}
