//! Failed logins per (username, client address). Five wrong passwords from
//! one address lock the account for that address only, so that a stranger
//! guessing cannot lock its owner out; the account itself locks (in the
//! store, for every address) only at the higher per-account ceiling,
//! `auth.max_failed_logins_per_account`, which bounds a guesser spreading
//! over many addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The most pairs remembered; past that, pairs with no lock in force go first.
const CAPACITY: usize = 100_000;

type Pair = (String, Option<IpAddr>);

#[derive(Default)]
pub struct LoginFailures {
    pairs: Mutex<HashMap<Pair, (u32, Option<Instant>)>>,
}

impl LoginFailures {
    fn key(username: &str, from: Option<IpAddr>) -> Pair {
        (username.to_lowercase(), from)
    }

    /// Whether the pair is locked now.
    pub fn is_locked(&self, username: &str, from: Option<IpAddr>) -> bool {
        let now = Instant::now();
        self.pairs.lock().get(&Self::key(username, from)).and_then(|(_, until)| *until).is_some_and(|u| u > now)
    }

    /// Counts a failure; `true` when it locks the pair (for `duration`).
    pub fn failed(&self, username: &str, from: Option<IpAddr>, max: u32, duration: Duration) -> bool {
        let now = Instant::now();
        let mut pairs = self.pairs.lock();
        if pairs.len() >= CAPACITY {
            pairs.retain(|_, (_, until)| until.is_some_and(|u| u > now));
        }
        let (count, until) = pairs.entry(Self::key(username, from)).or_insert((0, None));
        if until.is_some_and(|u| u <= now) {
            // A lock that ran out starts the count afresh.
            *count = 0;
            *until = None;
        }
        *count += 1;
        if *count >= max && until.is_none() {
            *until = Some(now + duration);
            return true;
        }
        false
    }

    /// A successful login clears the pair.
    pub fn succeeded(&self, username: &str, from: Option<IpAddr>) {
        self.pairs.lock().remove(&Self::key(username, from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_locks_without_locking_other_addresses() {
        let f = LoginFailures::default();
        let (a, b) = (Some("198.51.100.1".parse().unwrap()), Some("198.51.100.2".parse().unwrap()));
        let d = Duration::from_secs(60);
        assert!(!f.failed("Admin", a, 3, d));
        assert!(!f.failed("admin", a, 3, d));
        assert!(f.failed("admin", a, 3, d), "the third locks");
        assert!(f.is_locked("ADMIN", a));
        assert!(!f.is_locked("admin", b), "another address is not locked out");
        f.succeeded("admin", b);
        assert!(f.is_locked("admin", a));
    }

    #[test]
    fn locks_run_out() {
        let f = LoginFailures::default();
        assert!(f.failed("ops", None, 1, Duration::ZERO));
        assert!(!f.is_locked("ops", None));
        assert!(f.failed("ops", None, 1, Duration::from_secs(60)), "counting starts again");
    }
}
