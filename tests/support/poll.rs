//! Waiting for what the server does in its own time: the one polling helper
//! every test uses instead of a hand-written deadline loop.

use std::time::{Duration, Instant};

/// How often `eventually` looks again.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `check` until it holds, for at most `within`; panics naming `what`.
/// The one way tests wait for something the server does in its own time.
pub async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened within {within:?}: {what}");
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Polls `probe` until it yields `Ok`, for at most `within`, and returns that
/// value; on time-out panics with `what` and the last `Err` (what was seen).
pub async fn eventually_ok<T>(within: Duration, what: &str, mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => {
                assert!(Instant::now() < deadline, "never happened within {within:?}: {what}; last seen: {seen}")
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Checks `check` every `every` for `period` and panics, naming `what`, the
/// first time it does not hold: for what must stay true, not become true.
pub async fn throughout(
    period: Duration,
    every: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<(), String>,
) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        if let Err(seen) = check().await {
            panic!("stopped holding: {what}; seen: {seen}");
        }
        tokio::time::sleep(every).await;
    }
}
