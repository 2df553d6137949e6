//! Notifications sent outside the API: approval requests and decisions
//! POSTed as JSON to the configured webhooks.

mod webhooks;

pub use webhooks::{NotificationSettings, WebhookNotifier};
