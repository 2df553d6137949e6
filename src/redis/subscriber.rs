//! The one pub/sub connection of a process: it listens to every channel under
//! the prefix (one PSUBSCRIBE) and hands each message to the listeners of its
//! channel. When Redis goes away it says so (`RedisHealth`) and connects
//! again, backing off up to a second between tries.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc::error::TrySendError;

use super::{Listeners, RedisHealth};

const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(1);
/// How long the subscription may stay silent before it is checked with a PING.
const SILENCE: Duration = Duration::from_secs(2);

pub(super) fn spawn(client: redis::Client, pattern: String, listeners: Arc<Listeners>, health: Arc<RedisHealth>) {
    tokio::spawn(async move {
        let mut retry = FIRST_RETRY;
        loop {
            match listen_once(&client, &pattern, &listeners, &health).await {
                Ok(()) => retry = FIRST_RETRY,
                Err(e) => tracing::debug!(error = %e, "redis subscription attempt failed"),
            }
            if health.is_subscribed() {
                tracing::warn!("lost the redis subscription; live updates from other instances stop until it is back");
            }
            health.set_subscribed(false);
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(LAST_RETRY);
        }
    });
}

/// One subscription, until its connection ends. `Ok` when it had been made.
async fn listen_once(
    client: &redis::Client,
    pattern: &str,
    listeners: &Listeners,
    health: &RedisHealth,
) -> redis::RedisResult<()> {
    let connect = tokio::time::timeout(SILENCE, client.get_async_pubsub());
    let mut pubsub = connect.await.map_err(|_| timed_out())??;
    pubsub.psubscribe(pattern).await?;
    let (mut sink, mut stream) = pubsub.split();
    health.set_subscribed(true);
    tracing::info!("subscribed to the redis backplane");
    loop {
        match tokio::time::timeout(SILENCE, stream.next()).await {
            Ok(Some(message)) => {
                if !deliver(listeners, message.get_channel_name(), message.get_payload_bytes()) {
                    // A listener missed a message: whatever was learnt
                    // through this subscription may be stale now.
                    health.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                }
            }
            Ok(None) => return Ok(()),
            // Quiet for a while: a half-open connection would stay quiet for
            // ever, so ask; an answer (or any message) keeps it.
            Err(_) => {
                let pinged = tokio::time::timeout(SILENCE, sink.ping::<String>()).await;
                if !matches!(pinged, Ok(Ok(_))) {
                    return Ok(());
                }
            }
        }
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting to redis timed out"))
}

/// Hands a message to its channel's listeners; `false` when one had to drop it.
fn deliver(listeners: &Listeners, channel: &str, payload: &[u8]) -> bool {
    let mut listeners = listeners.lock();
    let Some(senders) = listeners.get_mut(channel) else { return true };
    let mut all = true;
    senders.retain(|sender| match sender.try_send(payload.to_vec()) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            tracing::warn!(channel, "a redis listener fell behind; dropped a message");
            all = false;
            true
        }
        Err(TrySendError::Closed(_)) => false,
    });
    all
}
