//! Ending a run's waits for away hosts early. A step that asks a host whose
//! agent is not connected waits for it up to `pipeline.node_request_timeout`;
//! when the run is aborted meanwhile, that wait is pointless (the run is
//! about to restore every node), so the coordinator interrupts it and the
//! node answers at once that it was not reached.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Shared by a run's coordinator (which sets it) and the node requests of
/// its steps (which watch it). Cloning shares the same signal; the default
/// is never set, for requests no run can interrupt.
#[derive(Clone, Default)]
pub struct StepInterrupt(Arc<Signal>);

#[derive(Default)]
struct Signal {
    set: AtomicBool,
    woken: Notify,
}

impl StepInterrupt {
    /// Interrupts every wait watching this signal, now and later.
    pub fn interrupt(&self) {
        self.0.set.store(true, Ordering::SeqCst);
        self.0.woken.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.0.set.load(Ordering::SeqCst)
    }

    /// Resolves once the signal is set (at once if it already is).
    pub async fn interrupted(&self) {
        loop {
            // Registered before the check, so that a signal in between is not missed.
            let mut woken = std::pin::pin!(self.0.woken.notified());
            woken.as_mut().enable();
            if self.is_set() {
                return;
            }
            woken.await;
        }
    }
}

impl std::fmt::Debug for StepInterrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StepInterrupt").field(&self.is_set()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::StepInterrupt;

    #[actix::test]
    async fn a_wait_ends_when_interrupted_and_a_later_wait_ends_at_once() {
        let signal = StepInterrupt::default();
        let watcher = signal.clone();
        let waiting = actix::spawn(async move { watcher.interrupted().await });
        assert!(!signal.is_set());
        signal.interrupt();
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("the wait ended").unwrap();
        tokio::time::timeout(Duration::from_secs(5), signal.interrupted()).await.expect("already set");
    }

    #[actix::test]
    async fn an_unset_signal_does_not_end_a_wait() {
        let signal = StepInterrupt::default();
        assert!(tokio::time::timeout(Duration::from_millis(50), signal.interrupted()).await.is_err());
    }
}
