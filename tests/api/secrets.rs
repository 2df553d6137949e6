//! Secrets: admin endpoints (metadata only), JWT signing-key rotation with old
//! and new tokens, scheduled rotation, the Vault KV v2 back-end against a
//! local fixture, and a search of a server's logs for secret values.

use crate::db::poll::eventually;
use std::sync::atomic::Ordering;
use std::time::Duration;

use awc::http::StatusCode;
use hotswap::config::{Secret, VaultAuth, VaultSettings};
use hotswap::secrets::vault::VaultSecrets;
use hotswap::secrets::{SecretBackend, SecretError, SecretMetadata, SecretValue};
use hotswap_actors::domain::{AuditQuery, DEFAULT_TENANT};
use serde_json::json;

use crate::support::{spawn_app, TestApp, ADMIN, VIEWER};
use crate::vault_fixture::{self, ROLE_ID, ROOT_TOKEN, SECRET_ID};

const ME: &str = "/api/v1/authentication/me";
const JWT: &str = "/api/v1/secrets/jwt-signing-key";

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap_or_default()
}

#[actix_web::test]
async fn rotating_the_jwt_key_keeps_old_tokens_until_the_window_ends() {
    let app = spawn_app(&[("HOTSWAP__SECRETS__JWT_POLICY__ROTATION_WINDOW", "2s")]).await;
    let old = app.token.clone().unwrap();
    assert_eq!(kid(&old), "v1");

    let r = app.call(awc::http::Method::GET, "/api/v1/secrets", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body[0]["id"], "jwt-signing-key");
    assert_eq!(r.body[0]["currentVersion"], 1);
    assert!(!r.text.contains(app.settings.auth.jwt_secret.expose()), "metadata only: {}", r.text);
    assert!(r.body[0].get("value").is_none());

    let (status, rotated) = app.post(&format!("{JWT}/rotate"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["currentVersion"], 2);
    assert_eq!(rotated["previousVersion"], 1);
    assert_eq!(rotated["inRotationWindow"], true);
    assert_eq!(rotated["policy"]["rotationWindow"], "2s", "{rotated}");
    // The policy's days read as days (90 days is not "2months 29days 2h 52m 48s").
    assert_eq!(rotated["policy"]["maxAge"], "90days", "{rotated}");
    assert_eq!(rotated["policy"]["rotationInterval"], "30days", "{rotated}");

    // New tokens use the new key; the old one still works within the window.
    let new = app.login(ADMIN).await;
    assert_eq!(kid(&new), "v2");
    assert_eq!(app.with_token(&new).get(ME).await.0, StatusCode::OK);
    assert_eq!(app.with_token(&old).get(ME).await.0, StatusCode::OK);
    // Then the window ends: the old token is refused, the new one is not.
    eventually(Duration::from_secs(6), "the old token is refused", async || {
        app.with_token(&old).get(ME).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(app.with_token(&new).get(ME).await.0, StatusCode::OK);
    let (_, meta) = app.with_token(&new).get(&format!("{JWT}/metadata")).await;
    assert_eq!(meta["inRotationWindow"], false, "{meta}");

    let audit = app
        .orchestrator
        .store()
        .list_audit(
            DEFAULT_TENANT,
            &AuditQuery { resource_id: Some("jwt-signing-key".into()), limit: 10, ..Default::default() },
        )
        .await
        .unwrap();
    let kinds: Vec<_> = audit.items.iter().map(|e| e.entry.event_type.as_str()).collect();
    assert_eq!(kinds, ["SecretRotated", "SecretCreated"]);
    assert_eq!(audit.items[0].entry.actor.name, "admin");
}

#[actix_web::test]
async fn secrets_are_for_admins_of_the_default_tenant() {
    let app = spawn_app(&[]).await;
    let viewer = app.as_user(VIEWER).await;
    assert_eq!(viewer.get("/api/v1/secrets").await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.anonymous().get("/api/v1/secrets").await.0, StatusCode::UNAUTHORIZED);
    let outsider = app
        .new_user(
            "secrets-outsider",
            &["Admin"],
            Some(crate::tenants::provision(&app, "outside-secrets", "Starter").await),
        )
        .await;
    assert_eq!(outsider.get("/api/v1/secrets").await.0, StatusCode::FORBIDDEN);
    assert_eq!(outsider.post(&format!("{JWT}/rotate"), &json!({})).await.0, StatusCode::FORBIDDEN);
    let (status, _) = app.get("/api/v1/secrets/..%2F..%2Fsys%2Fhealth/metadata").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "ids are plain names, never paths");
    let (status, reply) = app.get("/api/v1/secrets/nothing/metadata").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    assert_eq!(app.post("/api/v1/secrets/nothing/rotate", &json!({})).await.0, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn the_rotation_actor_rotates_when_due() {
    let app = spawn_app(&[
        ("HOTSWAP__SECRETS__JWT_POLICY__ROTATION_INTERVAL", "1s"),
        ("HOTSWAP__SECRETS__JWT_POLICY__MAX_AGE", "1h"),
        ("HOTSWAP__SECRETS__JWT_POLICY__NOTICE_PERIOD", "1m"),
        ("HOTSWAP__SECRETS__JWT_POLICY__ROTATION_WINDOW", "30m"),
    ])
    .await;
    let old = app.token.clone().unwrap();
    eventually(Duration::from_secs(5), "a scheduled rotation", async || {
        app.get(&format!("{JWT}/metadata")).await.1["currentVersion"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    let (_, meta) = app.get(&format!("{JWT}/metadata")).await;
    assert!(meta["nextRotationAt"].as_str().unwrap() > meta["lastRotatedAt"].as_str().unwrap(), "{meta}");
    assert_eq!(app.with_token(&old).get(ME).await.0, StatusCode::OK, "within the window");
    let audit = app
        .orchestrator
        .store()
        .list_audit(
            DEFAULT_TENANT,
            &AuditQuery { event_type: Some("SecretRotated".into()), limit: 10, ..Default::default() },
        )
        .await
        .unwrap();
    assert!(audit.items.iter().all(|e| e.entry.actor.is_system()), "the actor rotates as the system");
}

#[actix_web::test]
async fn the_rotation_actor_warns_before_expiry() {
    let app = spawn_app(&[
        ("HOTSWAP__SECRETS__JWT_POLICY__AUTO_ROTATE", "false"),
        ("HOTSWAP__SECRETS__JWT_POLICY__ROTATION_INTERVAL", "1h"),
        ("HOTSWAP__SECRETS__JWT_POLICY__MAX_AGE", "2h"),
        ("HOTSWAP__SECRETS__JWT_POLICY__NOTICE_PERIOD", "7199s"),
        ("HOTSWAP__SECRETS__JWT_POLICY__ROTATION_WINDOW", "1h"),
    ])
    .await;
    eventually(Duration::from_secs(5), "an expiry warning", async || {
        let q = AuditQuery { event_type: Some("SecretExpiring".into()), limit: 10, ..Default::default() };
        app.orchestrator.store().list_audit(DEFAULT_TENANT, &q).await.unwrap().total >= 1
    })
    .await;
    let (_, meta) = app.get(&format!("{JWT}/metadata")).await;
    assert_eq!(meta["expiring"], true);
    assert_eq!(meta["currentVersion"], 1, "no automatic rotation");
}

fn vault_settings(address: &str, auth: VaultAuth) -> VaultSettings {
    VaultSettings {
        address: address.into(),
        mount: "secret".into(),
        path_prefix: "hotswap".into(),
        auth,
        token: Secret::new(ROOT_TOKEN),
        role_id: Secret::new(ROLE_ID),
        secret_id: Secret::new(SECRET_ID),
        approle_path: "approle".into(),
        ca_cert_file: String::new(),
        timeout: Duration::from_secs(2),
        retries: 2,
        retry_delay: Duration::from_millis(10),
    }
}

#[actix_web::test]
async fn vault_kv_v2_versions_metadata_and_check_and_set() {
    let vault = vault_fixture::start();
    for auth in [VaultAuth::Token, VaultAuth::Approle] {
        let backend = VaultSecrets::new(vault_settings(&vault.address, auth)).unwrap();
        let id = format!("db-password-{auth:?}");
        assert_eq!(backend.metadata(&id).await.unwrap(), None);
        let now = chrono::Utc::now();
        let first = SecretMetadata::first(&id, None, now);
        let v1 = SecretValue::new("first-value-of-the-secret");
        assert_eq!(backend.write(&id, &v1, 0, &first).await.unwrap(), 1);
        let again = backend.write(&id, &v1, 0, &first).await;
        assert_eq!(again, Err(SecretError::Conflict(id.clone())), "check-and-set refuses a stale writer");
        let rotated = SecretMetadata { current_version: 1, ..first.clone() }.rotated(now);
        let v2 = SecretValue::new("second-value-of-the-secret");
        assert_eq!(backend.write(&id, &v2, 1, &rotated).await.unwrap(), 2);
        let meta = backend.metadata(&id).await.unwrap().unwrap();
        assert_eq!(meta.current_version, 2);
        assert_eq!(meta.previous_version, Some(1));
        assert_eq!(meta.previous_valid_until, rotated.previous_valid_until, "custom metadata round-trips");
        assert_eq!(backend.value(&id, 1).await.unwrap(), Some(v1));
        assert_eq!(backend.value(&id, 2).await.unwrap(), Some(v2));
        assert_eq!(backend.value(&id, 3).await.unwrap(), None);
        assert!(backend.list().await.unwrap().contains(&id));
    }

    // 503s are retried; past the retries the error names neither token nor value.
    let backend = VaultSecrets::new(vault_settings(&vault.address, VaultAuth::Token)).unwrap();
    vault.state.fail_next.store(2, Ordering::SeqCst);
    assert!(backend.metadata("db-password-Token").await.unwrap().is_some(), "two failures, then success");
    vault.state.fail_next.store(5, Ordering::SeqCst);
    let err = backend.metadata("db-password-Token").await.unwrap_err();
    assert!(matches!(err, SecretError::Unavailable(_)), "{err:?}");
    vault.state.fail_next.store(0, Ordering::SeqCst);
    let mut wrong = vault_settings(&vault.address, VaultAuth::Token);
    wrong.token = Secret::new("hvs.wrong-token-value");
    let err = VaultSecrets::new(wrong).unwrap().metadata("db-password-Token").await.unwrap_err().to_string();
    assert!(err.contains("403") && !err.contains("wrong-token-value") && !err.contains(ROOT_TOKEN), "{err}");
    let mut bad_role = vault_settings(&vault.address, VaultAuth::Approle);
    bad_role.secret_id = Secret::new("not-the-secret-id");
    let err = VaultSecrets::new(bad_role).unwrap().list().await.unwrap_err().to_string();
    assert!(err.contains("AppRole login") && !err.contains("not-the-secret-id"), "{err}");
    // TLS is verified: an https address needs a CA bundle that holds certificates.
    let mut https = vault_settings("https://127.0.0.1:1", VaultAuth::Token);
    https.ca_cert_file = "/nonexistent/ca.pem".into();
    assert!(VaultSecrets::new(https).is_err());
}

/// Over HTTPS the certificate is verified: signed by the configured CA it
/// works; signed by another, it fails before any request is sent.
#[actix_web::test]
async fn vault_over_tls_verifies_the_certificate() {
    // A CA, and a certificate for 127.0.0.1 that it signed.
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::db::pki::private_ca(dir.path());
    let (cert, key, ca) = (pki.cert, pki.key, pki.ca.to_str().unwrap().to_string());
    let vault = vault_fixture::start_tls(&cert, &key);
    let mut trusted = vault_settings(&vault.address, VaultAuth::Token);
    trusted.ca_cert_file = ca;
    let backend = VaultSecrets::new(trusted).unwrap();
    let meta = SecretMetadata::first("tls-checked", None, chrono::Utc::now());
    assert_eq!(backend.write("tls-checked", &SecretValue::new("over-tls"), 0, &meta).await.unwrap(), 1);
    assert!(backend.list().await.unwrap().contains(&"tls-checked".to_string()));

    // Another CA, which did not sign the fixture's certificate: refused.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = crate::db::pki::private_ca(elsewhere.path());
    let mut untrusted = vault_settings(&vault.address, VaultAuth::Token);
    untrusted.ca_cert_file = other.ca.to_str().unwrap().to_string();
    untrusted.retries = 0;
    let before = vault.state.requests.load(Ordering::SeqCst);
    let err = VaultSecrets::new(untrusted).unwrap().list().await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    assert_eq!(vault.state.requests.load(Ordering::SeqCst), before, "no request got past the handshake");
}

#[actix_web::test]
async fn the_jwt_key_lives_in_vault_and_rotates_there() {
    // Replicas share the store as well as Vault: a token names its user's
    // password hash (a reset revokes it), which two memory stores would not share.
    let Some(db) = crate::db::TestDb::create("api::the_jwt_key_lives_in_vault_and_rotates_there").await else {
        return;
    };
    let vault = vault_fixture::start();
    let overrides = [
        ("HOTSWAP__STORE__BACKEND", "postgres"),
        ("HOTSWAP__STORE__URL", db.url.as_str()),
        ("HOTSWAP__SECRETS__BACKEND", "vault"),
        ("HOTSWAP__SECRETS__VAULT__ADDRESS", vault.address.as_str()),
        ("HOTSWAP__SECRETS__VAULT__AUTH", "approle"),
        ("HOTSWAP__SECRETS__VAULT__ROLE_ID", ROLE_ID),
        ("HOTSWAP__SECRETS__VAULT__SECRET_ID", SECRET_ID),
    ];
    let first = spawn_app(&overrides).await;
    let old = first.token.clone().unwrap();
    let (status, _) = first.post(&format!("{JWT}/rotate"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    // A second replica on the same Vault signs with the rotated key and accepts the old one.
    let second: TestApp = spawn_app(&overrides).await;
    assert_eq!(kid(second.token.as_ref().unwrap()), "v2");
    assert_eq!(second.with_token(&old).get(ME).await.0, StatusCode::OK);
    assert_eq!(first.with_token(second.token.as_ref().unwrap()).get(ME).await.0, StatusCode::OK);
    assert_eq!(vault.written().len(), 2, "the seed and one rotation");
}

/// A real server process using the Vault fixture, with debug logging: its
/// output holds none of the values it wrote or read, nor the Vault token.
#[actix_web::test]
async fn no_log_line_or_answer_holds_a_secret_value() {
    let vault = vault_fixture::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let jwt_secret = "a-test-jwt-secret-that-must-never-be-logged-42";
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
        .env("HOTSWAP_ENV", "test")
        .env("HOTSWAP_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
        .env("HOTSWAP__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HOTSWAP__LOGGING__LEVEL", "debug")
        .env("RUST_LOG", "debug")
        .env("HOTSWAP__AUTH__JWT_SECRET", jwt_secret)
        .env("HOTSWAP__SECRETS__BACKEND", "vault")
        .env("HOTSWAP__SECRETS__VAULT__ADDRESS", &vault.address)
        .env("HOTSWAP__SECRETS__VAULT__TOKEN", ROOT_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hotswap runs");
    let client = awc::Client::builder().timeout(Duration::from_secs(5)).finish();
    eventually(Duration::from_secs(20), "the server is up", async || {
        client.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    let mut login = client
        .post(format!("{base}/api/v1/authentication/login"))
        .send_json(&json!({ "username": "admin", "password": "Admin123!" }))
        .await
        .unwrap();
    let token = login.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let mut answers = String::new();
    for (method, path) in [
        ("POST", "/api/v1/secrets/jwt-signing-key/rotate"),
        ("GET", "/api/v1/secrets"),
        ("GET", "/api/v1/secrets/jwt-signing-key/metadata"),
        ("POST", "/api/v1/secrets/jwt-signing-key/rotate"),
    ] {
        let req = client.request(method.parse().unwrap(), format!("{base}{path}")).bearer_auth(&token);
        let mut res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{method} {path}");
        answers.push_str(std::str::from_utf8(&res.body().await.unwrap()).unwrap());
    }
    // Stop the server, then read everything it printed.
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let logs = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(logs.contains("secret rotated"), "the logs were captured: {logs}");
    let values = vault.written();
    assert_eq!(values.len(), 3, "the seed and two rotations");
    assert_eq!(values[0], jwt_secret);
    for secret in values.iter().map(String::as_str).chain([ROOT_TOKEN]) {
        assert!(!logs.contains(secret), "a secret value is in the logs");
        assert!(!answers.contains(secret), "a secret value is in an answer");
    }
}
