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
}
