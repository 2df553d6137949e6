//! The Redis backplane several instances share (`[redis] url`; optional).
//!
//! - `Redis`: commands over a connection manager that reconnects on its own,
//!   each bounded by `command_timeout`, and publishing to channels;
//! - `subscriber`: one pub/sub connection per process, listening to every
//!   channel under the key prefix and handing messages to whoever listens to
//!   each; it reconnects after Redis comes back;
//! - `wakeup`: a small "wake the owner of this run" channel;
//! - `RedisHealth`: whether Redis answers, for `/health/ready` and for the
//!   parts that must change behaviour when it does not.
//!
//! This module sits at the bottom of `src/`: it names nothing else of the crate.

pub mod settings;
mod subscriber;
pub mod wakeup;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;
use uuid::Uuid;

pub use settings::RedisSettings;
pub use wakeup::WakeUps;

/// Redis did not answer (down, unreachable, or slower than `command_timeout`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("redis is unavailable: {0}")]
pub struct RedisDown(pub String);

/// Whether Redis answers, as the last command and the subscriber saw it.
#[derive(Debug, Default)]
pub struct RedisHealth {
    commands_ok: AtomicBool,
    subscribed: AtomicBool,
    /// Counts the subscriber's (re)connections: whatever was learnt through
    /// an older one may have missed messages since.
    generation: AtomicU64,
    /// Counts the subscription's losses and returns only, for listeners that
    /// follow their own channel's drops (`listen_counting_drops`) rather than
    /// every change `generation` counts.
    subscription_changes: AtomicU64,
    /// Whether a command's outcome has been seen yet: an instance that
    /// cannot reach Redis from the start says so then, as one that loses it
    /// later does.
    probed: AtomicBool,
}

impl RedisHealth {
    /// Both the command connection and the subscription are up.
    pub fn is_up(&self) -> bool {
        self.commands_ok.load(Ordering::Acquire) && self.subscribed.load(Ordering::Acquire)
    }

    /// Whether messages published by other instances are heard now.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Changes each time Redis is lost or found again (commands or the
    /// subscription), and when a listener missed a message.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Changes each time the subscription is lost or made again.
    pub fn subscription_changes(&self) -> u64 {
        self.subscription_changes.load(Ordering::Acquire)
    }

