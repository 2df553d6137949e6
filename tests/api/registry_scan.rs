//! The Security Scan against the registry: every refusal ends the run Failed
//! at that stage with no node changed; nodes refuse an altered artifact; a
//! module signed with the openssl command line deploys.

use awc::http::StatusCode;
use hotswap::crypto::{rsa_sig, sha256_hex};
use hotswap_actors::domain::{
    AuditActor, AuditCategory, Environment, NewAuditEntry, SignatureAlgorithm, SigningKey, DEFAULT_TENANT,
};
use serde_json::{json, Value};

use crate::registry::{openssl, openssl_key_pair};
use crate::registry_support::*;
use crate::support::{spawn_app, stage, TestApp};

/// Deploys to Development, expects the scan to fail saying `why`, and checks
/// that no node was touched.
async fn scan_refuses(app: &TestApp, module: &str, version: &str, why: &str) -> Value {
    let id = app.deploy(module, version, "Development", json!({})).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed", "{run:#}");
    let scan = stage(&run, "Security Scan");
    assert_eq!(scan["status"], "Failed", "{run:#}");
    let message = scan["message"].as_str().unwrap();
    assert!(message.contains(why), "expected '{why}' in: {message}");
    assert_eq!(stage(&run, "Deploy to Development")["status"], "Skipped");
    app.assert_all_active(Environment::Development, module, None).await;
    run
}

fn audit() -> NewAuditEntry {
    NewAuditEntry::new(DEFAULT_TENANT, AuditActor::system(), AuditCategory::ModuleRegistry, "TestSetup")
}

/// Replaces a stored version's signature, as if an older server had kept a
/// bad one.
async fn replace_signature(app: &TestApp, module: &str, version: &str, signature: &[u8], key_id: Option<String>) {
    let store = app.orchestrator.store();
    let mut v = store.get_module_version(DEFAULT_TENANT, module, version).await.unwrap().unwrap();
    store.delete_module_version(DEFAULT_TENANT, module, version, &audit()).await.unwrap();
    v.signature = Some(b64(signature));
    v.signing_key_id = key_id;
    store.add_module_version(&v, &audit()).await.unwrap();
}

#[actix_web::test]
async fn unregistered_tampered_and_badly_signed_modules_fail_the_scan() {
    let app = spawn_app(&STRICT).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;

    scan_refuses(&app, "kmod-ghost", "1.0.0", "is not in the module registry").await;

    let artifact = publish(&app, &key, &descriptor("kmod-tampered", "1.0.0")).await;
    let digest = sha256_hex(&artifact);
    let file = app.settings.registry.artifact_dir.join("sha256").join(&digest[..2]).join(&digest);
    std::fs::write(&file, b"altered on disk").unwrap();
    scan_refuses(&app, "kmod-tampered", "1.0.0", "cannot be trusted").await;
    let (status, reply) = app.get("/api/v1/modules/kmod-tampered/1.0.0/artifact").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "altered bytes are never served: {reply}");

    publish(&app, &key, &descriptor("kmod-wrongsig", "1.0.0")).await;
    replace_signature(&app, "kmod-wrongsig", "1.0.0", &key.sign(b"other bytes"), None).await;
    scan_refuses(&app, "kmod-wrongsig", "1.0.0", "does not verify").await;
}

