//! `[websocket]`: live updates over /api/v1/ws and the SignalR hub.

use std::time::Duration;

use serde::Deserialize;

/// Live updates: /api/v1/ws and the SignalR hub at /hubs/deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebsocketSettings {
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub client_timeout: Duration,
    pub send_buffer: usize,
    #[serde(with = "humantime_serde")]
    pub flush_delay: Duration,
    pub max_message_bytes: usize,
    pub max_invalid_messages: u32,
    pub max_subscriptions: usize,
    #[serde(with = "humantime_serde")]
    pub signalr_keep_alive: Duration,
    #[serde(with = "humantime_serde")]
    pub signalr_client_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub signalr_negotiate_ttl: Duration,
    /// How often an open session checks again that its token, user and
    /// tenant still grant it access: the safety net behind the signals that
    /// logout, disable, role changes and suspension send (`auth::session_signals`).
    #[serde(with = "humantime_serde")]
    pub revalidate_interval: Duration,
}

impl WebsocketSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.ping_interval.is_zero() || self.client_timeout <= self.ping_interval {
            return Err("websocket.ping_interval must be above zero and websocket.client_timeout longer than it".into());
        }
        if self.signalr_keep_alive.is_zero() || self.signalr_client_timeout <= self.signalr_keep_alive {
            return Err(
                "websocket.signalr_keep_alive must be above zero and websocket.signalr_client_timeout longer than it"
                    .into(),
            );
        }
        if self.send_buffer == 0 || self.max_subscriptions == 0 || self.max_invalid_messages == 0 {
            return Err("websocket.send_buffer, max_subscriptions and max_invalid_messages must be at least 1".into());
        }
        if self.revalidate_interval.is_zero() || self.revalidate_interval > Duration::from_secs(600) {
            return Err("websocket.revalidate_interval must lie between 1ms and 10m".into());
        }
        if self.max_message_bytes < 64 {
            return Err("websocket.max_message_bytes must be at least 64".into());
        }
        Ok(())
    }
}
