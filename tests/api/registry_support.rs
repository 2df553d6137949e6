//! Keys, signatures and uploads for the registry tests.

use awc::http::StatusCode;
use base64::Engine;
use hotswap::crypto::rsa_sig;
use hotswap_actors::domain::SignatureAlgorithm;
use serde_json::{json, Value};

use crate::support::TestApp;

/// Strict mode and registered modules required, as in production.
pub const STRICT: [(&str, &str); 2] =
    [("HOTSWAP__SECURITY__STRICT_MODE", "true"), ("HOTSWAP__SECURITY__REQUIRE_REGISTERED_MODULES", "true")];

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A private key (PKCS#8 PEM) and its public key (SPKI PEM).
pub struct KeyPair {
    pub private: rsa::PrivateKey,
    pub public_pem: String,
}

impl KeyPair {
    pub fn generate() -> KeyPair {
        let (private, public_pem) = rsa_sig::generate_key_pair().expect("key pair");
        KeyPair { private: rsa_sig::parse_private_key(&private).unwrap(), public_pem }
    }

    pub fn sign(&self, artifact: &[u8]) -> Vec<u8> {
        rsa_sig::sign(&self.private, SignatureAlgorithm::RsaPkcs1v15Sha256, artifact).unwrap()
    }
}

/// Bytes no other test uploads, so that a test altering the stored file
/// (content-addressed, shared by every server of the test profile) alters
/// only its own.
pub fn unique_artifact(label: &str) -> Vec<u8> {
    format!("\x7fELF kernel module {label} {}", uuid::Uuid::new_v4()).into_bytes()
}

pub fn descriptor(name: &str, version: &str) -> Value {
    json!({
        "name": name,
        "version": version,
        "description": format!("{name} for tests"),
        "author": "tests",
        "dependencies": {},
        "resourceRequirements": { "memoryMB": 64, "cpuCores": 0.5, "diskMB": 10 },
        "configuration": { "debug": false },
    })
}

/// Trusts `key` under `name` (as the demo admin) and answers its id.
pub async fn trust(app: &TestApp, name: &str, key: &KeyPair) -> String {
    let (status, reply) =
        app.post("/api/v1/signing-keys", &json!({ "name": name, "publicKeyPem": key.public_pem })).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    reply["id"].as_str().unwrap().to_string()
}

pub async fn upload(
    app: &TestApp,
    descriptor: &Value,
    artifact: &[u8],
    signature: Option<&[u8]>,
) -> (StatusCode, Value) {
    let mut body = json!({ "descriptor": descriptor, "artifact": b64(artifact) });
    if let Some(sig) = signature {
        body["signature"] = json!(b64(sig));
    }
    app.post("/api/v1/modules", &body).await
}

/// Uploads a signed version and answers its artifact; panics unless stored.
pub async fn publish(app: &TestApp, key: &KeyPair, descriptor: &Value) -> Vec<u8> {
    let artifact = unique_artifact(descriptor["name"].as_str().unwrap());
    let (status, reply) = upload(app, descriptor, &artifact, Some(&key.sign(&artifact))).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    artifact
}
