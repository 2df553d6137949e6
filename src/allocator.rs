//! The process's allocator, mimalloc (`main.rs`), giving freed pages back.
//!
//! mimalloc keeps the pages a thread freed for that thread's next
//! allocations and hands them back to the kernel only while the thread is
//! busy allocating. The core calls [`MimallocRelease`] on every actor thread
//! once the last run has ended (`hotswap_actors::orchestrator`, module
//! `memory_release`), so an idle server shrinks to what it still holds
//! instead of keeping the footprint of its largest run.

use hotswap_actors::hooks::MemoryRelease;

/// Frees the calling thread's empty pages and purges the free parts of
/// every arena now, instead of after mimalloc's purge delay.
pub struct MimallocRelease;

impl MemoryRelease for MimallocRelease {
    #[allow(unsafe_code)]
    fn release_this_thread(&self) {
        // SAFETY: `mi_collect` takes no pointers and touches no memory of
        // ours: it walks the calling thread's own heap and the shared arenas,
        // which mimalloc guards itself. In a process whose global allocator
        // is another one (the integration tests) it finds an empty heap.
        unsafe { libmimalloc_sys::mi_collect(true) }
    }
}
