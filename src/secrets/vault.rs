//! HashiCorp Vault's KV version 2 secrets engine over its HTTP API
//! (https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2).
//!
//! Each secret is `<mount>/data/<prefix>/<id>` with its value under `value`;
//! Vault numbers the versions, and check-and-set (`options.cas`) makes a
//! rotation lose cleanly against a concurrent one. Our metadata rides in the
//! secret's `custom_metadata`. Authentication is a token or AppRole (the
//! token is renewed by logging in again before its lease ends). TLS
//! certificates are always verified, against the configured CA file or the
//! system's bundle; there is no switch to turn that off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use awc::http::{Method, StatusCode};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::settings::{VaultAuth, VaultSettings};
use super::{SecretBackend, SecretError, SecretMetadata, SecretValue};
use crate::crypto::Secret;

pub struct VaultSecrets {
    settings: VaultSettings,
    /// TLS for an https:// address; none for plain HTTP.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// An AppRole login's token and when to log in again.
    token: Mutex<Option<(Secret, Instant)>>,
}

/// A refusal or failure, worded without the token or any value.
fn unavailable(what: &str, detail: impl std::fmt::Display) -> SecretError {
    SecretError::Unavailable(format!("Vault {what}: {detail}"))
}

impl VaultSecrets {
    pub fn new(settings: VaultSettings) -> Result<VaultSecrets, String> {
        // Plain HTTP (a local agent or a test fixture) needs no roots; HTTPS
        // trusts `ca_cert_file`, else the host's CAs.
        let tls = if crate::tls_client::is_tls(&settings.address) {
            let ca = Some(settings.ca_cert_file.trim()).filter(|f| !f.is_empty()).map(std::path::Path::new);
            Some(crate::tls_client::client_config_for("secrets.vault.ca_cert_file", ca)?)
        } else {
            None
        };
        Ok(VaultSecrets { settings, tls, token: Mutex::new(None) })
    }

    fn client(&self) -> awc::Client {
        let connector = awc::Connector::new().timeout(self.settings.timeout);
        let connector = match &self.tls {
            Some(tls) => connector.rustls_0_23(tls.clone()),
            None => connector,
        };
        awc::Client::builder().connector(connector).timeout(self.settings.timeout).finish()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.settings.address.trim_end_matches('/'), path)
    }

    fn secret_path(&self, kind: &str, id: &str) -> String {
        let prefix = self.settings.path_prefix.trim_matches('/');
        let mount = self.settings.mount.trim_matches('/');
        if prefix.is_empty() {
            format!("{mount}/{kind}/{id}")
        } else {
            format!("{mount}/{kind}/{prefix}/{id}")
        }
    }

    /// The token to send, logging in with AppRole when there is none or it is
    /// about to lapse.
    async fn token(&self, client: &awc::Client) -> Result<Secret, SecretError> {
        match self.settings.auth {
            VaultAuth::Token => Ok(self.settings.token.clone()),
            VaultAuth::Approle => {
                if let Some((token, until)) = self.token.lock().clone() {
                    if Instant::now() < until {
                        return Ok(token);
                    }
                }
                let url = self.url(&format!("auth/{}/login", self.settings.approle_path.trim_matches('/')));
                let body =
                    json!({ "role_id": self.settings.role_id.expose(), "secret_id": self.settings.secret_id.expose() });
                let mut res = client.post(&url).send_json(&body).await.map_err(|e| unavailable("login", e))?;
                if !res.status().is_success() {
                    return Err(unavailable("AppRole login", format!("refused with {}", res.status())));
                }
                let reply: Value = res.json().await.map_err(|e| unavailable("login", e))?;
                let token = reply["auth"]["client_token"]
                    .as_str()
                    .ok_or_else(|| unavailable("login", "no client_token in the answer"))?;
                let lease = Duration::from_secs(reply["auth"]["lease_duration"].as_u64().unwrap_or(300));
                // Log in again at 80 % of the lease.
                let token = Secret::new(token);
                *self.token.lock() = Some((token.clone(), Instant::now() + lease.mul_f64(0.8)));
                Ok(token)
            }
        }
    }

    /// One request with retries on connection failures, 429 and 5xx. Answers
    /// the status and the JSON body (`Null` when there is none).
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(StatusCode, Value), SecretError> {
        let client = self.client();
        let url = self.url(path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token(&client).await?;
            let req = client.request(method.clone(), &url).insert_header(("X-Vault-Token", token.expose()));
            let sent = match body {
                Some(b) => req.send_json(b).await,
                None => req.send().await,
            };
            let retry = match sent {
                Ok(mut res) => {
                    let status = res.status();
                    if status == StatusCode::FORBIDDEN && self.settings.auth == VaultAuth::Approle && attempt == 1 {
                        // The token may have been revoked early: log in again once.
                        *self.token.lock() = None;
                        continue;
                    }
                    if !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) {
                        let bytes = res.body().limit(1 << 20).await.map_err(|e| unavailable(path, e))?;
                        let json = if bytes.is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
                        };
                        return Ok((status, json));
                    }
                    format!("answered {status}")
                }
                Err(e) => e.to_string(),
            };
            if attempt > self.settings.retries {
                return Err(unavailable(path, format!("{retry} (after {attempt} attempts)")));
            }
            tracing::warn!(path, attempt, error = %retry, "Vault request failed; retrying");
            actix_web::rt::time::sleep(self.settings.retry_delay).await;
        }
    }
}

