use actix::Addr;

use super::panic_note::take_last_panic;
use super::supervisor::{ChildExited, ChildKey, Supervisor};

/// Held by every supervised actor. Its `Drop` is the actor's death notice.
pub struct ExitGuard {
    supervisor: Addr<Supervisor>,
    child: ChildKey,
    generation: u64,
    /// Set when the actor gives up on its own: its stop then counts as a
    /// failure (restarted, escalated), not as a final, clean stop.
    failure: Option<String>,
}

impl ExitGuard {
    pub(super) fn new(supervisor: Addr<Supervisor>, child: ChildKey, generation: u64) -> Self {
        ExitGuard { supervisor, child, generation, failure: None }
    }

    /// Marks the coming stop as a failure with `reason`, so that the
    /// supervisor restarts the actor (or escalates) as after a panic.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.failure = Some(reason.into());
    }

    pub fn child_id(&self) -> &str {
        &self.child.1
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let (panicked, reason) = if std::thread::panicking() {
            (true, take_last_panic())
        } else {
            let failure = self.failure.take();
            (failure.is_some(), failure)
        };
        self.supervisor.do_send(ChildExited {
            child: std::mem::take(&mut self.child),
            generation: self.generation,
            panicked,
            reason,
        });
    }
}
