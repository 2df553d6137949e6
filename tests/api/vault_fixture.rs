//! A stand-in for HashiCorp Vault, started by the tests: Vault cannot run on
//! this machine. It answers the parts of the documented HTTP API the
//! secrets back-end uses: KV v2 data (versions, `?version=`, check-and-set),
//! metadata (`current_version`, `custom_metadata`, `?list=true`), AppRole
//! login, and token checks, with Vault's JSON shapes and status codes. It
//! records every value written, so tests can look for them where they must
//! not be.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use parking_lot::Mutex;
use serde_json::{json, Value};

pub const ROOT_TOKEN: &str = "hvs.fixture-root-token-4f1c";
pub const ROLE_ID: &str = "role-id-fixture";
pub const SECRET_ID: &str = "secret-id-fixture-9a7e";

#[derive(Default)]
struct Secret {
    versions: Vec<Value>,
    custom_metadata: Value,
}

#[derive(Default)]
pub struct VaultState {
    secrets: Mutex<BTreeMap<String, Secret>>,
    issued_tokens: Mutex<Vec<String>>,
    /// Answer this many requests with 503 first (retry tests).
    pub fail_next: AtomicU32,
    pub requests: AtomicU32,
    /// Every value ever written, for leak checks.
    pub written: Mutex<Vec<String>>,
}

pub struct VaultFixture {
    pub address: String,
    pub state: Arc<VaultState>,
}

fn error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(json!({ "errors": [message] }))
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<VaultState>) -> HttpResponse {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.fail_next.load(Ordering::SeqCst) > 0 {
        state.fail_next.fetch_sub(1, Ordering::SeqCst);
        return error(503, "Vault is sealed");
    }
    let path = req.path().trim_start_matches("/v1/").to_string();
    let query: BTreeMap<String, String> = web::Query::<BTreeMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let method = req.method().as_str().to_string();

    if path == "auth/approle/login" && method == "POST" {
        if body["role_id"] != ROLE_ID || body["secret_id"] != SECRET_ID {
            return error(400, "invalid role or secret ID");
        }
        let token = format!("hvs.approle-{}", uuid::Uuid::new_v4().simple());
        state.issued_tokens.lock().push(token.clone());
        return HttpResponse::Ok()
            .json(json!({ "auth": { "client_token": token, "lease_duration": 3600, "renewable": true } }));
    }
    let token = req.headers().get("X-Vault-Token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    if token != ROOT_TOKEN && !state.issued_tokens.lock().contains(&token) {
        return error(403, "permission denied");
    }
    let (kind, key) = match path.split_once('/').and_then(|(_mount, rest)| rest.split_once('/')) {
        Some((kind, key)) if path.starts_with("secret/") => (kind.to_string(), key.to_string()),
        _ => return error(404, "no handler for route"),
    };
    let mut secrets = state.secrets.lock();
    match (kind.as_str(), method.as_str()) {
        ("data", "GET") => {
            let Some(s) = secrets.get(&key) else { return error(404, "") };
            let version = query
                .get("version")
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|v| *v > 0)
                .unwrap_or(s.versions.len());
            let Some(data) = s.versions.get(version - 1) else { return error(404, "") };
            HttpResponse::Ok().json(json!({ "data": { "data": data, "metadata": {
                "version": version, "created_time": "2026-12-01T00:00:00Z", "deletion_time": "", "destroyed": false,
                "custom_metadata": s.custom_metadata } } }))
        }
        ("data", "POST" | "PUT") => {
            let current = secrets.get(&key).map_or(0, |s| s.versions.len()) as u64;
            if let Some(cas) = body["options"]["cas"].as_u64() {
                if cas != current {
                    return error(400, "check-and-set parameter did not match the current version");
                }
            }
            if let Some(v) = body["data"]["value"].as_str() {
                state.written.lock().push(v.to_string());
            }
            let s = secrets.entry(key).or_default();
            s.versions.push(body["data"].clone());
            HttpResponse::Ok()
                .json(json!({ "data": { "version": s.versions.len(), "created_time": "2026-12-01T00:00:00Z",
                "deletion_time": "", "destroyed": false } }))
        }
        ("metadata", "GET") if query.get("list").is_some_and(|v| v == "true") => {
            let prefix = format!("{}/", key.trim_end_matches('/'));
            let keys: Vec<String> = secrets.keys().filter_map(|k| k.strip_prefix(&prefix)).map(String::from).collect();
            if keys.is_empty() {
                return error(404, "");
            }
            HttpResponse::Ok().json(json!({ "data": { "keys": keys } }))
        }
        ("metadata", "GET") => match secrets.get(&key) {
            None => error(404, ""),
            Some(s) => HttpResponse::Ok().json(json!({ "data": { "current_version": s.versions.len(),
                "oldest_version": 1, "custom_metadata": s.custom_metadata, "versions": {} } })),
        },
        ("metadata", "POST" | "PUT") => {
            let Some(s) = secrets.get_mut(&key) else { return error(404, "") };
            let custom = &body["custom_metadata"];
            if custom.as_object().is_some_and(|m| m.values().any(|v| !v.is_string() || v.as_str().unwrap().len() > 512))
            {
                return error(400, "custom_metadata values must be strings of at most 512 bytes");
            }
            s.custom_metadata = custom.clone();
            HttpResponse::NoContent().finish()
        }
        _ => error(405, "unsupported operation"),
    }
}

/// Starts the fixture on a free port of 127.0.0.1.
pub fn start() -> VaultFixture {
    let state = Arc::new(VaultState::default());
    let data = web::Data::from(state.clone());
    let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("fixture binds");
    let address = format!("http://{}", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    VaultFixture { address, state }
}

/// Starts the fixture over HTTPS with `cert_pem` and `key_pem` (files).
pub fn start_tls(cert_pem: &std::path::Path, key_pem: &std::path::Path) -> VaultFixture {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert_pem).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(key_pem).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let state = Arc::new(VaultState::default());
    let data = web::Data::from(state.clone());
    let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
        .workers(1)
        .bind_rustls_0_23("127.0.0.1:0", config)
        .expect("fixture binds");
    let address = format!("https://{}", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    VaultFixture { address, state }
}

impl VaultFixture {
    pub fn written(&self) -> Vec<String> {
        self.state.written.lock().clone()
    }
}
