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
    /// The CA file an https:// server is checked against (else the host's CAs).
    pub ca: Option<std::path::PathBuf>,
    /// The tenant every request acts for (`X-Tenant-Id`), when a system
    /// tenant's Admin asked for another one with `--tenant`.
    pub tenant: Option<String>,
    /// Said when the server wants a token this client did not send: the saved
    /// login is for another server, or its file cannot be used.
    login_hint: Option<String>,
    /// TLS settings, for an https:// server only.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    client: awc::Client,
}

/// How many times a read refused for the rate limit is asked again, and the
/// longest the client waits before asking (the server's `Retry-After` is at
/// most a minute).
const RATE_LIMIT_RETRIES: u32 = 5;
const RATE_LIMIT_MAX_WAIT: Duration = Duration::from_secs(60);

/// A request that did not succeed, and for a 429 how long the server asked
/// the client to wait.
struct Refusal {
    failure: Failure,
    retry_after: Option<Duration>,
}

impl Refusal {
    fn of(failure: Failure) -> Refusal {
        Refusal { failure, retry_after: None }
    }
}

/// The header with which an Admin of the system tenant acts for another tenant.
pub const TENANT_HEADER: &str = "X-Tenant-Id";

/// A successful answer: its status, its `X-Total-Count` and its JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub total: Option<u64>,
    pub body: Value,
}

impl Api {
    /// A client of `target`; a CA file that cannot be read is refused here,
    /// before any request.
    pub fn new(target: &Target) -> Result<Api, Failure> {
        super::session::check_server(&target.server)?;
        let tls = if crate::tls_client::is_tls(&target.server) {
            Some(crate::tls_client::client_config(target.ca.as_deref()).map_err(Failure::usage)?)
        } else {
            None
        };
        let client = http_client(tls.as_ref(), Duration::from_secs(60));
        Ok(Api {
            server: target.server.clone(),
            token: target.token.clone(),
            ca: target.ca.clone(),
            tenant: None,
            login_hint: target.login_hint(),
            tls,
            client,
        })
    }

    /// This client acting for `tenant`, named by its id or its subdomain.
    pub async fn acting_for(mut self, tenant: Option<&str>) -> Result<Api, Failure> {
        if let Some(tenant) = tenant {
            self.tenant = Some(self.tenant_id(tenant).await?);
        }
        Ok(self)
    }

