//! `hotswap schemas`: a Deployer registers versions of a subject from files
//! and standard input; the first waits for an Admin, a compatible one is
//! approved at once, a breaking one shows where it breaks; payloads are
//! validated with an exit code scripts can use; a deprecated subject takes
//! no more versions.

use crate::harness::{Operator, Server, ADMIN, DEPLOYER};

#[actix_web::test]
async fn versions_are_registered_decided_and_used_to_validate_payloads() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let admin = Operator::logged_in(&server, ADMIN).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, json: serde_json::Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, json.to_string()).unwrap();
        path.to_str().unwrap().to_string()
    };
    let v1 = write(
        "v1.json",
        serde_json::json!({
            "type": "object", "required": ["id"],
            "properties": { "id": { "type": "integer" } }
        }),
    );
    let first = op.run(&["schemas", "register", "orders", &v1]).await;
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stdout.starts_with("orders registered as version 1: Draft"), "{first:?}");
    assert_eq!(op.run(&["schemas", "approve", "orders", "1"]).await.code, 2, "a Deployer does not decide");
    let approved = admin.run(&["schemas", "approve", "orders", "1", "--reason", "reviewed"]).await;
    assert_eq!(approved.stdout.trim(), "orders version 1 is Approved now", "{approved:?}");

    // An optional property is compatible: approved at once. From standard input.
    let v2 = serde_json::json!({
        "type": "object", "required": ["id"],
        "properties": { "id": { "type": "integer" }, "note": { "type": "string" } }
    });
    let second = op.run_with_input(&["schemas", "register", "orders", "-"], &v2.to_string()).await;
    assert!(second.stdout.starts_with("orders registered as version 2: Approved"), "{second:?}");
    // A new required property breaks: a Draft, saying where.
    let v3 = write(
        "v3.json",
        serde_json::json!({
            "type": "object", "required": ["id", "customer"],
            "properties": { "id": { "type": "integer" }, "customer": { "type": "string" } }
        }),
    );
    let third = op.run(&["schemas", "register", "orders", &v3]).await;
    assert!(third.stdout.starts_with("orders registered as version 3: Draft"), "{third:?}");
    assert!(third.stdout.contains("breaking changes") && third.stdout.contains("customer"), "{third:?}");
    let rejected = admin.run(&["schemas", "reject", "orders", "3", "--reason", "customers come later"]).await;
    assert_eq!(rejected.stdout.trim(), "orders version 3 is Rejected now", "{rejected:?}");

    let versions = op.run(&["schemas", "versions", "orders"]).await;
    let lines: Vec<&str> = versions.stdout.lines().skip(1).collect();
    assert_eq!(lines.len(), 3, "{versions:?}");
    assert!(lines[0].contains("Approved") && lines[0].contains("reviewed"), "{versions:?}");
    assert!(lines[2].contains("Rejected") && lines[2].contains("customers come later"), "{versions:?}");
    let listed = op.run(&["schemas", "-o", "json"]).await.json();
    assert_eq!((&listed[0]["latestVersion"], &listed[0]["latestApprovedVersion"]), (&3.into(), &2.into()), "{listed}");
    let past = op.run(&["schemas", "--page", "2"]).await;
    assert!(past.stdout.contains("page 2 is past the last: 1 schema in all"), "{past:?}");
    let shown = op.run(&["schemas", "show", "orders", "--version", "2"]).await;
    assert!(shown.stdout.starts_with("orders version 2: Approved") && shown.stdout.contains("\"note\""), "{shown:?}");

    // Payloads against the latest approved version (2): the exit code says whether they match.
    let good = write("good.json", serde_json::json!({ "id": 7, "note": "rush" }));
    let valid = op.run(&["schemas", "validate", "orders", &good]).await;
    assert_eq!((valid.code, valid.stdout.trim()), (0, "valid against orders version 2"), "{valid:?}");
    let invalid = op.run_with_input(&["schemas", "validate", "orders", "-"], r#"{"id": "seven"}"#).await;
    assert_eq!(invalid.code, 1, "{invalid:?}");
    assert!(invalid.stdout.contains("/id:") && invalid.stdout.contains("(type)"), "{invalid:?}");
    let not_json = op.run_with_input(&["schemas", "validate", "orders", "-"], "{oops").await;
    assert_eq!(not_json.code, 2, "{not_json:?}");
    assert!(not_json.stderr.contains("standard input is not JSON"), "{not_json:?}");

    assert_eq!(admin.run(&["schemas", "deprecate", "orders"]).await.code, 0);
    let late = op.run(&["schemas", "register", "orders", &v1, "--compatibility", "None"]).await;
    assert_eq!(late.code, 2, "a deprecated subject takes no versions: {late:?}");
}
