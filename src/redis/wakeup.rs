//! Wake-ups: "something changed for this run in the store; its owner should
//! look now" (a verb or an approval sent to an instance that does not drive
//! the run). A wake-up carries only the run's id: the store holds the truth,
//! and a lost wake-up only delays the owner until its next poll.

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

    /// The runs other instances (or this one) asked to look at, from now on.
    /// At most `capacity` wait unread; past that, wake-ups are dropped.
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
