//! The read-mostly verbs an operator checks things with: `hotswap modules`
//! after a signed upload and a run, `hotswap audit` with its filters and
//! pages, and `hotswap secrets` with a rotation; each refused to a Deployer
//! where the API refuses it.

use crate::harness::{Operator, Server, ADMIN, DEPLOYER};

#[actix_web::test]
async fn modules_audit_and_secrets_show_what_happened() {
    let server = Server::start().await;
    let admin = Operator::logged_in(&server, ADMIN).await;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    assert_eq!(admin.run(&["keygen", "--out", &at("team.pem")]).await.code, 0);
    assert_eq!(admin.run(&["keys", "add", &at("team.pem.pub")]).await.code, 0);
    let descriptor = serde_json::json!({
        "name": "netx", "version": "1.0.0", "description": "net extension", "dependencies": { "kbase": "^1" }
    });
    std::fs::write(at("netx.json"), descriptor.to_string()).unwrap();
    std::fs::write(at("netx.ko"), b"module bytes").unwrap();
    let signed = admin
        .run(&["module", "sign", "--key", &at("team.pem"), "--descriptor", &at("netx.json"), &at("netx.ko")])
        .await;
    assert_eq!(signed.code, 0, "{signed:?}");
    let pushed = admin.run(&["module", "push", "--descriptor", &at("netx.json"), &at("netx.ko")]).await;
    assert_eq!(pushed.code, 0, "{pushed:?}");

    let listed = admin.run(&["modules"]).await;
    assert!(listed.stdout.lines().any(|l| l.starts_with("netx") && l.contains("net extension")), "{listed:?}");
    let netx = admin.run(&["modules", "netx"]).await;
    let row = netx.stdout.lines().find(|l| l.starts_with("1.0.0")).unwrap_or_default().to_string();
    assert!(row.contains("sha256:") && row.contains("kbase ^1") && row.contains(" 12 "), "{netx:?}");
    let whole = admin.run(&["modules", "netx", "-o", "json"]).await.json();
    assert_eq!(whole["versions"][0]["sha256"], hotswap::crypto::sha256_hex(b"module bytes"));
    let unknown = admin.run(&["modules", "no-such"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");

    // The audit trail: the key's trust and the upload, filtered and paged.
    let security = admin.run(&["audit", "--category", "Security", "--since", "10m"]).await;
    assert!(security.stdout.contains("SigningKeyAdded"), "{security:?}");
    assert!(!security.stdout.contains("ModuleUploaded"), "{security:?}");
    let first = admin.run(&["audit", "--limit", "2", "-o", "json"]).await.json();
    assert_eq!(first["items"].as_array().unwrap().len(), 2, "{first}");
    let cursor = first["nextCursor"].as_i64().unwrap().to_string();
    let table = admin.run(&["audit", "--limit", "2"]).await;
    assert!(table.stdout.contains(&format!("older ones: --cursor {cursor}")), "{table:?}");
    let older = admin.run(&["audit", "--limit", "2", "--cursor", &cursor, "-o", "json"]).await.json();
    let newest_older = older["items"][0]["id"].as_i64().unwrap();
    assert!(newest_older < first["items"][1]["id"].as_i64().unwrap(), "{older}");
    let bad = admin.run(&["audit", "--category", "Nonsense"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");

    // Secrets: metadata only; a rotation moves the version and keeps the old one for a while.
    let secrets = admin.run(&["secrets", "-o", "json"]).await.json();
    let jwt = secrets.as_array().unwrap().iter().find(|s| s["id"] == "jwt-signing-key").cloned().unwrap();
    let rotated = admin.run(&["secrets", "rotate", "jwt-signing-key"]).await;
    assert_eq!(rotated.code, 0, "{rotated:?}");
    let expected = format!("rotated jwt-signing-key to version {}", jwt["currentVersion"].as_u64().unwrap() + 1);
    assert!(rotated.stdout.starts_with(&expected), "{rotated:?}");
    assert_eq!(admin.run(&["runs"]).await.code, 0, "the token signed before the rotation still works");
    let rotations = admin.run(&["audit", "--event", "SecretRotated", "-o", "json"]).await.json();
    assert_eq!(rotations["items"].as_array().unwrap().len(), 1, "{rotations}");

    let deployer = Operator::logged_in(&server, DEPLOYER).await;
    assert_eq!(deployer.run(&["modules"]).await.code, 0);
    for verb in [&["audit"][..], &["secrets"], &["secrets", "rotate", "jwt-signing-key"]] {
        let refused = deployer.run(verb).await;
        assert_eq!(refused.code, 2, "{verb:?}: {refused:?}");
    }
}
