//! Failed logins per (username, client address). Five wrong passwords from
//! one address lock the account for that address only, so that a stranger
//! guessing cannot lock its owner out; the account itself locks (in the
//! store, for every address) only at the higher per-account ceiling,
//! `auth.max_failed_logins_per_account`, which bounds a guesser spreading
//! over many addresses.
//!
//! With Redis the counts and locks live there, shared by every instance (a
//! guesser gains nothing by spreading over them). When Redis does not
//! answer, logins fail closed: the caller refuses them (503) rather than
//! count on one instance alone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::redis::{Redis, RedisDown};

/// The most pairs remembered; past that, pairs with no lock in force go first.
const CAPACITY: usize = 100_000;

/// Counts one failure of a pair in Redis, atomically. KEYS: the count, the
/// lock. ARGV: failures that lock, the lock's length (ms; 0 locks nothing but
/// still says "locks now"). While a lock holds, nothing more is counted; a
/// count is forgotten one lock-length after its last failure.
const COUNT_FAILURE: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[1])
local lock_ms = tonumber(ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.max(lock_ms, 60000))
if n >= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  if lock_ms > 0 then redis.call('SET', KEYS[2], 1, 'PX', lock_ms) end
  return 1
end
return 0
"#;

type Pair = (String, Option<IpAddr>);

#[derive(Default)]
pub struct LoginFailures {
    pairs: Mutex<HashMap<Pair, (u32, Option<Instant>)>>,
    shared: Option<(Arc<Redis>, redis::Script)>,
}

impl LoginFailures {
    /// Counts kept in Redis, shared by every instance.
    pub fn shared(redis: Arc<Redis>) -> LoginFailures {
        LoginFailures { pairs: Default::default(), shared: Some((redis, redis::Script::new(COUNT_FAILURE))) }
    }

    fn key(username: &str, from: Option<IpAddr>) -> Pair {
        (username.to_lowercase(), from)
    }

    /// The count and lock keys of a pair in Redis (hashed: a username is
    /// whatever a login body says).
    fn redis_keys(redis: &Redis, username: &str, from: Option<IpAddr>) -> [String; 2] {
        let (name, from) = Self::key(username, from);
        let from = from.map(|ip| ip.to_string()).unwrap_or_default();
        let pair = crate::crypto::sha256_hex(format!("{name}\n{from}").as_bytes());
        [redis.key(&format!("lf:count:{pair}")), redis.key(&format!("lf:lock:{pair}"))]
    }

    /// Whether the pair is locked now.
    pub async fn is_locked(&self, username: &str, from: Option<IpAddr>) -> Result<bool, RedisDown> {
        if let Some((redis, _)) = &self.shared {
            let [_, lock] = Self::redis_keys(redis, username, from);
            return redis.run(|mut c| async move { redis::cmd("EXISTS").arg(lock).query_async(&mut c).await }).await;
        }
        let now = Instant::now();
        Ok(self.pairs.lock().get(&Self::key(username, from)).and_then(|(_, until)| *until).is_some_and(|u| u > now))
    }

    /// Counts a failure; `true` when it locks the pair (for `duration`).
    pub async fn failed(
        &self,
        username: &str,
        from: Option<IpAddr>,
        max: u32,
        duration: Duration,
    ) -> Result<bool, RedisDown> {
        if let Some((redis, script)) = &self.shared {
            let [count, lock] = Self::redis_keys(redis, username, from);
            let lock_ms = duration.as_millis().min(i64::MAX as u128) as i64;
            let locked: i64 = redis
                .run(|mut c| async move {
                    script.key(count).key(lock).arg(max.max(1)).arg(lock_ms).invoke_async(&mut c).await
                })
                .await?;
            return Ok(locked == 1);
        }
        Ok(self.failed_here(username, from, max, duration))
    }

    fn failed_here(&self, username: &str, from: Option<IpAddr>, max: u32, duration: Duration) -> bool {
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
    pub async fn succeeded(&self, username: &str, from: Option<IpAddr>) -> Result<(), RedisDown> {
        if let Some((redis, _)) = &self.shared {
            let keys = Self::redis_keys(redis, username, from);
            return redis
                .run(|mut c| async move { redis::cmd("DEL").arg(&keys).query_async::<i64>(&mut c).await })
                .await
                .map(|_| ());
        }
        self.pairs.lock().remove(&Self::key(username, from));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::RedisSettings;

    /// The same rules in memory and in the Redis at 127.0.0.1:6379 (under a
    /// prefix of its own).
    async fn both() -> [LoginFailures; 2] {
        let settings = RedisSettings {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: format!("test-{}", uuid::Uuid::new_v4()),
            ..Default::default()
        };
        let redis = Redis::start(&settings, uuid::Uuid::nil()).unwrap().unwrap();
        [LoginFailures::default(), LoginFailures::shared(redis)]
    }

    #[actix_web::test]
    async fn a_pair_locks_without_locking_other_addresses() {
        for f in both().await {
            let (a, b) = (Some("198.51.100.1".parse().unwrap()), Some("198.51.100.2".parse().unwrap()));
            let d = Duration::from_secs(60);
            assert!(!f.failed("Admin", a, 3, d).await.unwrap());
            assert!(!f.failed("admin", a, 3, d).await.unwrap());
            assert!(f.failed("admin", a, 3, d).await.unwrap(), "the third locks");
            assert!(f.is_locked("ADMIN", a).await.unwrap());
            assert!(!f.is_locked("admin", b).await.unwrap(), "another address is not locked out");
            f.succeeded("admin", b).await.unwrap();
            assert!(f.is_locked("admin", a).await.unwrap());
            f.succeeded("admin", a).await.unwrap();
            assert!(!f.is_locked("admin", a).await.unwrap(), "a success clears the pair");
        }
    }

    #[actix_web::test]
    async fn locks_run_out() {
        for f in both().await {
            assert!(f.failed("ops", None, 1, Duration::ZERO).await.unwrap());
            assert!(!f.is_locked("ops", None).await.unwrap());
            assert!(f.failed("ops", None, 1, Duration::from_secs(60)).await.unwrap(), "counting starts again");
        }
    }

    #[actix_web::test]
    async fn an_unreachable_redis_is_an_error_not_a_pass() {
        let settings = RedisSettings {
            url: "redis://127.0.0.1:1".into(),
            command_timeout: Duration::from_millis(200),
            ..Default::default()
        };
        let f = LoginFailures::shared(Redis::start(&settings, uuid::Uuid::nil()).unwrap().unwrap());
        assert!(f.is_locked("admin", None).await.is_err());
        assert!(f.failed("admin", None, 3, Duration::from_secs(1)).await.is_err());
    }
}