    /// The id of the tenant `which` names: an id as given, else the tenant
    /// with that subdomain among those the caller may see.
    pub async fn tenant_id(&self, which: &str) -> Result<String, Failure> {
        if uuid::Uuid::parse_str(which).is_ok() {
            return Ok(which.to_string());
        }
        // Matched here too: a server older than the `subdomain` filter answers every tenant.
        let tenants = self.get(&format!("/api/tenants?subdomain={}", super::segment(which))).await?;
        let named = tenants
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["subdomain"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(which)));
        named.and_then(|t| t["tenantId"].as_str()).map(str::to_string).ok_or_else(|| {
            Failure::usage(format!(
                "no tenant has the subdomain '{which}' (give its id or subdomain): see `hotswap tenants`"
            ))
        })
    }

    /// Why `url` could not be reached, with what to do about a certificate the client does not trust.
    pub fn unreachable(&self, url: &str, error: &dyn std::fmt::Display) -> String {
        let error = error.to_string();
        let hint = if self.tls.is_some() && error.contains("certificate") && self.ca.is_none() {
            "; if a private CA signed the server's certificate, name it with --ca FILE (or HOTSWAP_CA)"
        } else {
            ""
        };
        format!("cannot reach {url}: {error}{hint}")
    }

    /// An HTTP and WebSocket client of this server with its own timeout (uploads wait longer).
    pub fn client(&self, timeout: Duration) -> awc::Client {
        http_client(self.tls.as_ref(), timeout)
    }

    /// Refuses early, with what to do, when no token is known.
    pub fn require_token(&self) -> Result<&str, Failure> {
        self.token.as_deref().ok_or_else(|| match &self.login_hint {
            Some(hint) => Failure::usage(format!("not logged in to {}: {hint}", self.server)),
            None => Failure::usage(format!(
                "not logged in to {}: run `hotswap login --server {}` or set HOTSWAP_TOKEN",
                self.server, self.server
            )),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    /// One request. A read the server refused for its rate limit (429) is
    /// asked again after the `Retry-After` it gave, a few times: a watch or a
    /// listing of many pages should slow down, not fail. A change is never
    /// sent twice by the client on its own.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer, Failure> {
        let read = method == Method::GET;
        let mut waits = 0;
        loop {
            match self.call_once(method.clone(), path, body).await {
                Err(Refusal { retry_after: Some(after), .. }) if read && waits < RATE_LIMIT_RETRIES => {
                    waits += 1;
                    let after = after.clamp(Duration::from_secs(1), RATE_LIMIT_MAX_WAIT);
                    super::output::complain!(
                        "hotswap: the server's rate limit was reached; asking again in {}s",
                        after.as_secs()
                    );
                    actix_web::rt::time::sleep(after).await;
                }
                Err(refused) => return Err(refused.failure),
                Ok(answer) => return Ok(answer),
            }
        }
    }

    async fn call_once(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer, Refusal> {
        let url = self.url(path);
        let mut request = self.client.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(tenant) = &self.tenant {
            request = request.insert_header((TENANT_HEADER, tenant.as_str()));
        }
        let sent = match body {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| Refusal::of(Failure::general(self.unreachable(&url, &e))))?;
        let status = response.status();
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let total = header("X-Total-Count");
        let retry_after =
            (status == StatusCode::TOO_MANY_REQUESTS).then(|| Duration::from_secs(header("Retry-After").unwrap_or(1)));
        let bytes = response
            .body()
            .limit(BODY_LIMIT)
            .await
            .map_err(|e| Refusal::of(Failure::general(format!("cannot read the answer of {url}: {e}"))))?;
        let body: Value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if status.is_success() {
            return Ok(Answer { status, total, body });
        }
        let mut failure = refusal(status, &body, &bytes);
        if let Some(hint) =
            self.login_hint.as_ref().filter(|_| status == StatusCode::UNAUTHORIZED && self.token.is_none())
        {
            failure.message.push_str(&format!("\n  {hint}"));
        }
        Err(Refusal { failure, retry_after })
    }

    /// Every item of a list the server answers a page of `per_request` at a
    /// time: `path` gives the request for the items after the first `read`.
    /// It stops at a short page, at the `X-Total-Count`, or after the first
    /// answer from a server that gives no count (it does not page, and would
    /// answer the same items again).
    pub async fn every_page(&self, per_request: usize, path: impl Fn(usize) -> String) -> Result<Vec<Value>, Failure> {
        let mut all = Vec::new();
        loop {
            let answer = self.call(Method::GET, &path(all.len()), None).await?;
            let page = answer.body.as_array().cloned().unwrap_or_default();
            let short = page.len() < per_request;
            all.extend(page);
            if short || answer.total.is_none_or(|total| all.len() as u64 >= total) {
                return Ok(all);
            }
        }
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
/// The client's HTTP and WebSocket client, with TLS for an https:// server.
fn http_client(tls: Option<&std::sync::Arc<rustls::ClientConfig>>, timeout: Duration) -> awc::Client {
    let builder = awc::Client::builder()
        .timeout(timeout)
        .add_default_header(("User-Agent", concat!("hotswap-cli/", env!("CARGO_PKG_VERSION"))));
    match tls {
        Some(tls) => builder.connector(awc::Connector::new().rustls_0_23(tls.clone())).finish(),
        None => builder.finish(),
    }
}

pub(crate) fn refusal(status: StatusCode, body: &Value, raw: &[u8]) -> Failure {
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
    if status == StatusCode::UNAUTHORIZED {
        text.push_str("\n  sign in again with `hotswap login` (or set HOTSWAP_TOKEN)");
    }
    let exit = if status.is_client_error() { Exit::Usage } else { Exit::Failed };
    Failure { exit, message: text, trace_id: body["traceId"].as_str().map(str::to_string) }
}
