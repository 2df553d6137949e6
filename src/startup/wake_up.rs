//! The core's wake-up over Redis: an instance that stores news for a run it
//! does not drive (an approval decision) publishes the run's id; every
//! instance hears it and the run's owner looks at the store at once instead
//! of at its next poll.

use std::sync::Arc;

use hotswap_actors::cluster::{OnWake, WakeUp};
use uuid::Uuid;

use crate::redis::{Redis, WakeUps};

/// Wake-ups not yet handled before new ones are dropped (a dropped one only
/// waits for the owner's next poll).
const BACKLOG: usize = 1024;

pub struct RedisWakeUp {
    channel: WakeUps,
}

impl RedisWakeUp {
    pub fn shared(redis: Arc<Redis>) -> Arc<dyn WakeUp> {
        Arc::new(RedisWakeUp { channel: WakeUps::new(redis) })
    }
}

impl WakeUp for RedisWakeUp {
    fn notify(&self, execution_id: Uuid) {
        let channel = self.channel.clone();
        actix_web::rt::spawn(async move {
            if let Err(e) = channel.wake(execution_id).await {
                tracing::debug!(run = %execution_id, error = %e, "wake-up not sent; the run's owner finds the news at its next poll");
            }
        });
    }

    fn listen(&self, on_wake: OnWake) {
        let mut woken = self.channel.listen(BACKLOG);
        actix_web::rt::spawn(async move {
            while let Some(run) = woken.recv().await {
                on_wake(run);
            }
        });
    }
}
