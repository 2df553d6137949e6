//! Notifications sent outside the API: approval requests and decisions
//! POSTed as JSON to the configured webhooks.

mod webhooks;

pub use webhooks::{NotificationSettings, WebhookNotifier};

/// Makes ring the process's TLS crypto provider, as the server uses it. The
/// HTTP clients (webhooks, the OTLP exporter) need one before they are built;
/// an earlier install is just as good.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