/// Vault's error list, for messages.
fn errors(body: &Value) -> String {
    body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
        .unwrap_or_default()
}

/// Our metadata as Vault's custom metadata: string values only.
fn to_custom(meta: &SecretMetadata) -> Map<String, Value> {
    let mut custom = Map::new();
    if let Value::Object(fields) = serde_json::to_value(meta).unwrap_or_default() {
        for (k, v) in fields {
            if k != "id" && k != "currentVersion" && !v.is_null() {
                custom.insert(k, Value::String(v.to_string()));
            }
        }
    }
    custom
}

fn from_custom(id: &str, current_version: u32, custom: &Value) -> Result<SecretMetadata, SecretError> {
    let mut fields = Map::new();
    if let Some(custom) = custom.as_object() {
        for (k, v) in custom {
            if let Some(s) = v.as_str() {
                fields.insert(k.clone(), serde_json::from_str(s).unwrap_or(Value::String(s.to_string())));
            }
        }
    }
    fields.insert("id".into(), json!(id));
    fields.insert("currentVersion".into(), json!(current_version));
    // A secret someone else wrote has none of our fields: it counts as new, without a policy.
    let now = json!(chrono::Utc::now());
    fields.entry("createdAt").or_insert(now.clone());
    fields.entry("currentSince").or_insert(now);
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| SecretError::Invalid(format!("the custom metadata of {id} in Vault does not decode: {e}")))
}

#[async_trait(?Send)]
impl SecretBackend for VaultSecrets {
    fn name(&self) -> &'static str {
        "vault"
    }

    async fn metadata(&self, id: &str) -> Result<Option<SecretMetadata>, SecretError> {
        let (status, body) = self.call(Method::GET, &self.secret_path("metadata", id), None).await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let version = body["data"]["current_version"].as_u64().unwrap_or(0) as u32;
                from_custom(id, version, &body["data"]["custom_metadata"]).map(Some)
            }
            s => Err(unavailable("metadata read", format!("{s} {}", errors(&body)))),
        }
    }

    async fn value(&self, id: &str, version: u32) -> Result<Option<SecretValue>, SecretError> {
        let path = format!("{}?version={version}", self.secret_path("data", id));
        let (status, body) = self.call(Method::GET, &path, None).await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(body["data"]["data"]["value"].as_str().map(SecretValue::new)),
            s => Err(unavailable("read", format!("{s} {}", errors(&body)))),
        }
    }

    async fn write(
        &self,
        id: &str,
        value: &SecretValue,
        expected_current: u32,
        metadata: &SecretMetadata,
    ) -> Result<u32, SecretError> {
        let body = json!({ "options": { "cas": expected_current }, "data": { "value": value.expose() } });
        let (status, reply) = self.call(Method::POST, &self.secret_path("data", id), Some(&body)).await?;
        if status == StatusCode::BAD_REQUEST && errors(&reply).contains("check-and-set") {
            return Err(SecretError::Conflict(id.to_string()));
        }
        if !status.is_success() {
            return Err(unavailable("write", format!("{status} {}", errors(&reply))));
        }
        let version = reply["data"]["version"]
            .as_u64()
            .ok_or_else(|| unavailable("write", "the answer holds no version"))? as u32;
        let stored = SecretMetadata { current_version: version, ..metadata.clone() };
        let custom = json!({ "custom_metadata": to_custom(&stored) });
        let (status, reply) = self.call(Method::POST, &self.secret_path("metadata", id), Some(&custom)).await?;
        if !status.is_success() {
            return Err(unavailable("metadata write", format!("{status} {}", errors(&reply))));
        }
        Ok(version)
    }

    async fn list(&self) -> Result<Vec<String>, SecretError> {
        let mount = self.settings.mount.trim_matches('/');
        let prefix = self.settings.path_prefix.trim_matches('/');
        let (status, body) = self.call(Method::GET, &format!("{mount}/metadata/{prefix}?list=true"), None).await?;
        match status {
            StatusCode::NOT_FOUND => Ok(Vec::new()),
            s if s.is_success() => Ok(body["data"]["keys"]
                .as_array()
                .map(|keys| {
                    keys.iter().filter_map(Value::as_str).filter(|k| !k.ends_with('/')).map(String::from).collect()
                })
                .unwrap_or_default()),
            s => Err(unavailable("list", format!("{s} {}", errors(&body)))),
        }
    }
}
