//! Webhook delivery. Runs hand events over through a bounded queue and never
//! wait; a background task POSTs each to every webhook, retrying failures
//! with exponential backoff, each delivery independent of the others.

use std::sync::Arc;
use std::time::Duration;

use hotswap_actors::domain::RunRecord;
use hotswap_actors::hooks::Notifier;
use hotswap_actors::store::RunEvent;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Notifications waiting for delivery; beyond this they are dropped (and logged).
const QUEUE: usize = 1024;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// URLs that receive a POST for every approval request, decision and expiry.
    pub webhooks: Vec<String>,
    /// Time allowed for one delivery attempt.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per webhook and event, the first included.
    pub max_attempts: u32,
    /// Wait before the first retry; doubles with every further one.
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
}

// Webhook URLs often carry a token (Slack, Teams, chat bots): `hotswap
// config` and logs show where they point, not the whole URL.
impl std::fmt::Debug for NotificationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let webhooks: Vec<String> = self.webhooks.iter().map(|u| redacted_url(u)).collect();
        f.debug_struct("NotificationSettings")
            .field("webhooks", &webhooks)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// Scheme, host and port of a URL; its path, query and credentials hidden.
pub fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{}{port}/<redacted>", u.scheme(), u.host_str().unwrap_or(""))
        }
        Err(_) => "<redacted>".to_string(),
    }
}

impl NotificationSettings {
    pub fn validate(&self) -> Result<(), String> {
        for url in &self.webhooks {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => return Err(format!("notifications.webhooks: '{}' is not an http(s) URL", redacted_url(url))),
            }
        }
        if self.max_attempts == 0 {
            return Err("notifications.max_attempts must be at least 1".into());
        }
        if self.timeout.is_zero() {
            return Err("notifications.timeout must be above zero".into());
        }
        Ok(())
    }
}

pub struct WebhookNotifier {
    queue: mpsc::Sender<Value>,
}

impl WebhookNotifier {
    /// Starts the delivery task (inside the actix System); None without webhooks.
    pub fn start(settings: &NotificationSettings) -> Option<Arc<WebhookNotifier>> {
        if settings.webhooks.is_empty() {
            return None;
        }
        super::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("hotswap/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| tracing::error!(error = %e, "cannot build the webhook client; webhooks are off"))
            .ok()?;
        let (queue, mut rx) = mpsc::channel::<Value>(QUEUE);
        let settings = Arc::new(settings.clone());
        actix::spawn(async move {
            while let Some(body) = rx.recv().await {
                let body = Arc::new(body);
                for url in &settings.webhooks {
                    actix::spawn(deliver(client.clone(), url.clone(), body.clone(), settings.clone()));
                }
            }
        });
        Some(Arc::new(WebhookNotifier { queue }))
    }
}

impl Notifier for WebhookNotifier {
    fn notify(&self, run: &RunRecord, event: &RunEvent) {
        let body = payload(run, event);
        if self.queue.try_send(body).is_err() {
            tracing::warn!(run = %run.execution_id, kind = %event.kind, "webhook queue is full; notification dropped");
        }
    }
}

/// The JSON a webhook receives. `event` names what happened:
/// ApprovalRequested, ApprovalGranted, ApprovalRejected or ApprovalExpired.
fn payload(run: &RunRecord, event: &RunEvent) -> Value {
    let name = match (event.kind.as_str(), event.data["status"].as_str()) {
        ("ApprovalDecided", Some("Approved")) => "ApprovalGranted",
        ("ApprovalDecided", Some("Rejected")) => "ApprovalRejected",
        ("ApprovalDecided", Some("Expired")) => "ApprovalExpired",
        (kind, _) => kind,
    };
    json!({
        "event": name,
        "timestamp": event.at,
        "tenantId": run.tenant_id,
        "executionId": run.execution_id,
        "approvalId": event.data["approvalId"],
        "moduleName": run.request.module_name,
        "version": run.request.version,
        "targetEnvironment": run.request.target_environment.as_str(),
        "requesterEmail": run.request.requester_email,
        "decidedBy": event.data.get("decidedBy").cloned().unwrap_or(Value::Null),
        "reason": event.data.get("reason").cloned().unwrap_or(Value::Null),
        "timeoutAt": event.data.get("timeoutAt").cloned().unwrap_or(Value::Null),
        "message": event.message,
    })
}

async fn deliver(client: reqwest::Client, url: String, body: Arc<Value>, settings: Arc<NotificationSettings>) {
    let event = body["event"].as_str().unwrap_or_default().to_string();
    let shown = redacted_url(&url);
    let mut wait = settings.backoff;
    for attempt in 1..=settings.max_attempts {
        let sent = client.post(&url).header("X-HotSwap-Event", &event).json(&*body).send().await;
        let failure = match sent {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => format!("HTTP {}", r.status()),
            // The error's text may hold the URL, which may hold a token.
            Err(e) => e.without_url().to_string(),
        };
        if attempt == settings.max_attempts {
            tracing::error!(url = %shown, %event, attempts = attempt, error = %failure, "webhook delivery failed; giving up");
            return;
        }
        tracing::warn!(url = %shown, %event, attempt, error = %failure, retry_in = ?wait, "webhook delivery failed; retrying");
        actix::clock::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
}
