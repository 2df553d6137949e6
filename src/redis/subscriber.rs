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
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

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
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub());
    let mut pubsub = connect.await.map_err(|_| timed_out())??;
    pubsub.psubscribe(pattern).await?;
    health.set_subscribed(true);
    tracing::info!("subscribed to the redis backplane");
    // The stream ends when the connection does (Redis stopped, restarted or
    // unreachable with the socket closed). A connection that hangs without
    // closing is noticed by the command side's probe, which marks Redis down
    // in `/health/ready`, but not here: see docs/SCALING.md.
    let mut stream = pubsub.into_on_message();
    while let Some(message) = stream.next().await {
        if !deliver(listeners, message.get_channel_name(), message.get_payload_bytes()) {
            // A listener missed a message: whatever was learnt through this
            // subscription may be stale now.
            health.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
    Ok(())
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting to redis timed out"))
}

/// Hands a message to its channel's listeners; `false` when one had to drop
/// it (and that listener's count of drops says so).
fn deliver(listeners: &Listeners, channel: &str, payload: &[u8]) -> bool {
    let mut listeners = listeners.lock();
    let Some(channel_listeners) = listeners.get_mut(channel) else { return true };
    let mut all = true;
    channel_listeners.retain(|listener| match listener.sender.try_send(payload.to_vec()) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            tracing::warn!(channel, "a redis listener fell behind; dropped a message");
            listener.dropped.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            all = false;
            true
        }
        Err(TrySendError::Closed(_)) => false,
    });
    all
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use tokio::sync::mpsc;

    use super::super::{Listener, Listeners};

    fn listener(listeners: &Listeners, channel: &str, capacity: usize) -> (mpsc::Receiver<Vec<u8>>, Arc<AtomicU64>) {
        let (sender, receiver) = mpsc::channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        listeners.lock().entry(channel.into()).or_default().push(Listener { sender, dropped: dropped.clone() });
        (receiver, dropped)
    }

    #[test]
    fn a_listener_that_falls_behind_counts_its_own_drops_only() {
        let listeners = Listeners::default();
        let (_slow, slow_drops) = listener(&listeners, "p:ch:graph", 1);
        let (mut other, other_drops) = listener(&listeners, "p:ch:run-events", 8);
        assert!(super::deliver(&listeners, "p:ch:graph", b"one"));
        assert!(!super::deliver(&listeners, "p:ch:graph", b"two"), "the second does not fit");
        assert!(super::deliver(&listeners, "p:ch:run-events", b"event"));
        assert_eq!((slow_drops.load(Ordering::Acquire), other_drops.load(Ordering::Acquire)), (1, 0));
        assert_eq!(other.try_recv().unwrap(), b"event");
    }
}
