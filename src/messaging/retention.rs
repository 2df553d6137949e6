//! The periodic retention sweep: drops acknowledged and expired messages
//! older than their topic's retention, and idempotency keys past the window.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use hotswap_actors::messaging::{MessagingError, SharedMessageStore};
use hotswap_actors::supervision::panic_message;

pub struct RetentionSweep {
    pub store: SharedMessageStore,
    pub every: Duration,
    pub idempotency_window: Duration,
    /// The cluster-wide lease of the sweep (`None`: every pass runs).
    pub lease: Option<hotswap_actors::cluster::TaskLease>,
}

impl RetentionSweep {
    /// Runs every `every` for the life of the process; passes never overlap
    /// ([`hotswap_actors::cluster::run_every`]).
    pub fn start(self) {
        let (every, lease) = (self.every, self.lease.clone());
        let sweep = std::rc::Rc::new(self);
        hotswap_actors::cluster::run_every(every, lease, move || {
            let sweep = sweep.clone();
            async move { sweep.pass().await }
        });
    }

    async fn pass(&self) {
        guarded(self.store.sweep(chrono::Utc::now(), self.idempotency_window)).await;
    }
}

/// How one pass ended.
#[derive(Debug, PartialEq, Eq)]
enum PassOutcome {
    Removed(usize),
    Failed,
    Panicked,
}

/// Runs one pass, logging what it removed or why it failed. A panic in the
/// back-end's sweep is caught and logged here: uncaught it would end the
/// periodic task, and no message would be swept again until a restart.
async fn guarded(pass: impl Future<Output = Result<usize, MessagingError>>) -> PassOutcome {
    match AssertUnwindSafe(pass).catch_unwind().await {
        Ok(Ok(0)) => PassOutcome::Removed(0),
        Ok(Ok(removed)) => {
            tracing::debug!(removed, "messaging retention removed messages");
            PassOutcome::Removed(removed)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "messaging retention sweep failed");
            PassOutcome::Failed
        }
        Err(panic) => {
            let why = panic_message(panic.as_ref()).unwrap_or_else(|| "unknown".into());
            tracing::error!(panic = %why, "messaging retention sweep panicked; the next pass runs as usual");
            PassOutcome::Panicked
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_pass_that_panics_or_fails_leaves_the_next_one_to_run() {
        let panicking = async { panic!("`DateTime + TimeDelta` overflowed") };
        assert_eq!(guarded(panicking).await, PassOutcome::Panicked);
        let failing = async { Err(MessagingError::Unavailable("down".into())) };
        assert_eq!(guarded(failing).await, PassOutcome::Failed);
        assert_eq!(guarded(async { Ok(3) }).await, PassOutcome::Removed(3));
    }

    /// The periodic task itself outlives a panicking pass: later passes run.
    #[actix_web::test]
    async fn the_periodic_task_keeps_running_after_a_pass_panics() {
        let passes = std::rc::Rc::new(std::cell::Cell::new(0u32));
        let counted = passes.clone();
        hotswap_actors::cluster::run_every(Duration::from_millis(5), None, move || {
            let counted = counted.clone();
            async move {
                counted.set(counted.get() + 1);
                let n = counted.get();
                guarded(async move {
                    if n == 1 {
                        panic!("first pass fails");
                    }
                    Ok(0)
                })
                .await;
            }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while passes.get() < 3 {
            assert!(tokio::time::Instant::now() < deadline, "only {} passes ran", passes.get());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
