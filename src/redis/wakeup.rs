//! Wake-ups over Redis: "the store holds news for this run (a verb, an
//! approval decision); its owner should look now", sent by the instance that
//! stored the news. It carries only the run's id: the store holds the truth,
//! and a lost wake-up only delays the owner until its next poll. The core's
//! `WakeUp` is implemented over this channel in `startup::wake_up`.

use std::sync::Arc;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Redis, RedisDown};

const CHANNEL: &str = "wake";

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
    pub async fn wake(&self, run: Uuid) -> Result<(), RedisDown> {
        self.redis.publish(CHANNEL, run.as_bytes().to_vec()).await
    }

    /// The runs any instance asked to look at, from now on. At most
    /// `capacity` wait unread; past that, wake-ups are dropped.
    pub fn listen(&self, capacity: usize) -> mpsc::Receiver<Uuid> {
        let mut raw = self.redis.listen(CHANNEL, capacity);
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        tokio::spawn(async move {
            while let Some(bytes) = raw.recv().await {
                let Ok(run) = Uuid::from_slice(&bytes) else { continue };
                if sender.send(run).await.is_err() {
                    return;
                }
            }
        });
        receiver
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
        let (one, two) = (
            Redis::start(&settings(&prefix), Uuid::nil()).unwrap().unwrap(),
            Redis::start(&settings(&prefix), Uuid::nil()).unwrap().unwrap(),
        );
        let (mut heard_one, mut heard_two) = (WakeUps::new(one.clone()).listen(4), WakeUps::new(two.clone()).listen(4));
        subscribed(&one).await;
        subscribed(&two).await;
        let generation = one.health().generation();
        // Longer than the subscriber's silence before its keep-alive PING.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(one.health().is_subscribed());
        assert_eq!(one.health().generation(), generation, "the quiet subscription was dropped and made again");
        let run = Uuid::new_v4();
        WakeUps::new(one).wake(run).await.unwrap();
        let within = Duration::from_secs(5);
        assert_eq!(tokio::time::timeout(within, heard_one.recv()).await.unwrap(), Some(run));
        assert_eq!(tokio::time::timeout(within, heard_two.recv()).await.unwrap(), Some(run));
    }
}