    fn set_subscribed(&self, up: bool) {
        if self.subscribed.swap(up, Ordering::AcqRel) != up {
            self.subscription_changes.fetch_add(1, Ordering::AcqRel);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn set_commands_ok(&self, ok: bool) {
        let first = !self.probed.swap(true, Ordering::AcqRel);
        let changed = self.commands_ok.swap(ok, Ordering::AcqRel) != ok;
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        match (first, changed, ok) {
            (true, _, true) => tracing::info!("redis answers"),
            (_, _, false) if first || changed => tracing::warn!(
                "redis does not answer; falling back to this instance alone: logins here are refused (503), \
                 live updates and rate limits stay on this instance, and changes to users made here reach the \
                 other instances' caches only after auth_cache_ttl (docs/SCALING.md)"
            ),
            (false, true, true) => tracing::info!("redis answers again"),
            _ => {}
        }
    }
}

/// How often Redis is pinged to tell whether it answers.
const PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// One listener of a channel: where its messages go, and how many it missed
/// because it had fallen behind.
struct Listener {
    sender: mpsc::Sender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

type Listeners = Mutex<HashMap<String, Vec<Listener>>>;

/// The connection to Redis every part of one instance shares.
pub struct Redis {
    manager: ConnectionManager,
    settings: RedisSettings,
    /// `{key_prefix}:{installation}`: what every key and channel starts with.
    namespace: String,
    /// This process's id on the channels: what it published comes back to it
    /// and is recognised by this.
    origin: Uuid,
    health: Arc<RedisHealth>,
    listeners: Arc<Listeners>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("origin", &self.origin).field("health", &self.health).finish()
    }
}

impl Redis {
    /// Connects lazily (a Redis down at start-up does not stop the instance)
    /// and starts the subscriber; `None` when `[redis] url` is empty. Must
    /// run inside a Tokio runtime (the actix System).
    ///
    /// `installation` names every key and channel beside `key_prefix`: the
    /// instances of one store share it, and two installations that share a
    /// Redis (and a prefix) never hear each other's runs, agents or sessions.
    pub fn start(settings: &RedisSettings, installation: Uuid) -> Result<Option<Arc<Redis>>, String> {
        if !settings.enabled() {
            return Ok(None);
        }
        let client = redis::Client::open(settings.url.trim()).map_err(|e| format!("redis.url: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.command_timeout))
            .set_response_timeout(Some(settings.command_timeout))
            .set_number_of_retries(2)
            .set_max_delay(std::time::Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("redis connection manager: {e}"))?;
        let redis = Arc::new(Redis {
            manager,
            namespace: format!("{}:{}", settings.key_prefix, installation.simple()),
            settings: settings.clone(),
            origin: Uuid::new_v4(),
            health: Arc::default(),
            listeners: Arc::default(),
        });
        subscriber::spawn(client, redis.channel("*"), redis.listeners.clone(), redis.health.clone());
        // Notices Redis going and coming back even when nothing else asks it.
        let probe = Arc::downgrade(&redis);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(redis) = probe.upgrade() else { return };
                redis.ping().await;
            }
        });
        Ok(Some(redis))
    }

    pub fn origin(&self) -> Uuid {
        self.origin
    }

    pub fn health(&self) -> &Arc<RedisHealth> {
        &self.health
    }

    pub fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    /// A key or channel name of this installation: `{prefix}:{installation}:{name}`.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.namespace)
    }

    fn channel(&self, name: &str) -> String {
        self.key(&format!("ch:{name}"))
    }

    /// Runs commands on the shared connection, bounded by `command_timeout`;
    /// what happens records whether Redis answers.
    pub async fn run<T, F, Fut>(&self, commands: F) -> Result<T, RedisDown>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let outcome = tokio::time::timeout(self.settings.command_timeout, commands(self.manager.clone())).await;
        let result = match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if !is_connection_error(&e) => {
                // Redis answered, with an error of the command itself.
                self.health.set_commands_ok(true);
                return Err(RedisDown(e.to_string()));
            }
            Ok(Err(e)) => Err(RedisDown(e.to_string())),
            Err(_) => Err(RedisDown(format!("no answer within {:?}", self.settings.command_timeout))),
        };
        self.health.set_commands_ok(result.is_ok());
        result
    }

    /// Whether Redis answers a PING now.
    pub async fn ping(&self) -> bool {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await }).await.is_ok()
    }

    /// Publishes `payload` on the channel `name` (every instance, this one
    /// included, hears it).
    pub async fn publish(&self, name: &str, payload: Vec<u8>) -> Result<(), RedisDown> {
        let channel = self.channel(name);
        self.run(
            |mut c| async move { redis::cmd("PUBLISH").arg(channel).arg(payload).query_async::<i64>(&mut c).await },
        )
        .await
        .map(|_| ())
    }

    /// The messages published on the channel `name`, from now on, while
    /// subscribed. At most `capacity` wait; past that, messages are dropped
    /// and counted in the log (a listener must keep up).
    pub fn listen(&self, name: &str, capacity: usize) -> mpsc::Receiver<Vec<u8>> {
        self.listen_counting_drops(name, capacity).0
    }

    /// As `listen`, with the count of this listener's dropped messages.
    pub fn listen_counting_drops(&self, name: &str, capacity: usize) -> (mpsc::Receiver<Vec<u8>>, Arc<AtomicU64>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        self.listeners
            .lock()
            .entry(self.channel(name))
            .or_default()
            .push(Listener { sender, dropped: dropped.clone() });
        (receiver, dropped)
    }
}

fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}
