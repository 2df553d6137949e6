//! Wake-ups over Redis: "the store holds news for this run (a verb, an
//! approval decision); its owner should look now", sent by the instance that
//! stored the news. It carries only the tenant and the run's id: the store
//! holds the truth, and a lost wake-up only delays the owner until its next
//! poll. Implements the core's [`WakeUp`] so that the orchestrator can use it.

use std::sync::Arc;

use hotswap_actors::cluster::WakeUp;
use hotswap_actors::domain::TenantId;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Redis, RedisDown};

const CHANNEL: &str = "wake";
/// Wake-ups heard and not yet handled; past that they are dropped (the
/// owners' polls still find the news).
const QUEUE: usize = 1024;

/// The wake-up channel of one instance.
#[derive(Clone, Debug)]
pub struct WakeUps {
    redis: Arc<Redis>,
}

impl WakeUps {
    pub fn new(redis: Arc<Redis>) -> WakeUps {
        WakeUps { redis }
    }

    /// Tells every instance (this one too) to look at `run` now.
    pub async fn wake(&self, tenant: TenantId, run: Uuid) -> Result<(), RedisDown> {
        let mut payload = tenant.as_bytes().to_vec();
        payload.extend_from_slice(run.as_bytes());
        self.redis.publish(CHANNEL, payload).await
    }

    /// The (tenant, run) pairs any instance asked to look at, from now on.
    /// At most `capacity` wait unread; past that, wake-ups are dropped.
    pub fn heard(&self, capacity: usize) -> mpsc::Receiver<(TenantId, Uuid)> {
        let mut raw = self.redis.listen(CHANNEL, capacity);
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        tokio::spawn(async move {
            while let Some(bytes) = raw.recv().await {
                let (Some(tenant), Some(run)) = (bytes.get(..16), bytes.get(16..)) else { continue };
                let (Ok(tenant), Ok(run)) = (Uuid::from_slice(tenant), Uuid::from_slice(run)) else { continue };
                if sender.send((tenant, run)).await.is_err() {
                    return;
                }
            }
        });
        receiver
    }
}

impl WakeUp for WakeUps {
    /// Sent in the background: the caller (an actor or a handler that has
    /// already stored the news) must not wait on Redis.
    fn notify(&self, tenant: TenantId, execution_id: Uuid) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.wake(tenant, execution_id).await {
                tracing::debug!(error = %e, run = %execution_id, "wake-up not sent; the owner's poll will find the news");
            }
        });
    }

    fn listen(&self, on_wake: Arc<dyn Fn(TenantId, Uuid) + Send + Sync>) {
        let mut heard = self.heard(QUEUE);
        tokio::spawn(async move {
            while let Some((tenant, run)) = heard.recv().await {
                on_wake(tenant, run);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::redis::RedisSettings;

    fn settings(prefix: &str) -> RedisSettings {
        RedisSettings { url: "redis://127.0.0.1:6379".into(), key_prefix: prefix.into(), ..Default::default() }
    }

    async fn subscribed(redis: &Redis) {
        for _ in 0..250 {
            if redis.health().is_subscribed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never subscribed");
    }

    /// Two instances on one Redis: a wake-up sent by one is heard by both,
    /// and a quiet subscription stays up (its keep-alive does not drop it).
    #[actix_web::test]
    async fn a_wake_up_reaches_every_instance_and_quiet_subscriptions_stay_up() {
        let prefix = format!("test-{}", Uuid::new_v4().simple());
        let (one, two) =
            (Redis::start(&settings(&prefix)).unwrap().unwrap(), Redis::start(&settings(&prefix)).unwrap().unwrap());
        let (mut heard_one, mut heard_two) = (WakeUps::new(one.clone()).heard(4), WakeUps::new(two.clone()).heard(4));
        subscribed(&one).await;
        subscribed(&two).await;
        let generation = one.health().generation();
        // Longer than the subscriber's silence before its keep-alive PING.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(one.health().is_subscribed());
        assert_eq!(one.health().generation(), generation, "the quiet subscription was dropped and made again");
        let (tenant, run) = (Uuid::new_v4(), Uuid::new_v4());
        WakeUps::new(one).wake(tenant, run).await.unwrap();
        let within = Duration::from_secs(5);
        assert_eq!(tokio::time::timeout(within, heard_one.recv()).await.unwrap(), Some((tenant, run)));
        assert_eq!(tokio::time::timeout(within, heard_two.recv()).await.unwrap(), Some((tenant, run)));
    }
}
