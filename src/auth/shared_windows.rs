//! Rate-limit windows kept in Redis, so that every instance counts against
//! the same allowance. The same GCRA as the local windows (a burst of N,
//! refilled evenly over a minute), as one Lua script: one round trip per
//! check, atomic however many instances ask at once, timed by Redis's own
//! clock so that the instances' clocks need not agree.

use std::sync::Arc;
use std::time::Duration;

use super::rate_limit::Decision;
use crate::redis::{Redis, RedisDown};

/// GCRA over one key holding the "theoretical arrival time" in ms.
/// ARGV: the interval between requests (ms), the burst. Answers
/// {allowed, remaining, reset after (ms), retry after (ms)}.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local window = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local allowed_at = next_tat - window
if allowed_at > now then
  return {0, 0, tat - now, allowed_at - now}
end
redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now)
return {1, math.floor((window - (next_tat - now)) / interval), next_tat - now, 0}
"#;

/// The shared windows of one instance.
pub struct SharedWindows {
    redis: Arc<Redis>,
    script: redis::Script,
}

impl SharedWindows {
    pub fn new(redis: Arc<Redis>) -> SharedWindows {
        SharedWindows { redis, script: redis::Script::new(GCRA) }
    }

    /// Counts one request against `key`'s window of `per_minute`.
    pub async fn check(&self, group: &str, key: &str, per_minute: u32) -> Result<Decision, RedisDown> {
        let redis_key = self.redis.key(&format!("rl:{group}:{key}"));
        let interval_ms = (60_000 / u64::from(per_minute.max(1))).max(1);
        let script = &self.script;
        let (allowed, remaining, reset_ms, retry_ms): (i64, i64, i64, i64) =
            self.redis
                .run(|mut c| async move {
                    script.key(redis_key).arg(interval_ms).arg(per_minute).invoke_async(&mut c).await
                })
                .await?;
        let ms = |v: i64| Duration::from_millis(v.max(0) as u64);
        Ok(Decision {
            limit: per_minute,
            remaining: remaining.clamp(0, i64::from(per_minute)) as u32,
            reset_after: ms(reset_ms),
            retry_after: (allowed == 0).then(|| ms(retry_ms).max(Duration::from_millis(1))),
        })
    }
}
