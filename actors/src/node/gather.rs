//! Waiting for the answers of many node requests under one deadline.
//!
//! A request to each of thousands of nodes could carry its own timeout, but
//! each timeout is an entry in the thread's timer wheel, and on a thread
//! with no other timer pending, registering one also wakes the thread's
//! driver with a system call. The requests of one call share their
//! deadline, so they wait on one timer together.

use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use tokio::time::Instant;

/// Awaits `calls` together until `deadline` and answers in their order:
/// `None` for each call still pending then (it is dropped).
pub async fn gather_until<T, Fut>(calls: impl IntoIterator<Item = Fut>, deadline: Instant) -> Vec<Option<T>>
where
    Fut: Future<Output = T>,
{
    let mut pending: FuturesUnordered<_> =
        calls.into_iter().enumerate().map(|(i, call)| call.map(move |answer| (i, answer))).collect();
    let mut answers: Vec<Option<T>> = (0..pending.len()).map(|_| None).collect();
    let gather = async {
        while let Some((i, answer)) = pending.next().await {
            answers[i] = Some(answer);
        }
    };
    // Unconstrained: with tokio's per-task budget spent, each of thousands of
    // pending answers would wake the task again and be polled for nothing,
    // turning a fan-out quadratic.
    let _ = tokio::time::timeout_at(deadline, tokio::task::unconstrained(gather)).await;
    answers
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[actix::test]
    async fn answers_keep_their_order_and_a_call_pending_at_the_deadline_has_none() {
        let calls = (0..4).map(|i| async move {
            if i == 2 {
                std::future::pending::<()>().await;
            }
            // Later calls answer first: the order comes from the calls, not the answers.
            actix::clock::sleep(Duration::from_millis(10 * (4 - i))).await;
            i
        });
        let answers = gather_until(calls, Instant::now() + Duration::from_millis(200)).await;
        assert_eq!(answers, vec![Some(0), Some(1), None, Some(3)]);
    }
}
