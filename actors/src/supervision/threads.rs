//! The threads the node and coordinator actors run on.
//!
//! One actix arbiter (a thread with its own event loop) per core, handed out
//! in turn, so that thousands of nodes and the coordinators that talk to them
//! use every core instead of queueing on the System's one thread. With one
//! thread asked for, every actor runs on the arbiter that starts it, as actix
//! does by default. Supervision does not care which thread an actor is on:
//! the exit guard and the supervisor talk through addresses, which cross
//! threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::prelude::*;

/// A shared round-robin pool of arbiters; cheap to clone.
#[derive(Clone)]
pub struct ActorThreads {
    pool: Arc<Pool>,
}

struct Pool {
    /// Empty: actors start on the arbiter of whoever starts them.
    arbiters: Vec<Arbiter>,
    next: AtomicUsize,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Threads end with the last owner of the pool (tests start many cores in one process).
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

impl ActorThreads {
    /// `threads` arbiters; 0 means one per core, and a single one means none
    /// of its own: actors then share the starting arbiter.
    pub fn new(threads: usize) -> Self {
        let threads = match threads {
            0 => std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            n => n,
        };
        let arbiters = if threads <= 1 { Vec::new() } else { (0..threads).map(|_| Arbiter::new()).collect() };
        ActorThreads { pool: Arc::new(Pool { arbiters, next: AtomicUsize::new(0) }) }
    }

    /// Actors start on the arbiter of whoever starts them.
    pub fn current() -> Self {
        Self::new(1)
    }

    /// How many threads the actors are spread over (1 when they share the starting arbiter).
    pub fn len(&self) -> usize {
        self.pool.arbiters.len().max(1)
    }

    /// Never true: there is always at least the starting arbiter.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Starts an actor on the next thread in turn; `make` runs on that thread.
    pub fn start<A, F>(&self, make: F) -> Addr<A>
    where
        A: Actor<Context = Context<A>>,
        F: FnOnce(&mut Context<A>) -> A + Send + 'static,
    {
        self.start_placed(make).0
    }

    /// Like [`start`](Self::start), also answering the thread the actor runs
    /// on (`None`: the starting arbiter, when the pool has no threads of its own).
    pub fn start_placed<A, F>(&self, make: F) -> (Addr<A>, Option<usize>)
    where
        A: Actor<Context = Context<A>>,
        F: FnOnce(&mut Context<A>) -> A + Send + 'static,
    {
        let arbiters = &self.pool.arbiters;
        if arbiters.is_empty() {
            return (A::create(make), None);
        }
        let turn = self.pool.next.fetch_add(1, Ordering::Relaxed) % arbiters.len();
        (A::start_in_arbiter(&arbiters[turn].handle(), make), Some(turn))
    }

    /// Runs `work` on thread `thread` of the pool (as [`start_placed`](Self::start_placed)
    /// numbers them); false when there is no such thread or it has stopped.
    pub fn run_on<F>(&self, thread: usize, work: F) -> bool
    where
        F: FnOnce() + Send + 'static,
    {
        self.pool.arbiters.get(thread).is_some_and(|arbiter| arbiter.spawn_fn(work))
    }

    /// Runs `work` once on every thread of the pool, and answers when each
    /// has run it (or has stopped). Nothing runs when the pool has no threads
    /// of its own: the caller's thread is then the actors' thread.
    pub async fn run_on_every<F>(&self, work: F)
    where
        F: Fn() + Send + Sync + 'static,
    {
        let work = Arc::new(work);
        let done: Vec<_> = (0..self.pool.arbiters.len())
            .map(|thread| {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let work = work.clone();
                self.run_on(thread, move || {
                    work();
                    let _ = tx.send(());
                });
                rx
            })
            .collect();
        for ran in done {
            // An error: the thread stopped before running it; nothing to wait for.
            let _ = ran.await;
        }
    }
}

impl Default for ActorThreads {
    fn default() -> Self {
        Self::current()
    }
}

impl std::fmt::Debug for ActorThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorThreads").field("threads", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Where;
    impl Actor for Where {
        type Context = Context<Self>;
    }

    #[derive(Message)]
    #[rtype(result = "std::thread::ThreadId")]
    struct WhichThread;

    impl Handler<WhichThread> for Where {
        type Result = MessageResult<WhichThread>;
        fn handle(&mut self, _: WhichThread, _: &mut Context<Self>) -> Self::Result {
            MessageResult(std::thread::current().id())
        }
    }

    #[actix::test]
    async fn actors_are_spread_over_the_threads_in_turn() {
        let pool = ActorThreads::new(2);
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(pool.start(|_| Where).send(WhichThread).await.unwrap());
        }
        let here = std::thread::current().id();
        assert!(seen.iter().all(|t| *t != here), "no actor runs on the starting thread");
        assert_ne!(seen[0], seen[1]);
        assert_eq!(seen[0], seen[2]);
        assert_eq!(seen[1], seen[3]);
    }

    #[actix::test]
    async fn work_for_every_thread_runs_once_on_each() {
        let pool = ActorThreads::new(2);
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let record = seen.clone();
        pool.run_on_every(move || record.lock().push(std::thread::current().id())).await;
        let mut seen = seen.lock().clone();
        assert_eq!(seen.len(), 2, "answered only after both threads ran it");
        seen.dedup();
        assert_eq!(seen.len(), 2, "once on each of the two threads");
        assert!(!seen.contains(&std::thread::current().id()));
    }

    #[actix::test]
    async fn one_thread_means_the_starting_arbiter() {
        let pool = ActorThreads::new(1);
        assert_eq!(pool.start(|_| Where).send(WhichThread).await.unwrap(), std::thread::current().id());
    }
}
