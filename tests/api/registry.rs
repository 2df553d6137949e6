//! The module registry over HTTP: uploads, listings, downloads, signing keys,
//! and what strict mode refuses.

use awc::http::{Method, StatusCode};
use hotswap::crypto::sha256_hex;
use hotswap_actors::domain::{AuditCategory, AuditQuery, DEFAULT_TENANT};
use serde_json::json;

use crate::registry_support::*;
use crate::support::{spawn_app, VIEWER};

#[actix_web::test]
async fn upload_list_download_and_digest_checks() {
    let app = spawn_app(&STRICT).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    let first = publish(&app, &key, &descriptor("kmod-net", "1.0.0")).await;
    let newer = publish(&app, &key, &descriptor("kmod-net", "1.10.0")).await;
    publish(&app, &key, &descriptor("kmod-net", "1.9.0")).await;

    // The same bytes again change nothing; other bytes under that version are refused.
    let (status, again) = upload(&app, &descriptor("kmod-net", "1.0.0"), &first, Some(&key.sign(&first))).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["sha256"], sha256_hex(&first));
    let other = unique_artifact("other");
    let (status, reply) = upload(&app, &descriptor("kmod-net", "1.0.0"), &other, Some(&key.sign(&other))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");

    let (status, list) = app.get("/api/v1/modules").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["latestVersion"], "1.10.0", "semantic, not lexical order: {list}");
    assert_eq!(list[0]["versionCount"], 3);

    let viewer = app.as_user(VIEWER).await;
    let (status, module) = viewer.get("/api/v1/modules/kmod-net").await;
    assert_eq!(status, StatusCode::OK, "{module}");
    let versions: Vec<_> = module["versions"].as_array().unwrap().iter().map(|v| v["version"].clone()).collect();
    assert_eq!(versions, [json!("1.10.0"), json!("1.9.0"), json!("1.0.0")]);
    let one = &module["versions"][0];
    assert_eq!(one["signed"], true);
    assert!(one["signingKeyId"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(one["resourceRequirements"]["memoryMB"], 64);

    let r = viewer.call(Method::GET, "/api/v1/modules/kmod-net/1.10.0/artifact", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text.as_bytes(), &newer[..]);
    let etag = format!("\"{}\"", sha256_hex(&newer));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let head = viewer.call(Method::HEAD, "/api/v1/modules/kmod-net/1.10.0/artifact", None).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), Some(newer.len().to_string().as_str()));
    assert!(head.text.is_empty());
    let cached = viewer
        .request_with(Method::GET, "/api/v1/modules/kmod-net/1.10.0/artifact", &[("If-None-Match", &etag)], None)
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    // If-None-Match compares weakly: a cache that weakened the tag still matches.
    let weak = format!("\"other\", W/{etag}");
    let cached = viewer
        .request_with(Method::GET, "/api/v1/modules/kmod-net/1.10.0/artifact", &[("If-None-Match", &weak)], None)
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);

    for missing in
        ["/api/v1/modules/kmod-none", "/api/v1/modules/kmod-net/2.0.0", "/api/v1/modules/kmod-net/2.0.0/artifact"]
    {
        let (status, reply) = viewer.get(missing).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}: {reply}");
    }
    let (status, _) = upload(&viewer, &descriptor("kmod-net", "3.0.0"), &first, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A version no node runs can go.
    let r = app.call(Method::DELETE, "/api/v1/modules/kmod-net/1.9.0", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.call(Method::DELETE, "/api/v1/modules/kmod-net/1.9.0", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let audit = app
        .orchestrator
        .store()
        .list_audit(
            DEFAULT_TENANT,
            &AuditQuery { category: Some(AuditCategory::ModuleRegistry), limit: 50, ..Default::default() },
        )
        .await
        .unwrap();
    let kinds: Vec<_> = audit.items.iter().map(|e| e.entry.event_type.as_str()).collect();
    assert_eq!(kinds, ["ModuleDeleted", "ModuleUploadRefused", "ModuleUploaded", "ModuleUploaded", "ModuleUploaded"]);
}

/// A multipart/form-data body with the given parts.
fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("hotswap-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[actix_web::test]
async fn multipart_uploads_like_curl_dash_f() {
    let app = spawn_app(&[STRICT[0], STRICT[1], ("HOTSWAP__REGISTRY__MAX_ARTIFACT_BYTES", "4096")]).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    let artifact = unique_artifact("multipart");
    let d = descriptor("kmod-form", "1.0.0").to_string();
    let sig = key.sign(&artifact);
    let (ct, body) = multipart(&[("descriptor", d.as_bytes()), ("artifact", &artifact), ("signature", &sig)]);
    let (status, reply) = app.post_raw("/api/v1/modules", &ct, body).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["sha256"], sha256_hex(&artifact));
    assert_eq!(reply["signed"], true);

    let (ct, body) = multipart(&[("descriptor", d.as_bytes()), ("artifact", &artifact), ("signature", b"junk")]);
    assert_eq!(app.post_raw("/api/v1/modules", &ct, body).await.0, StatusCode::OK, "same bytes: unchanged");
    let other = descriptor("kmod-form", "1.1.0").to_string();
    let (ct, body) = multipart(&[("descriptor", other.as_bytes()), ("artifact", &artifact), ("signature", b"junk")]);
    assert_eq!(app.post_raw("/api/v1/modules", &ct, body).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let (ct, body) = multipart(&[("descriptor", other.as_bytes())]);
    assert_eq!(app.post_raw("/api/v1/modules", &ct, body).await.0, StatusCode::BAD_REQUEST, "no artifact");
    let (ct, body) = multipart(&[("descriptor", other.as_bytes()), ("artifact", &[1u8; 5000])]);
    assert_eq!(app.post_raw("/api/v1/modules", &ct, body).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let (ct, body) = multipart(&[("descriptor", other.as_bytes()), ("extra", b"x")]);
    assert_eq!(app.post_raw("/api/v1/modules", &ct, body).await.0, StatusCode::BAD_REQUEST);
    let (ct, body) = multipart(&[("descriptor", b"{not json"), ("artifact", &artifact)]);
    assert_eq!(app.post_raw("/api/v1/modules", &ct, body).await.0, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn a_running_version_cannot_be_deleted() {
    let app = spawn_app(&STRICT).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    publish(&app, &key, &descriptor("kmod-busy", "1.0.0")).await;
    app.deploy_ok("kmod-busy", "1.0.0", "Development").await;
    let (status, module) = app.get("/api/v1/modules/kmod-busy/1.0.0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(module["deployedTo"][0]["environment"], "Development", "{module}");
    let placed = &module["deployedTo"][0];
    assert!(!placed["nodes"].as_array().unwrap().is_empty(), "{module}");
    assert_eq!(placed["nodeCount"].as_u64(), Some(placed["nodes"].as_array().unwrap().len() as u64), "{module}");
    let r = app.call(Method::DELETE, "/api/v1/modules/kmod-busy/1.0.0", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains("loaded on"), "{}", r.body);
}

#[actix_web::test]
async fn strict_mode_refuses_unsigned_and_badly_signed_uploads() {
    let app = spawn_app(&[STRICT[0], STRICT[1], ("HOTSWAP__REGISTRY__MAX_ARTIFACT_BYTES", "4096")]).await;
    let trusted = KeyPair::generate();
    let stranger = KeyPair::generate();
    trust(&app, "release", &trusted).await;
    let d = descriptor("kmod-strict", "1.0.0");
    let artifact = unique_artifact("strict");

    let (status, reply) = upload(&app, &d, &artifact, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("not signed"), "{reply}");
    let (status, reply) = upload(&app, &d, &artifact, Some(&trusted.sign(b"some other bytes"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a signature of other bytes: {reply}");
    let (status, reply) = upload(&app, &d, &artifact, Some(&stranger.sign(&artifact))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an untrusted key: {reply}");
    let mut pss = d.clone();
    pss["signatureAlgorithm"] = json!("RSA-PSS-SHA256");
    let (status, reply) = upload(&app, &pss, &artifact, Some(&trusted.sign(&artifact))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a PKCS#1 v1.5 signature claimed as PSS: {reply}");

    // Malformed input is a 400 naming every problem; too much is a 413.
    let mut bad = descriptor("Bad_Name", "1.0");
    bad["dependencies"] = json!({ "kmod-x": "not a range" });
    bad["configuration"] = json!([1, 2]);
    let (status, reply) = upload(&app, &bad, &artifact, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["details"].as_array().unwrap().len(), 4, "{reply}");
    let (status, reply) =
        app.post("/api/v1/modules", &json!({ "descriptor": d, "artifact": "%%%", "signature": "***" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["details"].as_array().unwrap().len(), 2, "{reply}");
    let (status, reply) = upload(&app, &d, &[], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let minimal = json!({ "name": "kmod-minimal", "version": "0.1.0" });
    let (status, reply) = upload(&app, &minimal, b"x", Some(&trusted.sign(b"x"))).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["configuration"], json!({}), "{reply}");
    let big = vec![7u8; 5000];
    let (status, reply) = upload(&app, &d, &big, Some(&trusted.sign(&big))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
    // Far larger: refused while the body is read, before the registry sees it; audited all the same.
    let huge = vec![7u8; 100_000];
    let (status, reply) = upload(&app, &d, &huge, None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
    let (status, reply) = app.post_raw("/api/v1/modules", "text/plain", b"hello".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{reply}");
    let (status, reply) = app.post_raw("/api/v1/modules", "application/json", b"{not json".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");

    // Nothing else was stored, and every refusal is in the audit trail.
    let (_, list) = app.get("/api/v1/modules").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let denied = app
        .orchestrator
        .store()
        .list_audit(
            DEFAULT_TENANT,
            &AuditQuery { event_type: Some("ModuleUploadRefused".into()), limit: 50, ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(denied.total, 6, "four refused signatures and two oversized artifacts");

    // The properly signed upload goes through, PSS too.
    let (status, reply) = upload(&app, &d, &artifact, Some(&trusted.sign(&artifact))).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let pss_sig = hotswap::crypto::rsa_sig::sign(
        &trusted.private,
        hotswap_actors::domain::SignatureAlgorithm::RsaPssSha256,
        &artifact,
    )
    .unwrap();
    pss["version"] = json!("1.0.1");
    let (status, reply) = upload(&app, &pss, &artifact, Some(&pss_sig)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["signatureAlgorithm"], "RSA-PSS-SHA256");
}

#[actix_web::test]
async fn signing_keys_are_checked_listed_and_revoked() {
    let app = spawn_app(&[]).await;
    let key = KeyPair::generate();
    let id = trust(&app, "release", &key).await;
    let (status, reply) =
        app.post("/api/v1/signing-keys", &json!({ "name": "again", "publicKeyPem": key.public_pem })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("is trusted already"), "{reply}");

    // PKCS#1 PEM is accepted too, and names the same key.
    let pkcs1 = {
        use rsa::pkcs1::EncodeRsaPublicKey;
        key.private.to_public_key().to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap()
    };
    let (status, reply) = app.post("/api/v1/signing-keys", &json!({ "name": "pkcs1", "publicKeyPem": pkcs1 })).await;
    assert_eq!(status, StatusCode::CONFLICT, "same fingerprint whatever the encoding: {reply}");

    let short = openssl_public_key(1024);
    let (status, reply) = app.post("/api/v1/signing-keys", &json!({ "name": "short", "publicKeyPem": short })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("1024 bits"), "{reply}");
    let (status, reply) = app.post("/api/v1/signing-keys", &json!({ "name": "junk", "publicKeyPem": "hello" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");

    let (status, keys) = app.as_user(VIEWER).await.get("/api/v1/signing-keys").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["fingerprint"], id.as_str());
    assert_eq!(keys[0]["bits"], 3072);
    assert_eq!(keys[0]["revoked"], false);

    let path = format!("/api/v1/signing-keys/{id}/revoke");
    let (status, _) = app.as_user(VIEWER).await.post(&path, &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, revoked) = app.post(&path, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["revoked"], true);
    let (status, again) = app.post(&path, &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["revokedAt"], revoked["revokedAt"], "the first revocation time stays");
    let (status, _) = app.post("/api/v1/signing-keys/sha256:nothing/revoke", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Added again once revoked: refused, saying it is revoked (not that it is trusted).
    let (status, reply) =
        app.post("/api/v1/signing-keys", &json!({ "name": "again", "publicKeyPem": key.public_pem })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(message.contains("revoked") && !message.contains("trusted already"), "{reply}");

    let security = app
        .orchestrator
        .store()
        .list_audit(
            DEFAULT_TENANT,
            &AuditQuery { category: Some(AuditCategory::Security), limit: 50, ..Default::default() },
        )
        .await
        .unwrap();
    let kinds: Vec<_> =
        security.items.iter().map(|e| e.entry.event_type.as_str()).filter(|k| k.starts_with("SigningKey")).collect();
    assert_eq!(kinds, ["SigningKeyRevoked", "SigningKeyRefused", "SigningKeyAdded"]);
}

#[actix_web::test]
async fn another_tenant_sees_none_of_the_registry() {
    let app = spawn_app(&[]).await;
    let key = KeyPair::generate();
    let id = trust(&app, "release", &key).await;
    publish(&app, &key, &descriptor("kmod-private", "1.0.0")).await;
    let outsider = app
        .new_user(
            "registry-outsider",
            &["Admin"],
            Some(crate::tenants::provision(&app, "outside-registry", "Starter").await),
        )
        .await;
    assert_eq!(outsider.get("/api/v1/modules").await.1, json!([]));
    assert_eq!(outsider.get("/api/v1/signing-keys").await.1, json!([]));
    for path in [
        "/api/v1/modules/kmod-private",
        "/api/v1/modules/kmod-private/1.0.0",
        "/api/v1/modules/kmod-private/1.0.0/artifact",
    ] {
        assert_eq!(outsider.get(path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let r = outsider.call(Method::DELETE, "/api/v1/modules/kmod-private/1.0.0", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(outsider.post(&format!("/api/v1/signing-keys/{id}/revoke"), &json!({})).await.0, StatusCode::NOT_FOUND);
    // The same name and version in another tenant is another module.
    let (status, reply) = upload(&outsider, &descriptor("kmod-private", "1.0.0"), b"its own bytes", None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(app.get("/api/v1/signing-keys").await.1[0]["revoked"], false);
    for path in ["/api/v1/modules", "/api/v1/signing-keys"] {
        assert_eq!(app.anonymous().get(path).await.0, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[actix_web::test]
async fn artifacts_in_postgres_survive_a_restart_and_deploy() {
    let Some(db) = crate::db::TestDb::create("api::artifacts_in_postgres_survive_a_restart_and_deploy").await else {
        return;
    };
    let overrides = [
        STRICT[0],
        STRICT[1],
        ("HOTSWAP__STORE__BACKEND", "postgres"),
        ("HOTSWAP__STORE__URL", db.url.as_str()),
        ("HOTSWAP__REGISTRY__ARTIFACT_BACKEND", "postgres"),
        // `before` keeps running beside `after`: two instances, each with its own
        // name and leases long enough that neither takes the other's run on a
        // loaded machine (with one name, a late renewal let `before` resume the
        // run on its own stale nodes).
        ("HOTSWAP__CLUSTER__LEASE_TTL", "60s"),
    ];
    let named = |name: &'static str| {
        let mut vars = overrides.to_vec();
        vars.push(("HOTSWAP__CLUSTER__INSTANCE_ID", name));
        vars
    };
    let before = spawn_app(&named("registry-before")).await;
    let key = KeyPair::generate();
    trust(&before, "release", &key).await;
    let artifact = publish(&before, &key, &descriptor("kmod-pg", "1.0.0")).await;
    // What PostgreSQL cannot store is refused as bad input, never a 500.
    let mut nul = descriptor("kmod-pg", "1.0.1");
    nul["description"] = json!("a\0b");
    nul["configuration"] = json!({ "k\0": ["\0"] });
    let (status, reply) = upload(&before, &nul, &artifact, Some(&key.sign(&artifact))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let (status, reply) =
        before.post("/api/v1/signing-keys", &json!({ "name": "nul\0", "publicKeyPem": key.public_pem })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    for path in
        ["/api/v1/modules/kmod%00pg", "/api/v1/modules/kmod-pg/1.0.0%00", "/api/v1/modules/kmod-pg/%00/artifact"]
    {
        assert_eq!(before.get(path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(before.post("/api/v1/signing-keys/sha256:%00/revoke", &json!({})).await.0, StatusCode::NOT_FOUND);
    let after = spawn_app(&named("registry-after")).await;
    let r = after.call(Method::GET, "/api/v1/modules/kmod-pg/1.0.0/artifact", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text.as_bytes(), &artifact[..]);
    after.deploy_ok("kmod-pg", "1.0.0", "Development").await;
}

/// An RSA key pair of `bits` made by the openssl command line: the
/// private key's PEM file (in `dir`) and the public key as SPKI PEM.
pub fn openssl_key_pair(dir: &std::path::Path, bits: u32) -> (std::path::PathBuf, String) {
    let key = dir.join(format!("key-{bits}.pem"));
    let k = key.to_str().unwrap();
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", &format!("rsa_keygen_bits:{bits}"), "-out", k]);
    let out = std::process::Command::new("openssl").args(["pkey", "-in", k, "-pubout"]).output().unwrap();
    assert!(out.status.success());
    (key, String::from_utf8(out.stdout).unwrap())
}

pub fn openssl_public_key(bits: u32) -> String {
    openssl_key_pair(tempfile::tempdir().unwrap().path(), bits).1
}

pub fn openssl(args: &[&str]) {
    openssl_stdout(args);
}

/// Runs openssl, which must succeed, and answers what it printed.
pub fn openssl_stdout(args: &[&str]) -> String {
    let out = std::process::Command::new("openssl").args(args).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[actix_web::test]
async fn the_modules_quota_and_storage_use_come_from_the_registry() {
    let app = spawn_app(&[]).await;
    // Free: three modules at most.
    let tenant = crate::tenants::provision(&app, "quota-registry", "Free").await;
    let admin = app.new_user("quota-registry-admin", &["Admin"], Some(tenant)).await;
    let mut bytes = 0;
    for name in ["kmod-q1", "kmod-q2", "kmod-q3"] {
        let artifact = unique_artifact(name);
        bytes += artifact.len();
        let (status, reply) = upload(&admin, &descriptor(name, "1.0.0"), &artifact, None).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }
    // A new version of a known module is not a new module.
    let (status, reply) = upload(&admin, &descriptor("kmod-q1", "1.1.0"), &unique_artifact("q1b"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, refused) = upload(&admin, &descriptor("kmod-q4", "1.0.0"), &unique_artifact("q4"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["quota"], "modules");
    assert_eq!(refused["limit"], 3);
    assert_eq!(refused["current"], 3);
    assert_eq!(admin.get("/api/v1/modules/kmod-q4").await.0, StatusCode::NOT_FOUND, "nothing was stored");

    let (_, usage) = admin.get(&format!("/api/tenants/{tenant}/usage")).await;
    let row = |q: &str| usage["quotas"].as_array().unwrap().iter().find(|x| x["quota"] == q).unwrap().clone();
    // The registry's modules, as the upload just counted them (no run has used any).
    assert_eq!((row("modules")["used"].clone(), row("modules")["limit"].clone()), (json!(3), json!(3)), "{usage}");
    // A few KB do not read as the whole 1 GB: the GB are rounded, the bytes exact.
    let storage = row("artifactStorageGb");
    assert_eq!(storage["used"], 0, "{usage}");
    assert_eq!(storage["limitBytes"], 1_000_000_000u64, "{usage}");
    let (_, report) = admin.get("/api/v1/analytics/usage").await;
    let stored = report["artifactStorageBytes"].as_u64().unwrap();
    assert!(stored > bytes as u64, "four artifacts, counted once each: {report}");
    assert_eq!(storage["usedBytes"], stored, "{usage}");
}

#[actix_web::test]
async fn concurrent_uploads_of_new_modules_never_exceed_the_modules_quota() {
    let app = spawn_app(&[("HOTSWAP__REGISTRY__MAX_CONCURRENT_UPLOADS", "16")]).await;
    // Free: three modules at most.
    let tenant = crate::tenants::provision(&app, "quota-race", "Free").await;
    let admin = app.new_user("quota-race-admin", &["Admin"], Some(tenant)).await;
    let names: Vec<String> = (1..=7).map(|i| format!("kmod-race{i}")).collect();
    let uploads = names.iter().map(|name| {
        let admin = admin.clone();
        async move { upload(&admin, &descriptor(name, "1.0.0"), &unique_artifact(name), None).await }
    });
    let answers = futures::future::join_all(uploads).await;
    let created = answers.iter().filter(|(status, _)| *status == StatusCode::CREATED).count();
    let refused =
        answers.iter().filter(|(status, reply)| *status == StatusCode::FORBIDDEN && reply["quota"] == "modules");
    assert_eq!((created, refused.count()), (3, 4), "{answers:#?}");
    let (_, listed) = admin.get("/api/v1/modules").await;
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
}

#[actix_web::test]
async fn nul_characters_in_hooks_are_refused_with_400() {
    let app = spawn_app(&[]).await;
    for hook in ["activate", "deactivate", "health", "prepareStandby"] {
        let mut d = descriptor("kmod-nulhook", "1.0.0");
        d["hooks"] = json!({ hook: "a\u{0}b" });
        let (status, reply) = upload(&app, &d, &unique_artifact("nulhook"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hook}: {reply}");
        assert_eq!(reply["code"], "validation_failed", "{reply}");
    }
}

#[actix_web::test]
async fn the_same_bytes_with_another_descriptor_are_409_naming_what_differs() {
    let app = spawn_app(&[]).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    let d = descriptor("kmod-redesc", "1.0.0");
    let artifact = publish(&app, &key, &d).await;
    let sig = key.sign(&artifact);
    // The same descriptor (its keys in another order): unchanged.
    let reordered: serde_json::Value = serde_json::from_str(&d.to_string()).unwrap();
    let (status, reply) = upload(&app, &reordered, &artifact, Some(&sig)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let mut changed = d.clone();
    changed["dependencies"] = json!({ "kmod-base": "^1.0" });
    changed["description"] = json!("another description");
    changed["hooks"] = json!({ "activate": "true" });
    let (status, reply) = upload(&app, &changed, &artifact, Some(&sig)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let message = reply["message"].as_str().unwrap();
    for field in ["dependencies", "description", "hooks"] {
        assert!(message.contains(field), "{field} in {message}");
    }
    let (_, stored) = app.get("/api/v1/modules/kmod-redesc/1.0.0").await;
    assert_eq!(stored["dependencies"], json!({}), "the stored descriptor is unchanged: {stored}");
}

#[actix_web::test]
async fn a_small_altered_artifact_is_answered_500_before_any_byte() {
    let app = spawn_app(&[]).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    let artifact = publish(&app, &key, &descriptor("kmod-altered", "1.0.0")).await;
    let digest = sha256_hex(&artifact);
    let file = app.settings.registry.artifact_dir.join("sha256").join(&digest[..2]).join(&digest);
    let mut altered = artifact.clone();
    altered[3] ^= 0xff;
    std::fs::write(&file, &altered).unwrap();
    let path = "/api/v1/modules/kmod-altered/1.0.0/artifact";
    let r = app.call(Method::GET, path, None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    assert!(r.body["traceId"].is_string(), "the JSON error shape: {}", r.text);
    let head = app.call(Method::HEAD, path, None).await;
    assert_eq!(head.status, StatusCode::INTERNAL_SERVER_ERROR, "HEAD checks as GET does");
}

/// Walkthrough w3 F4: uploading a version again with its right bytes, when
/// the stored ones were altered or lost, rewrites them (audited), instead of
/// answering "unchanged" over bytes nothing can deploy.
#[actix_web::test]
async fn an_upload_of_the_right_bytes_repairs_an_altered_or_lost_stored_artifact() {
    let app = spawn_app(&[]).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    let d = descriptor("kmod-repaired", "1.0.0");
    let artifact = publish(&app, &key, &d).await;
    let digest = sha256_hex(&artifact);
    let file = app.settings.registry.artifact_dir.join("sha256").join(&digest[..2]).join(&digest);
    let path = "/api/v1/modules/kmod-repaired/1.0.0/artifact";

    // Intact: the same upload again changes nothing and says nothing more.
    let (status, reply) = upload(&app, &d, &artifact, Some(&key.sign(&artifact))).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert!(reply.get("artifactRepaired").is_none(), "{reply}");

    for damage in ["altered", "lost"] {
        if damage == "altered" {
            let mut altered = artifact.clone();
            altered[3] ^= 0xff;
            std::fs::write(&file, &altered).unwrap();
        } else {
            std::fs::remove_file(&file).unwrap();
        }
        assert_ne!(app.call(Method::GET, path, None).await.status, StatusCode::OK, "{damage}: not served");
        let (status, reply) = upload(&app, &d, &artifact, Some(&key.sign(&artifact))).await;
        assert_eq!(status, StatusCode::OK, "{damage}: {reply}");
        assert_eq!(reply["artifactRepaired"], true, "{damage}: {reply}");
        assert_eq!(std::fs::read(&file).unwrap(), artifact, "{damage}: the right bytes are stored again");
        let r = app.call(Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{damage}: {}", r.text);
    }
    let (_, entries) = app.get("/api/v1/auditlogs?eventType=ModuleArtifactRepaired&limit=100").await;
    let text = entries.to_string();
    assert!(text.contains("was altered (SHA-256") && text.contains("was missing"), "{text}");
    app.deploy_ok("kmod-repaired", "1.0.0", "Development").await;
}

#[actix_web::test]
async fn a_version_a_running_batch_will_deploy_cannot_be_deleted() {
    // QA runs stay active a long while: the batch's later steps stay Pending.
    let app = spawn_app(&[("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", "30s")]).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    publish(&app, &key, &descriptor("kmod-bfirst", "1.0.0")).await;
    let mut second = descriptor("kmod-bsecond", "1.0.0");
    second["dependencies"] = json!({ "kmod-bfirst": "^1.0" });
    publish(&app, &key, &second).await;
    let body = json!({
        "modules": [{ "module": "kmod-bfirst", "version": "1.0.0" }, { "module": "kmod-bsecond", "version": "1.0.0" }],
        "targetEnvironment": "QA",
        "requesterEmail": "ops@example.com",
    });
    let (status, batch) = app.post("/api/v1/deployments/batch", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    let id = batch["batchId"].as_str().unwrap();
    let r = app.call(Method::DELETE, "/api/v1/modules/kmod-bsecond/1.0.0", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains(id), "{}", r.body);
    assert_eq!(app.get("/api/v1/modules/kmod-bsecond/1.0.0").await.0, StatusCode::OK, "still there");
}

#[actix_web::test]
async fn a_version_that_a_run_is_deploying_cannot_be_deleted() {
    let app = spawn_app(&STRICT).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    publish(&app, &key, &descriptor("kmod-inflight", "1.0.0")).await;
    // Past its scan and waiting for approval: no node has it yet, the run still needs it.
    let id = app.deploy("kmod-inflight", "1.0.0", "Staging", json!({ "requireApproval": true })).await;
    app.wait_for(&id, |r| r["status"] == "PendingApproval").await;
    let r = app.call(Method::DELETE, "/api/v1/modules/kmod-inflight/1.0.0", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains(&id), "{}", r.body);
    app.post(&format!("/api/v1/approvals/deployments/{id}/reject"), &json!({})).await;
    assert_eq!(app.finished(&id).await["status"], "Failed");
    let r = app.call(Method::DELETE, "/api/v1/modules/kmod-inflight/1.0.0", None).await;
    assert!(r.status.is_success(), "once the run has ended: {} {}", r.status, r.text);
}
