//! The REST calls of the client, over actix's HTTP client. A refusal becomes
//! a [`Failure`] carrying the server's message, code and trace id.

use std::time::Duration;

use awc::http::{Method, StatusCode};
use serde_json::Value;

use super::session::Target;
use super::{Exit, Failure};

/// Bodies the client reads are small JSON documents; listings stay far under this.
const BODY_LIMIT: usize = 16 << 20;

#[derive(Clone)]
pub struct Api {
    pub server: String,
    pub token: Option<String>,
    client: awc::Client,
}

/// A successful answer: its status, its `X-Total-Count` and its JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub total: Option<u64>,
    pub body: Value,
}

impl Api {
    pub fn new(target: &Target) -> Api {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .add_default_header(("User-Agent", concat!("hotswap-cli/", env!("CARGO_PKG_VERSION"))))
            .finish();
        Api { server: target.server.clone(), token: target.token.clone(), client }
    }

    /// Refuses early, with what to do, when no token is known.
    pub fn require_token(&self) -> Result<&str, Failure> {
        self.token.as_deref().ok_or_else(|| {
            Failure::usage(format!(
                "not logged in to {}: run `hotswap login --server {}` or set HOTSWAP_TOKEN",
                self.server, self.server
            ))
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer, Failure> {
        let url = self.url(path);
        let mut request = self.client.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let sent = match body {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| Failure::general(format!("cannot reach {url}: {e}")))?;
        let status = response.status();
        let total = response.headers().get("X-Total-Count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let bytes = response
            .body()
            .limit(BODY_LIMIT)
            .await
            .map_err(|e| Failure::general(format!("cannot read the answer of {url}: {e}")))?;
        let body: Value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if status.is_success() {
            return Ok(Answer { status, total, body });
        }
        Err(refusal(status, &body, &bytes))
    }

    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.require_token()?;
        Ok(self.call(Method::GET, path, None).await?.body)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Answer, Failure> {
        self.require_token()?;
        self.call(Method::POST, path, Some(body)).await
    }
}

/// The server's error body as a failure: 4xx are the caller's input (exit 2),
/// anything else a failure (exit 1).
fn refusal(status: StatusCode, body: &Value, raw: &[u8]) -> Failure {
    let message = body["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(raw).chars().take(300).collect::<String>());
    let mut text = format!("{message} ({} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    if let Some(code) = body["code"].as_str() {
        text.push_str(&format!(", code {code}"));
    }
    text.push(')');
    for detail in body["details"].as_array().into_iter().flatten() {
        match detail.as_str() {
            Some(d) => text.push_str(&format!("\n  - {d}")),
            None => text.push_str(&format!("\n  - {detail}")),
        }
    }
    for field in ["activeExecutionId", "currentStatus", "quota", "retryAfter"] {
        if let Some(v) = body.get(field).filter(|v| !v.is_null()) {
            text.push_str(&format!("\n  {field}: {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())));
        }
    }
    let exit = if status.is_client_error() { Exit::Usage } else { Exit::Failed };
    Failure { exit, message: text, trace_id: body["traceId"].as_str().map(str::to_string) }
}
