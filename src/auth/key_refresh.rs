//! Loading the JWT key ring again when a token names a key this instance
//! does not hold yet.
//!
//! Several instances share the signing key's versions through the secrets
//! back-end, and each reloads them every few seconds. Between a rotation on
//! one instance and the next reload on another, the other would refuse every
//! token signed with the new key. Instead, a token naming an unknown key
//! makes the instance reload once and check the token again. Forged tokens
//! naming made-up keys could ask for a reload on every request, so reloads
//! are at least [`MIN_GAP`] apart and requests arriving meanwhile wait for
//! the one under way instead of starting their own.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;

/// The shortest time between two reloads asked for by tokens.
const MIN_GAP: Duration = Duration::from_secs(1);
/// How long a request waits for a reload (its own or the one under way)
/// before its token is refused: a slow secrets back-end must not hold the
/// requests naming unknown keys for as long as it takes.
const WAIT_AT_MOST: Duration = Duration::from_secs(3);

/// Reads the key ring from the secrets back-end and installs it. The
/// back-ends' futures are not `Send`: a reload runs on the thread of the
/// request that asked for it.
pub type ReloadKeys = Box<dyn Fn() -> LocalBoxFuture<'static, ()> + Send + Sync>;

pub struct KeyRefresh {
    min_gap: Duration,
    wait_at_most: Duration,
    /// Installed once the secrets manager exists (it is built after the
    /// authentication state it installs keys into).
    reload: OnceLock<ReloadKeys>,
    /// When the last reload finished; the lock also makes concurrent
    /// requests share one reload.
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl Default for KeyRefresh {
    fn default() -> KeyRefresh {
        KeyRefresh::with_limits(MIN_GAP, WAIT_AT_MOST)
    }
}

impl KeyRefresh {
    fn with_limits(min_gap: Duration, wait_at_most: Duration) -> KeyRefresh {
        KeyRefresh { min_gap, wait_at_most, reload: OnceLock::new(), last: tokio::sync::Mutex::new(None) }
    }

    pub fn install(&self, reload: ReloadKeys) {
        if self.reload.set(reload).is_err() {
            tracing::warn!("the JWT key reload was installed twice; the first one stays");
        }
    }

    /// Reloads the key ring unless a reload finished less than the minimum
    /// gap ago; answers whether the ring may have changed since the caller's
    /// token was refused (false without a reload installed, or when the
    /// reload took longer than a request may wait).
    pub async fn refresh(&self) -> bool {
        let Some(reload) = self.reload.get() else {
            return false;
        };
        let reloaded = async {
            let mut last = self.last.lock().await;
            if last.is_none_or(|at| at.elapsed() >= self.min_gap) {
                reload().await;
                *last = Some(Instant::now());
            }
        };
        tokio::time::timeout(self.wait_at_most, reloaded).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A refresh whose reloads count themselves when done, each taking `takes`.
    fn counting(min_gap: Duration, takes: Duration, wait_at_most: Duration) -> (KeyRefresh, Arc<AtomicUsize>) {
        let reloads = Arc::new(AtomicUsize::new(0));
        let refresh = KeyRefresh::with_limits(min_gap, wait_at_most);
        let counter = reloads.clone();
        refresh.install(Box::new(move || {
            let counter = counter.clone();
            Box::pin(async move {
                tokio::time::sleep(takes).await;
                counter.fetch_add(1, Ordering::SeqCst);
            })
        }));
        (refresh, reloads)
    }

    #[tokio::test]
    async fn without_a_reload_installed_nothing_is_worth_retrying() {
        assert!(!KeyRefresh::default().refresh().await);
    }

    #[tokio::test]
    async fn requests_arriving_together_share_one_reload() {
        let (refresh, reloads) = counting(MIN_GAP, Duration::from_millis(10), WAIT_AT_MOST);
        let all = futures::future::join_all((0..20).map(|_| refresh.refresh())).await;
        assert!(all.into_iter().all(|retry| retry));
        assert_eq!(reloads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn reloads_are_spaced_by_the_minimum_gap() {
        let gap = Duration::from_millis(50);
        let (refresh, reloads) = counting(gap, Duration::ZERO, WAIT_AT_MOST);
        refresh.refresh().await;
        refresh.refresh().await;
        assert_eq!(reloads.load(Ordering::SeqCst), 1, "within the gap");
        tokio::time::sleep(gap).await;
        refresh.refresh().await;
        assert_eq!(reloads.load(Ordering::SeqCst), 2, "after the gap");
    }

    #[tokio::test]
    async fn a_reload_slower_than_a_request_may_wait_refuses_the_token() {
        let (refresh, reloads) = counting(MIN_GAP, Duration::from_secs(60), Duration::from_millis(20));
        assert!(!refresh.refresh().await, "given up when the wait ran out");
        assert_eq!(reloads.load(Ordering::SeqCst), 0);
    }
}
