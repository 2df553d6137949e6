//! Freed memory given back to the operating system once no run is in flight.
//!
//! A run to many nodes allocates and frees a great deal (its record, the
//! nodes' replies, the events), and the allocator keeps freed pages for the
//! next allocation on the same thread. An actor thread that falls quiet when
//! the run ends never makes that next allocation, so the pages stay resident
//! and an idle process keeps the footprint of its busiest moment. When the
//! last coordinator stops, and the process is still without runs a moment
//! later, every actor thread and the thread the core was started on run the
//! adapters' [`MemoryRelease`](crate::hooks::MemoryRelease). One pass at a
//! time: signals that arrive during a pass are kept as one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Inner, Orchestrator};
use crate::coordinator::RunDirectory;

/// How long the process must stay without runs before its memory is
/// released: a stream of short runs empties the directory between each, and
/// releasing there would only make the next run fault its pages in again.
const SETTLE: Duration = Duration::from_millis(100);

/// Passes made so far (for the scaling bench, which reads resident memory
/// after the pass that follows each of its runs).
#[derive(Default)]
pub(super) struct ReleaseCount(AtomicU64);

impl ReleaseCount {
    pub(super) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// Starts the loop on the current arbiter. It holds the core only weakly, so
/// a core that is dropped (tests start many in one process) is not kept
/// alive by it; the loop ends at its next signal.
pub(super) fn start(orchestrator: &Orchestrator) {
    let runs: Arc<RunDirectory> = orchestrator.inner.runs.clone();
    let core: Weak<Inner> = Arc::downgrade(&orchestrator.inner);
    actix::spawn(async move {
        loop {
            runs.fell_idle().await;
            actix::clock::sleep(SETTLE).await;
            let Some(inner) = core.upgrade() else { return };
            if !runs.is_empty() {
                // Busy again: the next run's end signals anew.
                continue;
            }
            let release = inner.hooks.memory_release.clone();
            let on_threads = release.clone();
            inner.deps.threads.run_on_every(move || on_threads.release_this_thread()).await;
            release.release_this_thread();
            inner.memory_releases.0.fetch_add(1, Ordering::AcqRel);
        }
    });
}
