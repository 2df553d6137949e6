//! Transparent huge pages: the server's process opts out of them unless
//! `[server] transparent_huge_pages` says otherwise.
//!
//! mimalloc, the global allocator (`main.rs`), asks the kernel for huge
//! pages on its arenas. Where the kernel grants them (`madvise` mode, the
//! usual default), the first touch of a fresh arena page faults in and
//! zeroes 2 MiB at once, and memory the allocator returns and takes again
//! is zeroed again in 2 MiB pieces. For a service whose heap grows and
//! shrinks with its traffic (the memory message store keeps every message
//! until its retention passes) that made throughput swing by half from
//! one run to the next on the same machine (docs/BENCHMARKS.md, "Message bus:
//! NATS", session 16). With the flag set the kernel backs the heap with ordinary
//! pages, as database and cache servers are commonly advised to.
//!
//! The flag belongs to the whole process and is kept by the children it
//! starts, so only `hotswap serve` sets it: the agent, whose hooks are
//! the host's own programs, leaves their memory to the host's settings.

use std::io;

/// Sets the process's "no transparent huge pages" flag. Pages already
/// faulted in stay as they are; every later fault takes an ordinary page.
#[cfg(target_os = "linux")]
pub fn opt_out() -> io::Result<()> {
    rustix::thread::disable_transparent_huge_pages(true).map_err(io::Error::from)
}

/// Other systems have no such flag; there is nothing to do.
#[cfg(not(target_os = "linux"))]
pub fn opt_out() -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn opting_out_sets_the_process_flag() {
        super::opt_out().expect("prctl");
        let set = rustix::thread::transparent_huge_pages_are_disabled().expect("prctl");
        assert!(set, "the flag reads back as set");
    }
}
