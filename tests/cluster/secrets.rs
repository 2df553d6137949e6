//! Secrets shared in PostgreSQL (`secrets.backend = "postgres"`): the JWT
//! signing key rotated through one instance signs tokens the other accepts
//! on their first request, the rotation outlives a restart, and the database holds
//! the keys sealed, never in clear. With the memory back-end each instance
//! held its own key, so after a rotation half of a load balancer's requests
//! were refused.

use base64::Engine;
use diesel::sql_types::{Bytea, Integer};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::*;

#[derive(QueryableByName)]
struct SealedRow {
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Bytea)]
    sealed: Vec<u8>,
}

fn shared_secrets(key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HOTSWAP__SECRETS__BACKEND", "postgres".to_string()),
        ("HOTSWAP__SECRETS__ENCRYPTION_KEY", key.to_string()),
        // Rotations here are the Admin's, not the policy's; the key ring is
        // reloaded between checks.
        ("HOTSWAP__SECRETS__ROTATION_ENABLED", "true".to_string()),
        ("HOTSWAP__SECRETS__CHECK_INTERVAL", "1h".to_string()),
    ]
}

async fn login(server: &Server) -> String {
    let client = awc::Client::default();
    let body = json!({ "username": "deployer", "password": "Deploy123!" });
    let mut res =
        client.post(format!("{}/api/v1/authentication/login", server.base)).send_json(&body).await.expect("login");
    let reply: Value = res.json().await.expect("login reply");
    assert_eq!(res.status(), StatusCode::OK, "{reply}");
    reply["token"].as_str().unwrap().to_string()
}

/// The status `server` answers `token` with on an authenticated read.
async fn status_with(server: &Server, token: &str) -> u16 {
    let client = awc::Client::default();
    let res = client.get(format!("{}/api/v1/authentication/me", server.base)).bearer_auth(token).send().await;
    res.expect("request").status().as_u16()
}

fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap_or_default().to_string()
}

#[actix_web::test]
async fn a_key_rotated_on_one_instance_signs_tokens_the_other_accepts() {
    let Some(db) = TestDb::create("a_key_rotated_on_one_instance_signs_tokens_the_other_accepts").await else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let a = instance(&db, "secrets-a", logs.path(), &shared_secrets(&key)).await;
    let mut b = instance(&db, "secrets-b", logs.path(), &shared_secrets(&key)).await;

    let before = login(&a).await;
    assert_eq!(kid(&before), "v1");
    let (status, rotated) = a.post("/api/v1/secrets/jwt-signing-key/rotate", &json!({})).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["currentVersion"], 2, "{rotated}");

    // A token A signs with the new key: B accepts it on its first request,
    // reloading its key ring for a key it does not hold yet rather than
    // refusing it until its next periodic reload (every few seconds).
    let after = login(&a).await;
    assert_eq!(kid(&after), "v2");
    assert_eq!(status_with(&b, &after).await, 200, "b accepts a token signed with the rotated key at once");
    assert_eq!(status_with(&b, &before).await, 200, "the previous key stays valid in its window");
    assert_eq!(kid(&login(&b).await), "v2", "b signs with the rotated key too");

    // Restarted, B still has the rotated key, not the one auth.jwt_secret seeds.
    b.kill();
    let b = instance(&db, "secrets-b2", logs.path(), &shared_secrets(&key)).await;
    assert_eq!(status_with(&b, &after).await, 200);
    assert_eq!(kid(&login(&b).await), "v2");

    // At rest, the database holds each version sealed: neither the seed nor any text.
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    let rows: Vec<SealedRow> =
        diesel::sql_query("SELECT version, sealed FROM secret_versions WHERE id = 'jwt-signing-key' ORDER BY version")
            .load(&mut conn)
            .await
            .unwrap();
    assert_eq!(rows.iter().map(|r| r.version).collect::<Vec<_>>(), vec![1, 2]);
    let seed = b"hotswap-development-only-jwt-secret";
    for row in &rows {
        assert!(!row.sealed.windows(seed.len()).any(|w| w == seed), "version {} is sealed", row.version);
        assert!(std::str::from_utf8(&row.sealed).is_err(), "version {} is not text", row.version);
    }

    // An instance with another key cannot read them, and says so at start.
    let other = base64::engine::general_purpose::STANDARD.encode([8u8; 32]);
    let port = free_port();
    let mut vars = shared_secrets(&other);
    vars.push(("HOTSWAP__STORE__BACKEND", "postgres".to_string()));
    vars.push(("HOTSWAP__STORE__URL", db.url.clone()));
    let log = logs.path().join("wrong-key.log");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
        .arg("serve")
        .env("HOTSWAP_ENV", "test")
        .env("HOTSWAP_CONFIG_DIR", std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"))
        .env("HOTSWAP__SERVER__BIND", format!("127.0.0.1:{port}"))
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
        .status()
        .unwrap();
    assert!(!status.success(), "an instance with another key must not start");
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("does not open with secrets.encryption_key"), "{said}");
}

