use actix::Addr;

use super::panic_note::take_last_panic;
use super::supervisor::{ChildExited, ChildKey, Supervisor};

/// Held by every supervised actor. Its `Drop` is the actor's death notice.
pub struct ExitGuard {
    supervisor: Addr<Supervisor>,
    child: ChildKey,
    generation: u64,
}

impl ExitGuard {
    pub(super) fn new(supervisor: Addr<Supervisor>, child: ChildKey, generation: u64) -> Self {
        ExitGuard { supervisor, child, generation }
    }

    pub fn child_id(&self) -> &str {
        &self.child.1
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let panicked = std::thread::panicking();
        let reason = if panicked { take_last_panic() } else { None };
        self.supervisor.do_send(ChildExited {
            child: std::mem::take(&mut self.child),
            generation: self.generation,
            panicked,
            reason,
        });
    }
}