#[actix_web::test]
async fn revoked_and_short_keys_fail_the_scan() {
    let app = spawn_app(&STRICT).await;
    let key = KeyPair::generate();
    let id = trust(&app, "release", &key).await;
    publish(&app, &key, &descriptor("kmod-revoked", "1.0.0")).await;
    let (status, _) = app.post(&format!("/api/v1/signing-keys/{id}/revoke"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    scan_refuses(&app, "kmod-revoked", "1.0.0", "which was revoked").await;

    // A 1024-bit key that found its way into the store (the API refuses it)
    // is still not trusted.
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = openssl_key_pair(dir.path(), 1024);
    let short = rsa_sig::parse_public_key(&public, 0).unwrap();
    let stored = SigningKey {
        tenant_id: DEFAULT_TENANT,
        key_id: short.fingerprint.clone(),
        name: "legacy".into(),
        algorithm: "RSA".into(),
        bits: short.bits,
        public_key_pem: short.spki_pem,
        created_at: chrono::Utc::now(),
        revoked_at: None,
    };
    app.orchestrator.store().add_signing_key(&stored, &audit()).await.unwrap();
    let artifact = publish(&app, &key_of_trusted(&app).await, &descriptor("kmod-short", "1.0.0")).await;
    let private = rsa_sig::parse_private_key(&std::fs::read_to_string(private).unwrap()).unwrap();
    let sig = rsa_sig::sign(&private, SignatureAlgorithm::RsaPkcs1v15Sha256, &artifact).unwrap();
    replace_signature(&app, "kmod-short", "1.0.0", &sig, Some(short.fingerprint)).await;
    scan_refuses(&app, "kmod-short", "1.0.0", "keys under 2048 bits are not trusted").await;
}

/// Walkthrough w3 F7: a version with hooks, signed over the right statement
/// by a key revoked since, when the version does not name that key (signed
/// with it before it was trusted), is refused naming the revoked key rather
/// than with a guess about the statement.
#[actix_web::test]
async fn a_signature_only_a_revoked_key_verifies_is_refused_naming_that_key() {
    use hotswap::registry::statement::statement;
    let app = spawn_app(&STRICT).await;
    let key = KeyPair::generate();
    let id = trust(&app, "rogue", &key).await;
    let mut d = descriptor("kmod-rogue", "1.0.0");
    d["hooks"] = json!({ "activate": "true" });
    let artifact = unique_artifact("kmod-rogue");
    let hooks = hotswap_actors::domain::ModuleHooks { activate: Some("true".into()), ..Default::default() };
    let signed = key.sign(statement("kmod-rogue", "1.0.0", &sha256_hex(&artifact), &hooks).as_bytes());
    let (status, reply) = upload(&app, &d, &artifact, Some(&signed)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    replace_signature(&app, "kmod-rogue", "1.0.0", &signed, None).await;
    let (status, _) = app.post(&format!("/api/v1/signing-keys/{id}/revoke"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let run = scan_refuses(&app, "kmod-rogue", "1.0.0", "was signed with key 'rogue'").await;
    let message = stage(&run, "Security Scan")["message"].as_str().unwrap().to_string();
    assert!(message.contains("which was revoked") && !message.contains("signature-v2"), "{message}");
}

/// A fresh trusted key for `app` (the one trusted before was revoked).
async fn key_of_trusted(app: &TestApp) -> KeyPair {
    let key = KeyPair::generate();
    trust(app, "second", &key).await;
    key
}

#[actix_web::test]
async fn dependencies_must_run_on_the_target_nodes() {
    let app = spawn_app(&STRICT).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    let mut app_module = descriptor("kmod-app", "1.0.0");
    app_module["dependencies"] = json!({ "kmod-base": "^2.1" });
    publish(&app, &key, &app_module).await;
    scan_refuses(&app, "kmod-app", "1.0.0", "dependency kmod-base ^2.1 is not met in Development").await;

    publish(&app, &key, &descriptor("kmod-base", "2.0.0")).await;
    app.deploy_ok("kmod-base", "2.0.0", "Development").await;
    scan_refuses(&app, "kmod-app", "1.0.0", "runs kmod-base 2.0.0").await;

    publish(&app, &key, &descriptor("kmod-base", "2.3.0")).await;
    app.deploy_ok("kmod-base", "2.3.0", "Development").await;
    let id = app.deploy("kmod-app", "1.0.0", "Development", json!({})).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    let message = stage(&run, "Security Scan")["message"].as_str().unwrap().to_string();
    assert!(message.contains("Signature (RSA-PKCS1v15-SHA256) verified"), "{message}");
    assert!(message.contains("Artifact SHA-256") && message.contains("verified"), "{message}");
    app.assert_all_active(Environment::Development, "kmod-app", Some("1.0.0")).await;
}

#[actix_web::test]
async fn nodes_refuse_an_artifact_altered_in_transit() {
    let app = spawn_app(&STRICT).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    publish(&app, &key, &descriptor("kmod-transit", "1.0.0")).await;
    let id = app
        .deploy("kmod-transit", "1.0.0", "Development", json!({ "metadata": { "simulateTamperedArtifact": "true" } }))
        .await;
    let run = app.finished(&id).await;
    assert_ne!(run["status"], "Succeeded", "{run:#}");
    assert_eq!(stage(&run, "Security Scan")["status"], "Succeeded");
    let deploy = stage(&run, "Deploy to Development");
    assert!(matches!(deploy["status"].as_str(), Some("Failed" | "RolledBack")), "{deploy:#}");
    let (_, events) = app.get(&format!("/api/v1/deployments/{id}/events")).await;
    assert!(events.to_string().contains("not the registry's"), "{events:#}");
    app.assert_all_active(Environment::Development, "kmod-transit", None).await;
}

#[actix_web::test]
async fn unsigned_modules_pass_with_a_warning_outside_strict_mode() {
    let app = spawn_app(&[]).await;
    let artifact = unique_artifact("lenient");
    let (status, reply) = upload(&app, &descriptor("kmod-lenient", "1.0.0"), &artifact, None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert!(reply["warnings"][0].as_str().unwrap().contains("strict_mode is off"), "{reply}");
    let id = app.deploy("kmod-lenient", "1.0.0", "Development", json!({})).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    let message = stage(&run, "Security Scan")["message"].as_str().unwrap();
    assert!(message.contains("Warning: kmod-lenient 1.0.0 is not signed"), "{message}");
    // Unregistered modules pass too, and the stage says so.
    let id = app.deploy("kmod-unknown", "1.0.0", "Development", json!({})).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    assert!(stage(&run, "Security Scan")["message"].as_str().unwrap().contains("not in the module registry"));
}

#[actix_web::test]
async fn a_module_signed_with_the_openssl_command_line_deploys() {
    let app = spawn_app(&STRICT).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = openssl_key_pair(dir.path(), 2048);
    let (status, reply) = app.post("/api/v1/signing-keys", &json!({ "name": "openssl", "publicKeyPem": public })).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let module = dir.path().join("kmod-openssl.ko");
    let artifact = unique_artifact("openssl");
    std::fs::write(&module, &artifact).unwrap();
    let (k, m) = (key.to_str().unwrap(), module.to_str().unwrap());
    let sig = dir.path().join("sig.bin");
    openssl(&["dgst", "-sha256", "-sign", k, "-out", sig.to_str().unwrap(), m]);
    let pss = dir.path().join("sig-pss.bin");
    openssl(&["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sign", k, "-out", pss.to_str().unwrap(), m]);

    let (status, reply) =
        upload(&app, &descriptor("kmod-openssl", "1.0.0"), &artifact, Some(&std::fs::read(&sig).unwrap())).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let mut d = descriptor("kmod-openssl", "1.1.0");
    d["signatureAlgorithm"] = json!("RSA-PSS-SHA256");
    let (status, reply) = upload(&app, &d, &artifact, Some(&std::fs::read(&pss).unwrap())).await;
    assert_eq!(status, StatusCode::CREATED, "openssl's PSS (largest salt): {reply}");

    for version in ["1.0.0", "1.1.0"] {
        let id = app.deploy("kmod-openssl", version, "Development", json!({})).await;
        let run = app.finished(&id).await;
        assert_eq!(run["status"], "Succeeded", "{run:#}");
    }
    app.assert_all_active(Environment::Development, "kmod-openssl", Some("1.1.0")).await;
}