/// auth.jwt_secret only seeds an empty back-end: once PostgreSQL holds the
/// published development key, a server started outside insecure_dev_mode
/// with another secret refuses to start (that key would still sign and verify
/// tokens), saying how to rotate it; a configured secret that differs from
/// the key in use is a warning. Neither names a value.
#[actix_web::test]
async fn a_published_key_held_by_the_back_end_refuses_to_start_outside_dev_mode() {
    let Some(db) = TestDb::create("a_published_key_held_by_the_back_end_refuses_to_start").await else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let published = "hotswap-development-only-jwt-secret-change-me-0123456789";
    let mine = "the-operators-own-jwt-secret-0123456789abcdef";
    // The test profile seeds jwt-signing-key v1 with the published secret.
    let mut seeded = instance(&db, "seed", logs.path(), &shared_secrets(&key)).await;
    seeded.kill();

    let port = free_port();
    let mut vars = shared_secrets(&key);
    vars.extend([
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__SERVER__INSECURE_DEV_MODE", "false".to_string()),
        ("HOTSWAP__AUTH__DEMO_USERS", "false".to_string()),
        ("HOTSWAP__AUTH__BCRYPT_COST", "10".to_string()),
        ("HOTSWAP__APPROVALS__ALLOW_SELF_APPROVAL", "false".to_string()),
        ("HOTSWAP__AUTH__JWT_SECRET", mine.to_string()),
    ]);
    let log = logs.path().join("refused.log");
    let mut child = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
            .arg("serve")
            .env("HOTSWAP_ENV", "test")
            .env("HOTSWAP_CONFIG_DIR", std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"))
            .env("HOTSWAP__SERVER__BIND", format!("127.0.0.1:{port}"))
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // A server that starts anyway fails the test (and is killed), not hangs it.
    let exited = eventually_ok(Duration::from_secs(60), "the refused server exits", async || {
        child.0.try_wait().unwrap().ok_or_else(|| "still running, so it started".to_string())
    })
    .await;
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(!exited.success(), "it must not start: {said}");
    assert!(said.contains("holds jwt-signing-key with a published default as its current version (v1)"), "{said}");
    assert!(said.contains("hotswap secrets rotate jwt-signing-key"), "{said}");
    assert!(!said.contains(published) && !said.contains(mine), "no value is logged: {said}");

    // In dev mode it starts, and says the configured secret is not the one in use.
    let mut mine_configured = shared_secrets(&key);
    mine_configured.push(("HOTSWAP__AUTH__JWT_SECRET", mine.to_string()));
    let mut dev = instance(&db, "dev", logs.path(), &mine_configured).await;
    dev.kill();
    let said = std::fs::read_to_string(logs.path().join("dev.log")).unwrap();
    assert!(said.contains("auth.jwt_secret differs from jwt-signing-key v1"), "{said}");
    assert!(!said.contains(published) && !said.contains(mine), "no value is logged: {said}");
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
